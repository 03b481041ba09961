// Package bot is the @taipei chat side: LINE's webhook, the dispatch of its events, and the
// replies the bot writes.
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/lineapi"
)

// Config tunes the webhook.
type Config struct {
	// ChannelSecret keys the X-Line-Signature HMAC. Required.
	ChannelSecret string
	// MaxBodyBytes caps a webhook body. Zero means 1 MiB, far above any batch LINE sends.
	MaxBodyBytes int64
	// AnswerWithin is how long the webhook waits for its events before answering 200 anyway.
	// LINE gives up after 2 s; zero means 1.5 s. Events still running go on in the background.
	AnswerWithin time.Duration
	// EventTimeout bounds the handling of one event, LINE calls included. Zero means 30 s.
	EventTimeout time.Duration
}

// Deps are the services the bot uses. All are required: New names the first one missing.
type Deps struct {
	Users    ecardbot.LineUserService
	Claims   ecardbot.EventClaimer
	LINE     *lineapi.Client
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Guardians tells whether a LINE user is linked.
	Guardians ecardbot.GuardianService
	// Linker completes and ends account links (package linking).
	Linker ecardbot.AccountLinker
	// Settings signs the links that open a linked parent's settings pages.
	Settings ecardbot.SettingsLinker
}

// Bot answers LINE's webhook.
type Bot struct {
	cfg       Config
	users     ecardbot.LineUserService
	claims    ecardbot.EventClaimer
	line      *lineapi.Client
	guardians ecardbot.GuardianService
	linker    ecardbot.AccountLinker
	settings  ecardbot.SettingsLinker
	log       *slog.Logger
	metrics   *metrics
	inflight  sync.WaitGroup // event handling that outlived its webhook request
}

// New returns a bot; Register mounts its webhook. It returns an error naming the first
// dependency of d that is missing, or when the channel secret is.
func New(cfg Config, d Deps) (*Bot, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	if cfg.ChannelSecret == "" {
		return nil, errors.New("bot: the channel secret is required")
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.AnswerWithin == 0 {
		cfg.AnswerWithin = 1500 * time.Millisecond
	}
	if cfg.EventTimeout == 0 {
		cfg.EventTimeout = 30 * time.Second
	}
	return &Bot{
		cfg:       cfg,
		users:     d.Users,
		claims:    d.Claims,
		line:      d.LINE,
		guardians: d.Guardians,
		linker:    d.Linker,
		settings:  d.Settings,
		log:       d.Logger.With("component", "bot"),
		metrics:   newMetrics(d.Registry),
	}, nil
}

// check returns an error naming the first dependency that is nil.
func (d Deps) check() error {
	for _, dep := range []struct {
		name    string
		missing bool
	}{
		{"Users", d.Users == nil},
		{"Claims", d.Claims == nil},
		{"LINE", d.LINE == nil},
		{"Logger", d.Logger == nil},
		{"Registry", d.Registry == nil},
		{"Guardians", d.Guardians == nil},
		{"Linker", d.Linker == nil},
		{"Settings", d.Settings == nil},
	} {
		if dep.missing {
			return fmt.Errorf("bot: Deps.%s is required", dep.name)
		}
	}
	return nil
}

// Register mounts POST /callback, the URL set as the channel's webhook in the LINE console.
func (b *Bot) Register(r gin.IRouter) {
	r.POST("/callback", b.callback)
}

// Drain waits until every event handed to the bot has been handled, or ctx ends. Call it after
// the HTTP server has stopped accepting requests.
func (b *Bot) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		b.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type metrics struct {
	requests *prometheus.CounterVec
	events   *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecardbot_webhook_requests_total",
			Help: "Webhook requests from LINE, by result (ok, bad_signature, malformed, too_large).",
		}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecardbot_webhook_events_total",
			Help: "Webhook events, by type and outcome (handled, duplicate, failed, ignored).",
		}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ecardbot_webhook_event_duration_seconds",
			Help:    "Time to handle one webhook event, LINE calls included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10),
		}),
	}
	reg.MustRegister(m.requests, m.events, m.duration)
	return m
}
