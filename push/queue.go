package push

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
)

// Queue names and task types. One queue per channel keeps a LINE outage from holding up e-mail.
// Worker serves QueueLINE and EmailWorker QueueEmail. asynq has no
// key prefix, so the queue's real name is the kv prefix plus these (Queue): two deployments, or
// two tests, sharing one Redis then never take each other's tasks.
const (
	QueueLINE     = "line"
	TaskLINEBatch = "delivery:line:batch"
	QueueEmail    = "email"
	TaskEmail     = "delivery:email"
	maxRetry      = 100000          // the 23-hour window, not a count, ends retrying
	taskTimeout   = 5 * time.Minute // one attempt, limiter wait included
	DefaultRetry  = 23 * time.Hour  // inside LINE's 24 h memory of retry keys
	// lineBatch is the most LINE deliveries the relay puts in one task. A task costs three
	// Redis scripts (enqueue, dequeue, done) and its worker one database read, whatever its
	// size; at the push rate those, per delivery, were most of the cost of a push.
	lineBatch = 25
)

// task is an asynq task with the ID and queue that make enqueueing it idempotent.
type task struct {
	id, queue string
	t         *asynq.Task
	opts      []asynq.Option
}

// newEmailTask is the task of one e-mail delivery; its payload and its asynq task ID are the
// delivery's ID, which makes enqueueing it idempotent.
func newEmailTask(prefix, id string) task {
	return newQueued(Queue(prefix, QueueEmail), id, asynq.NewTask(TaskEmail, []byte(id)))
}

// newBatchTask is the task of a batch of LINE deliveries: the payload lists their IDs, comma
// separated, and the task ID is a hash of that list and of retryOf, the task whose failed
// deliveries it retries ("" for the relay's batches). The relay reads pending deliveries in a
// fixed order, so after a crash between enqueueing and marking them queued it makes the same
// batches again, and asynq refuses them; a batch of other deliveries is a task of its own, so
// no delivery is marked queued without a task that holds it. A delivery that ends up in two
// batches is skipped by the second once sent, and answered 409 by LINE if both push it at once.
func newBatchTask(prefix, retryOf string, ids []string) task {
	list := strings.Join(ids, ",")
	id := "batch:" + uuid.NewSHA1(uuid.NameSpaceOID, []byte(retryOf+"\n"+list)).String()
	return newQueued(Queue(prefix, QueueLINE), id, asynq.NewTask(TaskLINEBatch, []byte(list)))
}

func newQueued(queue, id string, t *asynq.Task) task {
	return task{id: id, queue: queue, t: t, opts: []asynq.Option{
		asynq.TaskID(id), asynq.Queue(queue), asynq.MaxRetry(maxRetry), asynq.Timeout(taskTimeout),
	}}
}

// enqueuer puts tasks in the queue, each unless it is there already.
type enqueuer struct {
	client *asynq.Client
	insp   *asynq.Inspector
}

func newEnqueuer(rdb *redis.Client) enqueuer {
	return enqueuer{client: asynq.NewClientFromRedisClient(rdb), insp: asynq.NewInspectorFromRedisClient(rdb)}
}

// enqueue enqueues t, with opts added to its own, unless a task with its ID is waiting or
// running. A task that asynq kept after it ended (archived: dead-lettered or out of retries)
// holds the task ID, so a replayed delivery's old task is deleted and a new one enqueued in its
// place.
func (e enqueuer) enqueue(ctx context.Context, t task, opts ...asynq.Option) error {
	opts = append(slices.Clip(t.opts), opts...)
	_, err := e.client.EnqueueContext(ctx, t.t, opts...)
	if !errors.Is(err, asynq.ErrTaskIDConflict) {
		if err != nil {
			return fmt.Errorf("enqueue task %s: %w", t.id, err)
		}
		return nil
	}
	info, err := e.insp.GetTaskInfo(t.queue, t.id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound):
		// It ended in between: enqueue afresh below.
	case err != nil:
		return fmt.Errorf("inspect task %s: %w", t.id, err)
	case info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted:
		return nil // still waiting or running: the same deliveries, already queued
	}
	if err := e.insp.DeleteTask(t.queue, t.id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		return fmt.Errorf("delete ended task %s: %w", t.id, err)
	}
	if _, err := e.client.EnqueueContext(ctx, t.t, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue task %s: %w", t.id, err)
	}
	return nil
}

