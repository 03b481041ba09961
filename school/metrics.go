package school

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taipei-doit/ecardbot"
)

type metrics struct {
	events  *prometheus.CounterVec
	batches *prometheus.CounterVec
	leaves  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecardbot_gate_events_total",
			Help: "Gate events received in answered batches, by outcome: accepted, duplicate, rejected.",
		}, []string{"outcome"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecardbot_gate_batches_total",
			Help: "Gate event requests, by outcome: ok, unauthorized, invalid, too_large, unavailable, error.",
		}, []string{"outcome"}),
		leaves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecardbot_leave_requests_total",
			Help: "Leave record requests, by outcome: ok, unauthorized, invalid, not_found, unavailable, error.",
		}, []string{"outcome"}),
	}
	// Series exist from the start, so a rate() or an alert on them works before the first event.
	for _, o := range []string{"accepted", "duplicate", "rejected"} {
		m.events.WithLabelValues(o)
	}
	for _, o := range []string{"ok", "unauthorized", "invalid", "too_large", "unavailable", "error"} {
		m.batches.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.events, m.batches, m.leaves)
	}
	return m
}

// batchOutcome is the metric label of a request's result.
func batchOutcome(err error) string {
	switch ecardbot.ErrorCode(err) {
	case "":
		return "ok"
	case ecardbot.EUNAUTHORIZED:
		return "unauthorized"
	case ecardbot.EINVALID:
		return "invalid"
	case ecardbot.ETOOLARGE:
		return "too_large"
	case ecardbot.ENOTFOUND:
		return "not_found"
	case ecardbot.EUNAVAILABLE:
		return "unavailable"
	}
	return "error"
}
