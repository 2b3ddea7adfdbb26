package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/core/plugin"
)

var (
	pluginUp = prometheus.NewDesc(Namespace+"_plugin_up",
		"1 while a process of the plugin runs in this process's plugin host, 0 otherwise (plugins start on first use).",
		[]string{"kind", "plugin"}, nil)
	pluginRestarts = prometheus.NewDesc(Namespace+"_plugin_restarts_total",
		"Processes of the plugin that died or were killed as hung; each is replaced on the plugin's next use.",
		[]string{"kind", "plugin"}, nil)
)

// DescribePlugins sends the descriptors CollectPlugins uses.
func DescribePlugins(ch chan<- *prometheus.Desc) { ch <- pluginUp; ch <- pluginRestarts }

// CollectPlugins sends the state and restarts of every plugin host has used: check plugins
// in the check process, notify plugins in core.
func CollectPlugins(ch chan<- prometheus.Metric, host *plugin.Host) {
	for _, p := range host.Stats() {
		ch <- prometheus.MustNewConstMetric(pluginUp, prometheus.GaugeValue, b2f(p.Up), string(p.Kind), p.Name)
		ch <- prometheus.MustNewConstMetric(pluginRestarts, prometheus.CounterValue, float64(p.Restarts), string(p.Kind), p.Name)
	}
}

// PluginCollector collects the plugin hosts it returns at each scrape (core's notify
// plugins, whose host a reload replaces).
type PluginCollector func() []*plugin.Host

// Describe implements prometheus.Collector.
func (PluginCollector) Describe(ch chan<- *prometheus.Desc) { DescribePlugins(ch) }

// Collect implements prometheus.Collector.
func (f PluginCollector) Collect(ch chan<- prometheus.Metric) {
	for _, h := range f() {
		CollectPlugins(ch, h)
	}
}
