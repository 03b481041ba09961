package push

import (
	"context"
	"iter"
	"log/slog"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	Deliveries ecardbot.DeliveryService
	Redis      *redis.Client
	Prefix     string        // the kv prefix, which starts the queue names (see Queue)
	Logger     *slog.Logger  // nil discards
	Interval   time.Duration // between polls when there is nothing pending; zero means 100 ms
	Batch      int           // deliveries read per poll; zero means 500
	// RequeueAfter is how long a delivery may stay queued without a worker touching it before
	// the relay makes sure its task is still in Redis. Zero means DefaultRequeueAfter.
	RequeueAfter time.Duration
}

// DefaultRequeueAfter is far longer than a backlog takes to drain at the push rate, and short
// enough that a notice whose task Redis lost still arrives the same morning.
const DefaultRequeueAfter = 10 * time.Minute

// Relay moves pending deliveries (the outbox) to the queue: LINE deliveries in batches (see
// newBatchTask), e-mails one by one. The database is the record: a delivery is marked queued
// only after a task that holds it is in Redis, and enqueueing is idempotent (the task ID comes
// from the deliveries), so the relay may crash, or Redis may be down, at any step without
// losing a delivery, and LINE's retry keys keep one in two tasks from being sent twice.
// Several replicas may run a relay at once for the same reason.
type Relay struct {
	cfg   RelayConfig
	queue enqueuer
	log   *slog.Logger
	down  bool // Redis or the database failed on the last tick: log once per outage
	// staleAt is when Tick next looks for deliveries queued too long; a tenth of RequeueAfter
	// apart, so the look costs one query a minute by default.
	staleAt time.Time
}

// NewRelay returns a relay; Run starts it.
func NewRelay(cfg RelayConfig) *Relay {
	if cfg.Interval <= 0 {
		// The longest a new notice waits for the relay; a poll is one indexed query.
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.RequeueAfter <= 0 {
		cfg.RequeueAfter = DefaultRequeueAfter
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{
		cfg:   cfg,
		queue: newEnqueuer(cfg.Redis),
		log:   log.With("component", "push.relay"),
	}
}

// Run relays until ctx ends. A failing tick is logged once per outage and retried at the next
// interval; deliveries wait in the database meanwhile.
func (r *Relay) Run(ctx context.Context) {
	for {
		n, err := r.Tick(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !r.down {
				r.log.Warn("cannot queue deliveries; they stay pending until it recovers", "error", err)
				r.down = true
			}
		case err == nil && r.down:
			r.log.Info("queueing deliveries again")
			r.down = false
		}
		if n == r.cfg.Batch && err == nil {
			continue // a backlog: go on at once
		}
		t := time.NewTimer(r.cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Tick queues one batch of pending deliveries and returns how many it queued. Now and then it
// also puts back the tasks of deliveries queued too long (requeueStale).
func (r *Relay) Tick(ctx context.Context) (int, error) {
	if now := time.Now(); !now.Before(r.staleAt) {
		more, err := r.requeueStale(ctx)
		if err != nil {
			return 0, err
		}
		if r.staleAt = now.Add(r.cfg.RequeueAfter / 10); more {
			r.staleAt = now // a batch per tick, so new deliveries never wait behind them all
		}
	}
	ids, err := r.cfg.Deliveries.PendingBatch(ctx, r.cfg.Batch)
	if err != nil {
		return 0, err
	}
	queued := make([]string, 0, len(ids))
	var enqErr error
	for ids, t := range r.tasks(ids) {
		if err := r.queue.enqueue(ctx, t); err != nil {
			enqErr = err
			break // Redis is likely down: mark what made it and stop
		}
		queued = append(queued, ids...)
	}
	if err := r.cfg.Deliveries.MarkQueued(ctx, queued); err != nil {
		return 0, err
	}
	return len(queued), enqErr
}

// requeueStale enqueues again one batch of deliveries queued for longer than RequeueAfter
// without a worker touching them, and reports whether there may be more. The database is the
// record, Redis only a copy: a Redis without persistence that restarted, or one that lost its
// last second of writes, holds no task for such a delivery, and nothing else would ever send it.
// Where the task is still there (a long backoff, a LINE pause), enqueue changes nothing.
func (r *Relay) requeueStale(ctx context.Context) (more bool, err error) {
	stale, err := r.cfg.Deliveries.ClaimStaleQueued(ctx, time.Now().Add(-r.cfg.RequeueAfter), r.cfg.Batch)
	if err != nil {
		return false, err
	}
	for _, t := range r.tasks(stale) {
		if err := r.queue.enqueue(ctx, t); err != nil {
			return false, err // claimed but not enqueued: claimed again a period later
		}
	}
	return len(stale) == r.cfg.Batch, nil
}

// tasks yields the tasks of pending deliveries, each with the IDs of the deliveries it
// carries: e-mails one by one, LINE deliveries in batches of up to lineBatch.
func (r *Relay) tasks(pending []ecardbot.PendingDelivery) iter.Seq2[[]string, task] {
	return func(yield func([]string, task) bool) {
		var line []string
		for _, p := range pending {
			if p.Channel == ecardbot.ChannelLINE {
				line = append(line, p.ID)
				continue
			}
			if !yield([]string{p.ID}, newEmailTask(r.cfg.Prefix, p.ID)) {
				return
			}
		}
		for batch := range slices.Chunk(line, lineBatch) {
			if !yield(batch, newBatchTask(r.cfg.Prefix, "", batch)) {
				return
			}
		}
	}
}
