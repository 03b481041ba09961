package main

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/internal/testenv"
	"github.com/taipei-doit/ecardbot/kv"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/push"
	"github.com/taipei-doit/ecardbot/store"
)

// The push pipeline's fault tests: real PostgreSQL, real Redis, the worker role of the real
// program, LINE played by the emulator over HTTP, deliveries made by gate taps through the
// store's fan-out. Each ends with the same check: LINE accepted every delivery's retry key
// exactly once (a 409 is LINE refusing a repeat, not a second message) and every delivery is
// sent in the database.

// pushTest is one fault test's database, deliveries and LINE.
type pushTest struct {
	dbURL  string
	db     *store.DB
	fx     *pushFixture
	sim    *linesim.Server
	simURL string
}

// mustPushTest makes a fresh schema with pupils whose taps make one LINE delivery each (none
// yet) and a LINE emulator with the given push limit (negative: none).
func mustPushTest(tb testing.TB, pupils int, lineRate float64) *pushTest {
	tb.Helper()
	ctx := context.Background()
	pt := &pushTest{dbURL: testenv.PostgresURL(tb)}
	var err error
	if pt.db, err = store.Open(ctx, store.Config{DatabaseURL: pt.dbURL}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pt.db.Close() })
	if err := pt.db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	if pt.fx, err = newPushFixture(ctx, pt.db, pupils); err != nil {
		tb.Fatal(err)
	}
	if pt.sim, err = linesim.New(linesim.Options{PushRate: lineRate, AutoFriend: true}); err != nil {
		tb.Fatal(err)
	}
	if pt.simURL, err = pt.sim.Start("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pt.sim.Close() })
	return pt
}

// mustTap makes pupils [from, to) tap in: one pending LINE delivery each.
func (pt *pushTest) mustTap(tb testing.TB, from, to int) {
	tb.Helper()
	if err := pt.fx.tap(context.Background(), from, to, nil); err != nil {
		tb.Fatal(err)
	}
}

// env is the environment of a worker-role process on this test's database and LINE.
func (pt *pushTest) env(redisURL string, rate int) map[string]string {
	return map[string]string{
		"ECARDBOT_HTTP_ADDR":           "127.0.0.1:0",
		"ECARDBOT_DATABASE_URL":        pt.dbURL,
		"ECARDBOT_REDIS_URL":           redisURL,
		"ECARDBOT_SECRET_KEY":          strings.Repeat("k", config.MinSecretKeyLen),
		"ECARDBOT_LINE_CHANNEL_SECRET": pt.sim.ChannelSecret(),
		"ECARDBOT_LINE_CHANNEL_TOKEN":  pt.sim.ChannelToken(),
		"ECARDBOT_LINE_API_URL":        pt.simURL,
		"ECARDBOT_LINE_PUSH_RATE":      strconv.Itoa(rate),
		"ECARDBOT_ROLES":               "worker",
	}
}

// mustRunWorkerMain runs Main with the worker role only, in this process.
func (pt *pushTest) mustRunWorkerMain(tb testing.TB, redisURL, prefix string, rate int) *Main {
	tb.Helper()
	env := pt.env(redisURL, rate)
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		tb.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RedisPrefix: prefix}
	if err := m.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return m
}

// accepted counts the 200 answers per retry key so far.
func (pt *pushTest) accepted() map[string]int { return linesim.AcceptedRetryKeys(pt.sim.PushAnswers()) }

// waitAccepted waits until LINE has accepted at least n distinct retry keys.
func (pt *pushTest) waitAccepted(tb testing.TB, n int, within time.Duration) {
	tb.Helper()
	for deadline := time.Now().Add(within); len(pt.accepted()) < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("after %s LINE accepted %d deliveries, want at least %d", within, len(pt.accepted()), n)
		}
	}
}

// mustAllSentOnce waits until every one of n deliveries is sent in the database, then checks
// that LINE accepted each delivery's retry key exactly once.
func (pt *pushTest) mustAllSentOnce(tb testing.TB, n int, within time.Duration) {
	tb.Helper()
	ctx := context.Background()
	var states map[string]int64
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		var err error
		if states, err = pt.db.CountDeliveryStates(ctx); err != nil {
			tb.Fatal(err)
		}
		if states[ecardbot.DeliverySent] >= int64(n) || time.Now().After(deadline) {
			break
		}
	}
	if want := map[string]int64{ecardbot.DeliverySent: int64(n)}; !maps.Equal(states, want) {
		tb.Fatalf("deliveries by state %v, want %v", states, want)
	}
	// The emulator records a request after answering it, so the record may trail MarkSent.
	var accepted map[string]int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if accepted = pt.accepted(); len(accepted) >= n || time.Now().After(deadline) {
			break
		}
	}
	if len(accepted) != n {
		tb.Errorf("LINE accepted %d distinct retry keys, want %d (one per delivery)", len(accepted), n)
	}
	for key, times := range accepted {
		if times != 1 {
			tb.Errorf("retry key %s accepted %d times", key, times)
		}
		d, err := store.NewDeliveryService(pt.db).Detail(ctx, key)
		if err != nil || d.State != ecardbot.DeliverySent {
			tb.Errorf("accepted retry key %s: delivery %+v, %v; want a sent delivery", key, d.State, err)
		}
	}
}

