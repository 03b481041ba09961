package kv

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/testenv"
)

// TestMain silences go-redis's own dial-failure lines, which the unreachable-server tests
// provoke on purpose; it also checks that LibraryLogger fits redis.SetLogger.
func TestMain(m *testing.M) {
	redis.SetLogger(LibraryLogger(slog.New(slog.DiscardHandler)))
	os.Exit(m.Run())
}

// backends run every scenario against a real Redis and the embedded one, since the sandbox
// runs on the latter.
var backends = []struct {
	name   string
	config func(tb testing.TB) Config
}{
	{"redis", func(tb testing.TB) Config {
		tb.Helper()
		url, prefix := testenv.RedisURL(tb)
		return Config{URL: url, Prefix: prefix}
	}},
	{"embedded", func(tb testing.TB) Config {
		return Config{Prefix: "test:"}
	}},
}

func MustOpen(tb testing.TB, cfg Config) *Client {
	tb.Helper()
	c, err := Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return c
}

func MustClaim(tb testing.TB, e *EventClaims, id string) bool {
	tb.Helper()
	ok, err := e.Claim(context.Background(), id)
	if err != nil {
		tb.Fatalf("Claim(%q): %v", id, err)
	}
	return ok
}

func TestEventClaims(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			const id = "01FZ74A0TDDPYRVKNK77XKC3ZR"

			t.Run("claim once, release, reclaim", func(t *testing.T) {
				t.Parallel()
				e := NewEventClaims(MustOpen(t, b.config(t)), time.Hour)
				if !MustClaim(t, e, id) {
					t.Fatal("first Claim = false, want true")
				}
				if MustClaim(t, e, id) {
					t.Fatal("second Claim = true, want false")
				}
				if !MustClaim(t, e, id+"-other") {
					t.Fatal("Claim of another ID = false, want true")
				}
				if err := e.Release(ctx, id); err != nil {
					t.Fatal(err)
				}
				if !MustClaim(t, e, id) {
					t.Fatal("Claim after Release = false, want true")
				}
				if err := e.Release(ctx, "never-claimed"); err != nil {
					t.Errorf("Release of an unclaimed ID: %v", err)
				}
			})

			t.Run("key under prefix with ttl", func(t *testing.T) {
				t.Parallel()
				cfg := b.config(t)
				c := MustOpen(t, cfg)
				for _, tc := range []struct {
					ttl, want time.Duration
				}{
					{time.Hour, time.Hour},
					{0, DefaultClaimTTL},
				} {
					e := NewEventClaims(c, tc.ttl)
					id := "ttl-" + tc.want.String()
					MustClaim(t, e, id)
					key := cfg.Prefix + "webhook-event:" + id
					got, err := c.Redis().TTL(ctx, key).Result()
					if err != nil {
						t.Fatal(err)
					}
					if got > tc.want || got < tc.want-time.Minute {
						t.Errorf("TTL(%s) = %v, want about %v", key, got, tc.want)
					}
				}
			})

			t.Run("16 goroutines, one winner", func(t *testing.T) {
				t.Parallel()
				e := NewEventClaims(MustOpen(t, b.config(t)), time.Hour)
				var wins atomic.Int32
				var wg sync.WaitGroup
				for range 16 {
					wg.Go(func() {
						ok, err := e.Claim(ctx, id)
						if err != nil {
							t.Error(err)
						}
						if ok {
							wins.Add(1)
						}
					})
				}
				wg.Wait()
				if got := wins.Load(); got != 1 {
					t.Errorf("%d goroutines won the claim, want exactly 1", got)
				}
			})

			t.Run("empty id", func(t *testing.T) {
				t.Parallel()
				e := NewEventClaims(MustOpen(t, b.config(t)), 0)
				if ok, err := e.Claim(ctx, ""); ok || ecardbot.ErrorCode(err) != ecardbot.EINVALID {
					t.Errorf("Claim(\"\") = %v, %v; want false and %s", ok, err, ecardbot.EINVALID)
				}
				if err := e.Release(ctx, ""); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
					t.Errorf("Release(\"\") = %v; want %s", err, ecardbot.EINVALID)
				}
			})

			t.Run("ping and key", func(t *testing.T) {
				t.Parallel()
				cfg := b.config(t)
				c := MustOpen(t, cfg)
				if err := c.Ping(ctx); err != nil {
					t.Error(err)
				}
				if got, want := c.Key("a", "b"), cfg.Prefix+"a:b"; got != want {
					t.Errorf("Key = %q, want %q", got, want)
				}
				if got := c.Prefix(); got != cfg.Prefix {
					t.Errorf("Prefix = %q, want %q", got, cfg.Prefix)
				}
				if got, want := c.Embedded(), cfg.URL == ""; got != want {
					t.Errorf("Embedded = %v, want %v", got, want)
				}
			})
		})
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("open", func(t *testing.T) {
		t.Parallel()
		// A port nothing listens on: take one and free it.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()

		c, err := Open(ctx, Config{URL: "redis://:hunter2@" + addr + "/0"})
		if err == nil {
			c.Close()
			t.Fatal("Open succeeded against a closed port")
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "connect to redis at "+addr+": ") {
			t.Errorf("error = %q, want it to name the address", msg)
		}
		if strings.Contains(msg, "hunter2") || strings.Contains(msg, "\n") {
			t.Errorf("error must be one line without the password: %q", msg)
		}
	})

	t.Run("bad url", func(t *testing.T) {
		t.Parallel()
		_, err := Open(ctx, Config{URL: "redis://:hunter2@host:port/0"})
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(bad URL) = %v, want an error without the password", err)
		}
	})

	t.Run("server goes away", func(t *testing.T) {
		t.Parallel()
		m := miniredis.RunT(t)
		c := MustOpen(t, Config{URL: "redis://" + m.Addr() + "/0"})
		e := NewEventClaims(c, time.Hour)
		m.Close()

		ok, err := e.Claim(ctx, "01FZ74A0TDDPYRVKNK77XKC3ZR")
		if err == nil || ok {
			t.Errorf("Claim with Redis down = %v, %v; want false and an error", ok, err)
		}
		if err := e.Release(ctx, "01FZ74A0TDDPYRVKNK77XKC3ZR"); err == nil {
			t.Error("Release with Redis down succeeded")
		}
		if err := c.Ping(ctx); err == nil {
			t.Error("Ping with Redis down succeeded")
		}
	})
}

func TestEmbedded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	c, err := Open(ctx, Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "level=WARN") ||
		!strings.Contains(buf.String(), "embedded Redis: development only, data is lost at exit") {
		t.Errorf("log lacks the embedded-Redis warning:\n%s", buf.String())
	}
	if got := c.Key("x"); got != DefaultPrefix+"x" {
		t.Errorf("Key with default prefix = %q, want %q", got, DefaultPrefix+"x")
	}

	// Keys expire with the clock, as on a real server, not only when a test fast-forwards.
	e := NewEventClaims(c, time.Minute)
	MustClaim(t, e, "expiring")
	c.mini.SetTime(time.Now().Add(2 * time.Minute))
	if !MustClaim(t, e, "expiring") {
		t.Error("claim did not expire after its TTL on the embedded Redis")
	}

	addr := c.mini.Addr()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Error("embedded Redis still listens after Close")
	}
}
