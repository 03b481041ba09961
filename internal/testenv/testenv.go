// Package testenv gives tests real PostgreSQL and Redis servers, isolated per test.
//
// The servers are optional on a laptop and mandatory in CI: when one is unreachable a test is
// skipped, unless CI=true, where the same situation fails the test so a broken CI service never
// passes silently. Each test gets its own PostgreSQL schema and its own Redis key prefix, so tests
// may run in parallel against one server and leave nothing behind.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Defaults match the services of the development machine and CI.
const (
	DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// reachability caches, per server URL, whether it answered, so a package with hundreds of tests
// pays for one failed dial instead of one per test.
var reachability sync.Map // url -> *probe

type probe struct {
	once sync.Once
	err  error
}

func reachable(rawURL string, check func(ctx context.Context) error) error {
	v, _ := reachability.LoadOrStore(rawURL, &probe{})
	p := v.(*probe)
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.err = check(ctx)
	})
	return p.err
}

// unavailable skips the test, or fails it in CI where the services are part of the contract.
func unavailable(tb testing.TB, what, envVar string, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is unreachable (set %s to point at it): %v", what, envVar, err)
	}
	tb.Skipf("%s is unreachable, skipping (set %s, or start it; in CI this fails): %v", what, envVar, err)
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// PostgresURL returns a URL whose connections use a fresh, empty schema that exists only for this
// test; the schema and everything in it is dropped when the test ends. The server comes from
// TEST_DATABASE_URL (default DefaultPostgresURL).
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = DefaultPostgresURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("TEST_DATABASE_URL: must be a postgres:// URL")
	}
	err = reachable(base, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		return conn.Ping(ctx)
	})
	if err != nil {
		unavailable(tb, "PostgreSQL", "TEST_DATABASE_URL", err)
	}

	schema := "test_" + randomHex(tb, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pgExec(ctx, base, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		tb.Fatalf("create test schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pgExec(ctx, base, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("drop test schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema) // pgx sends unknown URL parameters as runtime parameters
	u.RawQuery = q.Encode()
	return u.String()
}

func pgExec(ctx context.Context, rawURL, sql string) error {
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// RedisURL returns the URL of the test Redis server (TEST_REDIS_URL, default DefaultRedisURL) and
// a key prefix unique to this test, ending in ":". Every key under the prefix is deleted when the
// test ends, so the code under test must put all its keys under it.
func RedisURL(tb testing.TB) (rawURL, prefix string) {
	tb.Helper()
	rawURL = os.Getenv("TEST_REDIS_URL")
	if rawURL == "" {
		rawURL = DefaultRedisURL
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		tb.Fatalf("TEST_REDIS_URL: must be a redis:// or rediss:// URL")
	}
	err = reachable(rawURL, func(ctx context.Context) error {
		o := *opts
		o.MaxRetries = -1
		c := redis.NewClient(&o)
		defer c.Close()
		return c.Ping(ctx).Err()
	})
	if err != nil {
		unavailable(tb, "Redis", "TEST_REDIS_URL", err)
	}

	prefix = "test:" + randomHex(tb, 8) + ":"
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c := redis.NewClient(opts)
		defer c.Close()
		if err := deletePrefix(ctx, c, prefix); err != nil {
			tb.Errorf("delete test keys %s*: %v", prefix, err)
		}
	})
	return rawURL, prefix
}

func deletePrefix(ctx context.Context, c *redis.Client, prefix string) error {
	iter := c.Scan(ctx, 0, globEscape(prefix)+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			if err := c.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return c.Unlink(ctx, keys...).Err()
	}
	return nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(s)
}
