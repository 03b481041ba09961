package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/taipei-doit/ecardbot"
)

// DeliveryService keeps the state of deliveries (the outbox) for the push relay and workers.
//
// The queue is at-least-once: a task may run twice, and the relay may enqueue a delivery it
// already enqueued. Every transition is therefore one UPDATE guarded by the state it leaves, so
// repeating it changes nothing, and no transition leaves sent: a delivery LINE accepted is
// never queued, retried or dead-lettered again.
type DeliveryService struct {
	db  *DB
	now func() time.Time
}

var _ ecardbot.DeliveryService = (*DeliveryService)(nil)

// NewDeliveryService returns the service over db, which must be migrated.
func NewDeliveryService(db *DB) *DeliveryService {
	return &DeliveryService{db: db, now: time.Now}
}

// active is the SQL list of states a sender may still act on.
const active = `('pending', 'queued')`

// lockedActive selects the active deliveries among the IDs in $3 and locks them in the order of
// their IDs: the queued marks and the workers' sent marks (of two replicas that both hold a
// delivery, too) then never wait for each other in a cycle, which PostgreSQL would end by aborting
// one of them as a deadlock. ClaimStaleQueued skips locked rows instead.
const lockedActive = `SELECT id FROM deliveries WHERE id = ANY($3::text[]) AND state IN ` + active + ` ORDER BY id FOR UPDATE`

// PendingBatch returns up to limit pending deliveries, oldest first, so a backlog drains in
// the order the notices happened.
func (s *DeliveryService) PendingBatch(ctx context.Context, limit int) ([]ecardbot.PendingDelivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []ecardbot.PendingDelivery
	err := s.db.gorm.WithContext(ctx).Raw(`SELECT id, channel FROM deliveries WHERE state = ? ORDER BY created_at, id LIMIT ?`,
		ecardbot.DeliveryPending, limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("pending deliveries: %w", mapError(err))
	}
	return out, nil
}

// MarkQueued records that a task holds the deliveries among ids that are pending or queued:
// they are queued as of now. A delivery a worker already handled (the relay crashed before
// marking it) keeps its state.
func (s *DeliveryService) MarkQueued(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	now := s.db.timeArg(s.now())
	if s.db.dialect == DialectPostgres {
		_, err := s.db.exec(ctx, s.db.gorm.WithContext(ctx), `UPDATE deliveries SET state = $1, updated_at = $2
WHERE id IN (`+lockedActive+`)`, ecardbot.DeliveryQueued, now, ids)
		if err != nil {
			return fmt.Errorf("mark deliveries queued: %w", mapError(err))
		}
		return nil
	}
	for chunk := range chunks(ids, 1) {
		err := s.db.gorm.WithContext(ctx).Exec(`UPDATE deliveries SET state = ?, updated_at = ? WHERE state IN `+active+` AND id IN ?`,
			ecardbot.DeliveryQueued, now, chunk).Error
		if err != nil {
			return fmt.Errorf("mark deliveries queued: %w", mapError(err))
		}
	}
	return nil
}

// ClaimStaleQueued implements ecardbot.DeliveryService in one statement, so two relays never
// claim the same delivery in one period: the second one's WHERE sees the first one's touch.
func (s *DeliveryService) ClaimStaleQueued(ctx context.Context, olderThan time.Time, limit int) ([]ecardbot.PendingDelivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []ecardbot.PendingDelivery
	// On PostgreSQL rows a worker is marking are skipped: they are being handled, and waiting
	// for them while holding others could deadlock with the worker's mark.
	skipLocked := ""
	if s.db.dialect == DialectPostgres {
		skipLocked = " FOR UPDATE SKIP LOCKED"
	}
	err := s.db.gorm.WithContext(ctx).Raw(`UPDATE deliveries SET updated_at = ? WHERE id IN
	(SELECT id FROM deliveries WHERE state = ? AND updated_at < ? ORDER BY updated_at, id LIMIT ?`+skipLocked+`)
	AND state = ? AND updated_at < ? RETURNING id, channel`,
		s.db.timeArg(s.now()), ecardbot.DeliveryQueued, s.db.timeArg(olderThan), limit,
		ecardbot.DeliveryQueued, s.db.timeArg(olderThan)).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("stale queued deliveries: %w", mapError(err))
	}
	return out, nil
}

