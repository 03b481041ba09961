package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	Deliveries ecardbot.DeliveryService
	Redis      *redis.Client
	Prefix     string        // the kv prefix, which starts the queue names (see Queue)
	Logger     *slog.Logger  // nil discards
	Interval   time.Duration // between polls when there is nothing pending; zero means 500 ms
	Batch      int           // deliveries read per poll; zero means 500
	// RequeueAfter is how long a delivery may stay queued without a worker touching it before
	// the relay makes sure its task is still in Redis. Zero means DefaultRequeueAfter.
	RequeueAfter time.Duration
}

// DefaultRequeueAfter is far longer than a backlog takes to drain at the push rate, and short
// enough that a notice whose task Redis lost still arrives the same morning.
const DefaultRequeueAfter = 10 * time.Minute

// Relay moves pending deliveries (the outbox) to the queue. The database is the record: a
// delivery is marked queued only after its task is in Redis, and enqueueing is idempotent
// (task ID = delivery ID), so the relay may crash, or Redis may be down, at any step without
// losing or doubling a delivery. Several replicas may run a relay at once for the same reason.
type Relay struct {
	cfg    RelayConfig
	client *asynq.Client
	insp   *asynq.Inspector
	log    *slog.Logger
	down   bool // Redis or the database failed on the last tick: log once per outage
	// staleAt is when Tick next looks for deliveries queued too long; a tenth of RequeueAfter
	// apart, so the look costs one query a minute by default.
	staleAt time.Time
}

// NewRelay returns a relay; Run starts it.
func NewRelay(cfg RelayConfig) *Relay {
	if cfg.Interval <= 0 {
		cfg.Interval = 500 * time.Millisecond
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
		cfg:    cfg,
		client: asynq.NewClientFromRedisClient(cfg.Redis),
		insp:   asynq.NewInspectorFromRedisClient(cfg.Redis),
		log:    log.With("component", "push.relay"),
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
	for _, p := range ids {
		if err := r.enqueue(ctx, p); err != nil {
			enqErr = err
			break // Redis is likely down: mark what made it and stop
		}
		queued = append(queued, p.ID)
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
	for _, p := range stale {
		if err := r.enqueue(ctx, p); err != nil {
			return false, err // claimed but not enqueued: claimed again a period later
		}
	}
	return len(stale) == r.cfg.Batch, nil
}

// enqueue puts the delivery's task in the queue unless it is there already. A task that
// asynq kept after it ended (archived: dead-lettered or out of retries) holds the task ID, so
// a replayed delivery's old task is deleted and a new one enqueued in its place.
func (r *Relay) enqueue(ctx context.Context, p ecardbot.PendingDelivery) error {
	id := p.ID
	task, opts := newTask(r.cfg.Prefix, p)
	queue := queueOf(r.cfg.Prefix, p.Channel)
	_, err := r.client.EnqueueContext(ctx, task, opts...)
	if !errors.Is(err, asynq.ErrTaskIDConflict) {
		if err != nil {
			return fmt.Errorf("enqueue delivery %s: %w", id, err)
		}
		return nil
	}
	info, err := r.insp.GetTaskInfo(queue, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound):
		// It ended in between: enqueue afresh below.
	case err != nil:
		return fmt.Errorf("inspect delivery task %s: %w", id, err)
	case info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted:
		return nil // still waiting or running: the same delivery, already queued
	}
	if err := r.insp.DeleteTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		return fmt.Errorf("delete ended task %s: %w", id, err)
	}
	if _, err := r.client.EnqueueContext(ctx, task, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue delivery %s: %w", id, err)
	}
	return nil
}
