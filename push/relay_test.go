package push

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/kv"
	"github.com/taipei-doit/ecardbot/lineapi"
	"github.com/taipei-doit/ecardbot/linesim"
)

// memDeliveries is an in-memory ecardbot.DeliveryService with the store's guarded transitions
// (store/delivery_test.go tests the real one on SQLite and PostgreSQL).
type memDeliveries struct {
	mu   sync.Mutex
	recs map[string]*memDelivery
}

type memDelivery struct {
	d                  ecardbot.DeliveryDetail
	touched            time.Time // updated_at
	requestID, lastErr string
	deadReason         string
}

func newMemDeliveries() *memDeliveries { return &memDeliveries{recs: map[string]*memDelivery{}} }

func (m *memDeliveries) add(userID string, reachable bool, createdAt time.Time) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.NewString()
	m.recs[id] = &memDelivery{d: ecardbot.DeliveryDetail{
		ID: id, Channel: ecardbot.ChannelLINE, State: ecardbot.DeliveryPending, CreatedAt: createdAt,
		Kind: ecardbot.KindArrived, At: createdAt, StudentID: 1, ChildName: "王小明", SchoolName: "測試國小",
		GuardianID: 1, Language: ecardbot.LangZhTW, LineUserID: userID, Reachable: reachable,
	}}
	return id
}

func (m *memDeliveries) get(id string) memDelivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	return *m.recs[id]
}

func active(s string) bool { return s == ecardbot.DeliveryPending || s == ecardbot.DeliveryQueued }

func (m *memDeliveries) PendingBatch(_ context.Context, limit int) ([]ecardbot.PendingDelivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, r := range m.recs {
		if r.d.State == ecardbot.DeliveryPending {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]ecardbot.PendingDelivery, len(ids))
	for i, id := range ids {
		out[i] = ecardbot.PendingDelivery{ID: id, Channel: m.recs[id].d.Channel}
	}
	return out, nil
}

func (m *memDeliveries) MarkQueued(_ context.Context, ids []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if r := m.recs[id]; r != nil && active(r.d.State) {
			r.d.State, r.touched = ecardbot.DeliveryQueued, time.Now()
		}
	}
	return nil
}

func (m *memDeliveries) ClaimStaleQueued(_ context.Context, olderThan time.Time, limit int) ([]ecardbot.PendingDelivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ecardbot.PendingDelivery
	for id, r := range m.recs {
		if len(out) < limit && r.d.State == ecardbot.DeliveryQueued && r.touched.Before(olderThan) {
			r.touched = time.Now()
			out = append(out, ecardbot.PendingDelivery{ID: id, Channel: r.d.Channel})
		}
	}
	return out, nil
}

func (m *memDeliveries) Detail(_ context.Context, id string) (ecardbot.DeliveryDetail, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recs[id]
	if r == nil {
		return ecardbot.DeliveryDetail{}, ecardbot.Errorf(ecardbot.ENOTFOUND, "Delivery not found.")
	}
	return r.d, nil
}

func (m *memDeliveries) Details(_ context.Context, ids []string) ([]ecardbot.DeliveryDetail, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ecardbot.DeliveryDetail
	for _, id := range ids {
		if r := m.recs[id]; r != nil {
			out = append(out, r.d)
		}
	}
	return out, nil
}

func (m *memDeliveries) update(id string, f func(r *memDelivery)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.recs[id]; r != nil && active(r.d.State) {
		f(r)
	}
	return nil
}

func (m *memDeliveries) MarkSentBatch(ctx context.Context, marks []ecardbot.SentMark) error {
	for _, mk := range marks {
		if err := m.MarkSent(ctx, mk.ID, mk.LineRequestID); err != nil {
			return err
		}
	}
	return nil
}

func (m *memDeliveries) MarkSent(_ context.Context, id, reqID string) error {
	return m.update(id, func(r *memDelivery) { r.d.State, r.requestID = ecardbot.DeliverySent, reqID })
}

func (m *memDeliveries) MarkRetry(_ context.Context, id, lastErr string) error {
	return m.update(id, func(r *memDelivery) { r.d.Attempts++; r.lastErr = lastErr })
}

func (m *memDeliveries) MarkDead(_ context.Context, id, reason string) error {
	return m.update(id, func(r *memDelivery) { r.d.State, r.deadReason = ecardbot.DeliveryDead, reason })
}