// redisServer is a redis-server of the test's own, on a port it keeps across restarts, with an
// append-only file as a production Redis has, so its data outlives a restart.
type redisServer struct {
	port, dir string
	cmd       *exec.Cmd
}

func mustStartRedis(tb testing.TB) *redisServer {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal("redis-server is not installed")
		}
		tb.Skip("redis-server is not installed")
	}
	r := &redisServer{port: freePort(tb), dir: tb.TempDir()}
	r.start(tb)
	tb.Cleanup(func() {
		if r.cmd != nil {
			r.cmd.Process.Kill()
			r.cmd.Wait()
		}
	})
	return r
}

func (r *redisServer) url() string { return "redis://127.0.0.1:" + r.port + "/0" }

// start starts the server and waits until it answers with its data loaded.
func (r *redisServer) start(tb testing.TB) {
	tb.Helper()
	r.cmd = exec.Command("redis-server", "--port", r.port, "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + r.port, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("redis-server on port %s did not start", r.port)
		}
	}
}

// stop shuts the server down as a restart does (SIGTERM: it flushes the append-only file) and
// waits until it has exited and the port is closed.
func (r *redisServer) stop(tb testing.TB) {
	tb.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	if err := r.cmd.Wait(); err != nil {
		tb.Fatalf("redis-server exited with %v", err)
	}
	r.cmd = nil
	if c, err := net.Dial("tcp", "127.0.0.1:"+r.port); err == nil {
		c.Close()
		tb.Fatal("redis-server still answers after it exited")
	}
}

// A worker process killed with SIGKILL in the middle of a drain loses its tasks in flight:
// asynq holds them under a lease in Redis, and another worker's recoverer takes them back once
// the lease has expired (30 s after the last heartbeat, plus asynq's 30 s allowance for clock
// skew, checked every minute), so the test takes a little over a minute. Tasks the killed
// worker had pushed but not yet marked sent run again with the same retry key, and LINE
// answers 409: still one message per delivery.
func TestPushWorkerKilledMidDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("waits about 70 s for asynq's lease recovery")
	}
	t.Parallel()
	const n, rate = 300, 50
	pt := mustPushTest(t, n, -1)
	pt.mustTap(t, 0, n)
	// A Redis of its own: the processes use the default key prefix, which must not meet the
	// queues of other tests.
	rs := mustStartRedis(t)
	env := pt.env(rs.url(), rate)

	start := func() (*exec.Cmd, *strings.Builder) {
		port := freePort(t)
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "ECARDBOT_TEST_RUN_MAIN=1", "ECARDBOT_TEST_ARGS=serve")
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Env = append(cmd.Env, "ECARDBOT_HTTP_ADDR=127.0.0.1:"+port)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, "http://127.0.0.1:"+port+"/healthz")
		return cmd, &stderr
	}

	first, _ := start()
	pt.waitAccepted(t, n/4, 30*time.Second)
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	sentAtKill := len(pt.accepted())
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + rs.port})
	defer rdb.Close()
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetQueueInfo(push.Queue(kv.DefaultPrefix, push.QueueLINE))
	if err != nil {
		t.Fatal(err)
	}
	if info.Active == 0 || sentAtKill >= n {
		t.Fatalf("the worker died with %d tasks in flight after %d of %d pushes; the test needs it killed mid-drain", info.Active, sentAtKill, n)
	}
	t.Logf("killed after %d of %d deliveries, with %d tasks in flight", sentAtKill, n, info.Active)

	second, stderr := start()
	defer func() {
		second.Process.Signal(syscall.SIGTERM)
		if err := second.Wait(); err != nil {
			t.Errorf("second worker exited with %v; stderr:\n%s", err, stderr.String())
		}
	}()
	pt.mustAllSentOnce(t, n, 240*time.Second)
}

// Redis restarted in the middle of a drain: its append-only file keeps the queue, and what the
// fan-out creates while it is down waits in PostgreSQL (the outbox) and flows when it returns.
// Nothing is lost, nothing is sent twice.
func TestPushRedisRestartedMidDrain(t *testing.T) {
	t.Parallel()
	const n, rate = 400, 50
	pt := mustPushTest(t, n, -1)
	pt.mustTap(t, 0, n/2)
	rs := mustStartRedis(t)
	pt.mustRunWorkerMain(t, rs.url(), "test:", rate)

	pt.waitAccepted(t, n/4, 30*time.Second)
	rs.stop(t)
	pt.mustTap(t, n/2, n) // while Redis is down
	before := len(pt.accepted())
	time.Sleep(2 * time.Second) // the outage
	if got := len(pt.accepted()); got >= n {
		t.Fatalf("all %d deliveries were accepted before Redis returned; the test needs a drain in progress", got)
	}
	if states, err := pt.db.CountDeliveryStates(context.Background()); err != nil || states[ecardbot.DeliveryPending] < n/2 {
		t.Fatalf("while Redis is down deliveries by state are %v (%v), want the %d new ones pending in PostgreSQL", states, err, n/2)
	}
	t.Logf("Redis down after %d of %d deliveries", before, n)
	rs.start(t)
	pt.mustAllSentOnce(t, n, 240*time.Second)
}

