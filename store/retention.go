package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/taipei-doit/ecardbot"
)

// DefaultRetentionBatch is how many rows one retention statement deletes by default: small
// enough that each short transaction holds its row locks for milliseconds while readers post
// the morning's taps, large enough that a backlog of millions of rows takes minutes, not hours.
const DefaultRetentionBatch = 5000

// RetentionConfig is what the retention job needs besides the database.
type RetentionConfig struct {
	// Batch is how many rows (notices, gate events, leaves, sweep records) one transaction
	// deletes. Zero means DefaultRetentionBatch.
	Batch int
}

// RetentionService deletes old rows in batches.
//
// Each batch is its own transaction, so no lock is held for long and a canceled run keeps
// what it deleted. Notices go first, their deliveries deleted explicitly in the same
// transaction (to count them; the foreign key would cascade anyway); gate events follow, so
// deleting them never has to null a notice's gate_event_id. On PostgreSQL each batch picks its
// rows with FOR UPDATE SKIP LOCKED, so replicas that run the job at the same time share the
// work instead of waiting on each other's rows; SQLite runs one writer at a time anyway.
type RetentionService struct {
	db    *DB
	batch int
}

var _ ecardbot.RetentionService = (*RetentionService)(nil)

// NewRetentionService returns the service over db, which must be migrated.
func NewRetentionService(db *DB, cfg RetentionConfig) *RetentionService {
	s := &RetentionService{db: db, batch: cfg.Batch}
	if s.batch <= 0 {
		s.batch = DefaultRetentionBatch
	}
	return s
}

// PurgeBefore deletes notices (with their deliveries), gate events, leave records and sweep
// records of days before before, and the settings pages' expired rows.
func (s *RetentionService) PurgeBefore(ctx context.Context, before string) (ecardbot.RetentionResult, error) {
	res := ecardbot.RetentionResult{Before: before}
	if !validDate(before) {
		return res, fmt.Errorf("purge: %w", ecardbot.Errorf(ecardbot.EINVALID, "Date %q is not a date written YYYY-MM-DD.", before))
	}
	fail := func(what string, err error) (ecardbot.RetentionResult, error) {
		return res, fmt.Errorf("purge %s: %w", what, s.db.unavailable(ctx, mapError(err)))
	}
	for {
		notices, deliveries, err := s.purgeNotices(ctx, before)
		res.Notices += notices
		res.Deliveries += deliveries
		if err != nil {
			return fail("notices", err)
		}
		if notices < int64(s.batch) {
			break
		}
	}
	for _, t := range []struct {
		table, column string
		count         *int64
	}{
		{"gate_events", "day", &res.GateEvents},
		{"leaves", "date", &res.Leaves},
		{"sweep_runs", "day", &res.SweepRuns},
	} {
		for {
			n, err := s.purgeBatch(ctx, t.table, t.column, before)
			*t.count += n
			if err != nil {
				return fail(t.table, err)
			}
			if n < int64(s.batch) {
				break
			}
		}
	}
	n, err := s.purgeExpired(ctx, time.Now())
	res.Expired = n
	if err != nil {
		return fail("expired settings rows", err)
	}
	return res, nil
}

// purgeExpired deletes the settings pages' rows that can no longer be used. The settings pages
// clear a guardian's own expired rows when they make new ones, which leaves those of guardians
// who never come back; the link tables need nothing here, as every TaipeiPASS login clears
// their expired rows for everyone.
func (s *RetentionService) purgeExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []struct {
		table, column string
		before        time.Time
	}{
		{"settings_links", "expires_at", now},
		{"settings_sessions", "expires_at", now},
		{"email_confirmations", "expires_at", now},
		{"settings_attempts", "at", now.Add(-24 * time.Hour)}, // the limit looks back one hour
	} {
		res := s.db.gorm.WithContext(ctx).Exec(`DELETE FROM `+q.table+` WHERE `+q.column+` < ?`, s.db.timeArg(q.before))
		if res.Error != nil {
			return total, res.Error
		}
		total += res.RowsAffected
	}
	return total, nil
}

// purgeBatch deletes one batch of table's rows whose column is before the date. table and
// column are constants of PurgeBefore, never input.
func (s *RetentionService) purgeBatch(ctx context.Context, table, column, before string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	lock := ""
	if s.db.dialect == DialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	res := s.db.gorm.WithContext(ctx).Exec(fmt.Sprintf(`DELETE FROM %[1]s WHERE id IN
	(SELECT id FROM %[1]s WHERE %[2]s < ? ORDER BY id LIMIT ?%[3]s)`, table, column, lock), before, s.batch)
	return res.RowsAffected, res.Error
}

// purgeNotices deletes one batch of old notices and their deliveries in one transaction.
func (s *RetentionService) purgeNotices(ctx context.Context, before string) (notices, deliveries int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	err = s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		notices, deliveries = 0, 0
		if s.db.dialect == DialectPostgres {
			rows, err := s.db.query(ctx, tx, `SELECT id FROM notices WHERE day < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`, before, s.batch)
			if err != nil {
				return err
			}
			ids, err := scanIDs(rows)
			if err != nil || len(ids) == 0 {
				return err
			}
			if deliveries, err = s.db.exec(ctx, tx, `DELETE FROM deliveries WHERE notice_id = ANY($1::bigint[])`, ids); err != nil {
				return err
			}
			notices, err = s.db.exec(ctx, tx, `DELETE FROM notices WHERE id = ANY($1::bigint[])`, ids)
			return err
		}
		// SQLite runs this transaction alone, so both subqueries select the same notices.
		const batch = `(SELECT id FROM notices WHERE day < ? ORDER BY id LIMIT ?)`
		res := tx.Exec(`DELETE FROM deliveries WHERE notice_id IN `+batch, before, s.batch)
		if res.Error != nil {
			return res.Error
		}
		deliveries = res.RowsAffected
		res = tx.Exec(`DELETE FROM notices WHERE id IN `+batch, before, s.batch)
		notices = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, 0, err
	}
	return notices, deliveries, nil
}