func (m *memDeliveries) MarkCancelled(_ context.Context, id, reason string) error {
	return m.update(id, func(r *memDelivery) { r.d.State, r.deadReason = ecardbot.DeliveryCancelled, reason })
}

// ReplaceWithEmail never replaces: memDeliveries keeps no e-mail addresses. The fallback is
// tested on the real store in email_worker_test.go.
func (m *memDeliveries) ReplaceWithEmail(context.Context, string) (string, bool, error) {
	return "", false, nil
}

func (m *memDeliveries) ListDead(_ context.Context, limit int) ([]ecardbot.DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ecardbot.DeadLetter
	for id, r := range m.recs {
		if r.d.State == ecardbot.DeliveryDead && len(out) < limit {
			out = append(out, ecardbot.DeadLetter{ID: id, Channel: r.d.Channel, Attempts: r.d.Attempts, DeadReason: r.deadReason, LastError: r.lastErr})
		}
	}
	return out, nil
}

func (m *memDeliveries) Replay(_ context.Context, ids []string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, id := range ids {
		if r := m.recs[id]; r != nil && r.d.State == ecardbot.DeliveryDead {
			r.d.State, r.deadReason = ecardbot.DeliveryPending, ""
			n++
		}
	}
	return n, nil
}

// harness is the whole pipeline on one embedded Redis and one LINE emulator.
//
// asynq puts its keys under "asynq:" and has no prefix option, so testenv's per-test key prefix
// cannot isolate it on a shared Redis; each test gets its own embedded Redis (miniredis, which
// runs asynq's and redis_rate's Lua scripts as a real server does). The limiter's keys are
// tested on the real Redis in limiter_test.go.
type harness struct {
	t      *testing.T
	sim    *linesim.Server
	kv     *kv.Client
	dels   *memDeliveries
	relay  *Relay
	worker *Worker
	reg    *prometheus.Registry
	paused chan string
}

func newHarness(t *testing.T, simOpts linesim.Options) *harness {
	t.Helper()
	kvc, err := kv.Open(context.Background(), kv.Config{Prefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kvc.Close() })
	return newHarnessOn(t, kvc, simOpts)
}

// startLINE starts the LINE emulator and returns it with a client of it.
func startLINE(t *testing.T, opts linesim.Options) (*linesim.Server, *lineapi.Client) {
	t.Helper()
	sim, err := linesim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	client, err := lineapi.New(lineapi.Config{ChannelToken: sim.ChannelToken(), APIURL: url, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return sim, client
}

// newHarnessOn is newHarness on the Redis of kvc.
func newHarnessOn(t *testing.T, kvc *kv.Client, simOpts linesim.Options) *harness {
	t.Helper()
	sim, client := startLINE(t, simOpts)
	h := &harness{t: t, sim: sim, kv: kvc, dels: newMemDeliveries(), reg: prometheus.NewRegistry(), paused: make(chan string, 100)}
	h.relay = testRelay(h.dels, kvc)
	cfg := testWorkerConfig(h.dels, client, kvc, h.reg)
	cfg.OnPaused = func(_ context.Context, d ecardbot.DeliveryDetail) {
		select {
		case h.paused <- d.ID:
		default:
		}
	}
	h.worker = NewWorker(cfg)
	return h
}

// testLog logs the push tests' errors only.
var testLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// testBackoff retries within milliseconds.
var testBackoff = Backoff{Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}

// testRelay is the relay of the push tests: it polls every 10 ms.
func testRelay(dels ecardbot.DeliveryService, kvc *kv.Client) *Relay {
	return NewRelay(RelayConfig{Deliveries: dels, Redis: kvc.Redis(), Prefix: kvc.Prefix(), Logger: testLog, Interval: 10 * time.Millisecond})
}

// testWorkerConfig configures the LINE worker of the push tests, every wait shortened.
func testWorkerConfig(dels ecardbot.DeliveryService, line Pusher, kvc *kv.Client, reg prometheus.Registerer) WorkerConfig {
	return WorkerConfig{
		Deliveries: dels, LINE: line, Redis: kvc.Redis(), Prefix: kvc.Prefix(), Rate: 1000, Concurrency: 4,
		Logger: testLog, Registerer: reg, Backoff: testBackoff,
		PauseRetry: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond,
	}
}

// start runs the relay and the workers until the test ends.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.relay.Run(ctx); close(done) }()
	if err := h.worker.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		cancel()
		<-done
		h.worker.Shutdown()
	})
}

