package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecardbot_http_requests_total",
			Help: "HTTP requests served, by route and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ecardbot_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 5},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// logRequests logs one line per request with the route pattern and never the raw path or
// query, which can carry link tokens and other secrets.
func logRequests(logger *slog.Logger, m *httpMetrics) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		status := c.Writer.Status()
		m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(route).Observe(elapsed.Seconds())
		level := slog.LevelDebug
		if route != "/healthz" && route != "/readyz" && route != "/metrics" {
			level = slog.LevelInfo
		}
		logger.Log(c.Request.Context(), level, "http request",
			"component", "http", "method", c.Request.Method, "route", route,
			"status", status, "duration_ms", float64(elapsed.Microseconds())/1000,
			"client_ip", c.ClientIP())
	}
}

// recoverPanics turns a panic in a handler into a 500 and one Error log with the stack, so a
// bug in one request never takes the replica down.
func recoverPanics(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.Error("handler panicked", "component", "http", "route", c.FullPath(),
					"panic", fmt.Sprintf("%T", v), "stack", string(debug.Stack()))
				c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "Internal error."})
			}
		}()
		c.Next()
	}
}
