package push

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
)

// pauseTTL is how long Paused may answer from memory instead of asking Redis. It is safe: a
// push in the pauseTTL after another replica paused LINE sending gets the same monthly-limit 429
// that made it pause, which the worker already handles (retry, then OnPaused); one held back in
// the pauseTTL after another replica resumed is handled as during the pause. A Limiter's own
// Pause and Resume update its memory at once.
const pauseTTL = 100 * time.Millisecond

// limiterTimeout bounds one request of the shared dispenser for tokens: no caller owns it, so
// no caller's context does.
const limiterTimeout = 5 * time.Second

// Limiter spaces one channel's sends (LINE pushes, or e-mails) for every worker of every replica
// together. It is a GCRA kept in Redis (redis_rate), so the rate holds whatever the number of
// processes; a worker whose turn has not come waits for it rather than failing its task, so a
// backlog drains at close to the rate and never above it. Only LINE sending is ever paused.
//
// A process asks Redis for the tokens of all its waiting workers at once, and keeps the pause
// flag in memory for pauseTTL, so a push costs well under one Redis round trip.
type Limiter struct {
	rl    *redis_rate.Limiter
	rdb   *redis.Client
	key   string
	pause string
	limit redis_rate.Limit
	chunk int // most tokens asked for at once: small, so grants stay spread over the second

	mu      sync.Mutex
	waiters []chan error // FIFO; each gets nil (its token) or the error of the Redis request
	running bool         // a dispense goroutine serves waiters; it exits when there are none
	full    time.Time    // when the bucket is full again, as of the last answer (dispense only)

	cache pauseCache
}

// pauseCache is the pause flag as last read or set.
type pauseCache struct {
	mu         sync.Mutex
	paused     bool
	until      time.Time // paused is the answer until then
	refreshing bool      // one Paused call asks Redis; the others answer from memory meanwhile
	gen        uint64    // bumped by Pause and Resume, so an older read never overwrites them
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
		limit: RateLimit(rate),
		chunk: max(1, rate/50),
	}
}

// RateLimit is the GCRA of rate sends a second that a Limiter keeps: that rate, with a burst
// of a tenth of a second's worth. The burst lets workers go on while a grant is on its way;
// kept small, no second ever sees more than 110% of the rate, so LINE, which counts its own
// seconds from wherever they start, keeps room in its bucket for sends that arrive a little
// early, and does not answer 429 to them. (redis_rate's PerSecond bursts a whole second.)
func RateLimit(rate int) redis_rate.Limit {
	return redis_rate.Limit{Rate: rate, Burst: max(1, rate/10), Period: time.Second}
}

// Wait blocks until the caller may push once and returns how long it waited. It returns an
// error only when ctx ends or Redis fails.
func (l *Limiter) Wait(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	start := time.Now()
	ch := make(chan error, 1)
	l.mu.Lock()
	l.waiters = append(l.waiters, ch)
	if !l.running {
		l.running = true
		go l.dispense()
	}
	l.mu.Unlock()
	select {
	case err := <-ch:
		return time.Since(start), err
	case <-ctx.Done():
		// Leave the queue. A token sent meanwhile is dropped, never kept for another caller:
		// the rate may be under-used, never exceeded.
		l.mu.Lock()
		if i := slices.Index(l.waiters, ch); i >= 0 {
			l.waiters = slices.Delete(l.waiters, i, i+1)
		}
		l.mu.Unlock()
		return time.Since(start), ctx.Err()
	}
}

// dispense asks Redis for one token per waiter, up to chunk at once, and hands them out in
// order until no one waits.
func (l *Limiter) dispense() {
	for {
		l.mu.Lock()
		n := min(len(l.waiters), l.chunk)
		if n == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()

		// Ask only once the bucket should hold all n: asking sooner costs a round trip for a
		// fraction of them, and wastes rate, as AllowAtMost grants a whole number of tokens but
		// charges the fraction it had.
		if d := l.untilHolds(n); d > 0 {
			time.Sleep(d)
			continue // more may be waiting now
		}
		ctx, cancel := context.WithTimeout(context.Background(), limiterTimeout)
		res, err := l.rl.AllowAtMost(ctx, l.key, l.limit, n)
		cancel()

		l.mu.Lock()
		if err != nil {
			err = fmt.Errorf("push limiter: %w", err)
			for _, ch := range l.waiters {
				ch <- err
			}
			l.waiters = nil
			l.mu.Unlock()
			continue
		}
		l.full = time.Now().Add(res.ResetAfter)
		// Waiters who left during the request leave tokens nobody gets: they are dropped.
		granted := min(res.Allowed, len(l.waiters))
		for _, ch := range l.waiters[:granted] {
			ch <- nil
		}
		l.waiters = slices.Delete(l.waiters, 0, granted)
		l.mu.Unlock()
	}
}

// untilHolds returns how long until the bucket holds n tokens, as far as this process knows:
// other processes may take some meanwhile.
func (l *Limiter) untilHolds(n int) time.Duration {
	interval := l.limit.Period / time.Duration(l.limit.Rate)
	return max(0, time.Until(l.full)) - time.Duration(l.limit.Burst-n)*interval
}

// Pause stops LINE sending for every worker for d: LINE answered that the monthly quota is used
// up, and every further push would fail the same way and still count as a request.
func (l *Limiter) Pause(ctx context.Context, d time.Duration) error {
	if err := l.rdb.Set(ctx, l.pause, time.Now().UTC().Format(time.RFC3339), d).Err(); err != nil {
		return fmt.Errorf("pause LINE sending: %w", err)
	}
	l.cache.set(true, min(d, pauseTTL))
	return nil
}

// Resume ends a pause early, e.g. after an operator raised the quota.
func (l *Limiter) Resume(ctx context.Context) error {
	if err := l.rdb.Del(ctx, l.pause).Err(); err != nil {
		return fmt.Errorf("resume LINE sending: %w", err)
	}
	l.cache.set(false, pauseTTL)
	return nil
}

// Paused reports whether LINE sending is paused. The answer may be up to pauseTTL old, except
// after this Limiter's own Pause or Resume.
func (l *Limiter) Paused(ctx context.Context) (bool, error) {
	c := &l.cache
	c.mu.Lock()
	if time.Now().Before(c.until) || (c.refreshing && !c.until.IsZero()) {
		p := c.paused
		c.mu.Unlock()
		return p, nil
	}
	c.refreshing = true
	gen := c.gen
	c.mu.Unlock()

	n, err := l.rdb.Exists(ctx, l.pause).Result()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshing = false
	if err != nil {
		return false, fmt.Errorf("check LINE pause: %w", err)
	}
	if c.gen == gen {
		c.paused, c.until = n > 0, time.Now().Add(pauseTTL)
	}
	return c.paused, nil
}

func (c *pauseCache) set(paused bool, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.paused, c.until = paused, time.Now().Add(ttl)
}
