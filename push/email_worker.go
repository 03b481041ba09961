package push

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
)

// EmailWorkerConfig configures an EmailWorker.
type EmailWorkerConfig struct {
	Deliveries ecardbot.DeliveryService
	Mailer     *Mailer
	Redis      *redis.Client // the kv client's; asynq and the limiter share it
	Prefix     string        // the kv prefix: of the limiter's keys and of the queue names
	// Rate is e-mails per second, all e-mail workers of all replicas together, in a limiter of
	// its own (ECARDBOT_MAIL_RATE); below 1 means 1.
	Rate int
	// Concurrency is the number of e-mails this process sends at once; zero means 4.
	Concurrency int
	Logger      *slog.Logger          // nil discards
	Registerer  prometheus.Registerer // nil: no metrics
	// RetryWindow is how long after its creation a delivery may still be tried; zero means 23 h.
	RetryWindow time.Duration
	Backoff     Backoff
	// PollInterval is how often idle workers and the retry forwarder look at Redis; zero
	// means idlePoll and retryPoll. Tests shorten both.
	PollInterval time.Duration
	Now          func() time.Time // nil means time.Now
}

// EmailWorker runs the queue's e-mail tasks: the same handling as Worker's for LINE (one
// delivery per task, dropped once done or unreachable, retried with backoff for 23 hours, dead
// letters), with its own asynq server, concurrency and limiter, so a slow relay never holds up
// LINE nor LINE's backlog e-mail.
type EmailWorker struct {
	worker
	mailer  *Mailer
	limiter *Limiter
}

// NewEmailWorker returns an e-mail worker; Start starts it and Shutdown stops it.
func NewEmailWorker(cfg EmailWorkerConfig) *EmailWorker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	return &EmailWorker{
		worker: newWorker(workerConfig{
			channel: ecardbot.ChannelEmail, queue: QueueEmail, deliveries: cfg.Deliveries,
			redis: cfg.Redis, prefix: cfg.Prefix, concurrency: cfg.Concurrency,
			logger: cfg.Logger, registerer: cfg.Registerer, retryWindow: cfg.RetryWindow,
			backoff: cfg.Backoff, pollInterval: cfg.PollInterval, now: cfg.Now,
		}),
		mailer:  cfg.Mailer,
		limiter: newLimiter(cfg.Redis, cfg.Prefix, ecardbot.ChannelEmail, cfg.Rate),
	}
}

// Start starts processing tasks in the background.
func (w *EmailWorker) Start() error { return w.start(TaskEmail, false, w.send) }

// send mails one delivery. SMTP has no retry key: a retry after a lost acknowledgement may
// deliver the mail twice, and the Message-ID, the same on every attempt, lets mail systems and
// readers see that it is one notice.
func (w *EmailWorker) send(ctx context.Context, d ecardbot.DeliveryDetail) error {
	if err := w.wait(ctx, w.limiter); err != nil {
		return err
	}
	err := w.mailer.Send(ctx, d)
	if err == nil {
		w.metrics.sends.WithLabelValues("sent").Inc()
		return w.deliveries.MarkSent(ctx, d.ID, "")
	}
	if !IsPermanentMailError(err) {
		w.metrics.sends.WithLabelValues("retry").Inc()
		w.retry(ctx, d, err)
		return err
	}
	class := "invalid"
	var me *MailError
	if errors.As(err, &me) && me.Code != 0 {
		class = "SMTP " + strconv.Itoa(me.Code)
	}
	return w.giveUp(ctx, d, err, err.Error(), class)
}

// EmailFallback returns the WorkerConfig.OnPaused hook of the LINE monthly limit: each LINE
// delivery held back by the pause is replaced by an e-mail delivery of the same notice when its
// guardian has a confirmed address (DeliveryService.ReplaceWithEmail); the relay then queues it
// for the e-mail workers, and the LINE task, finding its delivery cancelled, ends. Deliveries
// of guardians without a confirmed address stay queued and go out on LINE after the pause.
// Wire it only where an EmailWorker runs, or the replacements would wait unsent.
func EmailFallback(deliveries ecardbot.DeliveryService, logger *slog.Logger) func(context.Context, ecardbot.DeliveryDetail) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("component", "push.fallback")
	return func(ctx context.Context, d ecardbot.DeliveryDetail) {
		emailID, replaced, err := deliveries.ReplaceWithEmail(ctx, d.ID)
		switch {
		case err != nil:
			// The LINE delivery stays queued and comes back after PauseRetry: the next try may work.
			log.Error("cannot replace LINE delivery by e-mail", "delivery_id", d.ID, "error", err)
		case replaced:
			log.Info("LINE delivery replaced by e-mail", "delivery_id", d.ID, "email_delivery_id", emailID, "guardian_id", d.GuardianID)
		}
	}
}