// Two worker processes share one limit in Redis: together they never push faster than the
// GCRA allows, and they push close to it while there is a backlog.
func TestPushTwoWorkersShareTheLimit(t *testing.T) {
	t.Parallel()
	const n, rate = 400, 50
	pt := mustPushTest(t, n, -1) // LINE without a limit: every push is recorded and counted
	pt.mustTap(t, 0, n)
	redisURL, prefix := testenv.RedisURL(t)
	mains := []*Main{pt.mustRunWorkerMain(t, redisURL, prefix, rate), pt.mustRunWorkerMain(t, redisURL, prefix, rate)}
	pt.mustAllSentOnce(t, n, 60*time.Second)

	// The limiter is a GCRA (push.RateLimit): a burst of Burst at once, then one every
	// Period/Rate. Pushes arrive at LINE a network hop after their grant, and that hop varies;
	// jitter widens the window the grants of one LINE-side second may come from.
	lim := push.RateLimit(rate)
	const jitter = 100 * time.Millisecond
	maxPerWindow := lim.Burst + int(float64(lim.Rate)*(time.Second+jitter).Seconds()/lim.Period.Seconds())
	var times []time.Time
	for _, a := range pt.sim.PushAnswers() {
		times = append(times, a.Time)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	worst := 0
	for i, j := 0, 0; i < len(times); i++ {
		for times[j].Before(times[i].Add(-time.Second)) || times[j].Equal(times[i].Add(-time.Second)) {
			j++
		}
		worst = max(worst, i-j+1)
	}
	if worst > maxPerWindow {
		t.Errorf("LINE got %d pushes within one second, more than the limit allows (%d)", worst, maxPerWindow)
	}
	// After the burst, the backlog drains at the rate.
	span := times[len(times)-1].Sub(times[0]).Seconds()
	sustained := float64(len(times)-lim.Burst) / span
	if sustained < 0.9*float64(rate) || sustained > 1.1*float64(rate) {
		t.Errorf("after the burst of %d the workers pushed %.1f/s together, want close to %d/s", lim.Burst, sustained, rate)
	}
	t.Logf("%d pushes in %.2f s: at most %d in a second (bound %d), %.1f/s after the burst", len(times), span, worst, maxPerWindow, sustained)
	for i, m := range mains {
		if got := sentBy(t, m); got == 0 {
			t.Errorf("worker %d sent nothing: the test needs both sharing the work", i+1)
		}
	}
}

// sentBy reads how many pushes m's workers had accepted from its metrics.
func sentBy(tb testing.TB, m *Main) float64 {
	tb.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "ecardbot_push_sends_total" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "status" && l.GetValue() == "sent" {
					n += mm.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// The LINE faults the emulator injects, through the whole worker role on PostgreSQL and Redis:
// server errors and the rate limit are retried under the same retry key until accepted; a
// request LINE rejects is a dead letter with LINE's reason.
func TestPushLINEFaultsEndToEnd(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		fault linesim.Fault
		dead  bool
	}{
		{"500 for the first 3 attempts", linesim.Fault{Status: http.StatusInternalServerError, Times: 3}, false},
		{"429 rate limit twice", linesim.Fault{Status: http.StatusTooManyRequests, Times: 2}, false},
		{"400 for good", linesim.Fault{Status: http.StatusBadRequest, Message: "The request body has 1 error(s)"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pt := mustPushTest(t, 1, -1)
			tt.fault.PathPrefix = "/v2/bot/message/push"
			pt.sim.AddFault(tt.fault)
			redisURL, prefix := testenv.RedisURL(t)
			pt.mustRunWorkerMain(t, redisURL, prefix, 100)
			pt.mustTap(t, 0, 1)
			if !tt.dead {
				pt.mustAllSentOnce(t, 1, 60*time.Second)
				answers := pt.sim.PushAnswers()
				if len(answers) != tt.fault.Times+1 {
					t.Errorf("LINE saw %d attempts, want %d failed and 1 accepted", len(answers), tt.fault.Times)
				}
				for _, a := range answers {
					if a.RetryKey != answers[0].RetryKey {
						t.Errorf("retry keys %q and %q for one delivery", answers[0].RetryKey, a.RetryKey)
					}
				}
				return
			}
			var dead []ecardbot.DeadLetter
			for deadline := time.Now().Add(30 * time.Second); len(dead) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				var err error
				if dead, err = store.NewDeliveryService(pt.db).ListDead(context.Background(), 10); err != nil {
					t.Fatal(err)
				}
			}
			if len(dead) != 1 || !strings.Contains(dead[0].DeadReason, "The request body has 1 error(s)") {
				t.Fatalf("dead letters %+v, want the delivery with LINE's reason", dead)
			}
			if got := len(pt.sim.PushAnswers()); got != 1 {
				t.Errorf("LINE saw %d attempts of a request it rejects for good, want 1", got)
			}
		})
	}
}
