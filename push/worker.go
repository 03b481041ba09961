package push

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
)

// worker is what the LINE and the e-mail workers share, so that both channels follow the same
// rules: an asynq server on the channel's queue; loading a task's delivery and dropping it when
// it must not be sent; the retry window; and recording failed attempts and dead letters in the
// database and in the metrics. Each channel adds only its send.
type worker struct {
	channel     ecardbot.Channel
	deliveries  ecardbot.DeliveryService
	retryWindow time.Duration
	retryDelay  asynq.RetryDelayFunc
	prefix      string
	queue       enqueuer
	now         func() time.Time
	srv         *asynq.Server
	metrics     *Metrics
	log         *slog.Logger
}

// workerConfig is the part of a channel's config that worker needs.
type workerConfig struct {
	channel      ecardbot.Channel
	queue        string // QueueLINE or QueueEmail
	deliveries   ecardbot.DeliveryService
	redis        *redis.Client
	prefix       string
	concurrency  int
	logger       *slog.Logger
	registerer   prometheus.Registerer
	retryWindow  time.Duration
	backoff      Backoff
	pauseRetry   time.Duration
	pollInterval time.Duration
	now          func() time.Time
}

// idlePoll is how often an idle worker looks for a task: the longest a notice waits for one
// once queued. asynq's default, a second and a half on average, was most of a notice's time
// from tap to LINE when the queue was short. It costs one Redis script per idle interval per
// process.
const idlePoll = 100 * time.Millisecond

// retryPoll is how often the tasks whose retry delay is over are moved back to the queue:
// asynq's default of 5 s made a delivery LINE answered 429 wait up to five times its backoff.
const retryPoll = time.Second

func newWorker(c workerConfig) worker {
	if c.retryWindow <= 0 {
		c.retryWindow = DefaultRetry
	}
	if c.now == nil {
		c.now = time.Now
	}
	log := c.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	queue := Queue(c.prefix, c.queue)
	retryDelay := retryDelayFunc(c.backoff, c.pauseRetry)
	srv := asynq.NewServerFromRedisClient(c.redis, asynq.Config{
		Concurrency:              c.concurrency,
		Queues:                   map[string]int{queue: 1},
		RetryDelayFunc:           retryDelay,
		IsFailure:                func(err error) bool { return !errors.Is(err, errPaused) },
		TaskCheckInterval:        cmp.Or(c.pollInterval, idlePoll),
		DelayedTaskCheckInterval: cmp.Or(c.pollInterval, retryPoll),
		ShutdownTimeout:          30 * time.Second,
		Logger:                   asynqLogger{log.With("component", "asynq")},
		LogLevel:                 asynq.WarnLevel,
	})
	registerQueueDepth(c.registerer, asynq.NewInspectorFromRedisClient(c.redis), c.queue, queue)
	return worker{
		channel:     c.channel,
		deliveries:  c.deliveries,
		retryWindow: c.retryWindow,
		retryDelay:  retryDelay,
		prefix:      c.prefix,
		queue:       newEnqueuer(c.redis),
		now:         c.now,
		srv:         srv,
		metrics:     NewMetrics(c.registerer, c.channel),
		log:         log.With("component", "push.worker", "channel", string(c.channel)),
	}
}

// sender sends one delivery on the worker's channel.
type sender func(context.Context, ecardbot.DeliveryDetail) error

// start serves taskType's tasks in the background, each of one delivery or, if batched, of
// several, calling send for each delivery that may still be sent.
func (w *worker) start(taskType string, batched bool, send sender) error {
	handle := w.handle
	if batched {
		handle = w.handleBatch
	}
	mux := asynq.NewServeMux()
	mux.HandleFunc(taskType, func(ctx context.Context, t *asynq.Task) error { return handle(ctx, t, send) })
	if err := w.srv.Start(mux); err != nil {
		return fmt.Errorf("start %s workers: %w", w.channel, err)
	}
	return nil
}

// Shutdown stops taking tasks and waits (up to 30 s) for the running ones; a task cut short
// goes back to the queue and runs again with the same delivery ID (retry key, Message-ID).
func (w *worker) Shutdown() { w.srv.Shutdown() }

// handle runs the task of one delivery. Its error tells asynq what to do: nil done, SkipRetry
// given up (the delivery is dead in the database), anything else retry after the backoff.
func (w *worker) handle(ctx context.Context, t *asynq.Task, send sender) error {
	id := string(t.Payload())
	if _, err := uuid.Parse(id); err != nil {
		return fmt.Errorf("delivery id %q: %w", id, ErrPermanent)
	}
	d, err := w.deliveries.Detail(ctx, id)
	if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
		w.metrics.dropped.WithLabelValues("gone").Inc()
		return nil // the guardian was removed, and their deliveries with them
	}
	if err != nil {
		return err
	}
	return w.deliver(ctx, d, send)
}

