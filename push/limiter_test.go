package push

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot/internal/testenv"
)

// mustLimiterRedis returns a client of the real test Redis that counts its round trips, and the
// test's key prefix: testenv isolates and cleans the keys under it.
func mustLimiterRedis(tb testing.TB) (*redis.Client, *roundTrips, string) {
	tb.Helper()
	url, prefix := testenv.RedisURL(tb)
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	tb.Cleanup(func() { rdb.Close() })
	trips := &roundTrips{}
	rdb.AddHook(trips)
	return rdb, trips, prefix
}

// roundTrips is a Redis hook that counts round trips by command name.
type roundTrips struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *roundTrips) add(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[name]++
}

// count returns the round trips of command name, or of all commands if name is empty.
func (r *roundTrips) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name != "" {
		return r.n[name]
	}
	total := 0
	for _, n := range r.n {
		total += n
	}
	return total
}

func (r *roundTrips) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.n)
}

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.add(cmd.Name())
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.add("pipeline")
		return next(ctx, cmds)
	}
}

// waitDispenserGone fails the test unless l's dispenser exits soon with no one left queued.
func waitDispenserGone(t *testing.T, l *Limiter) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		l.mu.Lock()
		running, queued := l.running, len(l.waiters)
		l.mu.Unlock()
		if !running && queued == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dispenser still running (%v) with %d waiters queued", running, queued)
		}
		time.Sleep(5 * time.Millisecond) // a poll tick, not a wait for an outcome
	}
}