func (h *harness) friend() string {
	u, err := h.sim.AddUser(linesim.User{Friend: true})
	if err != nil {
		h.t.Fatal(err)
	}
	return u.ID
}

// waitFor polls cond until it holds or 15 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // a poll tick, not a wait for an outcome
	}
}

func (h *harness) waitState(id, state string) memDelivery {
	h.t.Helper()
	waitFor(h.t, "delivery "+id+" "+state, func() bool { return h.dels.get(id).d.State == state })
	return h.dels.get(id)
}

// waitPushes waits until the emulator has recorded n push requests: it records a request after
// answering it, so the record may trail the delivery's state.
func (h *harness) waitPushes(n int) {
	h.t.Helper()
	waitFor(h.t, "push records", func() bool { return len(h.sim.RequestsTo(linesim.RoutePush)) >= n })
}

// pushes returns the push requests LINE answered with status (0: all), by retry key.
func (h *harness) pushes(status int) map[string]int {
	keys := map[string]int{}
	for _, r := range h.sim.RequestsTo(linesim.RoutePush) {
		if status == 0 || r.Status == status {
			keys[r.RetryKey()]++
		}
	}
	return keys
}

func TestEveryDeliveryAcceptedOnce(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	var ids []string
	users := map[string]string{}
	for range 30 {
		u := h.friend()
		id := h.dels.add(u, true, time.Now())
		ids = append(ids, id)
		users[id] = u
	}
	h.start()
	for _, id := range ids {
		d := h.waitState(id, ecardbot.DeliverySent)
		if d.requestID == "" {
			t.Errorf("%s sent without a request id", id)
		}
		if _, err := h.sim.WaitInbox(context.Background(), users[id], 1); err != nil {
			t.Fatal(err)
		}
	}
	h.waitPushes(len(ids))
	accepted := h.pushes(200)
	if len(accepted) != len(ids) {
		t.Errorf("LINE accepted %d distinct retry keys, want %d", len(accepted), len(ids))
	}
	for _, id := range ids {
		if accepted[id] != 1 {
			t.Errorf("retry key %s accepted %d times", id, accepted[id])
		}
		if n := len(h.sim.Inbox(users[id])); n != 1 {
			t.Errorf("user of %s got %d messages", id, n)
		}
	}
}

func TestServerErrorsRetriedWithSameKey(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	h.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/push", Times: 3, Status: 500})
	id := h.dels.add(h.friend(), true, time.Now())
	h.start()
	d := h.waitState(id, ecardbot.DeliverySent)
	if d.d.Attempts != 3 {
		t.Errorf("attempts = %d, want 3", d.d.Attempts)
	}
	h.waitPushes(4)
	all := h.pushes(0)
	if len(all) != 1 || all[id] != 4 {
		t.Errorf("push requests by retry key = %v, want 4 with key %s", all, id)
	}
	if got := testutil.ToFloat64(h.worker.metrics.retries); got != 3 {
		t.Errorf("retries metric = %v, want 3", got)
	}
}

func TestRateLimitRetried(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	h.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/push", Times: 2, Status: 429})
	id := h.dels.add(h.friend(), true, time.Now())
	h.start()
	d := h.waitState(id, ecardbot.DeliverySent)
	if d.d.Attempts != 2 {
		t.Errorf("attempts = %d, want 2", d.d.Attempts)
	}
	if got := testutil.ToFloat64(h.worker.metrics.sends.WithLabelValues("rate_limited")); got != 2 {
		t.Errorf("rate_limited sends = %v, want 2", got)
	}
}

func TestBadRequestDeadThenReplayed(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	h.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/push", Times: 1, Status: 400, Message: "The request body has 1 error(s)"})
	id := h.dels.add(h.friend(), true, time.Now())
	h.start()
	d := h.waitState(id, ecardbot.DeliveryDead)
	if d.deadReason != "The request body has 1 error(s)" || d.d.Attempts != 1 {
		t.Errorf("dead delivery = %+v", d)
	}
	dead, _ := h.dels.ListDead(context.Background(), 10)
	if len(dead) != 1 || dead[0].ID != id {
		t.Fatalf("ListDead = %+v", dead)
	}
	if n, _ := h.dels.Replay(context.Background(), []string{id}); n != 1 {
		t.Fatal("Replay moved nothing")
	}
	// The relay finds the old, archived task holding the ID, replaces it, and the same key is sent.
	h.waitState(id, ecardbot.DeliverySent)
	h.waitPushes(2)
	if got := h.pushes(0); len(got) != 1 || got[id] != 2 {
		t.Errorf("push requests by retry key = %v", got)
	}
}

