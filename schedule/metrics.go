package schedule

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sweeps        *prometheus.CounterVec
	absent        prometheus.Counter
	retentionRuns *prometheus.CounterVec
	retentionRows *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecardbot_sweeps_total",
			Help: "未到校 sweeps this scheduler asked for, by outcome: swept, no_school, already_swept (by another replica or earlier), error.",
		}, []string{"outcome"}),
		absent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ecardbot_sweep_absent_notices_total",
			Help: "未到校 notices created by this scheduler's sweeps.",
		}),
		retentionRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecardbot_retention_runs_total",
			Help: "Retention job runs, by outcome: ok, error.",
		}, []string{"outcome"}),
		retentionRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecardbot_retention_deleted_rows_total",
			Help: "Rows deleted by the retention job, by table.",
		}, []string{"table"}),
	}
	// Series exist from the start, so an alert on errors works before the first one.
	for _, o := range []string{"swept", "no_school", "already_swept", "error"} {
		m.sweeps.WithLabelValues(o)
	}
	for _, o := range []string{"ok", "error"} {
		m.retentionRuns.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.sweeps, m.absent, m.retentionRuns, m.retentionRows)
	}
	return m
}
