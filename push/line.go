package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
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
	// Concurrency is the number of tasks this process runs at once; zero means 10.
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
	// keeps asynq's defaults (1 s and 5 s). Tests shorten it.
	PollInterval time.Duration
	// OnPaused, when set, is called for every LINE delivery held back because LINE sending is
	// paused (the monthly limit). It is the hook for the e-mail fallback; the worker itself
	// enqueues nothing else.
	OnPaused func(ctx context.Context, d ecardbot.DeliveryDetail)
	// Message builds the LINE message; nil means LINEMessage.
	Message func(ecardbot.DeliveryDetail) messaging_api.MessageInterface
	Now     func() time.Time // nil means time.Now
}

// Worker runs the queue's LINE tasks: an asynq server on the kv client's Redis.
type Worker struct {
	cfg     WorkerConfig
	srv     *asynq.Server
	limiter *Limiter
	metrics *Metrics
	log     *slog.Logger
}

// NewWorker returns a worker; Start starts it and Shutdown stops it.
func NewWorker(cfg WorkerConfig) *Worker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 10
	}
	if cfg.RetryWindow <= 0 {
		cfg.RetryWindow = DefaultRetry
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Worker{
		cfg:     cfg,
		limiter: NewLimiter(cfg.Redis, cfg.Prefix, cfg.Rate),
		metrics: NewMetrics(cfg.Registerer),
		log:     log.With("component", "push.worker"),
	}
	w.srv = asynq.NewServerFromRedisClient(cfg.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{Queue(cfg.Prefix, QueueLINE): 1},
		RetryDelayFunc:           retryDelayFunc(cfg.Backoff, cfg.PauseRetry),
		IsFailure:                func(err error) bool { return !errors.Is(err, errPaused) },
		TaskCheckInterval:        cfg.PollInterval,
		DelayedTaskCheckInterval: cfg.PollInterval,
		ShutdownTimeout:          30 * time.Second,
		Logger:                   asynqLogger{log.With("component", "asynq")},
		LogLevel:                 asynq.WarnLevel,
	})
	registerQueueDepth(cfg.Registerer, asynq.NewInspectorFromRedisClient(cfg.Redis), Queue(cfg.Prefix, QueueLINE))
	return w
}

// Limiter returns the worker's limiter, e.g. to end a pause.
func (w *Worker) Limiter() *Limiter { return w.limiter }

// Start starts processing tasks in the background.
func (w *Worker) Start() error {
	mux := asynq.NewServeMux()
	mux.HandleFunc(TaskLINE, w.handleLINE)
	if err := w.srv.Start(mux); err != nil {
		return fmt.Errorf("start push workers: %w", err)
	}
	return nil
}

// Shutdown stops taking tasks and waits (up to 30 s) for the running ones; a task cut short
// goes back to the queue and runs again with the same retry key.
func (w *Worker) Shutdown() { w.srv.Shutdown() }

// handleLINE sends one delivery to LINE. Its error tells asynq what to do: nil done, SkipRetry
// given up (the delivery is dead in the database), anything else retry after the backoff.
func (w *Worker) handleLINE(ctx context.Context, t *asynq.Task) error {
	id := string(t.Payload())
	key, err := uuid.Parse(id)
	if err != nil {
		return fmt.Errorf("delivery id %q: %w", id, ErrPermanent)
	}
	d, err := w.cfg.Deliveries.Detail(ctx, id)
	if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
		w.metrics.dropped.WithLabelValues("gone").Inc()
		return nil // the guardian was removed, and their deliveries with them
	}
	if err != nil {
		return err
	}
	if d.State != ecardbot.DeliveryPending && d.State != ecardbot.DeliveryQueued {
		w.metrics.dropped.WithLabelValues("done").Inc()
		return nil // a duplicate task, or already sent, dead or cancelled
	}
	if d.Channel != ecardbot.ChannelLINE {
		return fmt.Errorf("delivery %s is for %s, not LINE: %w", id, d.Channel, ErrPermanent)
	}
	if !d.Reachable || d.LineUserID == "" {
		// Dead rather than cancelled so an operator can replay it once the guardian follows the
		// bot again; the task itself ends here (nil), leaving nothing archived in Redis.
		w.metrics.dropped.WithLabelValues("unreachable").Inc()
		if err := w.dead(ctx, d, "unreachable", "unreachable"); !errors.Is(err, ErrPermanent) {
			return err
		}
		return nil
	}
	if w.cfg.Now().After(d.CreatedAt.Add(w.cfg.RetryWindow)) {
		return w.dead(ctx, d, "retry window (23 h) exceeded", "window")
	}
	if paused, err := w.limiter.Paused(ctx); err != nil {
		return err
	} else if paused {
		w.onPaused(ctx, d)
		return errPaused
	}
	waited, err := w.limiter.Wait(ctx)
	w.metrics.limiterWait.Observe(waited.Seconds())
	if err != nil {
		return err
	}

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
		return w.cfg.Deliveries.MarkSent(ctx, id, reqID)
	}
	return w.failed(ctx, d, err)
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
	w.metrics.sends.WithLabelValues("dead").Inc()
	reason := err.Error()
	class := "internal"
	if isLINE && le.Status > 0 {
		class = http.StatusText(le.Status)
		if le.Message != "" {
			reason = le.Message
		}
	}
	if rerr := w.cfg.Deliveries.MarkRetry(ctx, d.ID, err.Error()); rerr != nil {
		return rerr
	}
	return w.dead(ctx, d, reason, class)
}

// retry counts the failed attempt in the database. A failure to record it is only logged: the
// task is retried either way.
func (w *Worker) retry(ctx context.Context, d ecardbot.DeliveryDetail, err error) {
	w.metrics.retries.Inc()
	if rerr := w.cfg.Deliveries.MarkRetry(ctx, d.ID, err.Error()); rerr != nil {
		w.log.Warn("cannot record failed attempt", "delivery_id", d.ID, "error", rerr)
	}
}

// dead marks the delivery dead and ends its task.
func (w *Worker) dead(ctx context.Context, d ecardbot.DeliveryDetail, reason, class string) error {
	if err := w.cfg.Deliveries.MarkDead(ctx, d.ID, reason); err != nil {
		return err
	}
	w.metrics.deadLetters.WithLabelValues(class).Inc()
	w.log.Warn("delivery dead", "delivery_id", d.ID, "reason", reason, "attempt", d.Attempts)
	return fmt.Errorf("delivery %s dead: %s: %w", d.ID, reason, ErrPermanent)
}

func (w *Worker) onPaused(ctx context.Context, d ecardbot.DeliveryDetail) {
	if w.cfg.OnPaused != nil {
		w.cfg.OnPaused(ctx, d)
	}
}

// asynqLogger routes asynq's own logs to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
