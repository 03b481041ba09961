// Package config reads the environment of design.md §3.2 into one typed Config.
//
// Load is a pure function of the getenv it is given (plus the files named by *_FILE variables),
// so cmd passes os.Getenv and tests pass a map lookup and run in parallel. Load checks the format
// of each variable and fails on the first bad one with a one-line error that names it; Validate
// adds the requirements of a production deployment, which the sandbox does not call.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"net"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // TIMEZONE must resolve on a bare container image without /usr/share/zoneinfo
)

// Env prefix shared by every variable.
const prefix = "ECARDBOT_"

// Defaults, exported so cmd's --help and the README quote the values the code uses.
const (
	DefaultHTTPAddr       = ":8080"
	DefaultPublicURL      = "http://localhost:8080"
	DefaultDataDir        = "./data"
	DefaultLineAPIURL     = "https://api.line.me"
	DefaultLineDataAPIURL = "https://api-data.line.me"
	DefaultLineAccessURL  = "https://access.line.me"
	DefaultLinePushRate   = 2000
	// DefaultMailRate is ECARDBOT_MAIL_RATE's default, in e-mails a second: a school morning's
	// mail within minutes, below the sending limits relays usually start a sender with.
	DefaultMailRate      = 10
	DefaultTaipeiPassURL = "https://id.taipei/tpcd"
	DefaultTimezone      = "Asia/Taipei"
	DefaultWorkers       = 64
	// DefaultRetentionDays is how many days of gate events, notices and leave records are
	// kept: a semester and a half, for the parents' history page and questions about a term.
	DefaultRetentionDays = 180
	// MinSecretKeyLen is the shortest ECARDBOT_SECRET_KEY Validate accepts: 32 bytes keep HMAC
	// keys at the strength of SHA-256.
	MinSecretKeyLen = 32
)

// Roles says which parts of the service this process runs, so a deployment can scale the web
// tier and the push workers separately while running the 未到校 sweep on few replicas.
type Roles struct {
	Web       bool // HTTP: webhook, pages, gate-event API, health and metrics
	Worker    bool // outbox relay and push/e-mail workers
	Scheduler bool // 未到校 sweeps and other timed jobs
}

// AllRoles is the default: one process does everything, as in the sandbox.
var AllRoles = Roles{Web: true, Worker: true, Scheduler: true}

// String returns the roles as ECARDBOT_ROLES spells them, e.g. "web,worker".
func (r Roles) String() string {
	var s []string
	if r.Web {
		s = append(s, "web")
	}
	if r.Worker {
		s = append(s, "worker")
	}
	if r.Scheduler {
		s = append(s, "scheduler")
	}
	return strings.Join(s, ",")
}