func TestMonthlyLimitPauses(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	h.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/push", Times: 1, Status: 429, Message: linesim.MessageMonthlyLimit})
	id := h.dels.add(h.friend(), true, time.Now())
	h.start()
	ctx := context.Background()
	select {
	case got := <-h.paused:
		if got != id {
			t.Errorf("OnPaused got %s, want %s", got, id)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("OnPaused not called")
	}
	if p, err := h.worker.Limiter().Paused(ctx); err != nil || !p {
		t.Fatalf("Paused = %v, %v", p, err)
	}
	if got := testutil.ToFloat64(h.worker.metrics.monthlyLimit); got != 1 {
		t.Errorf("monthly limit metric = %v, want 1", got)
	}
	// While paused nothing more is pushed, and the delivery is neither sent nor dead.
	id2 := h.dels.add(h.friend(), true, time.Now())
	waitFor(t, "second delivery held back", func() bool {
		for range len(h.paused) {
			if <-h.paused == id2 {
				return true
			}
		}
		return false
	})
	h.waitPushes(1)
	if n := len(h.sim.RequestsTo(linesim.RoutePush)); n != 1 {
		t.Errorf("%d pushes while paused, want 1", n)
	}
	if s := h.dels.get(id).d.State; s != ecardbot.DeliveryQueued {
		t.Errorf("state while paused = %s", s)
	}
	if err := h.worker.Limiter().Resume(ctx); err != nil {
		t.Fatal(err)
	}
	h.waitState(id, ecardbot.DeliverySent)
	h.waitState(id2, ecardbot.DeliverySent)
}

func TestUnreachableNotSent(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	id := h.dels.add(h.friend(), false, time.Now())
	h.start()
	d := h.waitState(id, ecardbot.DeliveryDead)
	if d.deadReason != "unreachable" {
		t.Errorf("reason = %q", d.deadReason)
	}
	if n := len(h.sim.RequestsTo(linesim.RoutePush)); n != 0 {
		t.Errorf("%d pushes to an unreachable guardian", n)
	}
}

func TestRetryWindowExceeded(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	id := h.dels.add(h.friend(), true, time.Now().Add(-24*time.Hour))
	h.start()
	d := h.waitState(id, ecardbot.DeliveryDead)
	if d.deadReason != "retry window (23 h) exceeded" {
		t.Errorf("reason = %q", d.deadReason)
	}
	if n := len(h.sim.RequestsTo(linesim.RoutePush)); n != 0 {
		t.Errorf("%d pushes past the window", n)
	}
}

func TestRelayCrashBetweenEnqueueAndMark(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	ctx := context.Background()
	u := h.friend()
	id := h.dels.add(u, true, time.Now())
	// The crashed relay enqueued the task but never marked the delivery queued.
	if err := h.relay.queue.enqueue(ctx, newBatchTask(h.kv.Prefix(), "", []string{id})); err != nil {
		t.Fatal(err)
	}
	// The restarted relay finds it still pending, with a new one: it enqueues the two in a
	// batch of their own, so the new one is not marked queued on the strength of the old task.
	later := h.dels.add(u, true, time.Now())
	var pending []string // in the relay's order
	ps, err := h.dels.PendingBatch(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		pending = append(pending, p.ID)
	}
	if n, err := h.relay.Tick(ctx); err != nil || n != 2 {
		t.Fatalf("Tick = %d, %v", n, err)
	}
	// The same batch again, as after a crash between the two steps: asynq refuses it.
	if err := h.relay.queue.enqueue(ctx, newBatchTask(h.kv.Prefix(), "", pending)); err != nil {
		t.Fatal(err)
	}
	if tasks, err := h.relay.queue.insp.ListPendingTasks(Queue(h.kv.Prefix(), QueueLINE)); err != nil || len(tasks) != 2 {
		t.Fatalf("pending tasks = %d, %v; want the crashed relay's and the restarted one's", len(tasks), err)
	}
	h.start()
	h.waitState(id, ecardbot.DeliverySent)
	h.waitState(later, ecardbot.DeliverySent)
	// Once more, after the tasks ran: the deliveries are sent, so nothing is pending.
	if n, err := h.relay.Tick(ctx); err != nil || n != 0 {
		t.Fatalf("Tick after send = %d, %v", n, err)
	}
	if got := h.pushes(http.StatusOK); len(got) != 2 || got[id] != 1 || got[later] != 1 {
		t.Errorf("accepted pushes by retry key = %v, want each delivery once", got)
	}
}

func TestRelayRedisDownKeepsPending(t *testing.T) {
	dels := newMemDeliveries()
	id := dels.add("U00000000000000000000000000000001", true, time.Now())
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	defer rdb.Close()
	r := NewRelay(RelayConfig{Deliveries: dels, Redis: rdb})
	mr.Close() // Redis goes away
	if n, err := r.Tick(context.Background()); err == nil || n != 0 {
		t.Fatalf("Tick with Redis down = %d, %v; want an error", n, err)
	}
	if s := dels.get(id).d.State; s != ecardbot.DeliveryPending {
		t.Errorf("state = %s, want pending", s)
	}
	if err := mr.Restart(); err != nil { // and comes back on the same address
		t.Fatal(err)
	}
	if n, err := r.Tick(context.Background()); err != nil || n != 1 {
		t.Fatalf("Tick after Redis returned = %d, %v", n, err)
	}
	if s := dels.get(id).d.State; s != ecardbot.DeliveryQueued {
		t.Errorf("state = %s, want queued", s)
	}
}

func TestEmailDeliveriesGoToTheirOwnQueue(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	id := h.dels.add(h.friend(), true, time.Now())
	h.dels.mu.Lock()
	h.dels.recs[id].d.Channel = ecardbot.ChannelEmail
	h.dels.mu.Unlock()
	h.start()
	h.waitState(id, ecardbot.DeliveryQueued)
	info, err := h.relay.queue.insp.GetTaskInfo(Queue(h.kv.Prefix(), QueueEmail), id)
	if err != nil || info.Type != TaskEmail {
		t.Fatalf("e-mail task = %+v, %v", info, err)
	}
	if n := len(h.sim.RequestsTo(linesim.RoutePush)); n != 0 {
		t.Errorf("%d LINE pushes for an e-mail delivery", n)
	}
	// The queue depth metric reads the LINE queue from Redis at each scrape.
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "ecardbot_push_queue_depth"
	}
	if !found {
		t.Error("no ecardbot_push_queue_depth metric")
	}
}

