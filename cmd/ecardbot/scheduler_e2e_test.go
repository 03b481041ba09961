package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/internal/simclock"
	"github.com/taipei-doit/ecardbot/internal/testenv"
	"github.com/taipei-doit/ecardbot/store"
)

// An operator loads schools, rosters and the calendar with the commands; the service starts
// after both schools' cutoffs (it was down, or deployed then), so its scheduler's first pass
// sweeps at once: the open school gets its 未到校 notices, the closed one none. A pupil who
// then arrives gets the usual 到校 notice through the gate API. Close stops the scheduler
// before the stores.
//
// Times are real (the gate API judges taps by the wall clock); the scheduler's clock is a
// simulated one set to now, only so the test knows when the first pass is over.
func TestEndToEndSchedulerSweepsAtStart(t *testing.T) {
	t.Parallel()
	loc := taipeiLocation(t)
	now := time.Now().In(loc)
	minutes := now.Hour()*60 + now.Minute()
	if minutes < 3 || minutes > 24*60-3 {
		// A cutoff of 00:00 means the default, and the day must not change during the test.
		t.Skip("too close to midnight in Taipei for a cutoff earlier today")
	}
	cutoff := ecardbot.Clock(minutes - 1)
	today := now.Format(time.DateOnly)

	redisURL, prefix := testenv.RedisURL(t)
	env := map[string]string{
		"ECARDBOT_HTTP_ADDR":                "127.0.0.1:0",
		"ECARDBOT_DATABASE_URL":             testenv.PostgresURL(t),
		"ECARDBOT_REDIS_URL":                redisURL,
		"ECARDBOT_SECRET_KEY":               strings.Repeat("k", config.MinSecretKeyLen),
		"ECARDBOT_LINE_CHANNEL_SECRET":      "secret",
		"ECARDBOT_LINE_CHANNEL_TOKEN":       "token",
		"ECARDBOT_TAIPEIPASS_CLIENT_ID":     "ecardbot-test",
		"ECARDBOT_TAIPEIPASS_CLIENT_SECRET": "ecardbot-test-secret",
	}
	mustRunCommand(t, env, "school", "import", writeFile(t, "schools.csv", fmt.Sprintf(
		"code,name,district,level,cutoff\n313601,松山國小,松山區,國小,%s\n330601,大安國小,大安區,國小,%s\n", cutoff, cutoff)))
	mustRunCommand(t, env, "roster", "import", "--school", "313601", writeFile(t, "r1.csv", roster1))
	mustRunCommand(t, env, "roster", "import", "--school", "330601",
		writeFile(t, "r2.csv", rosterHeader+"2001,張三,2016-02-02,C180661564,04B00001,2,201\n"))
	// Today is a school day for 313601 even on a weekend, and 大安區 is closed.
	mustRunCommand(t, env, "calendar", "import", writeFile(t, "cal.csv", "date,school_code,kind,note\n"+today+",313601,schoolday,test\n"))
	mustRunCommand(t, env, "calendar", "close", "--date", today, "--district", "大安區", "--note", "颱風停課")
	out, _ := mustRunCommand(t, env, "school", "key", "create", "--school", "313601")
	key := strings.TrimSpace(out)

	// Before the service starts: 1001 arrived this morning, 1003 is on sick leave.
	ctx := context.Background()
	db := openForCheck(t, env)
	songshan, err := store.NewSchoolService(db).FindSchool(ctx, "313601")
	if err != nil {
		t.Fatal(err)
	}
	gate := store.NewGateService(db, store.GateConfig{Location: loc})
	arrived := now.Add(-2 * time.Minute)
	if _, err := gate.Ingest(ctx, songshan, []ecardbot.GateEvent{{ID: "r-1", Card: "04A1B2C3", Direction: ecardbot.DirectionIn, At: arrived}}); err != nil {
		t.Fatal(err)
	}
	if err := gate.RecordLeave(ctx, songshan, "1003", today, "sick"); err != nil {
		t.Fatal(err)
	}

	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	clock := simclock.New(time.Now())
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RedisPrefix: prefix, SchedulerClock: clock}
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			m.Close()
		}
	})
	// The scheduler arms its first timer once its first pass is over.
	if next := clock.WaitTimer(t); !next.After(clock.Now()) {
		t.Errorf("next wake %s is not in the future", next)
	}

	type row struct {
		StudentNo, Kind string
		At              time.Time
		Stale           bool
	}
	notices := func() []row {
		t.Helper()
		rows := pgRows[row](t, env, `SELECT s.student_no, n.kind, n.at, n.stale FROM notices n JOIN students s ON s.id = n.student_id
ORDER BY s.student_no, n.kind`)
		for i := range rows {
			rows[i].At = rows[i].At.UTC()
		}
		return rows
	}
	cutoffAt := cutoff.On(now, loc).UTC()
	want := []row{
		{"1001", "arrived", arrived.UTC().Truncate(time.Microsecond), false},
		{"1002", "absent", cutoffAt, false},
	}
	if diff := cmp.Diff(want, notices()); diff != "" {
		t.Errorf("notices after the first pass (-want +got):\n%s", diff)
	}
	type run struct {
		Code      string
		SchoolDay bool
		Reason    string
		Absent    int32
	}
	runs := pgRows[run](t, env, `SELECT s.code, r.school_day, r.reason, r.absent FROM sweep_runs r JOIN schools s ON s.id = r.school_id ORDER BY s.code`)
	if len(runs) != 2 || !runs[0].SchoolDay || runs[0].Absent != 1 || runs[1].SchoolDay || runs[1].Reason != "closure" {
		t.Errorf("sweep runs %+v: want 313601 swept with one absence and 330601 closed", runs)
	}

	// 1002 arrives late: the gate API makes the usual 到校 notice.
	late := time.Now().Add(-10 * time.Second).Truncate(time.Second)
	batch := `{"events": [{"id": "r-2", "card": "04A1B2C4", "direction": "in", "at": "` + late.Format(time.RFC3339) + `"}]}`
	if res := mustIngest(t, "http://"+m.Addr+"/api/v1/gate-events", key, batch); res.Accepted != 1 {
		t.Fatalf("late arrival: %+v", res)
	}
	want = append(want, row{"1002", "arrived", late.UTC(), false})
	if diff := cmp.Diff(want, notices()); diff != "" {
		t.Errorf("notices after the late arrival (-want +got):\n%s", diff)
	}

	res, err := http.Get("http://" + m.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, line := range []string{`ecardbot_sweeps_total{outcome="swept"} 1`, `ecardbot_sweeps_total{outcome="no_school"} 1`,
		`ecardbot_sweep_absent_notices_total 1`} {
		if !bytes.Contains(metrics, []byte(line)) {
			t.Errorf("/metrics lacks %s", line)
		}
	}

	closed = true
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if p := clock.Pending(); len(p) != 0 {
		t.Errorf("the scheduler left timers armed after Close: %v", p)
	}
}

// pgRows runs query on the test's PostgreSQL schema and collects its rows into T by position.
func pgRows[T any](tb testing.TB, env map[string]string, query string) []T {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env["ECARDBOT_DATABASE_URL"])
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, query)
	if err != nil {
		tb.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[T])
	if err != nil {
		tb.Fatal(err)
	}
	return got
}