func TestLimiterSharedRate(t *testing.T) {
	rdb, _, prefix := mustLimiterRedis(t)
	ctx := context.Background()
	// Two limiters stand for two replicas sharing one budget of 20/s.
	a, b := NewLimiter(rdb, prefix, 20), NewLimiter(rdb, prefix, 20)
	start := time.Now()
	for i := range 40 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if _, err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A burst of 20 passes at once; the next 20 take about a second at 20/s.
	if el := time.Since(start); el < 800*time.Millisecond {
		t.Errorf("40 waits at 20/s took %v, want about 1 s", el)
	}

	paused := func(l *Limiter) bool {
		t.Helper()
		p, err := l.Paused(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if paused(a) || paused(b) { // b now remembers "not paused" for pauseTTL
		t.Fatal("paused at start")
	}
	if err := a.Pause(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if !paused(a) {
		t.Error("own pause not seen at once")
	}
	time.Sleep(pauseTTL) // the longest b may answer from memory
	if !paused(b) {
		t.Errorf("pause not shared after %v", pauseTTL)
	}
	if err := b.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if paused(b) {
		t.Error("own Resume not seen at once")
	}
	time.Sleep(pauseTTL)
	if paused(a) {
		t.Errorf("still paused %v after Resume", pauseTTL)
	}
}

// TestLimiterPausedCached checks that Paused asks Redis at most once per pauseTTL, even when
// many workers ask at once after it expired.
func TestLimiterPausedCached(t *testing.T) {
	rdb, trips, prefix := mustLimiterRedis(t)
	ctx := context.Background()
	l := NewLimiter(rdb, prefix, 20)
	// At most one read of Redis per pauseTTL begun, however many callers: bounds that hold on a
	// slow machine too.
	atMost := func(since time.Time) int { return 1 + int(time.Since(since)/pauseTTL) }

	start := time.Now()
	for range 100 {
		if p, err := l.Paused(ctx); err != nil || p {
			t.Fatalf("Paused = %v, %v", p, err)
		}
	}
	if n, limit := trips.count("exists"), atMost(start); n > limit {
		t.Errorf("100 Paused: %d round trips, want at most %d", n, limit)
	}

	time.Sleep(pauseTTL) // the cached answer expires
	before, start := trips.count("exists"), time.Now()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := l.Paused(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n, limit := trips.count("exists")-before, atMost(start); n < 1 || n > limit {
		t.Errorf("50 concurrent Paused after expiry: %d round trips, want 1 to %d", n, limit)
	}
}

// TestLimiterConcurrentWaiters runs 200 workers on two replicas sharing 200/s for 2 s: at no
// time may more have passed than the GCRA allows, and each worker passes.
func TestLimiterConcurrentWaiters(t *testing.T) {
	rdb, trips, prefix := mustLimiterRedis(t)
	const rate, workers, run = 200, 200, 2 * time.Second
	a, b := NewLimiter(rdb, prefix, rate), NewLimiter(rdb, prefix, rate)
	burst := float64(RateLimit(rate).Burst)
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	start := time.Now()
	grants := make([][]time.Duration, workers) // per worker: when each Wait returned
	var wg sync.WaitGroup
	for i := range workers {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			for {
				_, err := l.Wait(ctx)
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("worker %d: %v", i, err)
					}
					return
				}
				grants[i] = append(grants[i], time.Since(start))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	for i, g := range grants {
		if len(g) == 0 {
			t.Errorf("worker %d never passed", i)
		}
		all = append(all, g...)
	}
	slices.Sort(all)
	// Redis decided each grant before the worker saw it, so by the time the k-th grant was seen
	// the GCRA allowed at most burst + rate·(time since start).
	for k, at := range all {
		if bound := burst + rate*at.Seconds(); float64(k+1) > bound {
			t.Fatalf("%d passed within %v, the GCRA allows %.1f", k+1, at, bound)
		}
	}
	// Batching may leave a little of the rate unused (tokens of a worker that stopped waiting
	// are dropped), not much of it.
	if want := 0.8 * (burst + rate*run.Seconds()); float64(len(all)) < want {
		t.Errorf("%d passed in %v, want at least %.0f", len(all), elapsed, want)
	}
	t.Logf("%d passed in %v with %d rate requests", len(all), elapsed, trips.count("evalsha"))
	waitDispenserGone(t, a)
	waitDispenserGone(t, b)
}

func TestLimiterWaitCancelled(t *testing.T) {
	rdb, _, prefix := mustLimiterRedis(t)
	l := NewLimiter(rdb, prefix, 1) // after the burst of 1, the next token is a second away
	if _, err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const waiters = 20
	errs := make(chan error, waiters)
	for range waiters {
		go func() {
			_, err := l.Wait(ctx)
			errs <- err
		}()
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		l.mu.Lock()
		queued := len(l.waiters)
		l.mu.Unlock()
		if queued == waiters {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d waiters queued", queued, waiters)
		}
		time.Sleep(time.Millisecond) // a poll tick
	}
	cancel()
	cancelled := time.Now()
	for range waiters {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("Wait = %v, want context.Canceled", err)
		}
	}
	// The dispenser is asleep for most of a second: the waiters must not wait for it.
	if d := time.Since(cancelled); d > 200*time.Millisecond {
		t.Errorf("waiters returned %v after their context ended", d)
	}
	waitDispenserGone(t, l)
}

func TestLimiterRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond,
		DialerRetries: 1, MaxRetries: -1})
	defer rdb.Close()
	l := NewLimiter(rdb, "test:", 10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const waiters = 5
	errs := make(chan error, waiters)
	for range waiters {
		go func() {
			_, err := l.Wait(ctx)
			errs <- err
		}()
	}
	for range waiters {
		err := <-errs
		if err == nil || !strings.HasPrefix(err.Error(), "push limiter: ") {
			t.Errorf("Wait = %v, want the Redis error", err)
		}
	}
	waitDispenserGone(t, l)
}

// BenchmarkLimiterWait measures the overhead of Wait for 64 workers under a rate they never
// reach, and how many Redis round trips each Wait costs.
func BenchmarkLimiterWait(b *testing.B) {
	benchLimiter(b, func(ctx context.Context, l *Limiter) error {
		_, err := l.Wait(ctx)
		return err
	})
}

// BenchmarkLimiterPaused measures the pause check each push makes after its Wait.
func BenchmarkLimiterPaused(b *testing.B) {
	benchLimiter(b, func(ctx context.Context, l *Limiter) error {
		_, err := l.Paused(ctx)
		return err
	})
}

// benchLimiter runs call from 64 goroutines on a limiter of a rate they never reach and
// reports the Redis round trips per call.
func benchLimiter(b *testing.B, call func(context.Context, *Limiter) error) {
	rdb, trips, prefix := mustLimiterRedis(b)
	l := NewLimiter(rdb, prefix, 1_000_000)
	ctx := context.Background()
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	trips.reset()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(ctx, l); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(trips.count(""))/float64(b.N), "roundtrips/op")
}