// countingDeliveries counts PendingBatch calls, i.e. relay ticks.
type countingDeliveries struct {
	*memDeliveries
	mu    sync.Mutex
	ticks int
}

func (c *countingDeliveries) PendingBatch(ctx context.Context, limit int) ([]ecardbot.PendingDelivery, error) {
	c.mu.Lock()
	c.ticks++
	c.mu.Unlock()
	return c.memDeliveries.PendingBatch(ctx, limit)
}

func TestRelayLogsOutageOnce(t *testing.T) {
	dels := &countingDeliveries{memDeliveries: newMemDeliveries()}
	dels.add("U00000000000000000000000000000001", true, time.Now())
	kvc, err := kv.Open(context.Background(), kv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rdb := kvc.Redis()
	kvc.Close() // Redis is down for the whole test
	var buf syncBuffer
	r := NewRelay(RelayConfig{Deliveries: dels, Redis: rdb, Interval: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	waitFor(t, "five relay ticks", func() bool {
		dels.mu.Lock()
		defer dels.mu.Unlock()
		return dels.ticks >= 5
	})
	cancel()
	<-done
	if n := strings.Count(buf.String(), "cannot queue deliveries"); n != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", n, buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// flakyMarkSent fails the first sent mark, as a database blip right after LINE accepted would.
type flakyMarkSent struct {
	*memDeliveries
	mu     sync.Mutex
	failed bool
}

func (f *flakyMarkSent) MarkSentBatch(ctx context.Context, marks []ecardbot.SentMark) error {
	f.mu.Lock()
	first := !f.failed
	f.failed = true
	f.mu.Unlock()
	if first {
		return context.DeadlineExceeded
	}
	return f.memDeliveries.MarkSentBatch(ctx, marks)
}

func TestAcceptedButNotRecordedIsSentOnce(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	flaky := &flakyMarkSent{memDeliveries: h.dels}
	h.relay.cfg.Deliveries = flaky
	h.worker.deliveries = flaky
	u := h.friend()
	id := h.dels.add(u, true, time.Now())
	h.start()
	d := h.waitState(id, ecardbot.DeliverySent)
	h.waitPushes(2)
	var first string
	for _, r := range h.sim.RequestsTo(linesim.RoutePush) {
		if r.Status == 200 {
			first = r.ID
		}
	}
	if got := h.pushes(0); got[id] != 2 || h.pushes(409)[id] != 1 {
		t.Errorf("pushes by key = %v, 409s = %v; want a 200 then a 409", got, h.pushes(409))
	}
	if d.requestID != first || first == "" {
		t.Errorf("recorded request id %q, want the accepted one %q", d.requestID, first)
	}
	if n := len(h.sim.Inbox(u)); n != 1 {
		t.Errorf("user got %d messages, want 1", n)
	}
	if got := testutil.ToFloat64(h.worker.metrics.sends.WithLabelValues("duplicate")); got != 1 {
		t.Errorf("duplicate sends = %v", got)
	}
}

// TestRelayRequeuesTaskRedisLost: a delivery is queued in the database but its task is gone
// from Redis (a Redis without persistence restarted). The relay enqueues it again once it has
// been queued for RequeueAfter, and it is sent exactly once.
func TestRelayRequeuesTaskRedisLost(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	ctx := context.Background()
	id := h.dels.add(h.friend(), true, time.Now())
	if err := h.dels.MarkQueued(ctx, []string{id}); err != nil { // queued, and no task in Redis
		t.Fatal(err)
	}
	h.dels.mu.Lock()
	h.dels.recs[id].touched = time.Now().Add(-DefaultRequeueAfter - time.Minute)
	h.dels.mu.Unlock()

	if n, err := h.relay.Tick(ctx); err != nil || n != 0 {
		t.Fatalf("Tick = %d, %v; want no pending delivery", n, err)
	}
	h.start()
	h.waitState(id, ecardbot.DeliverySent)
	// Claimed once per period: the next ticks leave the sent delivery alone.
	if _, err := h.relay.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	h.waitPushes(1)
	if got := h.pushes(0); len(got) != 1 || got[id] != 1 {
		t.Errorf("push requests by retry key = %v, want exactly one", got)
	}
}

// TestRelayRequeuesStaleABatchPerTick: a long list of stale deliveries is put back one batch a
// tick, and new pending deliveries go out in the same ticks instead of waiting behind them.
func TestRelayRequeuesStaleABatchPerTick(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	ctx := context.Background()
	h.relay.cfg.Batch = 2
	u := h.friend()
	var stale []string
	for range 3 {
		id := h.dels.add(u, true, time.Now())
		if err := h.dels.MarkQueued(ctx, []string{id}); err != nil {
			t.Fatal(err)
		}
		h.dels.mu.Lock()
		h.dels.recs[id].touched = time.Now().Add(-DefaultRequeueAfter - time.Minute)
		h.dels.mu.Unlock()
		stale = append(stale, id)
	}
	fresh := h.dels.add(u, true, time.Now())
	inQueue := func(id string) bool {
		tasks, err := h.relay.queue.insp.ListPendingTasks(Queue(h.relay.cfg.Prefix, QueueLINE))
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			if slices.Contains(strings.Split(string(task.Payload), ","), id) {
				return true
			}
		}
		return false
	}
	if n, err := h.relay.Tick(ctx); err != nil || n != 1 {
		t.Fatalf("first Tick = %d, %v; want the pending delivery queued", n, err)
	}
	if !inQueue(fresh) {
		t.Error("the pending delivery waited behind the stale ones")
	}
	queued := 0
	for _, id := range stale {
		if inQueue(id) {
			queued++
		}
	}
	if queued != 2 {
		t.Errorf("%d stale deliveries put back by the first tick, want one batch (2)", queued)
	}
	if _, err := h.relay.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range stale {
		if !inQueue(id) {
			t.Errorf("stale delivery %s not put back by the second tick", id)
		}
	}
}
