package lineapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts LINE API calls. A nil *metrics records nothing.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	requests, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ecardbot_line_api_requests_total",
		Help: "LINE Messaging API calls by endpoint and HTTP status (\"error\" when no response arrived).",
	}, []string{"endpoint", "status"}))
	if err != nil {
		return nil, err
	}
	duration, err := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ecardbot_line_api_request_duration_seconds",
		Help:    "Duration of LINE Messaging API calls, including failed ones.",
		Buckets: prometheus.DefBuckets,
	}, []string{"endpoint"}))
	if err != nil {
		return nil, err
	}
	return &metrics{requests: requests, duration: duration}, nil
}

// register registers c, or returns the identical collector registered before, so several
// Clients (e.g. in one test binary) can share a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		var zero C
		return zero, err
	}
	return c, nil
}

func (m *metrics) observe(endpoint string, res *http.Response, d time.Duration) {
	if m == nil {
		return
	}
	status := "error"
	if res != nil {
		status = strconv.Itoa(res.StatusCode)
	}
	m.requests.WithLabelValues(endpoint, status).Inc()
	m.duration.WithLabelValues(endpoint).Observe(d.Seconds())
}
