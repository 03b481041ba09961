package bot_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taipei-doit/ecardbot/bot"
	"github.com/taipei-doit/ecardbot/internal/lineopenapi"
	"github.com/taipei-doit/ecardbot/internal/testenv"
	"github.com/taipei-doit/ecardbot/kv"
	"github.com/taipei-doit/ecardbot/lineapi"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/server"
	"github.com/taipei-doit/ecardbot/store"
)

// harness is the bot on real PostgreSQL and Redis, reached over HTTP by the LINE emulator.
type harness struct {
	sim      *linesim.Server
	bot      *bot.Bot
	engine   http.Handler
	db       *store.DB
	kv       *kv.Client
	users    *store.LineUserService
	registry *prometheus.Registry
	logs     *syncBuffer
}

type harnessOptions struct {
	cfg      bot.Config
	redisURL string // empty: the shared test Redis
	sim      linesim.Options
	// quiet logs at Info to nowhere, as a benchmark should; tests keep Debug logs to inspect.
	quiet bool
}

func mustHarness(tb testing.TB, opts harnessOptions) *harness {
	tb.Helper()
	ctx := context.Background()
	h := &harness{registry: prometheus.NewRegistry(), logs: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.quiet {
		logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}

	var err error
	h.db, err = store.Open(ctx, store.Config{DatabaseURL: testenv.PostgresURL(tb), Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.db.Close() })
	if err := h.db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	redisURL, prefix := opts.redisURL, "test:"
	if redisURL == "" {
		redisURL, prefix = testenv.RedisURL(tb)
	}
	h.kv, err = kv.Open(ctx, kv.Config{URL: redisURL, Prefix: prefix, Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.kv.Close() })

	h.sim, err = linesim.New(opts.sim)
	if err != nil {
		tb.Fatal(err)
	}
	simURL, err := h.sim.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	// Registered before Close so that it runs after it: Close waits for requests in flight,
	// so every request the bot made is recorded and answered when the check reads them.
	// Fault-answered requests are checked on the way in only (see CheckRequests).
	tb.Cleanup(func() { lineopenapi.CheckRequests(tb, h.sim.Requests()) })
	tb.Cleanup(func() { h.sim.Close() })
	line, err := lineapi.New(lineapi.Config{ChannelToken: h.sim.ChannelToken(), APIURL: simURL, Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}

	h.users = store.NewLineUserService(h.db)
	cfg := opts.cfg
	cfg.ChannelSecret = h.sim.ChannelSecret()
	h.bot = bot.New(cfg, bot.Deps{
		Users: h.users, Claims: kv.NewEventClaims(h.kv, 0), LINE: line, Logger: logger, Registry: h.registry,
	})
	engine, err := server.New(server.Config{Logger: logger, Registry: h.registry})
	if err != nil {
		tb.Fatal(err)
	}
	h.bot.Register(engine)
	h.engine = engine
	srv := httptest.NewServer(engine)
	tb.Cleanup(srv.Close)
	h.sim.SetWebhookURL(srv.URL + "/callback")
	return h
}

// mustUser adds a LINE user to the emulator who has not followed the bot yet.
func (h *harness) mustUser(tb testing.TB, language string) string {
	tb.Helper()
	return h.addUser(tb, linesim.User{DisplayName: "王小明", Language: language})
}

// mustFollower adds a LINE user who is a friend in the emulator, for tests that build the
// follow events themselves.
func (h *harness) mustFollower(tb testing.TB, language string) string {
	tb.Helper()
	return h.addUser(tb, linesim.User{DisplayName: "王小明", Language: language, Friend: true})
}

func (h *harness) addUser(tb testing.TB, u linesim.User) string {
	tb.Helper()
	u, err := h.sim.AddUser(u)
	if err != nil {
		tb.Fatal(err)
	}
	return u.ID
}

// mustFriend adds a user and sends their follow, waiting until the bot has handled it.
func (h *harness) mustFriend(tb testing.TB, language string) string {
	tb.Helper()
	id := h.mustUser(tb, language)
	delivered(tb)(h.sim.Follow(context.Background(), id))
	h.drain(tb)
	return id
}

// followEvent is a follow event from userID as LINE stamps it, for tests that send it themselves.
func (h *harness) followEvent(userID string) linesim.Event {
	ev := h.sim.NewEvent("follow", userID, true)
	ev.Follow = &linesim.FollowDetail{}
	return ev
}

// drain waits until the bot has finished every event handed to it, so assertions see the end
// state without sleeping.
func (h *harness) drain(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.bot.Drain(ctx); err != nil {
		tb.Fatalf("drain: %v", err)
	}
}

// replies returns the reply requests LINE accepted.
func (h *harness) replies() int {
	n := 0
	for _, r := range h.sim.RequestsTo(linesim.RouteReply) {
		if r.Status == 200 {
			n++
		}
	}
	return n
}

// delivered checks that a webhook delivery got a 2xx: delivered(t)(h.sim.Follow(ctx, id)).
func delivered(tb testing.TB) func(linesim.Delivery, error) linesim.Delivery {
	return func(d linesim.Delivery, err error) linesim.Delivery {
		tb.Helper()
		if err != nil {
			tb.Fatalf("deliver webhook: %v", err)
		}
		if !d.OK() {
			tb.Fatalf("webhook not answered 2xx: %+v", d.Attempts[len(d.Attempts)-1])
		}
		return d
	}
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// eventCount reads ecardbot_webhook_events_total for one type and outcome.
func (h *harness) eventCount(tb testing.TB, typ, outcome string) float64 {
	tb.Helper()
	families, err := h.registry.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "ecardbot_webhook_events_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["type"] == typ && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
