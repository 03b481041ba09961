package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/simclock"
	"github.com/taipei-doit/ecardbot/schedule"
)

// raceFixture is one PostgreSQL schema with two schools of students pupils each, every pupil
// absent and with two guardians subscribed to everything on LINE, and replicas: separate
// connection pools on the schema, as separate processes would have.
type raceFixture struct {
	cfg      Config
	db       *DB
	songshan *ecardbot.School // cutoff 08:30
	daan     *ecardbot.School // cutoff 07:50
}

func newRaceFixture(t *testing.T, students int) *raceFixture {
	t.Helper()
	b := backends[1]
	if b.name != DialectPostgres {
		t.Fatal("backends[1] is not PostgreSQL")
	}
	f := &raceFixture{cfg: b.newConfig(t)}
	f.db = MustOpen(t, f.cfg)
	if err := f.db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.songshan = mustSchool(t, f.db, "313601", "松山區", ecardbot.DefaultCutoff)
	f.daan = mustSchool(t, f.db, "333601", "大安區", 7*60+50)
	for _, sc := range []*ecardbot.School{f.songshan, f.daan} {
		var entries []ecardbot.RosterEntry
		for i := range students {
			entries = append(entries, entry(i+2, fmt.Sprintf("%s-%04d", sc.Code, i), fmt.Sprintf("%s-C%04d", sc.Code, i)))
		}
		MustImportRoster(t, f.db, sc.Code, entries...)
		seedGuardians(t, f.db, sc, 2)
	}
	return f
}

// TestSweepConcurrent runs one school's sweep from many goroutines on two replicas at once:
// one of them sweeps, the others find it done, and every notice and delivery exists once.
// PostgreSQL only: SQLite runs one transaction at a time.
func TestSweepConcurrent(t *testing.T) {
	t.Parallel()
	const students = 300
	f := newRaceFixture(t, students)
	clock := &testClock{t: tp(8, 30, 0)}
	var replicas []*SweepService
	for range 2 {
		replicas = append(replicas, NewSweepService(MustOpen(t, f.cfg), SweepConfig{Location: taipeiZone, Now: clock.Now}))
	}
	const callers = 16
	results := make([]ecardbot.SweepResult, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			results[i], errs[i] = replicas[i%2].Sweep(context.Background(), f.songshan, testDay)
		})
	}
	close(start)
	wg.Wait()
	ran := 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if results[i].Ran {
			ran++
			if results[i].Absent != students || results[i].Deliveries != 2*students {
				t.Errorf("the sweep that ran: %+v", results[i])
			}
		}
	}
	if ran != 1 {
		t.Errorf("%d callers ran the sweep, want 1", ran)
	}
	checkExactlyOnce(t, f.db, students, 2*students)
	if n := count(t, f.db, "sweep_runs"); n != 1 {
		t.Errorf("%d sweep runs, want 1", n)
	}
}

// TestSchedulersRace runs two schedulers, each with its own connection pool and simulated
// clock, as two replicas with the scheduler role would, through two schools' cutoffs: each
// absent pupil gets one 未到校 notice and each guardian one delivery, whichever replica wins.
func TestSchedulersRace(t *testing.T) {
	t.Parallel()
	const students = 200
	f := newRaceFixture(t, students)
	type replica struct {
		clock *simclock.Clock
		reg   *prometheus.Registry
		done  chan error
	}
	ctx, cancel := context.WithCancel(context.Background())
	var replicas []replica
	for range 2 {
		db := MustOpen(t, f.cfg)
		r := replica{clock: simclock.New(tp(7, 0, 0)), reg: prometheus.NewRegistry(), done: make(chan error, 1)}
		s := schedule.New(schedule.Config{Location: taipeiZone, Clock: r.clock, Rescan: 72 * time.Hour, RetentionDays: -1},
			NewSweepService(db, SweepConfig{Location: taipeiZone, Now: r.clock.Now}), NewRetentionService(db, RetentionConfig{}), nil, r.reg)
		go func() { r.done <- s.Run(ctx) }()
		replicas = append(replicas, r)
	}
	defer func() {
		cancel()
		for _, r := range replicas {
			if err := <-r.done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}()

	for _, cutoff := range []time.Time{tp(7, 50, 0), tp(8, 30, 0)} {
		for i, r := range replicas {
			if got := r.clock.WaitTimer(t); !got.Equal(cutoff) {
				t.Fatalf("replica %d sleeps until %s, want %s", i, got, cutoff)
			}
		}
		for _, r := range replicas {
			r.clock.Set(cutoff) // both wake together
		}
	}
	tomorrow := time.Date(2026, 11, 28, 7, 50, 0, 0, taipeiZone)
	for i, r := range replicas {
		if got := r.clock.WaitTimer(t); !got.Equal(tomorrow) {
			t.Fatalf("replica %d sleeps until %s, want %s", i, got, tomorrow)
		}
	}
	checkExactlyOnce(t, f.db, 2*students, 2*2*students)
	// Both replicas asked for both sweeps: one ran each, the other was told it had run.
	outcomes := map[string]float64{}
	for _, r := range replicas {
		families, err := r.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range families {
			if mf.GetName() == "ecardbot_sweeps_total" {
				for _, m := range mf.GetMetric() {
					outcomes[m.GetLabel()[0].GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if outcomes["swept"] != 2 || outcomes["already_swept"] != 2 || outcomes["error"] != 0 {
		t.Errorf("sweep outcomes of both replicas %v, want 2 swept and 2 already_swept", outcomes)
	}
	runs := listSweepRuns(t, f.db)
	if len(runs) != 2 || runs[0].Absent+runs[1].Absent != 2*students {
		t.Errorf("sweep runs %+v, want one per school with every pupil absent", runs)
	}
	var at []time.Time
	if err := f.db.gorm.Raw(`SELECT DISTINCT n.at FROM notices n ORDER BY 1`).Scan(&at).Error; err != nil {
		t.Fatal(err)
	}
	if len(at) != 2 || !at[0].Equal(tp(7, 50, 0)) || !at[1].Equal(tp(8, 30, 0)) {
		t.Errorf("notice times %v, want the two cutoffs", at)
	}
}
