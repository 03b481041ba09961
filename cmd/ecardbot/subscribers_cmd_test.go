package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/store"
)

const (
	subscribersHeader = "line_user_id,taipeipass_id,school_code,student_no,arrive,leave,absent,email\n"
	lineUser1         = "U00000000000000000000000000000001"
	lineUser2         = "U00000000000000000000000000000002"
	lineUser3         = "U00000000000000000000000000000003"
	// subscribers1 fits roster1: tp-a gets everything for 1001 on LINE and by e-mail and 到校 of
	// 1002 on LINE; tp-b 未到校 of 1003.
	subscribers1 = subscribersHeader +
		lineUser1 + ",tp-a,313601,1001,1,1,1,a@example.com\n" +
		lineUser1 + ",tp-a,313601,1002,1,0,0,\n" +
		lineUser2 + ",tp-b,313601,1003,0,0,1,\n"
)

func TestSubscribersImportCommand(t *testing.T) {
	t.Parallel()
	for _, b := range commandBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			env := b.env(t)
			ctx := context.Background()
			mustRunCommand(t, env, "school", "import", writeFile(t, "schools.csv", schoolsCSV))
			mustRunCommand(t, env, "roster", "import", "--school", "313601", writeFile(t, "roster.csv", roster1))
			file := writeFile(t, "subscribers.csv", subscribers1)

			out, _ := mustRunCommand(t, env, "subscribers", "import", "--dry-run", file)
			if want := "dry run, nothing stored; subscribers: 2 guardians created, 0 updated; 2 LINE users recorded as following; " +
				"3 guardianships created; 8 subscriptions added, 0 removed\n"; out != want {
				t.Errorf("dry run printed %q, want %q", out, want)
			}
			out, _ = mustRunCommand(t, env, "subscribers", "import", file)
			if want := "subscribers: 2 guardians created, 0 updated; 2 LINE users recorded as following; " +
				"3 guardianships created; 8 subscriptions added, 0 removed\n"; out != want {
				t.Errorf("first import printed %q, want %q", out, want)
			}
			zero := "subscribers: 0 guardians created, 0 updated; 0 LINE users recorded as following; " +
				"0 guardianships created; 0 subscriptions added, 0 removed\n"
			if out, _ := mustRunCommand(t, env, "subscribers", "import", file); out != zero {
				t.Errorf("second import printed %q, want nothing changed", out)
			}

			// A bad file: malformed lines, a pupil not on the roster, and a LINE user linked to
			// another account, all reported in line order; nothing of it is stored.
			bad := writeFile(t, "bad.csv", subscribersHeader+
				lineUser1+",tp-a,313601,1001,1,0,0,\n"+ // good, but would change tp-a
				lineUser3+",tp-c,313601,1001,1,1,yes,\n"+
				lineUser3+",tp-c,313601,9999,1,1,1,\n"+
				"U3,tp-d,313601,1001,1,1,1,c@example\n"+
				lineUser2+",tp-e,313601,1002,1,1,1,\n")
			out, stderr, err := runCommand(env, "subscribers", "import", bad)
			if err == nil || err.Error() != bad+": 4 bad lines, nothing imported" {
				t.Errorf("bad file: error %v", err)
			}
			wantErr := bad + ":3: absent must be 1 or 0\n" +
				bad + ":4: student_no 9999 is not on the active roster of school 313601\n" +
				bad + ":5: line_user_id must be U followed by 32 lower-case hexadecimal digits; email is not a valid address (write it as name@example.com)\n" +
				bad + ":6: line_user_id is already linked to another TaipeiPASS account\n"
			if stderr != wantErr || out != "" {
				t.Errorf("bad file: stdout %q, stderr\n%s\nwant stderr\n%s", out, stderr, wantErr)
			}
			if out, _ := mustRunCommand(t, env, "subscribers", "import", file); out != zero {
				t.Errorf("after the bad file, the first file again printed %q: the bad file changed something", out)
			}

			// The imported guardians get deliveries: 1001 arrives (tp-a on LINE and by e-mail),
			// 1002 arrives (tp-a on LINE).
			db := openForCheck(t, env)
			s, err := store.NewSchoolService(db).FindSchool(ctx, "313601")
			if err != nil {
				t.Fatal(err)
			}
			res, err := store.NewGateService(db, store.GateConfig{}).Ingest(ctx, s, []ecardbot.GateEvent{
				{ID: "e1", Card: "04A1B2C3", Direction: ecardbot.DirectionIn, At: time.Now().Add(-time.Minute)},
				{ID: "e2", Card: "04A1B2C4", Direction: ecardbot.DirectionIn, At: time.Now().Add(-time.Minute)},
			})
			if err != nil || res.Accepted != 2 {
				t.Fatalf("ingest: %+v, %v", res, err)
			}
			counts, err := db.CountGateRows(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if counts.Notices != 2 || counts.Deliveries != 3 {
				t.Errorf("%+v, want 2 notices and 3 deliveries", counts)
			}
			dump := b.dump(t, env)
			if !strings.Contains(dump, "a@example.com") || !strings.Contains(dump, lineUser1) {
				t.Error("the dump misses the imported guardian")
			}
		})
	}
}

