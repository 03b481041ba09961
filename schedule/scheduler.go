package schedule

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taipei-doit/ecardbot"
)

// Defaults of Config.
const (
	// DefaultRetentionDays is how long gate events, notices and leave records are kept: a
	// school semester and a half, long enough for the parents' history page and for any
	// question about a term, short enough not to keep a record of every child's movements.
	DefaultRetentionDays = 180
	// DefaultRetentionAt is 03:00, when no reader posts and no parent reads.
	DefaultRetentionAt ecardbot.Clock = 3 * 60
	// DefaultRescan bounds a sleep without re-reading the schools.
	DefaultRescan = 15 * time.Minute
	// DefaultRetry is how soon a failed sweep or retention run is tried again.
	DefaultRetry = time.Minute
)

// Config is what the scheduler needs from the program.
type Config struct {
	// Location is the zone of school days and cutoffs (ECARDBOT_TIMEZONE). Nil means
	// Asia/Taipei (UTC+8, which has no daylight saving).
	Location *time.Location
	// RetentionDays: rows of days more than this many days before today are deleted daily.
	// Zero means DefaultRetentionDays; negative turns the retention job off.
	RetentionDays int
	// RetentionAt is the time of day the retention job runs. Zero means DefaultRetentionAt
	// (midnight cannot be chosen).
	RetentionAt ecardbot.Clock
	// Rescan is the longest sleep between two readings of the schools. Zero means
	// DefaultRescan.
	Rescan time.Duration
	// Retry is the sleep after a failure before trying again. Zero means DefaultRetry.
	Retry time.Duration
	// Clock is the time source. Nil means SystemClock().
	Clock Clock
}

// Scheduler runs the sweeps and the retention job. Create it with New and call Run once.
type Scheduler struct {
	loc           *time.Location
	retentionDays int
	retentionAt   ecardbot.Clock
	rescan        time.Duration
	retry         time.Duration
	clock         Clock
	sweeps        ecardbot.SweepService
	retention     ecardbot.RetentionService
	log           *slog.Logger
	metrics       *metrics
}