// Config is the whole environment of the binary. Each field names its variable, its default and
// what its zero value means; URLs are validated and have no trailing slash.
type Config struct {
	// HTTPAddr is ECARDBOT_HTTP_ADDR: the host:port the web role listens on. Default ":8080".
	HTTPAddr string
	// PublicURL is ECARDBOT_PUBLIC_URL: the http(s) base under which parents' phones and LINE
	// reach this service; it builds link buttons, OAuth2 redirect URIs and signed URLs, so it
	// must be what the browser sees, not the bind address. Default "http://localhost:8080".
	PublicURL string
	// DatabaseURL is ECARDBOT_DATABASE_URL (or _FILE): a postgres:// or postgresql:// URL.
	// Empty means embedded SQLite in DataDir, for the sandbox and single-machine trials.
	DatabaseURL string
	// RedisURL is ECARDBOT_REDIS_URL (or _FILE): a redis:// or rediss:// URL. Empty means an
	// embedded in-process Redis: development only, its data is lost at exit.
	RedisURL string
	// DataDir is ECARDBOT_DATA_DIR: where the embedded SQLite file lives. Default "./data".
	DataDir string
	// SecretKey is ECARDBOT_SECRET_KEY (or _FILE): keys national-ID hashes, cookies and signed
	// URLs. Empty is allowed only in the sandbox; Validate requires MinSecretKeyLen bytes.
	// Changing it invalidates every stored keyed hash, so it is set once per deployment.
	SecretKey string
	// LineChannelSecret is ECARDBOT_LINE_CHANNEL_SECRET (or _FILE): verifies webhook
	// signatures. Empty only in the sandbox, where the emulator signs with its own.
	LineChannelSecret string
	// LineChannelToken is ECARDBOT_LINE_CHANNEL_TOKEN (or _FILE): the long-lived channel access
	// token for the Messaging API. Empty only in the sandbox.
	LineChannelToken string
	// LineAPIURL is ECARDBOT_LINE_API_URL: Messaging API base. Default "https://api.line.me";
	// tests and the sandbox point it at the emulator.
	LineAPIURL string
	// LineDataAPIURL is ECARDBOT_LINE_DATA_API_URL: base for content uploads such as rich menu
	// images. Default "https://api-data.line.me".
	LineDataAPIURL string
	// LineAccessURL is ECARDBOT_LINE_ACCESS_URL: base of the account-link dialog
	// (…/dialog/bot/accountLink). Default "https://access.line.me".
	LineAccessURL string
	// LinePushRate is ECARDBOT_LINE_PUSH_RATE: push requests per second allowed to all workers
	// of all replicas together (the limiter lives in Redis). Default 2000; a whole number, at
	// least 1, as the limiter counts whole requests a second.
	LinePushRate int
	// TaipeiPassURL is ECARDBOT_TAIPEIPASS_URL: base of the TaipeiPASS OAuth2 and member API.
	// Default "https://id.taipei/tpcd".
	TaipeiPassURL string
	// TaipeiPassClientID is ECARDBOT_TAIPEIPASS_CLIENT_ID. Empty: none (sandbox emulator).
	TaipeiPassClientID string
	// TaipeiPassClientSecret is ECARDBOT_TAIPEIPASS_CLIENT_SECRET (or _FILE). Empty: none.
	TaipeiPassClientSecret string
	// TaipeiPassScopes is ECARDBOT_TAIPEIPASS_SCOPE, split on spaces and commas. Empty: no
	// scope parameter is sent and TaipeiPASS applies the client's default scopes.
	TaipeiPassScopes []string
	// SMTPURL is ECARDBOT_SMTP_URL (or _FILE): smtp:// (STARTTLS) or smtps:// (implicit TLS),
	// with credentials in the user info. Empty turns the e-mail channel off (the sandbox uses
	// its built-in mailbox instead).
	SMTPURL string
	// MailFrom is ECARDBOT_MAIL_FROM: the sender address of notices, RFC 5322 ("名稱 <a@b>" or
	// "a@b"). Empty only when SMTPURL is empty too (Validate checks).
	MailFrom string
	// MailRate is ECARDBOT_MAIL_RATE: e-mails per second allowed to all e-mail workers of all
	// replicas together, in a limiter of their own (the relay's sending limit). Default 10; a
	// whole number, at least 1.
	MailRate int
	// Timezone is ECARDBOT_TIMEZONE: the zone that decides school days, cutoffs and the day a
	// tap belongs to. Default Asia/Taipei; never nil after Load.
	Timezone *time.Location
	// Workers is ECARDBOT_WORKERS: concurrency of push workers in this process; the global rate
	// LinePushRate still bounds them all. A worker spends most of a push waiting for LINE, so
	// the rate needs about rate × LINE's answer time of them in flight (2,000/s × 30 ms = 60).
	// Default 64; always at least 1.
	Workers int
	// Roles is ECARDBOT_ROLES, a comma list of web, worker, scheduler. Default all three.
	Roles Roles
	// LogLevel is ECARDBOT_LOG_LEVEL: debug, info, warn or error. Default info.
	LogLevel slog.Level
	// RetentionDays is ECARDBOT_RETENTION_DAYS: gate events, notices (with their deliveries),
	// leave records and sweep records of days more than this many days ago are deleted by the
	// scheduler's daily job and by `ecardbot retention run`. Default 180; always at least 1.
	// Not in design.md §3.2's original table: it was added with the retention job.
	RetentionDays int
}

// variable describes one environment variable, in the order of design.md §3.2, so Load, String
// and the tests walk one table.
type variable struct {
	name   string // without the ECARDBOT_ prefix
	secret bool   // may come from NAME_FILE; printed as <redacted>
	url    bool   // may hold a password in its user info or query: printed with it redacted
	load   func(c *Config, v string) error
	show   func(c *Config) string
}

