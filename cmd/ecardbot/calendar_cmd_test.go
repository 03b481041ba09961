package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/store"
)

const (
	// Two schools in different districts.
	calendarSchoolsCSV = "code,name,district,level,cutoff\n" +
		"313601,松山國小,松山區,國小,\n" +
		"330601,大安國小,大安區,國小,07:50\n"
	calendarCSV = "\uFEFFdate,school_code,kind,note\r\n" +
		"2026-10-09,,holiday,國慶日補假\r\n" +
		"2026-09-26,313601,schoolday,補課\r\n"
)

func TestCalendarCommands(t *testing.T) {
	t.Parallel()
	for _, b := range commandBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			env := b.env(t)
			mustRunCommand(t, env, "school", "import", writeFile(t, "schools.csv", calendarSchoolsCSV))
			expect := func(want string, args ...string) {
				t.Helper()
				if out, _ := mustRunCommand(t, env, args...); out != want {
					t.Errorf("ecardbot %s printed\n%s\nwant\n%s", strings.Join(args, " "), out, want)
				}
			}
			file := writeFile(t, "calendar.csv", calendarCSV)
			expect("calendar: 2 entries, 2 new or changed\n", "calendar", "import", file)
			expect("calendar: 2 entries, 0 new or changed\n", "calendar", "import", file)

			// A typhoon day announced the evening before, for one district.
			closeArgs := []string{"calendar", "close", "--date", "2026-09-28", "--district", "松山區", "--note", "颱風停課"}
			expect("2026-09-28: closed for the schools of 松山區; the 未到校 sweep will not run there\n", closeArgs...)
			expect("2026-09-28: already closed for the schools of 松山區; the 未到校 sweep will not run there\n", closeArgs...)
			expect("2026-09-30: closed for school 330601; the 未到校 sweep will not run there\n",
				"calendar", "close", "--date", "2026-09-30", "--school", "330601")

			expect("313601 松山國小 (松山區), 未到校 at 08:30\n"+
				"2026-09-25 Fri  school day  weekday\n"+
				"2026-09-26 Sat  school day  schoolday (school 313601) 補課\n"+
				"2026-09-27 Sun  no school   weekend\n"+
				"2026-09-28 Mon  no school   closure (松山區) 颱風停課\n"+
				"2026-09-29 Tue  school day  weekday\n"+
				"2026-09-30 Wed  school day  weekday\n",
				"calendar", "list", "--school", "313601", "--from", "2026-09-25", "--to", "2026-09-30")
			expect("330601 大安國小 (大安區), 未到校 at 07:50\n"+
				"2026-09-26 Sat  no school   weekend\n"+
				"2026-09-27 Sun  no school   weekend\n"+
				"2026-09-28 Mon  school day  weekday\n"+
				"2026-09-29 Tue  school day  weekday\n"+
				"2026-09-30 Wed  no school   closure (school 330601)\n",
				"calendar", "list", "--school", "330601", "--from", "2026-09-26", "--to", "2026-09-30")

			// A city-wide closure beats 313601's make-up Saturday; reopening restores it.
			expect("2026-09-26: closed for every school of the city; the 未到校 sweep will not run there\n",
				"calendar", "close", "--date", "2026-09-26", "--note", "颱風停課")
			expect("313601 松山國小 (松山區), 未到校 at 08:30\n2026-09-26 Sat  no school   closure (city) 颱風停課\n",
				"calendar", "list", "--school", "313601", "--from", "2026-09-26", "--to", "2026-09-26")
			expect("2026-09-26: closure for every school of the city removed\n", "calendar", "reopen", "--date", "2026-09-26")
			expect("2026-09-28: closure for the schools of 松山區 removed\n",
				"calendar", "reopen", "--date", "2026-09-28", "--district", "松山區")
			if _, _, err := runCommand(env, "calendar", "reopen", "--date", "2026-09-28", "--district", "松山區"); err == nil ||
				err.Error() != "reopen 2026-09-28: No closure on 2026-09-28 for 松山區." {
				t.Errorf("second reopen: %v", err)
			}

			out, _ := mustRunCommand(t, env, "calendar", "list", "--school", "313601")
			if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 1+defaultListDays {
				t.Errorf("list without a range printed %d lines, want a header and %d days:\n%s", len(lines), defaultListDays, out)
			}

			// An unknown school in a file: nothing of the file is applied.
			bad := writeFile(t, "bad.csv", "date,school_code,kind,note\n2026-12-25,,holiday,\n2026-12-26,999999,schoolday,\n")
			if _, _, err := runCommand(env, "calendar", "import", bad); err == nil ||
				err.Error() != bad+": nothing imported: line 3: no school has code 999999 (import it first with `ecardbot school import`)" {
				t.Errorf("unknown school: %v", err)
			}
			expect("313601 松山國小 (松山區), 未到校 at 08:30\n2026-12-25 Fri  school day  weekday\n",
				"calendar", "list", "--school", "313601", "--from", "2026-12-25", "--to", "2026-12-25")

			// What the commands stored is what the sweep reads.
			db := openForCheck(t, env)
			sc, err := store.NewSchoolService(db).FindSchool(context.Background(), "313601")
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := store.NewCalendarService(db).IsSchoolDay(context.Background(), sc, "2026-10-09"); err != nil || ok {
				t.Errorf("IsSchoolDay(2026-10-09) = %v, %v; want the imported holiday", ok, err)
			}
		})
	}
}

