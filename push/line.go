package push

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/lineapi"
)

// Pusher is the LINE call the worker makes; *lineapi.Client implements it.
type Pusher interface {
	Push(ctx context.Context, retryKey uuid.UUID, to string, msgs []messaging_api.MessageInterface) (lineapi.Result, error)
}

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	Deliveries ecardbot.DeliveryService
	LINE       Pusher
	Redis      *redis.Client // the kv client's; asynq and the limiter share it
	Prefix     string        // the kv prefix: of the limiter's and pause flag's keys, and of the queue names
	Rate       int           // LINE pushes per second, all workers of all replicas together
	// Concurrency is the number of pushes this process makes at once; zero means 10.
	Concurrency int
	Logger      *slog.Logger          // nil discards
	Registerer  prometheus.Registerer // nil: no metrics
	// RetryWindow is how long after its creation a delivery may still be tried; zero means 23 h.
	RetryWindow time.Duration
	// PauseFor is how long a monthly-limit answer pauses LINE sending; zero means 1 h.
	PauseFor time.Duration
	// PauseRetry is how long a task held back by the pause waits; zero means 1 min.
	PauseRetry time.Duration
	Backoff    Backoff
	// PollInterval is how often idle workers and the retry forwarder look at Redis; zero
	// means idlePoll and retryPoll. Tests shorten both.
	PollInterval time.Duration
	// OnPaused, when set, is called for every LINE delivery held back because LINE sending is
	// paused (the monthly limit), before its task is put back to wait for PauseRetry. It is the
	// hook of the e-mail fallback (EmailFallback); the worker itself enqueues nothing else.
	OnPaused func(ctx context.Context, d ecardbot.DeliveryDetail)
	// Message builds the LINE message; nil means LINEMessage.
	Message func(ecardbot.DeliveryDetail) messaging_api.MessageInterface
	Now     func() time.Time // nil means time.Now
}

// Worker runs the queue's LINE tasks: an asynq server on the kv client's Redis.
type Worker struct {
	worker
	cfg     WorkerConfig
	limiter *Limiter
	// slots holds a token per push in flight: a batch task sends its deliveries concurrently,
	// and when LINE is slow they must not all wait on it at once.
	slots chan struct{}
	marks *sentMarks // set by Start
}

// NewWorker returns a worker; Start starts it and Shutdown stops it.
func NewWorker(cfg WorkerConfig) *Worker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 10
	}
	if cfg.PauseFor <= 0 {
		cfg.PauseFor = time.Hour
	}
	if cfg.PauseRetry <= 0 {
		cfg.PauseRetry = time.Minute
	}
	if cfg.Message == nil {
		cfg.Message = LINEMessage
	}
	return &Worker{
		worker: newWorker(workerConfig{
			channel: ecardbot.ChannelLINE, queue: QueueLINE, deliveries: cfg.Deliveries,
			redis: cfg.Redis, prefix: cfg.Prefix, concurrency: lineTasks(cfg.Concurrency),
			logger: cfg.Logger, registerer: cfg.Registerer, retryWindow: cfg.RetryWindow,
			backoff: cfg.Backoff, pauseRetry: cfg.PauseRetry, pollInterval: cfg.PollInterval, now: cfg.Now,
		}),
		cfg:     cfg,
		limiter: NewLimiter(cfg.Redis, cfg.Prefix, cfg.Rate),
		slots:   make(chan struct{}, cfg.Concurrency),
	}
}

// lineTasks is how many LINE tasks a process runs at once to keep its pushes (Concurrency) busy:
// enough batches (lineBatch each) for twice that, so that a batch's last push never leaves the
// others idle; and no more, so that a replica holds few deliveries it has not sent yet, the backlog
// spreads over the replicas, and a replica that dies holds few back until asynq recovers its tasks.
// Retries are batches too (handleBatch).
func lineTasks(pushes int) int { return max(2, (2*pushes+lineBatch-1)/lineBatch) }

