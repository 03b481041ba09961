// Package simclock is a simulated schedule.Clock for tests: time moves only when the test
// moves it, timers fire when it passes their deadline, and the test can wait until the code
// under test has armed its next timer. A test of a scheduler therefore runs a whole day of
// cutoffs in milliseconds, without time.Sleep and without races between the test and the
// goroutine it drives.
package simclock

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot/schedule"
)

// waitLimit bounds WaitTimer in real time. It is a failure guard for a scheduler that never
// arms a timer (a deadlock or a panic elsewhere), not a timing: a passing test never gets
// near it.
const waitLimit = 30 * time.Second

// Clock is a simulated clock. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
	armed  chan time.Time // the deadline of every timer created, in order
}

var _ schedule.Clock = (*Clock)(nil)

// New returns a clock showing now.
func New(now time.Time) *Clock {
	return &Clock{now: now, armed: make(chan time.Time, 4096)}
}

// Now returns the simulated time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer arms a timer that fires when the clock reaches now+d; at once when d <= 0.
func (c *Clock) NewTimer(d time.Duration) schedule.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, deadline: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.fire(c.now)
	} else {
		c.timers = append(c.timers, t)
	}
	select {
	case c.armed <- t.deadline:
	default:
		panic("simclock: more than 4096 timers armed and never waited for")
	}
	return t
}

// Set moves the clock to now, never backwards, and fires every pending timer whose deadline
// is at or before it.
func (c *Clock) Set(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Before(c.now) {
		panic("simclock: time moved backwards")
	}
	c.now = now
	keep := c.timers[:0]
	for _, t := range c.timers {
		if !t.deadline.After(now) {
			t.fire(now)
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// WaitTimer waits until a timer is armed that no earlier call returned, and returns its
// deadline. Code that arms a timer when it is done with its work (a scheduler between passes)
// is idle once this returns. It fails the test if no timer is armed for a long real time.
func (c *Clock) WaitTimer(tb testing.TB) time.Time {
	tb.Helper()
	guard := time.NewTimer(waitLimit)
	defer guard.Stop()
	select {
	case d := <-c.armed:
		return d
	case <-guard.C:
		tb.Fatalf("simclock: no timer armed within %s of real time", waitLimit)
		return time.Time{}
	}
}

// Pending returns the deadlines of the timers neither fired nor stopped, earliest first.
func (c *Clock) Pending() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var d []time.Time
	for _, t := range c.timers {
		d = append(d, t.deadline)
	}
	slices.SortFunc(d, func(a, b time.Time) int { return a.Compare(b) })
	return d
}

type timer struct {
	c        *Clock
	deadline time.Time
	ch       chan time.Time
}

// fire sends on the buffered channel; it is called once, with c.mu held.
func (t *timer) fire(now time.Time) { t.ch <- now }

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}