func TestSubscribersImportCommandErrorsAndHelp(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ECARDBOT_DATA_DIR": t.TempDir()}
	for _, tt := range []struct {
		name, file, wantErr, wantStderr string
	}{
		{"bad header", "line_user_id,taipeipass_id\n", ": 1 bad line, nothing imported", `missing column "school_code"`},
		{"unknown school", subscribersHeader + lineUser1 + ",tp-a,313601,1001,1,1,1,\n", ": 1 bad line, nothing imported", ":2: no school has code 313601"},
		{"no lines", subscribersHeader, ": 1 bad line, nothing imported", ":2: no subscribers after the header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := runCommand(env, "subscribers", "import", writeFile(t, "in.csv", tt.file))
			if err == nil || !strings.HasSuffix(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line ending %q", err, tt.wantErr)
			}
			if !strings.Contains(stderr, tt.wantStderr) || out != "" {
				t.Errorf("stdout %q, stderr %q, want it to contain %q", out, stderr, tt.wantStderr)
			}
		})
	}
	if _, _, err := runCommand(env, "subscribers", "import", "/nonexistent.csv"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	out, _, err := runCommand(nil, "subscribers", "import", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{strings.TrimSuffix(subscribersHeader, "\n"), "count as confirmed", "--email-confirmed",
		"--dry-run", "following", "nothing is imported", "ECARDBOT_DATABASE_URL"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// nationalID returns the n-th valid national ID of the form A1ddddddd c.
func nationalID(tb testing.TB, n int) string {
	tb.Helper()
	digits := fmt.Sprintf("1%07d", n)
	sum := 1 // A = 10: 1×1 + 0×9
	for i, w := range []int{8, 7, 6, 5, 4, 3, 2, 1} {
		sum += w * int(digits[i]-'0')
	}
	id := "A" + digits + fmt.Sprint((10-sum%10)%10)
	if _, err := ecardbot.ValidateNationalID(id); err != nil {
		tb.Fatalf("made an invalid ID %s", id)
	}
	return id
}

// bigRoster returns a roster file of n pupils with cards C00001…, every tenth without one.
func bigRoster(tb testing.TB, n int) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString(rosterHeader)
	for i := 1; i <= n; i++ {
		card := fmt.Sprintf("C%05d", i)
		if i%10 == 0 {
			card = ""
		}
		fmt.Fprintf(&b, "%d,學生%d,2017-03-04,%s,%s,1,101\n", 5000+i, i, nationalID(tb, i), card)
	}
	return b.String()
}

// The files README's walk-through uses import cleanly, in its order.
func TestExampleFilesImport(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ECARDBOT_DATA_DIR": t.TempDir()}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"school", "import", "../../examples/schools.csv"}, "schools: 2 created, 0 updated\n"},
		{[]string{"roster", "import", "--school", "313601", "../../examples/roster-313601.csv"}, "roster 313601: 250 created, 0 updated, 0 deactivated\n"},
		{[]string{"subscribers", "import", "../../examples/subscribers.csv"}, "subscribers: 2 guardians created, 0 updated; " +
			"2 LINE users recorded as following; 3 guardianships created; 11 subscriptions added, 0 removed\n"},
	} {
		if out, _ := mustRunCommand(t, env, tt.args...); out != tt.want {
			t.Errorf("ecardbot %s printed %q, want %q", strings.Join(tt.args, " "), out, tt.want)
		}
	}
}
