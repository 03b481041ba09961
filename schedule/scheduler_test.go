package schedule_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/simclock"
	"github.com/taipei-doit/ecardbot/schedule"
)

// SweepService is a mock of ecardbot.SweepService.
type SweepService struct {
	SweepSchoolsFn func(ctx context.Context) ([]ecardbot.School, error)
	SweepFn        func(ctx context.Context, school *ecardbot.School, day string) (ecardbot.SweepResult, error)
}

var _ ecardbot.SweepService = (*SweepService)(nil)

func (s *SweepService) SweepSchools(ctx context.Context) ([]ecardbot.School, error) {
	return s.SweepSchoolsFn(ctx)
}

func (s *SweepService) Sweep(ctx context.Context, school *ecardbot.School, day string) (ecardbot.SweepResult, error) {
	return s.SweepFn(ctx, school, day)
}

// RetentionService is a mock of ecardbot.RetentionService.
type RetentionService struct {
	PurgeBeforeFn func(ctx context.Context, before string) (ecardbot.RetentionResult, error)
}

var _ ecardbot.RetentionService = (*RetentionService)(nil)

func (s *RetentionService) PurgeBefore(ctx context.Context, before string) (ecardbot.RetentionResult, error) {
	return s.PurgeBeforeFn(ctx, before)
}

var taipeiZone = time.FixedZone("CST", 8*3600)

// tp returns hh:mm on day (YYYY-MM-DD) in Taipei.
func tp(day string, hh, mm int) time.Time {
	d, err := time.ParseInLocation(time.DateOnly, day, taipeiZone)
	if err != nil {
		panic(err)
	}
	return d.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
}

const (
	monday  = "2026-11-23"
	tuesday = "2026-11-24"
)

// Two schools with different cutoffs.
var (
	songshan = ecardbot.School{ID: 1, Code: "313601", District: "松山區", Cutoff: 8*60 + 30}
	daan     = ecardbot.School{ID: 2, Code: "333601", District: "大安區", Cutoff: 7*60 + 50}
)

// fixture runs a scheduler over mocks that record each call with the simulated time.
type fixture struct {
	clock *simclock.Clock
	reg   *prometheus.Registry

	mu       sync.Mutex
	schools  []ecardbot.School
	calls    []string
	failNext map[string]error // call → error to return once

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

func start(t *testing.T, now time.Time, cfg schedule.Config, schools ...ecardbot.School) *fixture {
	t.Helper()
	f := &fixture{clock: simclock.New(now), reg: prometheus.NewRegistry(), schools: schools, failNext: map[string]error{}}
	sweeps := &SweepService{
		SweepSchoolsFn: func(context.Context) ([]ecardbot.School, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if err := f.fail("schools"); err != nil {
				return nil, err
			}
			return append([]ecardbot.School(nil), f.schools...), nil
		},
		SweepFn: func(_ context.Context, sc *ecardbot.School, day string) (ecardbot.SweepResult, error) {
			what := "sweep " + sc.Code + " " + day
			if err := f.record(what); err != nil {
				return ecardbot.SweepResult{}, err
			}
			return ecardbot.SweepResult{SchoolCode: sc.Code, Day: day, Ran: true, SchoolDay: true, Students: 3, Absent: 1}, nil
		},
	}
	retention := &RetentionService{PurgeBeforeFn: func(_ context.Context, before string) (ecardbot.RetentionResult, error) {
		if err := f.record("purge " + before); err != nil {
			return ecardbot.RetentionResult{Before: before}, err
		}
		return ecardbot.RetentionResult{Before: before, Notices: 2}, nil
	}}
	cfg.Clock, cfg.Location = f.clock, taipeiZone
	s := schedule.New(cfg, sweeps, retention, nil, f.reg)
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan error, 1)
	go func() { f.done <- s.Run(ctx) }()
	t.Cleanup(func() { f.stop(t) })
	return f
}

// fail returns, and forgets, the error planned for the call; f.mu is held.
func (f *fixture) fail(what string) error {
	err := f.failNext[what]
	delete(f.failNext, what)
	return err
}

// record notes a call at the simulated time and returns its planned error.
func (f *fixture) record(what string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.fail(what)
	suffix := ""
	if err != nil {
		suffix = " (fails)"
	}
	f.calls = append(f.calls, f.clock.Now().In(taipeiZone).Format("2006-01-02 15:04 ")+what+suffix)
	return err
}

