package bot_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taipei-doit/ecardbot/bot"
	"github.com/taipei-doit/ecardbot/kv"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/linking/linkingtest"
	"github.com/taipei-doit/ecardbot/store"
)

// harness is the bot on real PostgreSQL and Redis, reached over HTTP by the LINE emulator, with
// the linking service and the TaipeiPASS emulator it links through (package linkingtest).
type harness struct {
	*linkingtest.Harness
	sim      *linesim.Server
	bot      *bot.Bot
	engine   http.Handler
	db       *store.DB
	kv       *kv.Client
	users    *store.LineUserService
	registry *prometheus.Registry
	logs     *linkingtest.SyncBuffer
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
	lh := linkingtest.New(tb, linkingtest.Options{Bot: opts.cfg, RedisURL: opts.redisURL, Sim: opts.sim, Quiet: opts.quiet})
	return &harness{Harness: lh, sim: lh.Sim, bot: lh.Bot, engine: lh.Engine, db: lh.DB, kv: lh.KV, users: lh.Users, registry: lh.Registry, logs: lh.Logs}
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
	return linkingtest.Delivered(tb)
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
