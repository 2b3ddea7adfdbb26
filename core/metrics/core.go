package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Core is the core process's own metrics: reloads and notify deliveries, and whatever else
// is registered on Registry (core's notify plugins, say). They are counted whether metrics
// are served or not; the runtime's collectors (RuntimeCollectors) are added by the caller
// that serves them.
type Core struct {
	Registry *prometheus.Registry

	reloads        *prometheus.CounterVec
	reloadTime     prometheus.Gauge
	reloadDuration prometheus.Gauge
	reloadOK       prometheus.Gauge
	notified       *prometheus.CounterVec
	notifyDuration *prometheus.HistogramVec
}

// NewCore makes core's registry with its collectors.
func NewCore() *Core {
	c := &Core{Registry: prometheus.NewRegistry(),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "reloads_total",
			Help: "Configuration reloads, by result: applied, refused (the file has errors; the running configuration stays), partial (a child could not apply it all)."},
			[]string{"result"}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "last_reload_timestamp_seconds",
			Help: "When the last reload began, as a Unix time (0: none since the start)."}),
		reloadDuration: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "last_reload_duration_seconds",
			Help: "How long the last reload took, from reading the files to the children's answers."}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "last_reload_success",
			Help: "1 when the last reload was applied in full (or there was none), 0 when it was refused or applied in part."}),
		notified: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "notify_deliveries_total",
			Help: "Deliveries of notify actions (scripts, vrrp_notify plugins, smtp_alert) by action and outcome: ok, failed, timeout, cancelled (at shutdown)."},
			[]string{"action", "outcome"}),
		notifyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "notify_duration_seconds",
			Help:    "How long each delivery of a notify action took, by action.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}},
			[]string{"action"}),
	}
	c.reloadOK.Set(1)
	for _, r := range []string{"applied", "refused", "partial"} {
		c.reloads.WithLabelValues(r) // present from the start, so that rate() sees the first one
	}
	c.Registry.MustRegister(c.reloads, c.reloadTime, c.reloadDuration, c.reloadOK, c.notified, c.notifyDuration)
	return c
}

// Reloaded counts a reload that began at start and ended now: applied, refused (nothing
// was handed to the children) or partial.
func (c *Core) Reloaded(start time.Time, applied, refused bool) {
	result := "partial"
	switch {
	case applied:
		result = "applied"
	case refused:
		result = "refused"
	}
	c.reloads.WithLabelValues(result).Inc()
	c.reloadTime.Set(float64(start.UnixNano()) / 1e9)
	c.reloadDuration.Set(time.Since(start).Seconds())
	c.reloadOK.Set(b2f(applied))
}

// Delivered counts a notify action's delivery (core/notify's Options.Delivered).
func (c *Core) Delivered(action, outcome string, took time.Duration) {
	c.notified.WithLabelValues(action, outcome).Inc()
	c.notifyDuration.WithLabelValues(action).Observe(took.Seconds())
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