// variables is the single table behind Load and String.
var variables = []variable{
	{name: "HTTP_ADDR",
		load: func(c *Config, v string) error {
			c.HTTPAddr = or(v, DefaultHTTPAddr)
			if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
				return fmt.Errorf("must be host:port such as :8080, got %q", v)
			} else if n, err := strconv.Atoi(port); port != "" && (err != nil || n < 0 || n > 65535) {
				return fmt.Errorf("port must be a number up to 65535, got %q", v)
			}
			return nil
		},
		show: func(c *Config) string { return c.HTTPAddr }},
	{name: "PUBLIC_URL",
		load: func(c *Config, v string) (err error) {
			c.PublicURL, err = parseURL(or(v, DefaultPublicURL), false, "http", "https")
			return err
		},
		show: func(c *Config) string { return c.PublicURL }},
	{name: "DATABASE_URL", secret: true, url: true,
		load: func(c *Config, v string) (err error) {
			if v == "" {
				return nil
			}
			c.DatabaseURL, err = parseURL(v, true, "postgres", "postgresql")
			return err
		},
		show: func(c *Config) string { return c.DatabaseURL }},
	{name: "REDIS_URL", secret: true, url: true,
		load: func(c *Config, v string) (err error) {
			if v == "" {
				return nil
			}
			c.RedisURL, err = parseURL(v, true, "redis", "rediss")
			return err
		},
		show: func(c *Config) string { return c.RedisURL }},
	{name: "DATA_DIR",
		load: func(c *Config, v string) error { c.DataDir = or(v, DefaultDataDir); return nil },
		show: func(c *Config) string { return c.DataDir }},
	{name: "SECRET_KEY", secret: true,
		load: func(c *Config, v string) error { c.SecretKey = v; return nil },
		show: func(c *Config) string { return c.SecretKey }},
	{name: "LINE_CHANNEL_SECRET", secret: true,
		load: func(c *Config, v string) error { c.LineChannelSecret = v; return nil },
		show: func(c *Config) string { return c.LineChannelSecret }},
	{name: "LINE_CHANNEL_TOKEN", secret: true,
		load: func(c *Config, v string) error { c.LineChannelToken = v; return nil },
		show: func(c *Config) string { return c.LineChannelToken }},
	{name: "LINE_API_URL",
		load: func(c *Config, v string) (err error) {
			c.LineAPIURL, err = parseURL(or(v, DefaultLineAPIURL), false, "http", "https")
			return err
		},
		show: func(c *Config) string { return c.LineAPIURL }},
	{name: "LINE_DATA_API_URL",
		load: func(c *Config, v string) (err error) {
			c.LineDataAPIURL, err = parseURL(or(v, DefaultLineDataAPIURL), false, "http", "https")
			return err
		},
		show: func(c *Config) string { return c.LineDataAPIURL }},
	{name: "LINE_ACCESS_URL",
		load: func(c *Config, v string) (err error) {
			c.LineAccessURL, err = parseURL(or(v, DefaultLineAccessURL), false, "http", "https")
			return err
		},
		show: func(c *Config) string { return c.LineAccessURL }},
	{name: "LINE_PUSH_RATE",
		load: func(c *Config, v string) (err error) {
			c.LinePushRate, err = parseRate(v, DefaultLinePushRate)
			return err
		},
		show: func(c *Config) string { return strconv.Itoa(c.LinePushRate) }},
	{name: "TAIPEIPASS_URL",
		load: func(c *Config, v string) (err error) {
			c.TaipeiPassURL, err = parseURL(or(v, DefaultTaipeiPassURL), false, "http", "https")
			return err
		},
		show: func(c *Config) string { return c.TaipeiPassURL }},
	{name: "TAIPEIPASS_CLIENT_ID",
		load: func(c *Config, v string) error { c.TaipeiPassClientID = v; return nil },
		show: func(c *Config) string { return c.TaipeiPassClientID }},
	{name: "TAIPEIPASS_CLIENT_SECRET", secret: true,
		load: func(c *Config, v string) error { c.TaipeiPassClientSecret = v; return nil },
		show: func(c *Config) string { return c.TaipeiPassClientSecret }},
	{name: "TAIPEIPASS_SCOPE",
		load: func(c *Config, v string) error {
			scopes := strings.FieldsFunc(v, func(r rune) bool {
				return r == ',' || r == ' ' || r == '\t'
			})
			if len(scopes) > 0 {
				c.TaipeiPassScopes = scopes
			}
			return nil
		},
		show: func(c *Config) string { return strings.Join(c.TaipeiPassScopes, " ") }},
	{name: "SMTP_URL", secret: true, url: true,
		load: func(c *Config, v string) (err error) {
			if v == "" {
				return nil
			}
			c.SMTPURL, err = parseURL(v, true, "smtp", "smtps")
			return err
		},
		show: func(c *Config) string { return c.SMTPURL }},
	{name: "MAIL_FROM",
		load: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			if _, err := mail.ParseAddress(v); err != nil {
				return fmt.Errorf("must be an e-mail address such as \"臺北通 <noreply@example.org>\", got %q", v)
			}
			c.MailFrom = v
			return nil
		},
		show: func(c *Config) string { return c.MailFrom }},
	{name: "MAIL_RATE",
		load: func(c *Config, v string) (err error) {
			c.MailRate, err = parseRate(v, DefaultMailRate)
			return err
		},
		show: func(c *Config) string { return strconv.Itoa(c.MailRate) }},
	{name: "TIMEZONE",
		load: func(c *Config, v string) error {
			loc, err := time.LoadLocation(or(v, DefaultTimezone))
			if err != nil {
				return fmt.Errorf("must be an IANA time zone such as Asia/Taipei, got %q", v)
			}
			c.Timezone = loc
			return nil
		},
		show: func(c *Config) string {
			if c.Timezone == nil {
				return ""
			}
			return c.Timezone.String()
		}},
	{name: "WORKERS",
		load: func(c *Config, v string) error {
			if v == "" {
				c.Workers = DefaultWorkers
				return nil
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("must be a whole number of at least 1, got %q", v)
			}
			c.Workers = n
			return nil
		},
		show: func(c *Config) string { return strconv.Itoa(c.Workers) }},
	{name: "ROLES",
		load: func(c *Config, v string) error {
			if v == "" {
				c.Roles = AllRoles
				return nil
			}
			var r Roles
			for _, name := range strings.Split(v, ",") {
				switch strings.ToLower(strings.TrimSpace(name)) {
				case "web":
					r.Web = true
				case "worker":
					r.Worker = true
				case "scheduler":
					r.Scheduler = true
				case "":
				default:
					return fmt.Errorf("unknown role %q, want a comma list of web, worker, scheduler", strings.TrimSpace(name))
				}
			}
			if r == (Roles{}) {
				return fmt.Errorf("must name at least one of web, worker, scheduler, got %q", v)
			}
			c.Roles = r
			return nil
		},
		show: func(c *Config) string { return c.Roles.String() }},
	{name: "LOG_LEVEL",
		load: func(c *Config, v string) error {
			switch strings.ToLower(v) {
			case "debug":
				c.LogLevel = slog.LevelDebug
			case "info", "":
				c.LogLevel = slog.LevelInfo
			case "warn":
				c.LogLevel = slog.LevelWarn
			case "error":
				c.LogLevel = slog.LevelError
			default:
				return fmt.Errorf("must be debug, info, warn or error, got %q", v)
			}
			return nil
		},
		show: func(c *Config) string { return strings.ToLower(c.LogLevel.String()) }},
	{name: "RETENTION_DAYS",
		load: func(c *Config, v string) error {
			if v == "" {
				c.RetentionDays = DefaultRetentionDays
				return nil
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("must be a whole number of days of at least 1, got %q", v)
			}
			c.RetentionDays = n
			return nil
		},
		show: func(c *Config) string { return strconv.Itoa(c.RetentionDays) }},
}