// detailQuery joins deliveries with what their messages need; the condition on d.id follows.
// Reachable is computed now, with the same rules as the fan-out (targetsFrom): the
// guardianship still exists, and the guardian still follows the bot on LINE or still has a
// confirmed address.
const detailQuery = `SELECT d.id, d.channel, d.state, d.attempts, d.created_at, n.kind, n.at, n.student_id,
	st.name AS child_name, sc.name AS school_name, d.guardian_id, g.language,
	COALESCE(g.line_user_id, '') AS line_user_id, g.email,
	CASE WHEN EXISTS (SELECT 1 FROM guardianships gs WHERE gs.guardian_id = d.guardian_id AND gs.student_id = n.student_id)
		AND ((d.channel = 'line' AND lu.following) OR (d.channel = 'email' AND g.email_confirmed_at IS NOT NULL AND g.email <> ''))
	THEN 1 ELSE 0 END AS reachable
FROM deliveries d
JOIN notices n ON n.id = d.notice_id
JOIN students st ON st.id = n.student_id
JOIN schools sc ON sc.id = st.school_id
JOIN guardians g ON g.id = d.guardian_id
LEFT JOIN line_users lu ON lu.id = g.line_user_id
WHERE d.id `

// Detail returns the delivery with everything a sender needs. It returns ENOTFOUND when the
// delivery is gone (removing a guardian deletes their deliveries).
func (s *DeliveryService) Detail(ctx context.Context, id string) (ecardbot.DeliveryDetail, error) {
	ds, err := s.Details(ctx, []string{id})
	if err != nil {
		return ecardbot.DeliveryDetail{}, err
	}
	if len(ds) == 0 {
		return ecardbot.DeliveryDetail{}, ecardbot.Errorf(ecardbot.ENOTFOUND, "Delivery not found.")
	}
	return ds[0], nil
}

// Details is Detail for many deliveries in one statement (a chunk of them on SQLite), in no
// particular order; deliveries that are gone are left out.
func (s *DeliveryService) Details(ctx context.Context, ids []string) ([]ecardbot.DeliveryDetail, error) {
	out := make([]ecardbot.DeliveryDetail, 0, len(ids))
	scan := func(r *sql.Rows) error {
		var d ecardbot.DeliveryDetail
		var channel, kind string
		var reachable int
		if err := r.Scan(&d.ID, &channel, &d.State, &d.Attempts, &d.CreatedAt, &kind, &d.At, &d.StudentID,
			&d.ChildName, &d.SchoolName, &d.GuardianID, &d.Language, &d.LineUserID, &d.Email, &reachable); err != nil {
			return err
		}
		d.Channel, d.Kind, d.Reachable = ecardbot.Channel(channel), ecardbot.NoticeKind(kind), reachable != 0
		d.CreatedAt, d.At = d.CreatedAt.UTC(), d.At.UTC()
		out = append(out, d)
		return nil
	}
	if err := queryAny(ctx, s.db, s.db.gorm.WithContext(ctx), detailQuery, "text", ids, scan); err != nil {
		return nil, fmt.Errorf("delivery details: %w", mapError(err))
	}
	return out, nil
}

// MarkSent records that the channel accepted the delivery, with LINE's request ID (for a 409,
// the accepted request's). A delivery that is already sent keeps its first request ID.
func (s *DeliveryService) MarkSent(ctx context.Context, id, lineRequestID string) error {
	return s.MarkSentBatch(ctx, []ecardbot.SentMark{{ID: id, LineRequestID: lineRequestID}})
}

