package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/taipei-doit/ecardbot"
)

// SweepConfig is what the 未到校 sweep needs besides the database. Give it the same Location
// and Staleness as the GateService's GateConfig: a 未到校 notice and a 到校 notice of the same
// morning must agree on the day and on what is too old to send.
type SweepConfig struct {
	// Location decides the calendar date of a school day and when its cutoff falls. Nil means
	// Asia/Taipei (UTC+8 when the system has no time zone database).
	Location *time.Location
	// Staleness is how old a cutoff may be when its sweep runs and still be sent, as for
	// taps: a scheduler that was down all morning must not tell parents at noon that their
	// child is missing since 08:30. Older notices are recorded without deliveries. Zero means
	// DefaultStaleness.
	Staleness time.Duration
	// Now returns the current time. Nil means time.Now; tests inject a clock.
	Now func() time.Time
}

// SweepService runs 未到校 sweeps against the database.
//
// A sweep of one school and day is one transaction that first claims the day in sweep_runs
// (unique on school and day), then decides the day from the calendar, creates the 未到校 notices
// and their deliveries, and finally records what it found on the claimed row. Two replicas
// that sweep at once therefore create each notice once: the second one's claim waits for the
// first transaction and then finds the row. Should the claim ever be bypassed (the row deleted
// by hand), notices are still unique on (student, day, kind) and inserted with ON CONFLICT DO
// NOTHING, and only the transaction that inserted a notice fans it out.
type SweepService struct {
	db        *DB
	loc       *time.Location
	staleness time.Duration
	now       func() time.Time
}

var _ ecardbot.SweepService = (*SweepService)(nil)

// NewSweepService returns the service over db, which must be migrated.
func NewSweepService(db *DB, cfg SweepConfig) *SweepService {
	s := &SweepService{db: db, loc: cfg.Location, staleness: cfg.Staleness, now: cfg.Now}
	if s.loc == nil {
		s.loc = ecardbot.Taipei
	}
	if s.staleness == 0 {
		s.staleness = DefaultStaleness
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// SweepSchools returns every school, ordered by code. Returns EUNAVAILABLE when the database
// cannot be reached.
func (s *SweepService) SweepSchools(ctx context.Context) ([]ecardbot.School, error) {
	var rows []schoolRow
	if err := s.db.gorm.WithContext(ctx).Order("code").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list schools: %w", s.db.unavailable(ctx, mapError(err)))
	}
	schools := make([]ecardbot.School, len(rows))
	for i := range rows {
		schools[i] = *rows[i].domain()
	}
	return schools, nil
}

// sweepRetries is how many times a sweep is retried after colliding (deadlock) with another
// transaction.
const sweepRetries = 3

// Sweep runs the 未到校 sweep of the school for day, once. Each active student of the school
// with no 到校 notice and no leave record that day gets a 未到校 notice whose time is the
// cutoff, even when the sweep runs late; the notice is stale, and gets no deliveries, when the
// cutoff is older than the staleness limit. A pupil who arrives after the sweep gets the usual
// 到校 notice from gate ingest: the kinds are separate notices.
//
// The school's cutoff and district are read from the database when the sweep runs, so an
// import that changed them is honoured. Returns EINVALID for a missing school, a malformed day
// or a sweep asked for before the day's cutoff, ENOTFOUND for an unknown school, and
// EUNAVAILABLE when the database cannot be reached; nothing is recorded then.
func (s *SweepService) Sweep(ctx context.Context, school *ecardbot.School, day string) (ecardbot.SweepResult, error) {
	switch {
	case school == nil || school.ID == 0:
		return ecardbot.SweepResult{}, fmt.Errorf("sweep: %w", ecardbot.Errorf(ecardbot.EINVALID, "Missing school."))
	case !validDate(day):
		return ecardbot.SweepResult{}, fmt.Errorf("sweep: %w", ecardbot.Errorf(ecardbot.EINVALID, "Day %q is not a date written YYYY-MM-DD.", day))
	}
	sc, err := loadSchool(s.db.gorm.WithContext(ctx), school.ID)
	if err != nil {
		return ecardbot.SweepResult{}, fmt.Errorf("sweep: %w", s.db.unavailable(ctx, err))
	}
	date, _ := time.ParseInLocation(time.DateOnly, day, s.loc)
	cutoff := ecardbot.Clock(sc.CutoffMinutes).On(date, s.loc).UTC().Truncate(time.Microsecond)
	now := s.now().UTC().Truncate(time.Microsecond)
	if now.Before(cutoff) {
		return ecardbot.SweepResult{}, fmt.Errorf("sweep: %w", ecardbot.Errorf(ecardbot.EINVALID,
			"The 未到校 sweep of %s for %s is not due before %s.", sc.Code, day, cutoff.In(s.loc).Format(time.DateTime)))
	}

	var result ecardbot.SweepResult
	for attempt := 0; ; attempt++ {
		err = s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var err error
			result, err = s.run(ctx, tx, sc, day, cutoff, now)
			return err
		})
		if err == nil || attempt == sweepRetries || !isRetryableTx(err) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return ecardbot.SweepResult{}, fmt.Errorf("sweep %s %s: %w", sc.Code, day, s.db.unavailable(ctx, mapError(err)))
	}
	return result, nil
}

