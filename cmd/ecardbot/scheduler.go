package main

import (
	"context"
	"time"

	"github.com/taipei-doit/ecardbot/schedule"
	"github.com/taipei-doit/ecardbot/store"
)

// startScheduler runs the scheduler role in the background: the 未到校 sweeps at each school's
// cutoff and the daily retention job. The returned stop cancels it and waits until it has
// returned, so Close can close the stores after it: a sweep cut short rolls back and is run by
// another replica, or by this one after a restart.
//
// The sweep shares the gate service's zone and its default staleness (store.DefaultStaleness),
// so a late 未到校 notice and a late 到校 notice are judged alike. With m.SchedulerClock set
// (tests), the sweep reads the same simulated clock as the scheduler.
func (m *Main) startScheduler() (stop func()) {
	cfg := m.Config
	now := time.Now
	if m.SchedulerClock != nil {
		now = m.SchedulerClock.Now
	}
	s := schedule.New(schedule.Config{Location: cfg.Timezone, RetentionDays: cfg.RetentionDays, Clock: m.SchedulerClock},
		store.NewSweepService(m.db, store.SweepConfig{Location: cfg.Timezone, Now: now}),
		store.NewRetentionService(m.db, store.RetentionConfig{}),
		m.Logger, m.Registry)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
