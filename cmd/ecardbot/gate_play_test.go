package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taipei-doit/ecardbot/internal/testenv"
	"github.com/taipei-doit/ecardbot/linesim"
)

// An operator sets a school up with the commands and plays yesterday's school day against the
// running service over HTTP: the counts add up, and playing it again posts only duplicates. Then
// the old portal's subscribers are imported, and a fresh tap reaches them.
func TestEndToEndGatePlay(t *testing.T) {
	t.Parallel()
	m, _ := mustRunMain(t)
	env := map[string]string{"ECARDBOT_DATABASE_URL": m.Config.DatabaseURL, "ECARDBOT_SECRET_KEY": m.Config.SecretKey}
	ctx := context.Background()
	mustRunCommand(t, env, "school", "import", writeFile(t, "schools.csv", schoolsCSV))
	rosterText := bigRoster(t, 400)
	roster := writeFile(t, "roster.csv", rosterText)
	mustRunCommand(t, env, "roster", "import", "--school", "313601", roster)
	out, _ := mustRunCommand(t, env, "school", "key", "create", "--school", "313601")
	key := strings.TrimSpace(out)

	// What the command plays, made here the same way.
	var pupils []linesim.GatePupil
	for i := 1; i <= 400; i++ {
		card := fmt.Sprintf("C%05d", i)
		if i%10 == 0 {
			card = ""
		}
		pupils = append(pupils, linesim.GatePupil{StudentNo: fmt.Sprint(5000 + i), Card: card})
	}
	date := time.Now().In(m.Config.Timezone).AddDate(0, 0, -1).Format(time.DateOnly)
	day, err := linesim.GenerateDay(pupils, linesim.SchoolDayConfig{Date: date, Location: m.Config.Timezone, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	unique := len(day.Taps) - day.Resent - day.UnknownCards

	url := "http://" + m.Addr
	args := []string{"gate", "play", "--url", url, "--key", key, "--roster", roster, "--date", date, "--seed", "7"}
	out, _ = mustRunCommand(t, env, args...)
	want := fmt.Sprintf("school day %s (seed 7): 360 pupils with a card, %d absent; south-1 offline %s–%s\n"+
		"posted %d of %d taps in ", date, day.Absent, day.OfflineFrom.Format("15:04"), day.OfflineUntil.Format("15:04"),
		len(day.Taps), len(day.Taps))
	if !strings.HasPrefix(out, want) {
		t.Errorf("first play printed\n%s\nwant it to start\n%s", out, want)
	}
	wantCounts := fmt.Sprintf("accepted %d, duplicates %d, rejected %d (unknown card: %d)\n", unique, day.Resent, day.UnknownCards, day.UnknownCards)
	if !strings.HasSuffix(out, wantCounts) {
		t.Errorf("first play printed\n%s\nwant it to end\n%s", out, wantCounts)
	}
	db := openForCheck(t, env)
	counts, err := db.CountGateRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts.Events != int64(unique) || counts.Notices == 0 {
		t.Errorf("stored %+v, want %d events and some notices", counts, unique)
	}
	// Yesterday's taps are hours old: their notices are recorded but not sent.
	if counts.Deliveries != 0 {
		t.Errorf("%d deliveries for stale notices", counts.Deliveries)
	}

	out, _ = mustRunCommand(t, env, args...)
	wantCounts = fmt.Sprintf("accepted 0, duplicates %d, rejected %d (unknown card: %d)\n", len(day.Taps)-day.UnknownCards, day.UnknownCards, day.UnknownCards)
	if !strings.HasSuffix(out, wantCounts) {
		t.Errorf("second play printed\n%s\nwant it to end\n%s", out, wantCounts)
	}
	if again, _ := db.CountGateRows(ctx); again != counts {
		t.Errorf("the second play changed the store: %+v, then %+v", counts, again)
	}

	// Subscribers of the old portal get a fresh tap's notices through the real API.
	subs := writeFile(t, "subs.csv", subscribersHeader+lineUser1+",tp-a,313601,5003,1,1,1,a@example.com\n")
	mustRunCommand(t, env, "subscribers", "import", subs)
	before, _ := db.CountGateRows(ctx)
	at := time.Now().Add(-time.Minute).Format(time.RFC3339)
	batch := `{"events": [{"id": "fresh-1", "card": "C00003", "direction": "in", "at": "` + at + `", "gate": "north-1"}]}`
	if status, body := postJSON(t, url+"/api/v1/gate-events", key, batch); status != http.StatusOK {
		t.Fatalf("fresh taps: %d %s", status, body)
	}
	after, _ := db.CountGateRows(ctx)
	if after.Notices != before.Notices+1 || after.Deliveries != before.Deliveries+2 {
		t.Errorf("before %+v, after %+v: want a 到校 notice delivered on LINE and by e-mail", before, after)
	}

	// Today's day, from the environment's key: only what has happened by now.
	envKey := map[string]string{gateKeyVariable: key}
	out, _ = mustRunCommand(t, envKey, "gate", "play", "--url", url, "--roster", roster, "--seed", "7")
	if !strings.Contains(out, "not happened yet") || !strings.Contains(out, "accepted ") {
		t.Errorf("today's play printed\n%s", out)
	}
}

func TestGatePlayCommandErrors(t *testing.T) {
	t.Parallel()
	roster := writeFile(t, "roster.csv", roster1)
	tomorrow := time.Now().AddDate(0, 0, 2).Format(time.DateOnly)
	for _, tt := range []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"no key", nil, []string{"--roster", roster}, "no gate API key: pass --key or set ECARDBOT_GATE_KEY"},
		{"no roster", nil, []string{"--key", "gk_x"}, `required flag(s) "roster" not set`},
		{"future date", nil, []string{"--key", "gk_x", "--roster", roster, "--date", tomorrow}, "is in the future"},
		{"bad date", nil, []string{"--key", "gk_x", "--roster", roster, "--date", "2026-13-01"}, "must be a date as YYYY-MM-DD"},
		{"bad roster", nil, []string{"--key", "gk_x", "--roster", writeFile(t, "bad.csv", badRoster)}, ": 2 bad lines, nothing played"},
		{"nobody listening", nil, []string{"--url", "http://127.0.0.1:1", "--key", "gk_x", "--roster", roster, "--date", "2026-11-27", "--attempts", "2"},
			"gave up after 2 attempts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := runCommand(tt.env, append([]string{"gate", "play"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line containing %q", err, tt.wantErr)
			}
		})
	}
	out, _, err := runCommand(nil, "gate", "play", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--url", "--key", "--roster", "--date", "--seed", "ECARDBOT_GATE_KEY", "duplicates", "offline"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// bench gate keeps working: a tiny run on each database, leaving nothing behind.
func TestBenchGateCommand(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		env  func(tb testing.TB) map[string]string
	}{
		{"postgres", func(tb testing.TB) map[string]string {
			return map[string]string{"ECARDBOT_DATABASE_URL": testenv.PostgresURL(tb)}
		}},
		{"sqlite", func(tb testing.TB) map[string]string {
			return map[string]string{"ECARDBOT_DATA_DIR": tb.TempDir()}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := tt.env(t)
			out, stderr := mustRunCommand(t, env, "bench", "gate", "--students", "300", "--readers", "3")
			for _, want := range []string{"bench gate: 300 pupils, 3 readers", "events/s end to end", "notices+deliveries/s",
				"batch latency: p50", "rejected 1 (unknown cards)"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if !strings.Contains(stderr, "taps posted") {
				t.Errorf("no progress line on stderr: %q", stderr)
			}
			if tt.name == "sqlite" {
				if files, _ := os.ReadDir(env["ECARDBOT_DATA_DIR"]); len(files) != 0 {
					t.Errorf("the bench wrote to ECARDBOT_DATA_DIR: %v", files)
				}
			}
			if tt.name == "postgres" {
				i := strings.Index(out, "ecardbot_bench_")
				if i < 0 {
					t.Fatalf("output names no schema:\n%s", out)
				}
				schema := out[i : i+len("ecardbot_bench_")+16]
				conn, err := pgx.Connect(context.Background(), env["ECARDBOT_DATABASE_URL"])
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(context.Background())
				var n int
				if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1`, schema).Scan(&n); err != nil || n != 0 {
					t.Errorf("schema %s left behind (%d, %v)", schema, n, err)
				}
				// The configured schema itself is untouched.
				db := openForCheck(t, env)
				if err := db.Ping(context.Background()); err != nil {
					t.Fatal(err)
				}
				if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil || n != 0 {
					t.Errorf("the bench created %d tables in the configured schema (%v)", n, err)
				}
			}
		})
	}
}