// run is one attempt of a sweep, in tx. It keeps nothing between attempts.
func (s *SweepService) run(ctx context.Context, tx *gorm.DB, sc *schoolRow, day string, cutoff, now time.Time) (ecardbot.SweepResult, error) {
	result := ecardbot.SweepResult{SchoolCode: sc.Code, Day: day}
	nowArg := s.db.timeArg(now)

	// The claim. On PostgreSQL a concurrent claim of the same day blocks here until this
	// transaction ends; then it finds the row (we committed) or takes over (we rolled back).
	var runID int64
	if err := tx.Raw(`INSERT INTO sweep_runs (school_id, day, school_day, reason, started_at) VALUES (?, ?, ?, '', ?)
ON CONFLICT (school_id, day) DO NOTHING RETURNING id`, sc.ID, day, false, nowArg).Scan(&runID).Error; err != nil {
		return result, err
	}
	if runID == 0 {
		return result, nil // swept already
	}
	result.Ran = true

	cal, err := decideDay(tx, sc, day)
	if err != nil {
		return result, err
	}
	result.SchoolDay, result.Reason = cal.SchoolDay, cal.Reason
	if cal.SchoolDay {
		if err := s.absences(ctx, tx, sc, day, cutoff, now, &result); err != nil {
			return result, err
		}
	}

	err = tx.Exec(`UPDATE sweep_runs SET school_day = ?, reason = ?, students = ?, arrived = ?, on_leave = ?, absent = ?,
	deliveries = ?, stale = ?, finished_at = ? WHERE id = ?`,
		result.SchoolDay, result.Reason, result.Students, result.Arrived, result.OnLeave, result.Absent,
		result.Deliveries, result.Stale, s.db.timeArg(now), runID).Error
	return result, err
}

// absences creates the day's 未到校 notices and their deliveries and counts the school's pupils.
func (s *SweepService) absences(ctx context.Context, tx *gorm.DB, sc *schoolRow, day string, cutoff, now time.Time, result *ecardbot.SweepResult) error {
	var counts struct {
		Students int
		Arrived  int
		OnLeave  int
	}
	err := tx.Raw(`SELECT count(*) AS students,
	coalesce(sum(CASE WHEN EXISTS (SELECT 1 FROM notices n WHERE n.student_id = s.id AND n.day = ? AND n.kind = 'arrived') THEN 1 ELSE 0 END), 0) AS arrived,
	coalesce(sum(CASE WHEN EXISTS (SELECT 1 FROM leaves l WHERE l.student_id = s.id AND l.date = ?) THEN 1 ELSE 0 END), 0) AS on_leave
FROM students s WHERE s.school_id = ? AND s.active`, day, day, sc.ID).Scan(&counts).Error
	if err != nil {
		return err
	}
	result.Students, result.Arrived, result.OnLeave = counts.Students, counts.Arrived, counts.OnLeave

	// Same rule as gate ingest: exactly at the limit is still sent.
	result.Stale = cutoff.Before(now.Add(-s.staleness))
	// WHERE ends the SELECT for SQLite's parser, which would otherwise read ON CONFLICT as a
	// join constraint; ORDER BY makes concurrent inserts of overlapping keys wait for each other
	// in one order instead of deadlocking.
	rows, err := tx.Raw(`INSERT INTO notices (student_id, day, kind, at, gate_event_id, stale, created_at)
SELECT s.id, ?, 'absent', ?, NULL, ?, ?
FROM students s
WHERE s.school_id = ? AND s.active
	AND NOT EXISTS (SELECT 1 FROM notices a WHERE a.student_id = s.id AND a.day = ? AND a.kind = 'arrived')
	AND NOT EXISTS (SELECT 1 FROM leaves l WHERE l.student_id = s.id AND l.date = ?)
ORDER BY s.id
ON CONFLICT (student_id, day, kind) DO NOTHING
RETURNING id`, day, s.db.timeArg(cutoff), result.Stale, s.db.timeArg(now), sc.ID, day, day).Rows()
	if err != nil {
		return err
	}
	fresh, err := scanIDs(rows)
	if err != nil {
		return err
	}
	result.Absent = len(fresh)
	if result.Stale {
		return nil
	}
	result.Deliveries, err = s.db.fanOut(ctx, tx, fresh, now)
	return err
}