// MarkSentBatch is MarkSent for many deliveries in one statement. On PostgreSQL the marks go
// in as two arrays, so the statement's text, and its prepared plan, is the same for any number
// of marks; SQLite, without arrays, picks each request ID with a CASE.
func (s *DeliveryService) MarkSentBatch(ctx context.Context, marks []ecardbot.SentMark) error {
	now := s.db.timeArg(s.now())
	if s.db.dialect == DialectPostgres {
		ids, reqs := make([]string, len(marks)), make([]string, len(marks))
		for i, m := range marks {
			ids[i], reqs[i] = m.ID, m.LineRequestID
		}
		_, err := s.db.exec(ctx, s.db.gorm.WithContext(ctx), `UPDATE deliveries d SET state = $1, line_request_id = v.req, sent_at = $2, updated_at = $2
FROM unnest($3::text[], $4::text[]) AS v(id, req) WHERE d.id = v.id AND d.id IN (`+lockedActive+`)`,
			ecardbot.DeliverySent, now, ids, reqs)
		if err != nil {
			return fmt.Errorf("mark deliveries sent: %w", mapError(err))
		}
		return nil
	}
	for chunk := range chunks(marks, 4) { // three parameters a mark, and a few more
		var req strings.Builder
		args := make([]any, 0, 3*len(chunk)+3)
		args = append(args, ecardbot.DeliverySent)
		req.WriteString("CASE id")
		for _, m := range chunk {
			req.WriteString(" WHEN ? THEN ?")
			args = append(args, m.ID, m.LineRequestID)
		}
		req.WriteString(" END")
		args = append(args, now, now)
		ids := make([]string, len(chunk))
		for i, m := range chunk {
			ids[i] = m.ID
		}
		args = append(args, ids)
		err := s.db.gorm.WithContext(ctx).Exec(`UPDATE deliveries SET state = ?, line_request_id = `+req.String()+`, sent_at = ?, updated_at = ?
WHERE id IN ? AND state IN `+active, args...).Error
		if err != nil {
			return fmt.Errorf("mark deliveries sent: %w", mapError(err))
		}
	}
	return nil
}

// MarkRetry counts one failed attempt of a pending or queued delivery and keeps its error.
func (s *DeliveryService) MarkRetry(ctx context.Context, id, lastError string) error {
	err := s.db.gorm.WithContext(ctx).Exec(`UPDATE deliveries SET attempts = attempts + 1, last_error = ?, updated_at = ?
WHERE id = ? AND state IN `+active, lastError, s.db.timeArg(s.now()), id).Error
	if err != nil {
		return fmt.Errorf("mark delivery retry: %w", mapError(err))
	}
	return nil
}

// MarkDead gives up on a pending or queued delivery with the reason operators see.
func (s *DeliveryService) MarkDead(ctx context.Context, id, reason string) error {
	err := s.db.gorm.WithContext(ctx).Exec(`UPDATE deliveries SET state = ?, dead_reason = ?, updated_at = ?
WHERE id = ? AND state IN `+active, ecardbot.DeliveryDead, reason, s.db.timeArg(s.now()), id).Error
	if err != nil {
		return fmt.Errorf("mark delivery dead: %w", mapError(err))
	}
	return nil
}

// MarkCancelled cancels a pending or queued delivery with the reason operators see.
func (s *DeliveryService) MarkCancelled(ctx context.Context, id, reason string) error {
	err := s.db.gorm.WithContext(ctx).Exec(`UPDATE deliveries SET state = ?, dead_reason = ?, updated_at = ?
WHERE id = ? AND state IN `+active, ecardbot.DeliveryCancelled, reason, s.db.timeArg(s.now()), id).Error
	if err != nil {
		return fmt.Errorf("cancel delivery: %w", mapError(err))
	}
	return nil
}

// ReplacedByEmail is the dead_reason of a LINE delivery that ReplaceWithEmail cancelled.
const ReplacedByEmail = "replaced by e-mail: LINE monthly limit"

// emailReachable holds, inside an UPDATE of deliveries, when the row's guardian may be mailed
// about the row's notice now: the same rule as the fan-out's and Detail's for e-mail.
const emailReachable = `EXISTS (SELECT 1 FROM notices n
	JOIN guardianships gs ON gs.student_id = n.student_id
	JOIN guardians g ON g.id = gs.guardian_id
	WHERE n.id = deliveries.notice_id AND gs.guardian_id = deliveries.guardian_id
		AND g.email_confirmed_at IS NOT NULL AND g.email <> '')`

// errKeepLINE rolls back a ReplaceWithEmail whose e-mail delivery already failed.
var errKeepLINE = errors.New("e-mail delivery already failed")

