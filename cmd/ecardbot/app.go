package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/bot"
	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/kv"
	"github.com/taipei-doit/ecardbot/lineapi"
	"github.com/taipei-doit/ecardbot/linking"
	"github.com/taipei-doit/ecardbot/push"
	"github.com/taipei-doit/ecardbot/schedule"
	"github.com/taipei-doit/ecardbot/school"
	"github.com/taipei-doit/ecardbot/server"
	"github.com/taipei-doit/ecardbot/settings"
	"github.com/taipei-doit/ecardbot/store"
	"github.com/taipei-doit/ecardbot/web"
)

// Main is the whole program: `serve` and `sandbox` run it, and end-to-end tests run it on ":0".
type Main struct {
	Config config.Config
	Logger *slog.Logger
	// RedisPrefix is the key prefix in Redis. Empty means kv.DefaultPrefix; tests set their own
	// so that they share one Redis without seeing each other's keys.
	RedisPrefix string
	// Registry collects the metrics served at /metrics. Nil means a new one with the Go and
	// process collectors.
	Registry *prometheus.Registry
	// Addr is the address the HTTP server actually bound, set by Run.
	Addr string
	// MailTLSConfig is the TLS configuration of the e-mail workers' SMTP connections. Nil
	// verifies the relay against the system roots; the sandbox and tests trust their mailbox's
	// certificate with it.
	MailTLSConfig *tls.Config
	// SchedulerClock is the scheduler role's clock. Nil means the system clock; tests pass a
	// simulated one to know when a pass is done.
	SchedulerClock schedule.Clock

	db            *store.DB
	kv            *kv.Client
	bot           *bot.Bot
	http          *http.Server
	stopScheduler func() // set by Run with the scheduler role
	stopWorker    func() // set by Run with the worker role
}

// shutdownTimeout bounds each stage of Close; a Kubernetes pod gets 30 s between SIGTERM and
// SIGKILL by default.
const shutdownTimeout = 20 * time.Second

// Run opens storage and Redis, migrates, wires the services and starts serving. It returns once
// the listener is bound; Close stops everything. On error everything opened so far is closed.
func (m *Main) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	cfg, log := m.Config, m.Logger
	if m.Registry == nil {
		m.Registry = prometheus.NewRegistry()
		m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	if m.db, err = store.Open(ctx, store.Config{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: log}); err != nil {
		return err
	}
	if err := m.db.Migrate(ctx); err != nil {
		return err
	}
	if m.kv, err = kv.Open(ctx, kv.Config{URL: cfg.RedisURL, Prefix: m.RedisPrefix, Logger: log}); err != nil {
		return err
	}
	line, err := lineapi.New(lineapi.Config{ChannelToken: cfg.LineChannelToken, APIURL: cfg.LineAPIURL, Registerer: m.Registry})
	if err != nil {
		return err
	}
	mailer, err := m.newMailer()
	if err != nil {
		return err
	}
	engine, err := server.New(server.Config{
		Logger:   log,
		Registry: m.Registry,
		Ready:    map[string]server.Check{"database": m.db.Ping, "redis": m.kv.Ping},
	})
	if err != nil {
		return err
	}
	if cfg.Roles.Web {
		if err := m.registerWeb(engine, line, mailer); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on ECARDBOT_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	m.Addr = ln.Addr().String()
	m.http = &http.Server{
		Handler:           engine,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "component", "main", "error", err)
		}
	}()
	if cfg.Roles.Scheduler {
		m.stopScheduler = m.startScheduler()
	}
	if cfg.Roles.Worker {
		if m.stopWorker, err = m.startWorker(line, mailer); err != nil {
			return err
		}
	}
	log.Info("serving", "component", "main", "addr", m.Addr, "roles", cfg.Roles.String(),
		"database", m.db.Dialect(), "embedded_redis", m.kv.Embedded())
	return nil
}

// Close stops in reverse order: HTTP first (in-flight requests finish), then the events the
// webhook handed over, then the scheduler, then Redis and the database. It is safe on a partly
// started Main.
func (m *Main) Close() error {
	var errs []error
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		errs = append(errs, m.http.Shutdown(ctx))
		cancel()
	}
	if m.bot != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if err := m.bot.Drain(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain webhook events: %w", err))
		}
		cancel()
	}
	if m.stopScheduler != nil {
		m.stopScheduler()
		m.stopScheduler = nil
	}
	if m.stopWorker != nil {
		// Before Redis and the database: asynq's Shutdown waits for the running pushes, which
		// still need both to record their outcome.
		m.stopWorker()
		m.stopWorker = nil
	}
	if m.kv != nil {
		errs = append(errs, m.kv.Close())
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	return errors.Join(errs...)
}

// newMailer is the SMTP client the e-mail workers and the settings pages' confirmation mails
// share; nil when ECARDBOT_SMTP_URL is empty, which switches the e-mail channel off.
func (m *Main) newMailer() (*push.Mailer, error) {
	if m.Config.SMTPURL == "" {
		return nil, nil
	}
	return push.NewMailer(push.MailerConfig{URL: m.Config.SMTPURL, From: m.Config.MailFrom, TLSConfig: m.MailTLSConfig, Logger: m.Logger})
}

