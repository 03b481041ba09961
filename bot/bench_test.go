package bot_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/line/line-bot-sdk-go/v8/linebot/webhook"

	"github.com/taipei-doit/ecardbot/linesim"
)

// BenchmarkWebhook measures signed webhook events per second and the p99 time to answer one,
// through the real handler with real Redis claims and PostgreSQL, against the SDK's bare
// webhook.NewWebhookHandler that verifies and parses but does nothing. Run with
//
//	go test -run '^$' -bench BenchmarkWebhook -benchtime 5000x ./bot
//
// "follow" is the whole path: claim, LINE profile, upsert, LINE reply (to the emulator over
// loopback). "unfollow" is the bot's own part alone: claim and upsert, no LINE call.
func BenchmarkWebhook(b *testing.B) {
	b.Run("sdk-bare", func(b *testing.B) {
		sim := mustSim(b)
		wh, err := webhook.NewWebhookHandler(sim.ChannelSecret())
		if err != nil {
			b.Fatal(err)
		}
		wh.HandleEvents(func(*webhook.CallbackRequest, *http.Request) {})
		benchEvents(b, wh, sim, "follow")
	})
	for _, typ := range []string{"follow", "unfollow"} {
		b.Run("ecardbot-"+typ, func(b *testing.B) {
			h := mustHarness(b, harnessOptions{quiet: true, sim: linesim.Options{AutoFriend: true, RecordLimit: 1000}})
			benchEvents(b, h.engine, h.sim, typ)
		})
	}
}

// benchEvents posts b.N signed single-event bodies, each from a new user, from parallel
// clients straight into handler, and reports events/s and the p99 answer time.
func benchEvents(b *testing.B, handler http.Handler, sim *linesim.Server, typ string) {
	bodies := make([][]byte, b.N)
	signatures := make([]string, b.N)
	for i := range bodies {
		ev := sim.NewEvent(typ, linesim.NewUserID(), typ == "follow")
		if typ == "follow" {
			ev.Follow = &linesim.FollowDetail{}
		}
		bodies[i] = mustJSON(b, map[string]any{"destination": sim.BotUserID(), "events": []any{ev}})
		signatures[i] = linesim.Signature(sim.ChannelSecret(), bodies[i])
	}
	var (
		mu        sync.Mutex
		next      int
		latencies = make([]time.Duration, 0, b.N)
	)
	b.SetParallelism(8) // LINE sends webhooks concurrently; 8×GOMAXPROCS in-flight requests
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			i := next
			next++
			mu.Unlock()
			req := httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(bodies[i]))
			req.Header.Set("X-Line-Signature", signatures[i])
			rec := httptest.NewRecorder()
			start := time.Now()
			handler.ServeHTTP(rec, req)
			elapsed := time.Since(start)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d", rec.Code)
			}
			mu.Lock()
			latencies = append(latencies, elapsed)
			mu.Unlock()
		}
	})
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}

func mustSim(tb testing.TB) *linesim.Server {
	tb.Helper()
	sim, err := linesim.New(linesim.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return sim
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(fmt.Errorf("marshal: %w", err))
	}
	return b
}