// New returns a scheduler over the services. Its metrics go to reg (nil: not registered); a
// nil logger discards logs.
func New(cfg Config, sweeps ecardbot.SweepService, retention ecardbot.RetentionService, logger *slog.Logger, reg prometheus.Registerer) *Scheduler {
	s := &Scheduler{
		loc: cfg.Location, retentionDays: cfg.RetentionDays, retentionAt: cfg.RetentionAt,
		rescan: cfg.Rescan, retry: cfg.Retry, clock: cfg.Clock,
		sweeps: sweeps, retention: retention, metrics: newMetrics(reg),
	}
	if s.loc == nil {
		s.loc = ecardbot.Taipei
	}
	if s.retentionDays == 0 {
		s.retentionDays = DefaultRetentionDays
	}
	if s.retentionAt == 0 {
		s.retentionAt = DefaultRetentionAt
	}
	if s.rescan <= 0 {
		s.rescan = DefaultRescan
	}
	if s.retry <= 0 {
		s.retry = DefaultRetry
	}
	if s.clock == nil {
		s.clock = SystemClock()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s.log = logger.With("component", "schedule")
	return s
}

// state is what Run remembers between passes.
type state struct {
	// swept maps a school's ID to the last day this process swept it or learnt that it was
	// swept, so a school is asked once a day, not at every wake.
	swept map[int64]string
	// nextRetention is when the retention job is due next.
	nextRetention time.Time
}

// Run sweeps and purges until ctx ends, then returns nil. Its first pass runs at once, so a
// scheduler started after some cutoffs catches up their sweeps; the first retention run is at
// the next RetentionAt. A sweep or purge in progress when ctx ends is abandoned (its
// transaction rolls back, or the batches deleted so far stay deleted).
func (s *Scheduler) Run(ctx context.Context) error {
	now := s.clock.Now()
	st := &state{swept: map[int64]string{}, nextRetention: s.nextRetentionAfter(now)}
	s.log.Info("scheduler started", "retention_days", s.retentionDays, "retention_at", s.retentionAt.String())
	for {
		wake := s.pass(ctx, now, st)
		if ctx.Err() != nil {
			return nil
		}
		t := s.clock.NewTimer(wake.Sub(s.clock.Now()))
		select {
		case <-ctx.Done():
			t.Stop()
			s.log.Info("scheduler stopped")
			return nil
		case <-t.C():
		}
		now = s.clock.Now()
	}
}

// pass runs what is due at now and returns when to wake next.
func (s *Scheduler) pass(ctx context.Context, now time.Time, st *state) time.Time {
	wake := now.Add(s.rescan)
	earlier := func(t time.Time) {
		if t.Before(wake) {
			wake = t
		}
	}
	local := now.In(s.loc)
	today := local.Format(time.DateOnly)
	tomorrow := local.AddDate(0, 0, 1)

	schools, err := s.sweeps.SweepSchools(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Error("list schools for the 未到校 sweep", "error", err)
		earlier(now.Add(s.retry))
	}
	// Earliest cutoff first: after an outage, the sweeps closest to going stale run first.
	slices.SortFunc(schools, func(a, b ecardbot.School) int {
		return cmp.Or(cmp.Compare(a.Cutoff, b.Cutoff), cmp.Compare(a.Code, b.Code))
	})
	for i := range schools {
		sc := &schools[i]
		if cutoff := sc.Cutoff.On(local, s.loc); cutoff.After(now) {
			earlier(cutoff)
			continue
		}
		earlier(sc.Cutoff.On(tomorrow, s.loc))
		if st.swept[sc.ID] == today {
			continue
		}
		if ctx.Err() != nil {
			return wake
		}
		if s.sweep(ctx, sc, today) {
			st.swept[sc.ID] = today
		} else {
			earlier(now.Add(s.retry))
		}
	}

	if s.retentionDays > 0 {
		if !now.Before(st.nextRetention) && ctx.Err() == nil {
			if s.purge(ctx, local) {
				st.nextRetention = s.nextRetentionAfter(now)
			} else {
				st.nextRetention = now.Add(s.retry) // not the past instant: that would spin
			}
		}
		earlier(st.nextRetention)
	}
	return wake
}

// sweep runs one school's sweep and reports whether the school is done for the day.
func (s *Scheduler) sweep(ctx context.Context, sc *ecardbot.School, day string) bool {
	log := s.log.With("school_code", sc.Code, "day", day)
	res, err := s.sweeps.Sweep(ctx, sc, day)
	switch {
	case err != nil && ctx.Err() != nil:
		return false
	case ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND:
		log.Warn("school removed before its 未到校 sweep", "error", err)
		return true // nothing to sweep, and nothing to retry
	case err != nil:
		s.metrics.sweeps.WithLabelValues("error").Inc()
		log.Error("未到校 sweep failed; will retry", "error", err)
		return false
	case !res.Ran:
		s.metrics.sweeps.WithLabelValues("already_swept").Inc()
		log.Debug("未到校 sweep already ran")
	case !res.SchoolDay:
		s.metrics.sweeps.WithLabelValues("no_school").Inc()
		log.Info("no school today: no 未到校 sweep", "reason", res.Reason)
	default:
		s.metrics.sweeps.WithLabelValues("swept").Inc()
		s.metrics.absent.Add(float64(res.Absent))
		log.Info("未到校 sweep", "reason", res.Reason, "students", res.Students, "arrived", res.Arrived,
			"on_leave", res.OnLeave, "absent", res.Absent, "deliveries", res.Deliveries, "stale", res.Stale)
	}
	return true
}

// purge runs the retention job for the local date and reports whether it succeeded.
func (s *Scheduler) purge(ctx context.Context, local time.Time) bool {
	before := local.AddDate(0, 0, -s.retentionDays).Format(time.DateOnly)
	res, err := s.retention.PurgeBefore(ctx, before)
	s.metrics.retentionRows.WithLabelValues("gate_events").Add(float64(res.GateEvents))
	s.metrics.retentionRows.WithLabelValues("notices").Add(float64(res.Notices))
	s.metrics.retentionRows.WithLabelValues("deliveries").Add(float64(res.Deliveries))
	s.metrics.retentionRows.WithLabelValues("leaves").Add(float64(res.Leaves))
	s.metrics.retentionRows.WithLabelValues("sweep_runs").Add(float64(res.SweepRuns))
	s.metrics.retentionRows.WithLabelValues("expired").Add(float64(res.Expired))
	attrs := []any{"before", before, "gate_events", res.GateEvents, "notices", res.Notices,
		"deliveries", res.Deliveries, "leaves", res.Leaves, "sweep_runs", res.SweepRuns, "expired", res.Expired}
	switch {
	case err != nil && ctx.Err() != nil:
		return false
	case err != nil:
		s.metrics.retentionRuns.WithLabelValues("error").Inc()
		s.log.Error("retention failed; will retry", append(attrs, "error", err)...)
		return false
	}
	s.metrics.retentionRuns.WithLabelValues("ok").Inc()
	s.log.Info("retention", attrs...)
	return true
}

// nextRetentionAfter returns the first RetentionAt instant strictly after now.
func (s *Scheduler) nextRetentionAfter(now time.Time) time.Time {
	local := now.In(s.loc)
	if t := s.retentionAt.On(local, s.loc); t.After(now) {
		return t
	}
	return s.retentionAt.On(local.AddDate(0, 0, 1), s.loc)
}