// registerWeb adds what a replica with the web role serves: the LINE webhook, the gate API, the
// linking round trip and the settings pages.
func (m *Main) registerWeb(engine *gin.Engine, line *lineapi.Client, mailer *push.Mailer) error {
	cfg, log := m.Config, m.Logger
	guardians := store.NewGuardianService(m.db)
	pages, err := settings.New(settings.Config{PublicURL: cfg.PublicURL, SecretKey: []byte(cfg.SecretKey), Location: cfg.Timezone}, settings.Deps{
		Guardians: guardians,
		Settings:  store.NewSettingsService(m.db),
		Mailer:    confirmationSender(mailer),
		Logger:    log,
	})
	if err != nil {
		return err
	}
	if cfg.TaipeiPassClientID == "" || cfg.TaipeiPassClientSecret == "" {
		return errors.New("ECARDBOT_TAIPEIPASS_CLIENT_ID and ECARDBOT_TAIPEIPASS_CLIENT_SECRET: required by the web role, which links parents' Taipei Card accounts")
	}
	links, err := linking.New(linking.Config{
		PublicURL:     cfg.PublicURL,
		LineAccessURL: cfg.LineAccessURL,
		TaipeiPassURL: cfg.TaipeiPassURL,
		ClientID:      cfg.TaipeiPassClientID,
		ClientSecret:  cfg.TaipeiPassClientSecret,
		Scopes:        cfg.TaipeiPassScopes,
		SecretKey:     []byte(cfg.SecretKey),
	}, linking.Deps{Store: store.NewLinkStore(m.db), Guardians: guardians, Logger: log})
	if err != nil {
		return err
	}
	m.bot, err = bot.New(bot.Config{ChannelSecret: cfg.LineChannelSecret}, bot.Deps{
		Users:     store.NewLineUserService(m.db),
		Claims:    kv.NewEventClaims(m.kv, 0),
		LINE:      line,
		Logger:    log,
		Registry:  m.Registry,
		Guardians: guardians,
		Linker:    links,
		Settings:  pages,
	})
	if err != nil {
		return err
	}
	// Debounce and staleness keep the store's defaults (store.DefaultDebounce,
	// store.DefaultStaleness); the school day's zone is the environment's, the same one the API
	// reads leave dates in.
	gate := store.NewGateService(m.db, store.GateConfig{Location: cfg.Timezone})
	school.NewAPI(school.APIConfig{SecretKey: []byte(cfg.SecretKey), Location: cfg.Timezone}, gate, log, m.Registry).Register(engine)
	m.bot.Register(engine)
	links.Register(engine)
	pages.Register(engine)
	web.Register(engine)
	return nil
}

// confirmationSender keeps a nil *push.Mailer from becoming a non-nil interface, which the
// settings pages would take for a working e-mail channel.
func confirmationSender(mailer *push.Mailer) settings.ConfirmationSender {
	if mailer == nil {
		return nil
	}
	return mailer
}

// startWorker starts the push pipeline on the kv client's Redis: the outbox relay, the LINE
// workers (cfg.Workers at once, cfg.LinePushRate a second across all replicas) and, when
// cfg.SMTPURL is set, the e-mail workers (cfg.MailRate a second) with the e-mail fallback of the
// LINE monthly limit. It returns the function that stops them, the relay first so nothing new is
// queued while workers drain.
func (m *Main) startWorker(line *lineapi.Client, mailer *push.Mailer) (func(), error) {
	cfg, log := m.Config, m.Logger
	deliveries := store.NewDeliveryService(m.db)
	var email *push.EmailWorker
	var onPaused func(context.Context, ecardbot.DeliveryDetail)
	if mailer != nil {
		email = push.NewEmailWorker(push.EmailWorkerConfig{
			Deliveries: deliveries,
			Mailer:     mailer,
			Redis:      m.kv.Redis(),
			Prefix:     m.kv.Prefix(),
			Rate:       cfg.MailRate,
			Logger:     log,
			Registerer: m.Registry,
		})
		// Only with e-mail workers running: a replacement nobody sends would leave the parent
		// with nothing.
		onPaused = push.EmailFallback(deliveries, log)
	}
	worker := push.NewWorker(push.WorkerConfig{
		Deliveries:  deliveries,
		LINE:        line,
		Redis:       m.kv.Redis(),
		Prefix:      m.kv.Prefix(),
		Rate:        cfg.LinePushRate,
		Concurrency: cfg.Workers,
		Logger:      log,
		Registerer:  m.Registry,
		OnPaused:    onPaused,
	})
	if err := worker.Start(); err != nil {
		return nil, err
	}
	if email != nil {
		if err := email.Start(); err != nil {
			worker.Shutdown()
			return nil, err
		}
	}
	relay := push.NewRelay(push.RelayConfig{Deliveries: deliveries, Redis: m.kv.Redis(), Prefix: m.kv.Prefix(), Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
		worker.Shutdown()
		if email != nil {
			email.Shutdown()
		}
	}, nil
}
