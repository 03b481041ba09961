package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/internal/testenv"
	"github.com/taipei-doit/ecardbot/school"
	"github.com/taipei-doit/ecardbot/store"
)

// runCommand runs ecardbot with args in the environment env.
func runCommand(env map[string]string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := newRootCommand(func(k string) string { return env[k] }, &out, &errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// mustRunCommand runs ecardbot and fails the test if it fails.
func mustRunCommand(tb testing.TB, env map[string]string, args ...string) (stdout, stderr string) {
	tb.Helper()
	stdout, stderr, err := runCommand(env, args...)
	if err != nil {
		tb.Fatalf("ecardbot %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

func writeFile(tb testing.TB, name, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

const (
	schoolsCSV = "\uFEFFcode,name,district,level,cutoff\r\n" +
		"313601,松山國小,松山區,國小,\r\n" +
		"313501,介壽國中,松山區,國中,07:50\r\n"
	rosterHeader = "student_no,name,birth_date,national_id,card_uid,grade,class\n"
	roster1      = rosterHeader +
		"1001,王小明,2017-03-04,A123456789,04A1B2C3,1,101\n" +
		"1002,林小美,2016-12-31,F131104093,04A1B2C4,2,201\n" +
		"1003,陳大文,2016-05-06,O158238845,,2,201\n"
	// roster2: 1001 unchanged, 1002 changed class, 1003 gone, 1005 new.
	roster2 = rosterHeader +
		"1001,王小明,2017-03-04,A123456789,04A1B2C3,1,101\n" +
		"1002,林小美,2016-12-31,F131104093,04A1B2C4,2,202\n" +
		"1005,Tran Van An,2016-01-01,A800000014,04A1B2C6,2,202\n"
	// badRoster adds a pupil, which must not be created, and has two bad lines.
	badRoster = rosterHeader +
		"1001,王小明,2017-03-04,A123456789,04A1B2C3,1,101\n" +
		"1002,林小美,2016-12-31,A123456788,04A1B2C4,2,202\n" +
		"1005,Tran Van An,2016-01-01,A800000014,04A1B2C3,2,202\n" +
		"1006,新同學,2017-01-01,Y123456788,,1,101\n"
)

// clearIDs are the national IDs of the roster files: none may be stored in the clear.
var clearIDs = []string{"A123456789", "F131104093", "O158238845", "A800000014", "Y123456788"}

type commandBackend struct {
	name string
	env  func(tb testing.TB) map[string]string
	// secret returns the key the commands hashed with.
	secret func(tb testing.TB, env map[string]string) []byte
	// dump returns everything the database holds, as text, to search for clear IDs.
	dump func(tb testing.TB, env map[string]string) string
}

var commandBackends = []commandBackend{
	{
		name: "postgres",
		env: func(tb testing.TB) map[string]string {
			return map[string]string{
				"ECARDBOT_DATABASE_URL": testenv.PostgresURL(tb),
				"ECARDBOT_SECRET_KEY":   strings.Repeat("s", config.MinSecretKeyLen),
			}
		},
		secret: func(_ testing.TB, env map[string]string) []byte { return []byte(env["ECARDBOT_SECRET_KEY"]) },
		dump:   dumpPostgres,
	},
	{
		// No secret key: the commands use the one they create in the data directory, as the
		// sandbox does.
		name: "sqlite",
		env: func(tb testing.TB) map[string]string {
			return map[string]string{"ECARDBOT_DATA_DIR": tb.TempDir()}
		},
		secret: func(tb testing.TB, env map[string]string) []byte {
			key, err := readSecretKeyFile(filepath.Join(env["ECARDBOT_DATA_DIR"], secretKeyFile))
			if err != nil {
				tb.Fatal(err)
			}
			return []byte(key)
		},
		dump: func(tb testing.TB, env map[string]string) string {
			var all []byte
			files, _ := filepath.Glob(filepath.Join(env["ECARDBOT_DATA_DIR"], store.SQLiteFile+"*"))
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					tb.Fatal(err)
				}
				all = append(all, b...)
			}
			return string(all)
		},
	},
}

// dumpPostgres returns every row of every table of the test's schema as text.
func dumpPostgres(tb testing.TB, env map[string]string) string {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env["ECARDBOT_DATABASE_URL"])
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	if err != nil {
		tb.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 3 {
		tb.Fatalf("tables %v: %v", tables, err)
	}
	var b strings.Builder
	for _, table := range tables {
		var text *string
		q := fmt.Sprintf("SELECT string_agg(t::text, ' ') FROM %s t", pgx.Identifier{table}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&text); err != nil {
			tb.Fatal(err)
		}
		if text != nil {
			b.WriteString(*text)
		}
	}
	return b.String()
}

func openForCheck(tb testing.TB, env map[string]string) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), store.Config{DatabaseURL: env["ECARDBOT_DATABASE_URL"], DataDir: env["ECARDBOT_DATA_DIR"]})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestSchoolKeyAndRosterCommands(t *testing.T) {
	t.Parallel()
	for _, b := range commandBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			env := b.env(t)
			ctx := context.Background()
			schools := writeFile(t, "schools.csv", schoolsCSV)
			if out, _ := mustRunCommand(t, env, "school", "import", schools); out != "schools: 2 created, 0 updated\n" {
				t.Errorf("first school import printed %q", out)
			}
			if out, _ := mustRunCommand(t, env, "school", "import", schools); out != "schools: 0 created, 2 updated\n" {
				t.Errorf("second school import printed %q", out)
			}

			out, stderr := mustRunCommand(t, env, "school", "key", "create", "--school", "313601")
			key := strings.TrimSuffix(out, "\n")
			if !strings.HasPrefix(key, school.KeyPrefix) || strings.Contains(key, "\n") || len(key) != 46 {
				t.Fatalf("key create printed %q on stdout, want the key alone on one line", out)
			}
			if !strings.Contains(stderr, "313601 松山國小") || strings.Contains(stderr, key) {
				t.Errorf("key create stderr %q, want the school and not the key", stderr)
			}

			if out, _ := mustRunCommand(t, env, "roster", "import", "--school", "313601", writeFile(t, "r1.csv", roster1)); out != "roster 313601: 3 created, 0 updated, 0 deactivated\n" {
				t.Errorf("first roster import printed %q", out)
			}
			if out, _ := mustRunCommand(t, env, "roster", "import", "--school", "313601", writeFile(t, "r2.csv", roster2)); out != "roster 313601: 1 created, 1 updated, 1 deactivated\n" {
				t.Errorf("second roster import printed %q", out)
			}

			bad := writeFile(t, "bad.csv", badRoster)
			out, stderr, err := runCommand(env, "roster", "import", "--school", "313601", bad)
			if err == nil || err.Error() != bad+": 2 bad lines, nothing imported" {
				t.Errorf("bad roster: error %v", err)
			}
			wantErr := bad + ":3: national_id: ID number is not valid: please check each character\n" +
				bad + ":4: card_uid 04A1B2C3 repeats line 2\n"
			if stderr != wantErr || out != "" {
				t.Errorf("bad roster: stdout %q, stderr\n%s\nwant stderr\n%s", out, stderr, wantErr)
			}
			// Had any of the bad file been applied (1002's class, the new 1006), importing
			// roster2 again would change something.
			if out, _ := mustRunCommand(t, env, "roster", "import", "--school", "313601", writeFile(t, "r2.csv", roster2)); out != "roster 313601: 0 created, 0 updated, 0 deactivated\n" {
				t.Errorf("roster2 again printed %q: the bad file changed something", out)
			}
			// A card that belongs to an active pupil of another school: the store refuses,
			// naming the line.
			other := writeFile(t, "other.csv", rosterHeader+"2001,張三,2012-02-02,C180661564,04A1B2C3,7,701\n")
			if _, _, err := runCommand(env, "roster", "import", "--school", "313501", other); err == nil ||
				!strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "code=") {
				t.Errorf("conflicting card: error %v, want one line naming line 2", err)
			}

			// What the commands stored works with the service: the key authenticates the
			// school, and the roster is the second file.
			db := openForCheck(t, env)
			secret := b.secret(t, env)
			gate := store.NewGateService(db, store.GateConfig{})
			s, err := gate.AuthenticateSchool(ctx, school.KeyHash(secret, key))
			if err != nil {
				t.Fatalf("the created key does not authenticate: %v", err)
			}
			if s.Code != "313601" || s.Cutoff != ecardbot.DefaultCutoff || s.District != "松山區" {
				t.Errorf("school = %+v", s)
			}
			if s2, err := store.NewSchoolService(db).FindSchool(ctx, "313501"); err != nil || s2.Cutoff.String() != "07:50" {
				t.Errorf("313501 = %+v, %v; want cutoff 07:50", s2, err)
			}
			today := time.Now().Format(time.DateOnly)
			for no, want := range map[string]string{"1001": "", "1005": "", "1003": ecardbot.ENOTFOUND, "1006": ecardbot.ENOTFOUND} {
				if err := gate.RecordLeave(ctx, s, no, today, "sick"); ecardbot.ErrorCode(err) != want {
					t.Errorf("leave for %s: %v, want code %q", no, err, want)
				}
			}
			res, err := gate.Ingest(ctx, s, []ecardbot.GateEvent{
				{ID: "e1", Card: "04A1B2C6", Direction: ecardbot.DirectionIn, At: time.Now().Add(-time.Minute)},
			})
			if err != nil || res.Accepted != 1 {
				t.Errorf("tap of 1005's card: %+v, %v; want accepted", res, err)
			}
			db.Close()

			dump := b.dump(t, env)
			if !strings.Contains(dump, "王小明") {
				t.Fatal("the dump misses the roster: it proves nothing")
			}
			for _, id := range clearIDs {
				if strings.Contains(dump, id) {
					t.Errorf("national ID %s is stored in the clear", id)
				}
			}
			if strings.Contains(dump, key) {
				t.Error("the gate API key is stored in the clear")
			}
		})
	}
}