// Queue returns the asynq queue name of queue (QueueLINE or QueueEmail) under the kv prefix.
func Queue(prefix, queue string) string { return prefix + queue }

// Backoff is a capped exponential backoff with jitter: Base·2ⁿ, at most Max, then a random
// half to whole of it, so workers that failed together do not retry together.
type Backoff struct {
	Base time.Duration // first delay; zero means 1 s
	Max  time.Duration // cap; zero means 10 min
}

// Delay returns the delay before retry n (0 for the first retry).
func (b Backoff) Delay(n int) time.Duration {
	base, maxd := b.Base, b.Max
	if base <= 0 {
		base = time.Second
	}
	if maxd <= 0 {
		maxd = 10 * time.Minute
	}
	d := maxd
	if n < 40 {
		if x := base << n; x > 0 && x < maxd {
			d = x
		}
	}
	return d/2 + rand.N(d/2+1)
}

// ErrPermanent, returned (wrapped) by a task handler, dead-letters the task at once instead of
// retrying it. It is asynq's SkipRetry.
var ErrPermanent = asynq.SkipRetry

// errPaused is returned while LINE sending is paused; the task waits for PauseRetry, not a
// backoff, and the attempt does not count as a failure.
var errPaused = errors.New("LINE sending paused: monthly limit")

// retryDelayFunc is asynq's RetryDelayFunc: the backoff, or pauseRetry while paused.
func retryDelayFunc(b Backoff, pauseRetry time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		if errors.Is(err, errPaused) {
			return pauseRetry
		}
		return b.Delay(n)
	}
}

// Metrics are one channel's push metrics. The LINE and the e-mail workers register the same
// names, told apart by a constant channel label, so dashboards sum or split them as they like.
type Metrics struct {
	sends        *prometheus.CounterVec
	limiterWait  prometheus.Histogram
	retries      prometheus.Counter
	deadLetters  *prometheus.CounterVec
	monthlyLimit prometheus.Counter
	dropped      *prometheus.CounterVec
}

// NewMetrics registers channel's metrics with reg; nil reg means unregistered (tests,
// commands). The monthly-limit counter exists for LINE only.
func NewMetrics(reg prometheus.Registerer, channel ecardbot.Channel) *Metrics {
	ch := prometheus.Labels{"channel": string(channel)}
	m := &Metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecardbot_push_sends_total", ConstLabels: ch,
			Help: "Send attempts by channel and outcome (sent, duplicate, rate_limited, monthly_limit, retry, dead).",
		}, []string{"status"}),
		limiterWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ecardbot_push_limiter_wait_seconds", ConstLabels: ch,
			Help:    "Time a worker waited for its turn in its channel's global rate limit.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30},
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ecardbot_push_retries_total", ConstLabels: ch, Help: "Failed delivery attempts that will be retried.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecardbot_push_dead_letters_total", ConstLabels: ch, Help: "Deliveries given up, by reason class.",
		}, []string{"reason"}),
		monthlyLimit: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ecardbot_push_line_monthly_limit_total", Help: "Times LINE answered that the monthly message quota is used up (alert on any increase).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecardbot_push_dropped_total", ConstLabels: ch,
			Help: "Tasks dropped without sending: already handled, or guardian unreachable on the channel.",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.sends, m.limiterWait, m.retries, m.deadLetters, m.dropped)
		if channel == ecardbot.ChannelLINE {
			reg.MustRegister(m.monthlyLimit)
		}
	}
	return m
}

// registerQueueDepth exports the depth of a push queue (name: QueueLINE or QueueEmail; queue:
// its asynq name), read from Redis at each scrape.
func registerQueueDepth(reg prometheus.Registerer, insp *asynq.Inspector, name, queue string) {
	if reg == nil {
		return
	}
	for _, state := range []string{"pending", "active", "scheduled", "retry", "archived"} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ecardbot_push_queue_depth", Help: "Tasks in a push queue, by queue and state.",
			ConstLabels: prometheus.Labels{"queue": name, "state": state},
		}, func() float64 {
			q, err := insp.GetQueueInfo(queue)
			if err != nil {
				return 0
			}
			switch state {
			case "pending":
				return float64(q.Pending)
			case "active":
				return float64(q.Active)
			case "scheduled":
				return float64(q.Scheduled)
			case "retry":
				return float64(q.Retry)
			default:
				return float64(q.Archived)
			}
		}))
	}
}
