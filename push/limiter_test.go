package push

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot/internal/testenv"
)

// TestLimiterSharedRate runs the limiter on the real test Redis: its keys are under the test's
// prefix, so testenv isolates and cleans them.
func TestLimiterSharedRate(t *testing.T) {
	url, prefix := testenv.RedisURL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
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

	if p, _ := a.Paused(ctx); p {
		t.Fatal("paused at start")
	}
	if err := a.Pause(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.Paused(ctx); !p {
		t.Error("pause not shared")
	}
	if err := b.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := a.Paused(ctx); p {
		t.Error("still paused after Resume")
	}
}