// Names returns every variable Load reads, in table order, without the _FILE variants: for
// --help and documentation.
func Names() []string {
	names := make([]string, len(variables))
	for i, v := range variables {
		names[i] = prefix + v.name
	}
	return names
}

// Load reads the configuration through getenv (os.Getenv in cmd, a map in tests), applying
// defaults. A secret may instead come from the file named by NAME_FILE, the way Docker and
// Kubernetes mount secrets; setting both is an error rather than a silent precedence rule.
// Load checks formats only; call Validate for what production additionally requires.
func Load(getenv func(string) string) (Config, error) {
	var c Config
	for _, v := range variables {
		name := prefix + v.name
		val, err := lookup(getenv, name, v.secret)
		if !v.secret || v.url {
			val = strings.TrimSpace(val) // whitespace is never meaningful outside opaque secrets
		}
		if err != nil {
			return Config{}, err
		}
		if err := v.load(&c, val); err != nil {
			return Config{}, fmt.Errorf("%s: %w", name, err)
		}
	}
	return c, nil
}

// lookup returns the value of name, or the contents of the file named by name_FILE for secrets.
func lookup(getenv func(string) string, name string, secret bool) (string, error) {
	val := getenv(name)
	if !secret {
		return val, nil
	}
	file := strings.TrimSpace(getenv(name + "_FILE"))
	if file == "" {
		return val, nil
	}
	if val != "" {
		return "", fmt.Errorf("%s and %s_FILE are both set: use one", name, name)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	val = strings.TrimRight(string(b), "\r\n")
	if val == "" {
		return "", fmt.Errorf("%s_FILE: %s is empty", name, file)
	}
	return val, nil
}

// Validate reports what a production deployment (ecardbot serve and the operator commands)
// needs beyond well-formed values. The sandbox skips it: it runs without secrets on purpose.
func (c Config) Validate() error {
	switch {
	case len(c.SecretKey) == 0:
		return errors.New(prefix + "SECRET_KEY: required outside the sandbox (at least 32 random bytes)")
	case len(c.SecretKey) < MinSecretKeyLen:
		return fmt.Errorf("%sSECRET_KEY: must be at least %d bytes, got %d", prefix, MinSecretKeyLen, len(c.SecretKey))
	case c.LineChannelSecret == "":
		return errors.New(prefix + "LINE_CHANNEL_SECRET: required outside the sandbox")
	case c.LineChannelToken == "":
		return errors.New(prefix + "LINE_CHANNEL_TOKEN: required outside the sandbox")
	case c.SMTPURL != "" && c.MailFrom == "":
		return errors.New(prefix + "MAIL_FROM: required when " + prefix + "SMTP_URL is set")
	}
	return nil
}

// String prints the effective configuration, one NAME=value per line in table order, for the
// start-up log. Secrets print as <redacted> when set (empty when not, so a missing one shows),
// and passwords inside URLs are redacted.
func (c Config) String() string {
	var b strings.Builder
	for _, v := range variables {
		val := v.show(&c)
		switch {
		case val == "":
		case v.url:
			val = redactURL(val)
		case v.secret:
			val = "<redacted>"
		}
		b.WriteString(prefix + v.name + "=" + val + "\n")
	}
	return b.String()
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// parseURL checks that raw is an absolute URL with one of the schemes and a host, and returns it
// without a trailing slash so callers can append paths. When the URL may hold credentials the
// error never quotes it.
func parseURL(raw string, mayHoldSecret bool, schemes ...string) (string, error) {
	got := fmt.Sprintf(", got %q", raw)
	if mayHoldSecret {
		got = ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL, password included
		}
		return "", fmt.Errorf("not a valid URL (%w)%s", err, got)
	}
	if !slices.Contains(schemes, u.Scheme) {
		return "", fmt.Errorf("scheme must be %s, got %q", strings.Join(schemes, " or "), u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("must be an absolute URL with a host%s", got)
	}
	if !mayHoldSecret && (u.User != nil || u.RawQuery != "" || u.Fragment != "") {
		return "", fmt.Errorf("must be a base URL without user, query or fragment%s", got)
	}
	return strings.TrimSuffix(raw, "/"), nil
}

// redactURL hides the password of the user info and every query parameter that looks like a
// credential (pgx and go-redis also accept password=… in the query).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<redacted>"
	}
	if u.RawQuery != "" {
		q := u.Query()
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(q)) {
			lk := strings.ToLower(k)
			secret := strings.Contains(lk, "password") || strings.Contains(lk, "secret") ||
				strings.Contains(lk, "token")
			for _, v := range q[k] {
				if secret {
					v = "<redacted>"
				} else {
					v = url.QueryEscape(v)
				}
				parts = append(parts, url.QueryEscape(k)+"="+v)
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if u.User == nil {
		return u.String()
	}
	user := u.User
	u.User = nil
	rest := strings.TrimPrefix(u.String(), u.Scheme+"://")
	userInfo := url.User(user.Username()).String()
	if _, ok := user.Password(); ok {
		userInfo += ":<redacted>"
	}
	return u.Scheme + "://" + userInfo + "@" + rest
}

// parseRate reads a rate a second: a positive, finite number; empty means def.
func parseRate(v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("must be a whole number of at least 1 a second, got %q", v)
	}
	return n, nil
}
