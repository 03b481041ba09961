package config_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot/config"
)

// env is a map-backed getenv, so tests run in parallel without t.Setenv.
type env map[string]string

func (e env) get(k string) string { return e[k] }

var cmpLocation = cmp.Comparer(func(a, b *time.Location) bool {
	return a.String() == b.String()
})

func MustLoad(tb testing.TB, e env) config.Config {
	tb.Helper()
	c, err := config.Load(e.get)
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return c
}

func MustLocation(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// MustWriteFile writes a secret file the way Docker and Kubernetes mount them.
func MustWriteFile(tb testing.TB, content string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	got := MustLoad(t, env{})
	want := config.Config{
		HTTPAddr:       ":8080",
		PublicURL:      "http://localhost:8080",
		DataDir:        "./data",
		LineAPIURL:     "https://api.line.me",
		LineDataAPIURL: "https://api-data.line.me",
		LineAccessURL:  "https://access.line.me",
		LinePushRate:   2000,
		MailRate:       10,
		TaipeiPassURL:  "https://id.taipei/tpcd",
		Timezone:       MustLocation(t, "Asia/Taipei"),
		Workers:        64,
		Roles:          config.Roles{Web: true, Worker: true, Scheduler: true},
		LogLevel:       slog.LevelInfo,
		RetentionDays:  180,
	}
	if diff := cmp.Diff(want, got, cmpLocation); diff != "" {
		t.Errorf("Load(empty) mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadValues(t *testing.T) {
	t.Parallel()
	got := MustLoad(t, env{
		"ECARDBOT_HTTP_ADDR":                "127.0.0.1:9000",
		"ECARDBOT_PUBLIC_URL":               "https://ecard.gov.taipei/bot/",
		"ECARDBOT_DATABASE_URL":             "postgres://app:pw@db:5432/ecard?sslmode=require",
		"ECARDBOT_REDIS_URL":                "rediss://:pw@redis:6380/2",
		"ECARDBOT_DATA_DIR":                 "/var/lib/ecardbot",
		"ECARDBOT_SECRET_KEY":               "0123456789abcdef0123456789abcdef",
		"ECARDBOT_LINE_CHANNEL_SECRET":      "chsecret",
		"ECARDBOT_LINE_CHANNEL_TOKEN":       "chtoken",
		"ECARDBOT_LINE_API_URL":             "http://127.0.0.1:7001",
		"ECARDBOT_LINE_DATA_API_URL":        "http://127.0.0.1:7002",
		"ECARDBOT_LINE_ACCESS_URL":          "http://127.0.0.1:7003",
		"ECARDBOT_LINE_PUSH_RATE":           "1500",
		"ECARDBOT_TAIPEIPASS_URL":           "https://id.example/tpcd",
		"ECARDBOT_TAIPEIPASS_CLIENT_ID":     "client",
		"ECARDBOT_TAIPEIPASS_CLIENT_SECRET": "tpsecret",
		"ECARDBOT_TAIPEIPASS_SCOPE":         "openid profile,member",
		"ECARDBOT_SMTP_URL":                 "smtps://mailer:pw@smtp.example:465",
		"ECARDBOT_MAIL_FROM":                "臺北通 <noreply@example.org>",
		"ECARDBOT_MAIL_RATE":                "3",
		"ECARDBOT_TIMEZONE":                 "UTC",
		"ECARDBOT_WORKERS":                  " 32 ",
		"ECARDBOT_ROLES":                    "worker, Scheduler",
		"ECARDBOT_LOG_LEVEL":                "DEBUG",
		"ECARDBOT_RETENTION_DAYS":           " 400 ",
	})
	want := config.Config{
		HTTPAddr:               "127.0.0.1:9000",
		PublicURL:              "https://ecard.gov.taipei/bot",
		DatabaseURL:            "postgres://app:pw@db:5432/ecard?sslmode=require",
		RedisURL:               "rediss://:pw@redis:6380/2",
		DataDir:                "/var/lib/ecardbot",
		SecretKey:              "0123456789abcdef0123456789abcdef",
		LineChannelSecret:      "chsecret",
		LineChannelToken:       "chtoken",
		LineAPIURL:             "http://127.0.0.1:7001",
		LineDataAPIURL:         "http://127.0.0.1:7002",
		LineAccessURL:          "http://127.0.0.1:7003",
		LinePushRate:           1500,
		TaipeiPassURL:          "https://id.example/tpcd",
		TaipeiPassClientID:     "client",
		TaipeiPassClientSecret: "tpsecret",
		TaipeiPassScopes:       []string{"openid", "profile", "member"},
		SMTPURL:                "smtps://mailer:pw@smtp.example:465",
		MailFrom:               "臺北通 <noreply@example.org>",
		MailRate:               3,
		Timezone:               time.UTC,
		Workers:                32,
		Roles:                  config.Roles{Worker: true, Scheduler: true},
		LogLevel:               slog.LevelDebug,
		RetentionDays:          400,
	}
	if diff := cmp.Diff(want, got, cmpLocation); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	secrets := map[string]func(config.Config) string{
		"ECARDBOT_SECRET_KEY":               func(c config.Config) string { return c.SecretKey },
		"ECARDBOT_LINE_CHANNEL_SECRET":      func(c config.Config) string { return c.LineChannelSecret },
		"ECARDBOT_LINE_CHANNEL_TOKEN":       func(c config.Config) string { return c.LineChannelToken },
		"ECARDBOT_TAIPEIPASS_CLIENT_SECRET": func(c config.Config) string { return c.TaipeiPassClientSecret },
		"ECARDBOT_DATABASE_URL":             func(c config.Config) string { return c.DatabaseURL },
		"ECARDBOT_REDIS_URL":                func(c config.Config) string { return c.RedisURL },
		"ECARDBOT_SMTP_URL":                 func(c config.Config) string { return c.SMTPURL },
	}
	values := map[string]string{
		"ECARDBOT_DATABASE_URL": "postgres://u:p@h/db",
		"ECARDBOT_REDIS_URL":    "redis://:p@h:6379/0",
		"ECARDBOT_SMTP_URL":     "smtp://u:p@h:587",
	}
	for name, field := range secrets {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := values[name]
			if want == "" {
				want = "s3cr3t with spaces "
			}
			path := MustWriteFile(t, want+"\n")
			got := field(MustLoad(t, env{name + "_FILE": path}))
			if got != want {
				t.Errorf("%s from file = %q, want %q (trailing newline trimmed only)", name, got, want)
			}

			_, err := config.Load(env{name: want, name + "_FILE": path}.get)
			wantErr := name + " and " + name + "_FILE are both set: use one"
			if err == nil || err.Error() != wantErr {
				t.Errorf("both set: err = %v, want %q", err, wantErr)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "nope")
		_, err := config.Load(env{"ECARDBOT_SECRET_KEY_FILE": path}.get)
		if err == nil || !strings.HasPrefix(err.Error(), "ECARDBOT_SECRET_KEY_FILE: open "+path) {
			t.Errorf("err = %v, want it to name the variable and the file", err)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		t.Parallel()
		path := MustWriteFile(t, "\n")
		_, err := config.Load(env{"ECARDBOT_SECRET_KEY_FILE": path}.get)
		if want := "ECARDBOT_SECRET_KEY_FILE: " + path + " is empty"; err == nil || err.Error() != want {
			t.Errorf("err = %v, want %q", err, want)
		}
	})
	t.Run("not a secret", func(t *testing.T) {
		t.Parallel()
		// Only secrets read _FILE variants; others ignore them rather than surprise.
		c := MustLoad(t, env{"ECARDBOT_WORKERS_FILE": "/nonexistent"})
		if c.Workers != 64 {
			t.Errorf("Workers = %d, want 64", c.Workers)
		}
	})
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     env
		wantErr string
	}{
		{"http addr", env{"ECARDBOT_HTTP_ADDR": "8080"},
			`ECARDBOT_HTTP_ADDR: must be host:port such as :8080, got "8080"`},
		{"http addr port", env{"ECARDBOT_HTTP_ADDR": ":99999"},
			`ECARDBOT_HTTP_ADDR: port must be a number up to 65535, got ":99999"`},
		{"public url scheme", env{"ECARDBOT_PUBLIC_URL": "ftp://x"},
			`ECARDBOT_PUBLIC_URL: scheme must be http or https, got "ftp"`},
		{"public url relative", env{"ECARDBOT_PUBLIC_URL": "localhost:8080"},
			`ECARDBOT_PUBLIC_URL: scheme must be http or https, got "localhost"`},
		{"public url no host", env{"ECARDBOT_PUBLIC_URL": "https:///path"},
			`ECARDBOT_PUBLIC_URL: must be an absolute URL with a host, got "https:///path"`},
		{"public url query", env{"ECARDBOT_PUBLIC_URL": "https://x/?a=b"},
			`ECARDBOT_PUBLIC_URL: must be a base URL without user, query or fragment, got "https://x/?a=b"`},
		{"public url parse", env{"ECARDBOT_PUBLIC_URL": "http://x:port"},
			`ECARDBOT_PUBLIC_URL: not a valid URL (invalid port ":port" after host), got "http://x:port"`},
		{"database url scheme", env{"ECARDBOT_DATABASE_URL": "mysql://u:pw@h/db"},
			`ECARDBOT_DATABASE_URL: scheme must be postgres or postgresql, got "mysql"`},
		{"database url dsn", env{"ECARDBOT_DATABASE_URL": "host=db password=pw"},
			`ECARDBOT_DATABASE_URL: scheme must be postgres or postgresql, got ""`},
		{"database url parse", env{"ECARDBOT_DATABASE_URL": "postgres://u:pw@h:x/db"},
			`ECARDBOT_DATABASE_URL: not a valid URL (invalid port ":x" after host)`},
		{"database url no host", env{"ECARDBOT_DATABASE_URL": "postgres:///db"},
			`ECARDBOT_DATABASE_URL: must be an absolute URL with a host`},
		{"redis url scheme", env{"ECARDBOT_REDIS_URL": "http://h:6379"},
			`ECARDBOT_REDIS_URL: scheme must be redis or rediss, got "http"`},
		{"smtp url scheme", env{"ECARDBOT_SMTP_URL": "mailto:x@y"},
			`ECARDBOT_SMTP_URL: scheme must be smtp or smtps, got "mailto"`},
		{"line api url", env{"ECARDBOT_LINE_API_URL": "api.line.me"},
			`ECARDBOT_LINE_API_URL: scheme must be http or https, got ""`},
		{"line data api url", env{"ECARDBOT_LINE_DATA_API_URL": "ws://x"},
			`ECARDBOT_LINE_DATA_API_URL: scheme must be http or https, got "ws"`},
		{"line access url", env{"ECARDBOT_LINE_ACCESS_URL": "https://u:p@x"},
			`ECARDBOT_LINE_ACCESS_URL: must be a base URL without user, query or fragment, got "https://u:p@x"`},
		{"taipeipass url", env{"ECARDBOT_TAIPEIPASS_URL": "id.taipei"},
			`ECARDBOT_TAIPEIPASS_URL: scheme must be http or https, got ""`},
		{"push rate word", env{"ECARDBOT_LINE_PUSH_RATE": "abc"},
			`ECARDBOT_LINE_PUSH_RATE: must be a whole number of at least 1 a second, got "abc"`},
		{"mail rate below one a second", env{"ECARDBOT_MAIL_RATE": "0.2"},
			`ECARDBOT_MAIL_RATE: must be a whole number of at least 1 a second, got "0.2"`},
		{"push rate fraction", env{"ECARDBOT_LINE_PUSH_RATE": "1500.5"},
			`ECARDBOT_LINE_PUSH_RATE: must be a whole number of at least 1 a second, got "1500.5"`},
		{"push rate zero", env{"ECARDBOT_LINE_PUSH_RATE": "0"},
			`ECARDBOT_LINE_PUSH_RATE: must be a whole number of at least 1 a second, got "0"`},
		{"push rate negative", env{"ECARDBOT_LINE_PUSH_RATE": "-5"},
			`ECARDBOT_LINE_PUSH_RATE: must be a whole number of at least 1 a second, got "-5"`},
		{"push rate inf", env{"ECARDBOT_LINE_PUSH_RATE": "Inf"},
			`ECARDBOT_LINE_PUSH_RATE: must be a whole number of at least 1 a second, got "Inf"`},
		{"push rate nan", env{"ECARDBOT_LINE_PUSH_RATE": "NaN"},
			`ECARDBOT_LINE_PUSH_RATE: must be a whole number of at least 1 a second, got "NaN"`},
		{"mail rate zero", env{"ECARDBOT_MAIL_RATE": "0"},
			`ECARDBOT_MAIL_RATE: must be a whole number of at least 1 a second, got "0"`},
		{"mail from", env{"ECARDBOT_MAIL_FROM": "not an address"},
			`ECARDBOT_MAIL_FROM: must be an e-mail address such as "臺北通 <noreply@example.org>", got "not an address"`},
		{"timezone", env{"ECARDBOT_TIMEZONE": "Asia/Taipie"},
			`ECARDBOT_TIMEZONE: must be an IANA time zone such as Asia/Taipei, got "Asia/Taipie"`},
		{"workers zero", env{"ECARDBOT_WORKERS": "0"},
			`ECARDBOT_WORKERS: must be a whole number of at least 1, got "0"`},
		{"workers word", env{"ECARDBOT_WORKERS": "eight"},
			`ECARDBOT_WORKERS: must be a whole number of at least 1, got "eight"`},
		{"roles unknown", env{"ECARDBOT_ROLES": "web,cron"},
			`ECARDBOT_ROLES: unknown role "cron", want a comma list of web, worker, scheduler`},
		{"roles none", env{"ECARDBOT_ROLES": " , "},
			`ECARDBOT_ROLES: must name at least one of web, worker, scheduler, got ","`},
		{"log level", env{"ECARDBOT_LOG_LEVEL": "verbose"},
			`ECARDBOT_LOG_LEVEL: must be debug, info, warn or error, got "verbose"`},
		{"retention zero", env{"ECARDBOT_RETENTION_DAYS": "0"},
			`ECARDBOT_RETENTION_DAYS: must be a whole number of days of at least 1, got "0"`},
		{"retention with a unit", env{"ECARDBOT_RETENTION_DAYS": "180d"},
			`ECARDBOT_RETENTION_DAYS: must be a whole number of days of at least 1, got "180d"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load(tt.env.get)
			if err == nil {
				t.Fatalf("Load succeeded with %+v, want error %q", got, tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error mismatch:\n got: %s\nwant: %s", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
			if strings.Contains(err.Error(), "pw") {
				t.Errorf("error leaks a password: %q", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	prod := env{
		"ECARDBOT_SECRET_KEY":          strings.Repeat("k", 32),
		"ECARDBOT_LINE_CHANNEL_SECRET": "s",
		"ECARDBOT_LINE_CHANNEL_TOKEN":  "t",
	}
	with := func(k, v string) env {
		e := env{}
		for kk, vv := range prod {
			e[kk] = vv
		}
		e[k] = v
		return e
	}
	tests := []struct {
		name    string
		env     env
		wantErr string
	}{
		{"production", prod, ""},
		{"sandbox", env{},
			"ECARDBOT_SECRET_KEY: required outside the sandbox (at least 32 random bytes)"},
		{"short key", with("ECARDBOT_SECRET_KEY", strings.Repeat("k", 31)),
			"ECARDBOT_SECRET_KEY: must be at least 32 bytes, got 31"},
		{"no channel secret", with("ECARDBOT_LINE_CHANNEL_SECRET", ""),
			"ECARDBOT_LINE_CHANNEL_SECRET: required outside the sandbox"},
		{"no channel token", with("ECARDBOT_LINE_CHANNEL_TOKEN", ""),
			"ECARDBOT_LINE_CHANNEL_TOKEN: required outside the sandbox"},
		{"smtp without sender", with("ECARDBOT_SMTP_URL", "smtp://h:25"),
			"ECARDBOT_MAIL_FROM: required when ECARDBOT_SMTP_URL is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := MustLoad(t, tt.env).Validate()
			var got string
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("Validate() = %q, want %q", got, tt.wantErr)
			}
		})
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		got := MustLoad(t, env{}).String()
		want := `ECARDBOT_HTTP_ADDR=:8080
ECARDBOT_PUBLIC_URL=http://localhost:8080
ECARDBOT_DATABASE_URL=
ECARDBOT_REDIS_URL=
ECARDBOT_DATA_DIR=./data
ECARDBOT_SECRET_KEY=
ECARDBOT_LINE_CHANNEL_SECRET=
ECARDBOT_LINE_CHANNEL_TOKEN=
ECARDBOT_LINE_API_URL=https://api.line.me
ECARDBOT_LINE_DATA_API_URL=https://api-data.line.me
ECARDBOT_LINE_ACCESS_URL=https://access.line.me
ECARDBOT_LINE_PUSH_RATE=2000
ECARDBOT_TAIPEIPASS_URL=https://id.taipei/tpcd
ECARDBOT_TAIPEIPASS_CLIENT_ID=
ECARDBOT_TAIPEIPASS_CLIENT_SECRET=
ECARDBOT_TAIPEIPASS_SCOPE=
ECARDBOT_SMTP_URL=
ECARDBOT_MAIL_FROM=
ECARDBOT_MAIL_RATE=10
ECARDBOT_TIMEZONE=Asia/Taipei
ECARDBOT_WORKERS=64
ECARDBOT_ROLES=web,worker,scheduler
ECARDBOT_LOG_LEVEL=info
ECARDBOT_RETENTION_DAYS=180
`
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("String() mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("redacted", func(t *testing.T) {
		t.Parallel()
		got := MustLoad(t, env{
			"ECARDBOT_DATABASE_URL":             "postgres://app:hunter2@db:5432/ecard?sslmode=require&password=hunter3",
			"ECARDBOT_REDIS_URL":                "redis://:hunter4@redis:6379/0",
			"ECARDBOT_SECRET_KEY":               "hunter5-hunter5-hunter5-hunter5-",
			"ECARDBOT_LINE_CHANNEL_SECRET":      "hunter6",
			"ECARDBOT_LINE_CHANNEL_TOKEN":       "hunter7",
			"ECARDBOT_TAIPEIPASS_CLIENT_ID":     "client-1",
			"ECARDBOT_TAIPEIPASS_CLIENT_SECRET": "hunter8",
			"ECARDBOT_TAIPEIPASS_SCOPE":         "openid,profile",
			"ECARDBOT_SMTP_URL":                 "smtp://mailer@smtp.example:587",
			"ECARDBOT_MAIL_FROM":                "noreply@example.org",
			"ECARDBOT_ROLES":                    "web",
			"ECARDBOT_LOG_LEVEL":                "warn",
		}).String()
		want := `ECARDBOT_HTTP_ADDR=:8080
ECARDBOT_PUBLIC_URL=http://localhost:8080
ECARDBOT_DATABASE_URL=postgres://app:<redacted>@db:5432/ecard?password=<redacted>&sslmode=require
ECARDBOT_REDIS_URL=redis://:<redacted>@redis:6379/0
ECARDBOT_DATA_DIR=./data
ECARDBOT_SECRET_KEY=<redacted>
ECARDBOT_LINE_CHANNEL_SECRET=<redacted>
ECARDBOT_LINE_CHANNEL_TOKEN=<redacted>
ECARDBOT_LINE_API_URL=https://api.line.me
ECARDBOT_LINE_DATA_API_URL=https://api-data.line.me
ECARDBOT_LINE_ACCESS_URL=https://access.line.me
ECARDBOT_LINE_PUSH_RATE=2000
ECARDBOT_TAIPEIPASS_URL=https://id.taipei/tpcd
ECARDBOT_TAIPEIPASS_CLIENT_ID=client-1
ECARDBOT_TAIPEIPASS_CLIENT_SECRET=<redacted>
ECARDBOT_TAIPEIPASS_SCOPE=openid profile
ECARDBOT_SMTP_URL=smtp://mailer@smtp.example:587
ECARDBOT_MAIL_FROM=noreply@example.org
ECARDBOT_MAIL_RATE=10
ECARDBOT_TIMEZONE=Asia/Taipei
ECARDBOT_WORKERS=64
ECARDBOT_ROLES=web
ECARDBOT_LOG_LEVEL=warn
ECARDBOT_RETENTION_DAYS=180
`
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("String() mismatch (-want +got):\n%s", diff)
		}
		if strings.Contains(got, "hunter") {
			t.Errorf("String() leaks a secret:\n%s", got)
		}
	})
}

func TestNames(t *testing.T) {
	t.Parallel()
	got := config.Names()
	if len(got) != 24 {
		t.Errorf("Names() has %d variables, want the 20 of design §3.2 plus ROLES, LOG_LEVEL, RETENTION_DAYS and MAIL_RATE", len(got))
	}
	lines := strings.Split(strings.TrimSuffix(MustLoad(t, env{}).String(), "\n"), "\n")
	for i, name := range got {
		if i >= len(lines) || !strings.HasPrefix(lines[i], name+"=") {
			t.Errorf("String() line %d does not start with %s=", i, name)
		}
	}
}