func (f *fixture) planFailure(what string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[what] = err
}

func (f *fixture) addSchool(sc ecardbot.School) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.schools = append(f.schools, sc)
}

// takeCalls returns the calls since the last take.
func (f *fixture) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// wake waits until the scheduler sleeps, checks that it will wake at want, and moves the clock
// there. The scheduler has finished its pass once it arms a timer, so the calls it made are
// all recorded when wake returns.
func (f *fixture) wake(t *testing.T, want time.Time) {
	t.Helper()
	if got := f.clock.WaitTimer(t); !got.Equal(want) {
		t.Fatalf("the scheduler sleeps until %s, want %s", got.In(taipeiZone), want.In(taipeiZone))
	}
	f.clock.Set(want)
}

// sleeps checks that the scheduler, done with its pass, sleeps until want.
func (f *fixture) sleeps(t *testing.T, want time.Time) {
	t.Helper()
	if got := f.clock.WaitTimer(t); !got.Equal(want) {
		t.Fatalf("the scheduler sleeps until %s, want %s", got.In(taipeiZone), want.In(taipeiZone))
	}
}

// stop cancels Run and waits for it to return; only the first call does anything.
func (f *fixture) stop(t *testing.T) {
	t.Helper()
	f.stopOnce.Do(func() { f.waitStopped(t) })
}

func (f *fixture) waitStopped(t *testing.T) {
	t.Helper()
	f.cancel()
	guard := time.NewTimer(30 * time.Second) // failure guard only
	defer guard.Stop()
	select {
	case err := <-f.done:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	case <-guard.C:
		t.Fatal("Run did not return after its context ended")
	}
}