// ReplaceWithEmail cancels the LINE delivery and creates its e-mail delivery in one
// transaction. The cancelling UPDATE comes first: guarded by the state it leaves, it is what
// makes two workers handling the same delivery at once (a duplicated task) agree, because the
// second waits for the first's row lock and then finds nothing to cancel. The e-mail delivery
// gets a new UUID and starts its own retry window now; the unique (notice, guardian, channel)
// index makes it exist once, whoever created it.
func (s *DeliveryService) ReplaceWithEmail(ctx context.Context, lineDeliveryID string) (string, bool, error) {
	now := s.db.timeArg(s.now())
	var emailID string
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE deliveries SET state = ?, dead_reason = ?, updated_at = ?
WHERE id = ? AND channel = ? AND state IN `+active+` AND `+emailReachable,
			ecardbot.DeliveryCancelled, ReplacedByEmail, now, lineDeliveryID, string(ecardbot.ChannelLINE))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			var channels []string
			if err := tx.Raw(`SELECT channel FROM deliveries WHERE id = ?`, lineDeliveryID).Scan(&channels).Error; err != nil {
				return err
			}
			switch {
			case len(channels) == 0:
				return ecardbot.Errorf(ecardbot.ENOTFOUND, "Delivery not found.")
			case channels[0] != string(ecardbot.ChannelLINE):
				return ecardbot.Errorf(ecardbot.EINVALID, "Only a LINE delivery can be replaced by e-mail.")
			}
			return errKeepLINE
		}
		if err := tx.Exec(`INSERT INTO deliveries (id, notice_id, guardian_id, channel, state, attempts, created_at, updated_at)
SELECT ?, notice_id, guardian_id, ?, ?, 0, ?, ? FROM deliveries WHERE id = ?
ON CONFLICT (notice_id, guardian_id, channel) DO NOTHING`,
			uuid.NewString(), string(ecardbot.ChannelEmail), ecardbot.DeliveryPending, now, now, lineDeliveryID).Error; err != nil {
			return err
		}
		var rows []struct {
			ID    string
			State string
		}
		if err := tx.Raw(`SELECT e.id, e.state FROM deliveries e
JOIN deliveries l ON l.notice_id = e.notice_id AND l.guardian_id = e.guardian_id
WHERE l.id = ? AND e.channel = ?`, lineDeliveryID, string(ecardbot.ChannelEmail)).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return fmt.Errorf("e-mail delivery of %s missing after insert", lineDeliveryID)
		}
		if rows[0].State == ecardbot.DeliveryDead || rows[0].State == ecardbot.DeliveryCancelled {
			return errKeepLINE
		}
		emailID = rows[0].ID
		return nil
	})
	if errors.Is(err, errKeepLINE) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("replace delivery with e-mail: %w", mapError(err))
	}
	return emailID, true, nil
}

// ListDead returns up to limit dead letters, the most recently given up first.
func (s *DeliveryService) ListDead(ctx context.Context, limit int) ([]ecardbot.DeadLetter, error) {
	if limit <= 0 {
		return nil, nil
	}
	var rows []struct {
		ID         string
		Channel    string
		Attempts   int
		DeadReason string
		LastError  string
		CreatedAt  time.Time
		UpdatedAt  time.Time
	}
	err := s.db.gorm.WithContext(ctx).Raw(`SELECT id, channel, attempts, dead_reason, last_error, created_at, updated_at
FROM deliveries WHERE state = ? ORDER BY updated_at DESC, id LIMIT ?`, ecardbot.DeliveryDead, limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", mapError(err))
	}
	out := make([]ecardbot.DeadLetter, len(rows))
	for i, r := range rows {
		out[i] = ecardbot.DeadLetter{
			ID: r.ID, Channel: ecardbot.Channel(r.Channel), Attempts: r.Attempts,
			DeadReason: r.DeadReason, LastError: r.LastError,
			CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		}
	}
	return out, nil
}

// Replay moves the dead deliveries among ids back to pending, so the relay queues them again
// with the same retry key. Attempts are kept as history; the dead reason is cleared. It
// returns how many moved.
func (s *DeliveryService) Replay(ctx context.Context, ids []string) (int, error) {
	var n int64
	for chunk := range chunks(ids, 1) {
		res := s.db.gorm.WithContext(ctx).Exec(`UPDATE deliveries SET state = ?, dead_reason = '', updated_at = ? WHERE state = ? AND id IN ?`,
			ecardbot.DeliveryPending, s.db.timeArg(s.now()), ecardbot.DeliveryDead, chunk)
		if res.Error != nil {
			return int(n), fmt.Errorf("replay dead letters: %w", mapError(res.Error))
		}
		n += res.RowsAffected
	}
	return int(n), nil
}
