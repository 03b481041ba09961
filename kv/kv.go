// Package kv is the service's connection to Redis: one client per process, shared by the webhook
// event claims here and by the queue and rate limiter, which take Redis() and put their keys
// under Key().
//
// With no URL it starts an embedded Redis (miniredis) inside the process, so the sandbox needs no
// server; it runs the same Lua scripts as a real one, which is why the libraries that depend on
// Redis are tested against both.
package kv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix namespaces every key when Config.Prefix is empty, so a Redis shared with other
// applications (or a second deployment using another prefix) never collides with ours.
const DefaultPrefix = "ecardbot:"

// Config is what Open needs; cmd fills it from config.Config.
type Config struct {
	// URL is a redis:// or rediss:// URL (ECARDBOT_REDIS_URL). Empty starts an embedded Redis
	// for development: its data is lost at exit and it is not shared with other processes.
	URL string
	// Prefix starts every key built with Key. Empty means DefaultPrefix. End it with ":".
	Prefix string
	// Logger receives the embedded-Redis warning. Nil discards it.
	Logger *slog.Logger
}

// Client is an open Redis connection pool with the service's key prefix. It is safe for
// concurrent use.
type Client struct {
	rdb    *redis.Client
	prefix string
	mini   *miniredis.Miniredis // nil unless embedded
}

// Open connects to cfg.URL and pings it once, so a wrong URL or a dead server fails at start
// with a one-line error rather than on the first webhook. With an empty URL it starts an
// embedded Redis and warns that it is for development only.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{prefix: cfg.Prefix}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}

	var opts *redis.Options
	if cfg.URL == "" {
		m := miniredis.NewMiniRedis()
		// Without this, miniredis only expires keys when a test calls FastForward: claims,
		// queue leases and rate-limit windows would never expire in the sandbox.
		m.ClockTTL(true)
		if err := m.Start(); err != nil {
			return nil, fmt.Errorf("start embedded redis: %w", err)
		}
		c.mini = m
		logger.Warn("embedded Redis: development only, data is lost at exit",
			"component", "kv", "addr", m.Addr())
		opts = &redis.Options{Addr: m.Addr()}
	} else {
		var err error
		opts, err = redis.ParseURL(cfg.URL)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error repeats the URL, password included
			}
			return nil, fmt.Errorf("open redis: %w", err)
		}
	}
	setDefaults(opts)
	c.rdb = redis.NewClient(opts)

	if err := c.rdb.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect to redis at %s: %s", opts.Addr, oneLine(err))
	}
	return c, nil
}

// setDefaults fills timeouts the URL did not set. Values are short because every caller is on a
// request or job path with its own deadline, and a hung Redis must surface as an error quickly.
func setDefaults(o *redis.Options) {
	if o.DialTimeout == 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 3 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 3 * time.Second
	}
	if o.PoolTimeout == 0 {
		o.PoolTimeout = 4 * time.Second
	}
	if o.DialerRetries == 0 {
		// go-redis dials 5 times per command attempt by default, and retries commands 3
		// times: with Redis down a webhook would wait seconds for its claim. Commands still
		// retry; dials are retried once.
		o.DialerRetries = 2
	}
	// Honour the caller's context deadline too, not only the socket timeouts above.
	o.ContextTimeoutEnabled = true
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// Redis returns the underlying client for packages that speak Redis themselves (the queue and
// the rate limiter). They must build their keys with Key, or under Prefix, so tests and
// deployments sharing a server stay apart.
func (c *Client) Redis() *redis.Client { return c.rdb }

// Prefix returns the key prefix, for libraries that take a namespace rather than whole keys.
func (c *Client) Prefix() string { return c.prefix }

// Key joins parts with ":" under the prefix: Key("claim", id) is "ecardbot:claim:<id>".
func (c *Client) Key(parts ...string) string {
	return c.prefix + strings.Join(parts, ":")
}

// Embedded reports whether this is the in-process development Redis, for /readyz details and
// the operator page.
func (c *Client) Embedded() bool { return c.mini != nil }

// Ping reports whether Redis answers, for /readyz.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Close closes the connections and stops the embedded server, if any.
func (c *Client) Close() error {
	var err error
	if c.rdb != nil {
		err = c.rdb.Close()
	}
	if c.mini != nil {
		c.mini.Close()
	}
	if err != nil {
		return fmt.Errorf("close redis: %w", err)
	}
	return nil
}

// LibraryLogger adapts l to go-redis's process-wide logger, so the pool's own messages (failed
// dials, reconnects) come out as structured logs instead of plain lines on stderr. go-redis keeps
// one logger per process, so cmd installs it once in main:
//
//	redis.SetLogger(kv.LibraryLogger(logger))
//
// The messages name addresses and errors, never keys or values.
func LibraryLogger(l *slog.Logger) interface {
	Printf(ctx context.Context, format string, v ...any)
} {
	return libraryLogger{l.With("component", "kv")}
}

type libraryLogger struct{ l *slog.Logger }

func (g libraryLogger) Printf(ctx context.Context, format string, v ...any) {
	g.l.WarnContext(ctx, fmt.Sprintf(format, v...))
}