func checkCalls(t *testing.T, f *fixture, want ...string) {
	t.Helper()
	if diff := cmp.Diff(want, f.takeCalls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// One long rescan, so that the only wake-ups are cutoffs and retention.
var quiet = schedule.Config{Rescan: 72 * time.Hour}

func TestSchedulerWakesAtEachCutoff(t *testing.T) {
	t.Parallel()
	f := start(t, tp(monday, 7, 0), quiet, songshan, daan)
	for _, at := range []time.Time{
		tp(monday, 7, 50), tp(monday, 8, 30),
		tp(tuesday, 3, 0), // retention
		tp(tuesday, 7, 50), tp(tuesday, 8, 30),
	} {
		f.wake(t, at)
	}
	f.sleeps(t, tp("2026-11-25", 3, 0))
	checkCalls(t, f,
		"2026-11-23 07:50 sweep 333601 2026-11-23",
		"2026-11-23 08:30 sweep 313601 2026-11-23",
		"2026-11-24 03:00 purge 2026-05-28",
		"2026-11-24 07:50 sweep 333601 2026-11-24",
		"2026-11-24 08:30 sweep 313601 2026-11-24",
	)
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(`
# HELP ecardbot_sweeps_total 未到校 sweeps this scheduler asked for, by outcome: swept, no_school, already_swept (by another replica or earlier), error.
# TYPE ecardbot_sweeps_total counter
ecardbot_sweeps_total{outcome="already_swept"} 0
ecardbot_sweeps_total{outcome="error"} 0
ecardbot_sweeps_total{outcome="no_school"} 0
ecardbot_sweeps_total{outcome="swept"} 4
# HELP ecardbot_sweep_absent_notices_total 未到校 notices created by this scheduler's sweeps.
# TYPE ecardbot_sweep_absent_notices_total counter
ecardbot_sweep_absent_notices_total 4
`), "ecardbot_sweeps_total", "ecardbot_sweep_absent_notices_total"); err != nil {
		t.Error(err)
	}
}

func TestSchedulerCatchesUpAtStart(t *testing.T) {
	t.Parallel()
	// The scheduler was down at both cutoffs: its first pass sweeps both, the earlier cutoff
	// first, and does not run retention before its time.
	f := start(t, tp(monday, 9, 10), quiet, songshan, daan)
	f.sleeps(t, tp(tuesday, 3, 0))
	checkCalls(t, f,
		"2026-11-23 09:10 sweep 333601 2026-11-23",
		"2026-11-23 09:10 sweep 313601 2026-11-23",
	)
}

func TestSchedulerRetriesFailures(t *testing.T) {
	t.Parallel()
	f := start(t, tp(monday, 7, 0), quiet, songshan, daan)
	unavailable := ecardbot.Errorf(ecardbot.EUNAVAILABLE, "down")
	f.planFailure("sweep 313601 2026-11-23", unavailable)
	f.planFailure("purge 2026-05-28", unavailable)
	for _, at := range []time.Time{
		tp(monday, 7, 50), tp(monday, 8, 30),
		tp(monday, 8, 31), // 313601 again; 333601 is not asked twice
		tp(tuesday, 3, 0), tp(tuesday, 3, 1),
	} {
		f.wake(t, at)
	}
	f.sleeps(t, tp(tuesday, 7, 50))
	checkCalls(t, f,
		"2026-11-23 07:50 sweep 333601 2026-11-23",
		"2026-11-23 08:30 sweep 313601 2026-11-23 (fails)",
		"2026-11-23 08:31 sweep 313601 2026-11-23",
		"2026-11-24 03:00 purge 2026-05-28 (fails)",
		"2026-11-24 03:01 purge 2026-05-28",
	)
	if got := testutil.ToFloat64(mustCounter(t, f.reg, "ecardbot_sweeps_total", "error")); got != 1 {
		t.Errorf("sweep errors counted %v, want 1", got)
	}
}

func TestSchedulerRescansSchools(t *testing.T) {
	t.Parallel()
	f := start(t, tp(monday, 7, 0), schedule.Config{}, songshan)
	f.planFailure("schools", errors.New("connection refused"))
	// The first pass could not list the schools: retry after a minute.
	f.wake(t, tp(monday, 7, 1))
	// Sleeping until 08:30 is bounded by the rescan (15 min), which finds a school imported
	// meanwhile whose cutoff has passed: it is swept late rather than skipped.
	f.sleeps(t, tp(monday, 7, 16))
	f.addSchool(ecardbot.School{ID: 3, Code: "353301", Cutoff: 7*60 + 10})
	f.clock.Set(tp(monday, 7, 16))
	f.sleeps(t, tp(monday, 7, 31))
	checkCalls(t, f, "2026-11-23 07:16 sweep 353301 2026-11-23")
}

func TestSchedulerRemovedSchool(t *testing.T) {
	t.Parallel()
	f := start(t, tp(monday, 7, 0), schedule.Config{Rescan: 72 * time.Hour, RetentionDays: -1}, songshan)
	f.planFailure("sweep 313601 2026-11-23", ecardbot.Errorf(ecardbot.ENOTFOUND, "gone"))
	f.wake(t, tp(monday, 8, 30))
	// Not retried, and with retention off the next wake is the next cutoff.
	f.sleeps(t, tp(tuesday, 8, 30))
	checkCalls(t, f, "2026-11-23 08:30 sweep 313601 2026-11-23 (fails)")
}

func TestSchedulerRetentionDays(t *testing.T) {
	t.Parallel()
	f := start(t, tp(monday, 2, 0), schedule.Config{Rescan: 72 * time.Hour, RetentionDays: 30, RetentionAt: 4 * 60})
	f.wake(t, tp(monday, 4, 0))
	f.wake(t, tp(tuesday, 4, 0))
	f.sleeps(t, tp("2026-11-25", 4, 0))
	checkCalls(t, f, "2026-11-23 04:00 purge 2026-10-24", "2026-11-24 04:00 purge 2026-10-25")
}

func TestSchedulerStops(t *testing.T) {
	t.Parallel()
	f := start(t, tp(monday, 7, 0), quiet, songshan)
	f.sleeps(t, tp(monday, 8, 30))
	f.stop(t)
	if p := f.clock.Pending(); len(p) != 0 {
		t.Errorf("timers left armed: %v", p)
	}
	checkCalls(t, f)
}

// mustCounter returns the counter of the family with the label value "outcome".
func mustCounter(t *testing.T, reg *prometheus.Registry, name, outcome string) prometheus.Collector {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == outcome {
					return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
				}
			}
		}
	}
	t.Fatalf("no %s{outcome=%q}", name, outcome)
	return nil
}

func ExampleSystemClock() {
	c := schedule.SystemClock()
	t := c.NewTimer(0)
	<-t.C()
	fmt.Println(t.Stop())
	// Output: false
}