// Limiter returns the worker's limiter, e.g. to end a pause.
func (w *Worker) Limiter() *Limiter { return w.limiter }

// Start starts processing tasks in the background.
func (w *Worker) Start() error {
	w.marks = startSentMarks(w.deliveries)
	if err := w.start(TaskLINEBatch, true, w.push); err != nil {
		w.marks.close()
		return err
	}
	return nil
}

// Shutdown stops taking tasks, waits for the running ones (see worker.Shutdown), then for their
// sent marks.
func (w *Worker) Shutdown() {
	w.worker.Shutdown()
	if w.marks != nil {
		w.marks.close()
	}
}

// push sends one delivery to LINE, unless LINE sending is paused.
func (w *Worker) push(ctx context.Context, d ecardbot.DeliveryDetail) error {
	select {
	case w.slots <- struct{}{}:
		defer func() { <-w.slots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := w.wait(ctx, w.limiter); err != nil {
		return err
	}
	// Checked after the wait, not before: another worker may have met the monthly limit while
	// this one waited for its turn, and a push now would fail the same way. A slot taken
	// during a pause costs nothing.
	if err := w.holdIfPaused(ctx, d); err != nil {
		return err
	}
	key := uuid.MustParse(d.ID) // handleBatch checked the delivery IDs of its task
	res, err := w.cfg.LINE.Push(ctx, key, d.LineUserID, []messaging_api.MessageInterface{w.cfg.Message(d)})
	if err == nil {
		reqID, status := res.RequestID, "sent"
		if res.Duplicate {
			status = "duplicate"
			if res.AcceptedRequestID != "" {
				reqID = res.AcceptedRequestID
			}
		}
		w.metrics.sends.WithLabelValues(status).Inc()
		// Marking can fail after LINE accepted: the retry then gets a 409 and marks it.
		return w.marks.mark(ctx, d.ID, reqID)
	}
	return w.failed(ctx, d, err)
}

// holdIfPaused returns errPaused, after handing d to OnPaused, while LINE sending is paused.
func (w *Worker) holdIfPaused(ctx context.Context, d ecardbot.DeliveryDetail) error {
	paused, err := w.limiter.Paused(ctx)
	if err != nil {
		return err
	}
	if paused {
		w.onPaused(ctx, d)
		return errPaused
	}
	return nil
}

// failed records a failed push and decides between retrying and dead-lettering.
func (w *Worker) failed(ctx context.Context, d ecardbot.DeliveryDetail, err error) error {
	var le *lineapi.Error
	isLINE := errors.As(err, &le)
	switch {
	case isLINE && le.MonthlyLimit():
		w.metrics.sends.WithLabelValues("monthly_limit").Inc()
		w.metrics.monthlyLimit.Inc()
		w.log.Error("LINE monthly limit reached", "pause", w.cfg.PauseFor, "line_request_id", le.RequestID)
		if perr := w.limiter.Pause(ctx, w.cfg.PauseFor); perr != nil {
			w.log.Error("cannot pause LINE sending", "error", perr)
		}
		w.retry(ctx, d, err)
		w.onPaused(ctx, d)
		return errPaused
	case isLINE && le.RateLimited():
		w.metrics.sends.WithLabelValues("rate_limited").Inc()
		w.retry(ctx, d, err)
		return err
	case lineapi.IsRetryable(err) || ctx.Err() != nil:
		w.metrics.sends.WithLabelValues("retry").Inc()
		w.retry(ctx, d, err)
		return err
	}
	reason := err.Error()
	class := "internal"
	if isLINE && le.Status > 0 {
		class = http.StatusText(le.Status)
		if le.Message != "" {
			reason = le.Message
		}
	}
	return w.giveUp(ctx, d, err, reason, class)
}

func (w *Worker) onPaused(ctx context.Context, d ecardbot.DeliveryDetail) {
	if w.cfg.OnPaused != nil {
		w.cfg.OnPaused(ctx, d)
	}
}
