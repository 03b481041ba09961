package push

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
)

// Limiter spaces one channel's sends (LINE pushes, or e-mails) for every worker of every replica
// together. It is a GCRA kept in Redis (redis_rate), so the rate holds whatever the number of
// processes; a worker whose turn has not come waits for it rather than failing its task, so a
// backlog drains at close to the rate and never above it. Only LINE sending is ever paused.
type Limiter struct {
	rl    *redis_rate.Limiter
	rdb   *redis.Client
	key   string
	pause string
	limit redis_rate.Limit
}

// NewLimiter returns the LINE limiter of rate pushes a second whose keys start with prefix (the
// kv client's prefix). A rate below 1 means 1.
func NewLimiter(rdb *redis.Client, prefix string, rate int) *Limiter {
	return newLimiter(rdb, prefix, ecardbot.ChannelLINE, rate)
}

// newLimiter returns channel's limiter: its own keys, so e-mails never wait for LINE's turn.
func newLimiter(rdb *redis.Client, prefix string, channel ecardbot.Channel, rate int) *Limiter {
	if rate < 1 {
		rate = 1
	}
	return &Limiter{
		rl:    redis_rate.NewLimiter(rdb),
		rdb:   rdb,
		key:   prefix + "push:" + string(channel) + ":rate",
		pause: prefix + "push:" + string(channel) + ":paused",
		limit: redis_rate.PerSecond(rate),
	}
}

// Wait blocks until the caller may push once and returns how long it waited. It returns an
// error only when ctx ends or Redis fails.
func (l *Limiter) Wait(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	for {
		res, err := l.rl.Allow(ctx, l.key, l.limit)
		if err != nil {
			return time.Since(start), fmt.Errorf("push limiter: %w", err)
		}
		if res.Allowed > 0 {
			return time.Since(start), nil
		}
		wait := res.RetryAfter
		if wait <= 0 {
			wait = time.Millisecond
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return time.Since(start), ctx.Err()
		case <-t.C:
		}
	}
}

// Pause stops LINE sending for every worker for d: LINE answered that the monthly quota is used
// up, and every further push would fail the same way and still count as a request.
func (l *Limiter) Pause(ctx context.Context, d time.Duration) error {
	if err := l.rdb.Set(ctx, l.pause, time.Now().UTC().Format(time.RFC3339), d).Err(); err != nil {
		return fmt.Errorf("pause LINE sending: %w", err)
	}
	return nil
}

// Resume ends a pause early, e.g. after an operator raised the quota.
func (l *Limiter) Resume(ctx context.Context) error {
	if err := l.rdb.Del(ctx, l.pause).Err(); err != nil {
		return fmt.Errorf("resume LINE sending: %w", err)
	}
	return nil
}

// Paused reports whether LINE sending is paused.
func (l *Limiter) Paused(ctx context.Context) (bool, error) {
	n, err := l.rdb.Exists(ctx, l.pause).Result()
	if err != nil {
		return false, fmt.Errorf("check LINE pause: %w", err)
	}
	return n > 0, nil
}
