// Package server is the HTTP front of ecardbot: one gin engine with our own logging and
// recovery, the single error writer, and the operations endpoints. Feature packages add their
// routes to the engine it builds.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taipei-doit/ecardbot"
)

func init() {
	// gin's mode is process-wide; setting it once here keeps it out of every caller and test.
	gin.SetMode(gin.ReleaseMode)
}

// Check reports whether a dependency the service needs is usable. /readyz runs every check.
type Check func(ctx context.Context) error

// Config is what the engine needs from the program.
type Config struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry // served at /metrics; it also receives the HTTP metrics
	// Ready names the checks behind /readyz, e.g. "database" and "redis".
	Ready map[string]Check
	// TrustedProxies are the proxies whose X-Forwarded-For is believed. Nil trusts none, so a
	// client cannot forge the address that logs and rate limits see.
	TrustedProxies []string
}

// New returns an engine with logging, recovery, /healthz, /readyz and /metrics.
func New(cfg Config) (*gin.Engine, error) {
	e := gin.New()
	if err := e.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	e.HandleMethodNotAllowed = true
	m := newHTTPMetrics(cfg.Registry)
	e.Use(logRequests(cfg.Logger, m), recoverPanics(cfg.Logger))
	e.NoRoute(func(c *gin.Context) { WriteError(c, cfg.Logger, ecardbot.Errorf(ecardbot.ENOTFOUND, "Not found.")) })
	e.NoMethod(func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, gin.H{"error": "Method not allowed."})
	})

	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", readyz(cfg.Logger, cfg.Ready))
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{Registry: cfg.Registry})))
	return e, nil
}

// readyz answers 503 naming the failing dependencies, so a load balancer stops sending traffic
// to a replica that cannot reach PostgreSQL or Redis, while /healthz keeps it alive.
func readyz(logger *slog.Logger, checks map[string]Check) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		status, result := http.StatusOK, gin.H{}
		for name, check := range checks {
			if err := check(ctx); err != nil {
				logger.Warn("readiness check failed", "component", "server", "check", name, "error", err)
				status, result[name] = http.StatusServiceUnavailable, "unavailable"
				continue
			}
			result[name] = "ok"
		}
		c.JSON(status, result)
	}
}

// HandlerFunc is a gin handler that returns its error instead of writing it, so that one place
// chooses the status and the log level.
type HandlerFunc func(c *gin.Context) error

// Wrap adapts h to gin, writing any error it returns with WriteError.
func Wrap(logger *slog.Logger, h HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			WriteError(c, logger, err)
		}
	}
}

var statusOf = map[string]int{
	ecardbot.EINVALID:      http.StatusBadRequest,
	ecardbot.EUNAUTHORIZED: http.StatusUnauthorized,
	ecardbot.EFORBIDDEN:    http.StatusForbidden,
	ecardbot.ENOTFOUND:     http.StatusNotFound,
	ecardbot.ECONFLICT:     http.StatusConflict,
	ecardbot.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	ecardbot.ERATELIMITED:  http.StatusTooManyRequests,
	ecardbot.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// WriteError is the one place that turns an error into a response. The client sees only the
// error's safe message; internal errors are logged once, at Error, and shown generically.
func WriteError(c *gin.Context, logger *slog.Logger, err error) {
	code := ecardbot.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		status, err = http.StatusRequestEntityTooLarge, ecardbot.Errorf(ecardbot.ETOOLARGE, "Request body too large.")
	}
	if status >= 500 {
		logger.Error("request failed", "component", "server", "route", c.FullPath(), "status", status, "error", err)
	} else {
		logger.Debug("request refused", "component", "server", "route", c.FullPath(), "status", status, "code", code)
	}
	c.AbortWithStatusJSON(status, gin.H{"error": ecardbot.ErrorMessage(err)})
}