// handleBatch runs the task of a batch of deliveries (newBatchTask): one database read for all
// of them, then each sent concurrently as handle would send it. The deliveries whose attempt
// failed go on together in a new batch task, after the retry delay of the one tried least (or
// the pause's), so the batch is done once each of its deliveries is sent, given up or so
// re-queued. When that cannot be done (Redis or the database is down), the batch fails and
// asynq runs it again later: its deliveries sent by then are skipped, as no longer queued.
func (w *worker) handleBatch(ctx context.Context, t *asynq.Task, send sender) error {
	ids := strings.Split(string(t.Payload()), ",")
	for _, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			return fmt.Errorf("delivery id %q in a batch: %w", id, ErrPermanent)
		}
	}
	ds, err := w.deliveries.Details(ctx, ids)
	if err != nil {
		return err
	}
	w.metrics.dropped.WithLabelValues("gone").Add(float64(len(ids) - len(ds)))
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() { errs[i] = w.deliver(ctx, d, send) })
	}
	wg.Wait()
	// Held by the pause, or failed: two batches, as they wait for different delays.
	var paused, failed []int
	for i, err := range errs {
		switch {
		case err == nil || errors.Is(err, ErrPermanent):
		case errors.Is(err, errPaused):
			paused = append(paused, i)
		default:
			failed = append(failed, i)
		}
	}
	taskID, _ := asynq.GetTaskID(ctx)
	for _, group := range [][]int{paused, failed} {
		if len(group) == 0 {
			continue
		}
		retry, attempts := make([]string, len(group)), ds[group[0]].Attempts
		for k, i := range group {
			retry[k], attempts = ds[i].ID, min(attempts, ds[i].Attempts)
		}
		delay := w.retryDelay(attempts, errs[group[0]], nil)
		if err := w.queue.enqueue(ctx, newBatchTask(w.prefix, "retry "+taskID, retry), asynq.ProcessIn(delay)); err != nil {
			return err
		}
		// Touched, so that the relay does not take them for lost while they wait out a long
		// pause, and enqueue another copy of them every RequeueAfter.
		if err := w.deliveries.MarkQueued(ctx, retry); err != nil {
			return err
		}
	}
	return nil
}

// deliver sends d unless it must not be sent, and returns as handle does.
func (w *worker) deliver(ctx context.Context, d ecardbot.DeliveryDetail, send sender) error {
	if d.State != ecardbot.DeliveryPending && d.State != ecardbot.DeliveryQueued {
		w.metrics.dropped.WithLabelValues("done").Inc()
		return nil // a duplicate task, or already sent, dead, cancelled or replaced by e-mail
	}
	if d.Channel != w.channel {
		return fmt.Errorf("delivery %s is for %s, not %s: %w", d.ID, d.Channel, w.channel, ErrPermanent)
	}
	if !d.Reachable || (w.channel == ecardbot.ChannelLINE && d.LineUserID == "") || (w.channel == ecardbot.ChannelEmail && d.Email == "") {
		w.metrics.dropped.WithLabelValues("unreachable").Inc()
		return w.unreachable(ctx, d)
	}
	if w.now().After(d.CreatedAt.Add(w.retryWindow)) {
		return w.dead(ctx, d, fmt.Sprintf("retry window (%g h) exceeded", w.retryWindow.Hours()), "window")
	}
	return send(ctx, d)
}

// unreachable ends the task of a delivery whose guardian can no longer be reached on its
// channel, without sending it and leaving nothing archived in Redis. A LINE delivery becomes a
// dead letter, which an operator can replay once the guardian follows the bot again. An
// e-mail delivery is cancelled: an address that is no longer confirmed may be someone else's,
// so nothing about the child may go to it, not even after a replay.
func (w *worker) unreachable(ctx context.Context, d ecardbot.DeliveryDetail) error {
	if w.channel == ecardbot.ChannelEmail {
		return w.deliveries.MarkCancelled(ctx, d.ID, "unreachable: no longer a guardian of the child, or the e-mail address is not confirmed")
	}
	if err := w.dead(ctx, d, "unreachable", "unreachable"); !errors.Is(err, ErrPermanent) {
		return err
	}
	return nil
}

// retry counts the failed attempt in the database. A failure to record it is only logged: the
// task is retried either way.
func (w *worker) retry(ctx context.Context, d ecardbot.DeliveryDetail, err error) {
	w.metrics.retries.Inc()
	if rerr := w.deliveries.MarkRetry(ctx, d.ID, err.Error()); rerr != nil {
		w.log.Warn("cannot record failed attempt", "delivery_id", d.ID, "error", rerr)
	}
}

// giveUp records the failed attempt err and makes the delivery a dead letter with reason.
func (w *worker) giveUp(ctx context.Context, d ecardbot.DeliveryDetail, err error, reason, class string) error {
	w.metrics.sends.WithLabelValues("dead").Inc()
	if rerr := w.deliveries.MarkRetry(ctx, d.ID, err.Error()); rerr != nil {
		return rerr
	}
	return w.dead(ctx, d, reason, class)
}

// dead marks the delivery dead and ends its task.
func (w *worker) dead(ctx context.Context, d ecardbot.DeliveryDetail, reason, class string) error {
	if err := w.deliveries.MarkDead(ctx, d.ID, reason); err != nil {
		return err
	}
	w.metrics.deadLetters.WithLabelValues(class).Inc()
	w.log.Warn("delivery dead", "delivery_id", d.ID, "reason", reason, "attempt", d.Attempts)
	return fmt.Errorf("delivery %s dead: %s: %w", d.ID, reason, ErrPermanent)
}

// wait waits for the channel's limiter and observes how long.
func (w *worker) wait(ctx context.Context, l *Limiter) error {
	waited, err := l.Wait(ctx)
	w.metrics.limiterWait.Observe(waited.Seconds())
	return err
}

// asynqLogger routes asynq's own logs to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