func TestOperatorCommandErrors(t *testing.T) {
	t.Parallel()
	sqlite := func(tb testing.TB) map[string]string { return map[string]string{"ECARDBOT_DATA_DIR": tb.TempDir()} }
	badSchools := "code,name,district,level,cutoff\n313601,松山國小,Songshan,國小,\n31360,介壽國中,松山區,國中,25:00\n"
	tests := []struct {
		name       string
		env        func(tb testing.TB) map[string]string
		args       []string
		file       string // written to a temp file appended to args
		wantErr    string
		wantStderr string
	}{
		{name: "unknown school subcommand", env: sqlite, args: []string{"school", "imprt", "x.csv"}, wantErr: `unknown command "imprt" for "ecardbot school"`},
		{name: "unknown roster subcommand", env: sqlite, args: []string{"roster", "export"}, wantErr: `unknown command "export" for "ecardbot roster"`},
		{name: "school import needs a file", env: sqlite, args: []string{"school", "import"}, wantErr: "accepts 1 arg(s), received 0"},
		{name: "school import of a missing file", env: sqlite, args: []string{"school", "import", "/nonexistent/schools.csv"},
			wantErr: "open /nonexistent/schools.csv: no such file or directory"},
		{name: "school import of a bad file", env: sqlite, args: []string{"school", "import"}, file: badSchools,
			wantErr: ": 2 bad lines, nothing imported", wantStderr: ".csv:3: code must be 6 letters or digits, e.g. 313601; cutoff must be"},
		{name: "key create needs --school", env: sqlite, args: []string{"school", "key", "create"}, wantErr: `required flag(s) "school" not set`},
		{name: "key create for an unknown school", env: sqlite, args: []string{"school", "key", "create", "--school", "999999"},
			wantErr: "school 999999 not found: import it first with `ecardbot school import`"},
		{name: "key create on PostgreSQL needs the secret key",
			env: func(testing.TB) map[string]string {
				return map[string]string{"ECARDBOT_DATABASE_URL": "postgres://db.invalid/x"}
			},
			args: []string{"school", "key", "create", "--school", "313601"}, wantErr: "ECARDBOT_SECRET_KEY: required with ECARDBOT_DATABASE_URL"},
		{name: "a short secret key is refused",
			env: func(tb testing.TB) map[string]string {
				return map[string]string{"ECARDBOT_DATA_DIR": tb.TempDir(), "ECARDBOT_SECRET_KEY": "short"}
			},
			args: []string{"roster", "import", "--school", "313601"}, file: roster1, wantErr: "ECARDBOT_SECRET_KEY: must be at least 32 bytes, got 5"},
		{name: "roster import needs --school", env: sqlite, args: []string{"roster", "import"}, file: roster1, wantErr: `required flag(s) "school" not set`},
		{name: "roster import for an unknown school", env: sqlite, args: []string{"roster", "import", "--school", "999999"}, file: roster1,
			wantErr: "school 999999 not found"},
		{name: "roster with a bad header", env: sqlite, args: []string{"roster", "import", "--school", "313601"}, file: "student_no,name\n1,x\n",
			wantErr: ": 1 bad line, nothing imported", wantStderr: `.csv:1: missing column "birth_date"`},
		{name: "a malformed variable is named", env: func(testing.TB) map[string]string { return map[string]string{"ECARDBOT_DATABASE_URL": "mysql://x"} },
			args: []string{"school", "import"}, file: schoolsCSV, wantErr: "ECARDBOT_DATABASE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := tt.args
			if tt.file != "" {
				args = append(append([]string{}, args...), writeFile(t, "in.csv", tt.file))
			}
			out, stderr, err := runCommand(tt.env(t), args...)
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

func TestOperatorCommandsHelp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"school", "roster"}},
		{[]string{"school", "--help"}, []string{"import", "key", "Authorization: Bearer"}},
		{[]string{"school", "import", "--help"}, []string{"code,name,district,level,cutoff", "松山區", "empty for 08:30", "ECARDBOT_DATABASE_URL"}},
		{[]string{"school", "key", "create", "--help"}, []string{"--school", "once", "ECARDBOT_SECRET_KEY", "secret.key"}},
		{[]string{"roster", "import", "--help"}, []string{"student_no,name,birth_date,national_id,card_uid,grade,class", "inactive", "--school"}},
	} {
		out, _, err := runCommand(nil, tt.args...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "ECARDBOT_ECARDBOT_") {
			t.Errorf("ecardbot %s: help doubles the variables' prefix", strings.Join(tt.args, " "))
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("ecardbot %s: help lacks %q", strings.Join(tt.args, " "), w)
			}
		}
	}
}

func TestDataDirSecretKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	keys := make(chan string, 8)
	for range cap(keys) {
		go func() {
			key, err := dataDirSecretKey(dir)
			if err != nil {
				t.Error(err)
			}
			keys <- key
		}()
	}
	first := <-keys
	for range cap(keys) - 1 {
		if k := <-keys; k != first {
			t.Fatalf("concurrent first uses made different keys")
		}
	}
	if len(first) < config.MinSecretKeyLen {
		t.Errorf("key of %d bytes", len(first))
	}
	path := filepath.Join(dir, secretKeyFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	if again, err := dataDirSecretKey(dir); err != nil || again != first {
		t.Errorf("second use: %v, key changed: %v", err, again != first)
	}
	// The file works as ECARDBOT_SECRET_KEY_FILE, for PostgreSQL setups that want this key.
	cfg, err := config.Load(func(k string) string { return map[string]string{"ECARDBOT_SECRET_KEY_FILE": path}[k] })
	if err != nil || cfg.SecretKey != first {
		t.Errorf("through ECARDBOT_SECRET_KEY_FILE: %v, same key: %v", err, cfg.SecretKey == first)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, secretKeyFile+".*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dataDirSecretKey(dir); err == nil || !strings.Contains(err.Error(), "shorter than 32 bytes") {
		t.Errorf("short key file: %v", err)
	}
}