func TestRetentionCommand(t *testing.T) {
	t.Parallel()
	for _, b := range commandBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			env := b.env(t)
			ctx := context.Background()
			mustRunCommand(t, env, "school", "import", writeFile(t, "schools.csv", schoolsCSV))
			mustRunCommand(t, env, "roster", "import", "--school", "313601", writeFile(t, "roster.csv", roster1))

			// Taps 200 days ago and today, as the gate service stored them then.
			db := openForCheck(t, env)
			sc, err := store.NewSchoolService(db).FindSchool(ctx, "313601")
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			for i, at := range []time.Time{now.AddDate(0, 0, -200), now.Add(-time.Minute)} {
				gate := store.NewGateService(db, store.GateConfig{Now: func() time.Time { return at.Add(time.Minute) }})
				res, err := gate.Ingest(ctx, sc, []ecardbot.GateEvent{{ID: string(rune('a' + i)), Card: "04A1B2C3", Direction: ecardbot.DirectionIn, At: at}})
				if err != nil || res.Accepted != 1 {
					t.Fatalf("seed tap %d: %+v, %v", i, res, err)
				}
			}
			db.Close()

			out, _ := mustRunCommand(t, env, "retention", "run")
			before := time.Now().In(taipeiLocation(t)).AddDate(0, 0, -180).Format(time.DateOnly)
			want := "retention: deleted what is older than " + before +
				" (180 days): 1 gate events, 1 notices, 0 deliveries, 0 leave records, 0 sweep records, 0 expired settings links, sessions and attempts\n"
			if out != want {
				t.Errorf("retention run printed %q, want %q", out, want)
			}
			out, _ = mustRunCommand(t, env, "retention", "run", "--days", "1")
			if !strings.Contains(out, "(1 days): 0 gate events, 0 notices") {
				t.Errorf("today's tap must stay with --days 1: %q", out)
			}
			env["ECARDBOT_RETENTION_DAYS"] = "30"
			if out, _ := mustRunCommand(t, env, "retention", "run"); !strings.Contains(out, "(30 days)") {
				t.Errorf("ECARDBOT_RETENTION_DAYS ignored: %q", out)
			}
		})
	}
}

func taipeiLocation(tb testing.TB) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation("Asia/Taipei")
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

func TestCalendarCommandErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ECARDBOT_DATA_DIR": t.TempDir()}
	mustRunCommand(t, env, "school", "import", writeFile(t, "schools.csv", calendarSchoolsCSV))
	badFile := writeFile(t, "bad.csv", "date,school_code,kind,note\n2026-02-30,,holiday,\n2026-10-10,,typhoon,\n")
	tests := []struct {
		name       string
		args       []string
		wantErr    string
		wantStderr string
	}{
		{"close needs --date", []string{"calendar", "close"}, `required flag(s) "date" not set`, ""},
		{"close with a bad date", []string{"calendar", "close", "--date", "28/09/2026"}, `--date "28/09/2026": must be a date as YYYY-MM-DD`, ""},
		{"close a school and a district", []string{"calendar", "close", "--date", "2026-09-28", "--school", "313601", "--district", "松山區"},
			"[district school] were all set", ""},
		{"close an unknown district", []string{"calendar", "close", "--date", "2026-09-28", "--district", "松山"},
			`--district "松山": must be one of Taipei's 12 districts`, ""},
		{"close an unknown school", []string{"calendar", "close", "--date", "2026-09-28", "--school", "999999"},
			"school 999999 not found: import it first with `ecardbot school import`", ""},
		{"reopen what is open", []string{"calendar", "reopen", "--date", "2026-09-28", "--school", "313601"},
			"reopen 2026-09-28: No closure on 2026-09-28 for school 313601.", ""},
		{"list needs --school", []string{"calendar", "list"}, `required flag(s) "school" not set`, ""},
		{"list an unknown school", []string{"calendar", "list", "--school", "999999"}, "school 999999 not found", ""},
		{"list a reversed range", []string{"calendar", "list", "--school", "313601", "--from", "2026-09-30", "--to", "2026-09-01"},
			"list 313601: The range ends (2026-09-01) before it starts (2026-09-30).", ""},
		{"list more than a year", []string{"calendar", "list", "--school", "313601", "--from", "2026-01-01", "--to", "2027-12-31"},
			"list at most 366 at once", ""},
		{"import a bad file", []string{"calendar", "import", badFile}, ": 2 bad lines, nothing imported",
			".csv:3: kind must be holiday, closure or schoolday"},
		{"import without a file", []string{"calendar", "import"}, "accepts 1 arg(s), received 0", ""},
		{"unknown subcommand", []string{"calendar", "open"}, `unknown command "open" for "ecardbot calendar"`, ""},
		{"retention with zero days", []string{"retention", "run", "--days", "0"}, "--days 0: must be at least 1", ""},
		{"retention with a bad variable", nil, "ECARDBOT_RETENTION_DAYS", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, args := env, tt.args
			if args == nil {
				e = map[string]string{"ECARDBOT_DATA_DIR": env["ECARDBOT_DATA_DIR"], "ECARDBOT_RETENTION_DAYS": "forever"}
				args = []string{"retention", "run"}
			}
			out, stderr, err := runCommand(e, args...)
			switch {
			case err == nil:
				t.Fatalf("succeeded with stdout %q", out)
			case !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			case strings.Contains(err.Error(), "\n"):
				t.Errorf("error %q is not one line", err)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tt.wantStderr)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing from a failed command", out)
			}
		})
	}
}

func TestCalendarCommandsHelp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"calendar", "retention"}},
		{[]string{"calendar", "--help"}, []string{"import", "close", "reopen", "list", "補課"}},
		{[]string{"calendar", "import", "--help"}, []string{"date,school_code,kind,note", "holiday", "closure", "schoolday", "empty for every school", "ECARDBOT_DATABASE_URL"}},
		{[]string{"calendar", "close", "--help"}, []string{"--district", "--school", "--note", "typhoon", "announced", "make-up"}},
		{[]string{"calendar", "list", "--help"}, []string{"--from", "--to", "366"}},
		{[]string{"retention", "run", "--help"}, []string{"ECARDBOT_RETENTION_DAYS", "--days", "5,000"}},
	} {
		out, _, err := runCommand(nil, tt.args...)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("ecardbot %s: help lacks %q", strings.Join(tt.args, " "), w)
			}
		}
	}
}
