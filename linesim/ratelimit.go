package linesim

import (
	"net/http"
	"time"
)

// Rate is a token bucket: Count requests per Per, with a burst of Count. LINE publishes no
// headers or Retry-After for its buckets, so neither does the emulator.
type Rate struct {
	Count int           // tokens per period; zero or less means no limit
	Per   time.Duration // the period; zero means one second
}

// PerSecond returns a Rate of n requests a second. A negative n means no limit.
func PerSecond(n float64) Rate {
	if n < 0 {
		return Rate{}
	}
	// Sub-1/s rates keep their meaning by stretching the period.
	if n < 1 {
		return Rate{Count: 1, Per: time.Duration(float64(time.Second) / n)}
	}
	return Rate{Count: int(n), Per: time.Second}
}

// defaultRates are LINE's published limits where they differ from 2,000/s.
var defaultRates = map[string]Rate{
	RouteMulticast:      {Count: 200, Per: time.Second},
	RouteBroadcast:      {Count: 60, Per: time.Hour},
	RouteRichMenuCreate: {Count: 100, Per: time.Hour},
	RouteRichMenuDelete: {Count: 100, Per: time.Hour},
	RouteAliasDelete:    {Count: 100, Per: time.Hour},
	RouteRichMenuList:   {Count: 10, Per: time.Second},
}

func (s *Server) rateFor(pattern string) Rate {
	if r, ok := s.opts.RateLimits[pattern]; ok {
		return r
	}
	switch {
	case pattern == RoutePush && s.opts.PushRate != 0:
		return PerSecond(s.opts.PushRate)
	case pattern == RouteMulticast && s.opts.MulticastRate != 0:
		return PerSecond(s.opts.MulticastRate)
	}
	if r, ok := defaultRates[pattern]; ok {
		return r
	}
	return Rate{Count: 2000, Per: time.Second}
}

type bucket struct {
	tokens float64
	last   time.Time
}

// allow takes one token from the route's bucket, refilled continuously from the emulated clock.
func (s *Server) allow(pattern string) bool {
	rate := s.rateFor(pattern)
	if rate.Count <= 0 {
		return true
	}
	per := rate.Per
	if per <= 0 {
		per = time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	b := s.buckets[pattern]
	if b == nil {
		b = &bucket{tokens: float64(rate.Count), last: now}
		s.buckets[pattern] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(float64(rate.Count), b.tokens+elapsed.Seconds()*float64(rate.Count)/per.Seconds())
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// jst is LINE's time zone; the monthly quota turns over at midnight there.
var jst = time.FixedZone("JST", 9*60*60)

func monthKey(t time.Time) string { return t.In(jst).Format("2006-01") }

// SetMonthlyQuota changes the monthly recipient limit. Zero means no limit.
func (s *Server) SetMonthlyQuota(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota = n
}

// Usage returns the recipients billed this month (emulated clock, JST months).
func (s *Server) Usage() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage[monthKey(s.now())]
}

// SetUsage sets this month's billed recipients, to start a test near the monthly limit.
func (s *Server) SetUsage(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usage[monthKey(s.now())] = n
}

// billLocked charges n recipients, or reports false when that would pass the monthly quota.
// LINE refuses the whole request rather than sending to part of the recipients.
func (s *Server) billLocked(n int) bool {
	k := monthKey(s.now())
	if s.quota > 0 && s.usage[k]+int64(n) > s.quota {
		return false
	}
	s.usage[k] += int64(n)
	return true
}

func (s *Server) handleQuota(c *call) {
	s.mu.Lock()
	q := s.quota
	s.mu.Unlock()
	if q <= 0 {
		c.json(http.StatusOK, map[string]string{"type": "none"})
		return
	}
	c.json(http.StatusOK, map[string]any{"type": "limited", "value": q})
}

func (s *Server) handleConsumption(c *call) {
	c.json(http.StatusOK, map[string]int64{"totalUsage": s.Usage()})
}
