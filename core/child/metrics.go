package child

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/metrics"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// childMetrics is a child's registry, made on core's first Metrics call: a vigil whose
// metrics are off (the default) never builds one, nor the Go and process collectors.
type childMetrics struct {
	once sync.Once
	reg  *prometheus.Registry
}

// answer gathers the registry, which fill fills the first time.
func (m *childMetrics) answer(fill func(reg *prometheus.Registry)) (*childpb.MetricsReply, error) {
	m.once.Do(func() {
		m.reg = metrics.NewRegistry()
		fill(m.reg)
	})
	b, err := metrics.Encode(m.reg)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	return &childpb.MetricsReply{Families: b}, nil
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(metrics.Namespace+"_"+name, help, labels, nil)
}

// The vrrp process's metrics, read from the engine at each scrape (vrrp.Engine.Stats): the
// advert paths only add to atomics.
var (
	vrrpStateEnum = desc("vrrp_instance_state",
		"The VRRP instance's state as a number: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT (the values of keepalived-exporter's keepalived_vrrp_state).",
		"vrrp_instance", "interface", "vrid")
	vrrpState = desc("vrrp_state",
		"1 for the state the VRRP instance is in, 0 for the others (one series per state: INIT, BACKUP, MASTER, FAULT).",
		"vrrp_instance", "state")
	vrrpPriority          = desc("vrrp_priority", "The VRRP instance's configured priority.", "vrrp_instance")
	vrrpEffectivePriority = desc("vrrp_effective_priority",
		"The VRRP instance's priority after its tracked scripts, checks, interfaces and files (what it advertises as master).", "vrrp_instance")
	vrrpSent = desc("vrrp_adverts_sent_total",
		"VRRP adverts the instance sent (one per advert, whatever the number of unicast peers).", "vrrp_instance")
	vrrpReceived = desc("vrrp_adverts_received_total",
		"VRRP adverts for the instance that passed the checks and reached its state machine.", "vrrp_instance")
	vrrpZeroSent = desc("vrrp_priority_zero_adverts_sent_total",
		"Priority-0 adverts the instance sent: it resigned as master.", "vrrp_instance")
	vrrpZeroReceived = desc("vrrp_priority_zero_adverts_received_total",
		"Priority-0 adverts the instance received: the master resigned.", "vrrp_instance")
	vrrpTransitions = desc("vrrp_transitions_total",
		"The VRRP instance's state changes, by the states left and entered (pairs that never happened are absent).",
		"vrrp_instance", "from", "to")
	vrrpBecameMaster   = desc("vrrp_became_master_total", "Times the VRRP instance became master.", "vrrp_instance")
	vrrpReleasedMaster = desc("vrrp_released_master_total", "Times the VRRP instance stopped being master.", "vrrp_instance")
	vrrpSince          = desc("vrrp_state_since_timestamp_seconds",
		"When the VRRP instance entered its current state (or started), as a Unix time: time() minus this is the time in the state.", "vrrp_instance")
	vrrpDrops = desc("vrrp_advert_drops_total",
		"Received VRRP packets that were dropped, by reason (the advert_drops of vigil status; unknown_vrid and own_address are counted, never logged).",
		"reason")
)

// The BGP speaker's metrics (with a bgp block), read from the speaker at each scrape.
var (
	bgpSessionUp = desc("bgp_session_up", "1 while the BGP session with the neighbor is established, 0 otherwise.", "neighbor")
	bgpFlaps     = desc("bgp_session_flaps_total", "Established BGP sessions with the neighbor that ended, since the speaker started.", "neighbor")
	bgpRoutes    = desc("bgp_routes_announced", "Routes (virtual addresses) the BGP speaker announces now.")
	bgpRestarts  = desc("bgp_speaker_restarts_total", "Times the BGP speaker process (vigil-bgp) was restarted after it stopped.")
)

// vrrpCollector reads the engine's state and counters at each scrape.
type vrrpCollector struct{ s *vrrpServer }

func (c vrrpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{vrrpStateEnum, vrrpState, vrrpPriority, vrrpEffectivePriority, vrrpSent, vrrpReceived,
		vrrpZeroSent, vrrpZeroReceived, vrrpTransitions, vrrpBecameMaster, vrrpReleasedMaster, vrrpSince, vrrpDrops,
		bgpSessionUp, bgpFlaps, bgpRoutes, bgpRestarts} {
		ch <- d
	}
}

func (c vrrpCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	eng := c.s.eng
	c.s.mu.Unlock()
	if eng == nil {
		return
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	for _, st := range eng.Stats() {
		n := st.Name
		ch <- prometheus.MustNewConstMetric(vrrpStateEnum, gauge, float64(st.State), n, st.Interface, strconv.Itoa(st.VRID))
		for _, s := range fsm.States() {
			v := 0.0
			if s == st.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(vrrpState, gauge, v, n, s.String())
		}
		ch <- prometheus.MustNewConstMetric(vrrpPriority, gauge, float64(st.Priority), n)
		ch <- prometheus.MustNewConstMetric(vrrpEffectivePriority, gauge, float64(st.EffectivePriority), n)
		ch <- prometheus.MustNewConstMetric(vrrpSent, counter, float64(st.AdvertsSent), n)
		ch <- prometheus.MustNewConstMetric(vrrpReceived, counter, float64(st.AdvertsReceived), n)
		ch <- prometheus.MustNewConstMetric(vrrpZeroSent, counter, float64(st.PriorityZeroSent), n)
		ch <- prometheus.MustNewConstMetric(vrrpZeroReceived, counter, float64(st.PriorityZeroReceived), n)
		var became, released uint64
		for _, from := range fsm.States() {
			for _, to := range fsm.States() {
				k := st.Transitions[from][to]
				if k == 0 {
					continue
				}
				ch <- prometheus.MustNewConstMetric(vrrpTransitions, counter, float64(k), n, from.String(), to.String())
				if to == fsm.Master {
					became += k
				}
				if from == fsm.Master {
					released += k
				}
			}
		}
		ch <- prometheus.MustNewConstMetric(vrrpBecameMaster, counter, float64(became), n)
		ch <- prometheus.MustNewConstMetric(vrrpReleasedMaster, counter, float64(released), n)
		ch <- prometheus.MustNewConstMetric(vrrpSince, gauge, float64(st.Since.UnixNano())/1e9, n)
	}
	for reason, k := range eng.Drops() {
		ch <- prometheus.MustNewConstMetric(vrrpDrops, counter, float64(k), reason)
	}
	if b := c.s.bgpStatus(context.Background()); b != nil {
		ch <- prometheus.MustNewConstMetric(bgpRestarts, counter, float64(b.Restarts))
		if b.Unanswered == "" {
			ch <- prometheus.MustNewConstMetric(bgpRoutes, gauge, float64(len(b.Routes)))
			for _, p := range b.Peers {
				ch <- prometheus.MustNewConstMetric(bgpSessionUp, gauge, b2f(p.State == "established"), p.Address)
				ch <- prometheus.MustNewConstMetric(bgpFlaps, counter, float64(p.Flaps), p.Address)
			}
		}
	}
}

// Metrics answers core with the vrrp process's metrics.
func (s *vrrpServer) Metrics(context.Context, *childpb.Empty) (*childpb.MetricsReply, error) {
	return s.metrics.answer(func(reg *prometheus.Registry) { reg.MustRegister(vrrpCollector{s}) })
}

// The check process's metrics: probes counted as they end (checkMetrics.observe), states
// and the load balancer read at each scrape.
var (
	checkUp     = desc("check_up", "1 while the check is up (past rise), 0 while it is down (past fall), as VRRP and the load balancer take it.", "check")
	lvsVSQuorum = desc("lvs_virtual_server_quorum_up", "1 while the virtual server's live weight meets its quorum.", "virtual_server")
	lvsRSUp     = desc("lvs_real_server_up", "1 while the real server is alive (its checks pass), 0 otherwise.", "virtual_server", "real_server")
	lvsRSWeight = desc("lvs_real_server_weight", "The real server's weight now (dynamic weights applied); 0 while it is out of the table.", "virtual_server", "real_server")
	lvsRSConns  = desc("lvs_real_server_connections_total", "Connections IPVS scheduled to the real server (the kernel's counter since the entry was added).", "virtual_server", "real_server")
	lvsRSActive = desc("lvs_real_server_active_connections", "The real server's active connections in IPVS.", "virtual_server", "real_server")
	lvsRSBytes  = desc("lvs_real_server_bytes_total", "Bytes IPVS passed to (in) and from (out) the real server (the kernel's counters).", "virtual_server", "real_server", "direction")
	lvsRSPkts   = desc("lvs_real_server_packets_total", "Packets IPVS passed to (in) and from (out) the real server (the kernel's counters).", "virtual_server", "real_server", "direction")
)

// checkMetrics counts the check process's probes.
type checkMetrics struct {
	probes   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newCheckMetrics() *checkMetrics {
	return &checkMetrics{
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "check_probes_total",
			Help: "Probes of the check, by outcome: success, failure, or no_result (its plugin was starting or restarting: the service was not asked)."},
			[]string{"check", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metrics.Namespace, Name: "check_probe_duration_seconds",
			Help:    "How long the check's probes took, from start to result (a probe that timed out takes its timeout).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"check"}),
	}
}

func (m *checkMetrics) observe(name string, r checksched.Result, took time.Duration) {
	m.probes.WithLabelValues(name, checksched.Outcome(r)).Inc()
	m.duration.WithLabelValues(name).Observe(took.Seconds())
}

// forget drops the series of checks a reload removed.
func (m *checkMetrics) forget(names []string) {
	for _, n := range names {
		m.probes.DeletePartialMatch(prometheus.Labels{"check": n})
		m.duration.DeleteLabelValues(n)
	}
}

// checkCollector reads the checks' states, the plugins and the load balancer at each scrape.
type checkCollector struct{ s *checkServer }

func (c checkCollector) Describe(ch chan<- *prometheus.Desc) {
	metrics.DescribePlugins(ch)
	for _, d := range []*prometheus.Desc{checkUp, lvsVSQuorum, lvsRSUp, lvsRSWeight, lvsRSConns, lvsRSActive, lvsRSBytes, lvsRSPkts} {
		ch <- d
	}
}

func (c checkCollector) Collect(ch chan<- prometheus.Metric) {
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	for _, st := range c.s.current() {
		ch <- prometheus.MustNewConstMetric(checkUp, gauge, b2f(st.GetUp()), st.GetName())
	}
	// rmu is held through a whole Start or Reload, which may take seconds configuring
	// plugins: the plugins are left out of a scrape that comes meanwhile, rather than the
	// whole process missing it for want of an answer in time.
	var host *plugin.Host
	if c.s.rmu.TryLock() {
		host = c.s.host
		c.s.rmu.Unlock()
	}
	if host != nil {
		metrics.CollectPlugins(ch, host)
	}
	c.s.mu.Lock()
	b := c.s.lvs
	c.s.mu.Unlock()
	if b == nil {
		return
	}
	// Half of what core waits for the whole answer: a slow IPVS dump then leaves the load
	// balancer's figures out of this scrape, not every metric of the check process.
	ctx, cancel := context.WithTimeout(context.Background(), metrics.ChildWait/2)
	defer cancel()
	st := b.status(ctx)
	for _, vs := range st.GetServices() {
		ch <- prometheus.MustNewConstMetric(lvsVSQuorum, gauge, b2f(vs.GetQuorumUp()), vs.GetId())
		for _, rs := range vs.GetReals() {
			id, addr := vs.GetId(), rs.GetAddress()
			ch <- prometheus.MustNewConstMetric(lvsRSUp, gauge, b2f(rs.GetAlive()), id, addr)
			w := 0.0
			if rs.GetInTable() {
				w = float64(rs.GetTableWeight())
			}
			ch <- prometheus.MustNewConstMetric(lvsRSWeight, gauge, w, id, addr)
			if k := rs.GetCounters(); k != nil {
				ch <- prometheus.MustNewConstMetric(lvsRSConns, counter, float64(k.GetConns()), id, addr)
				ch <- prometheus.MustNewConstMetric(lvsRSActive, gauge, float64(k.GetActiveConns()), id, addr)
				ch <- prometheus.MustNewConstMetric(lvsRSBytes, counter, float64(k.GetInBytes()), id, addr, "in")
				ch <- prometheus.MustNewConstMetric(lvsRSBytes, counter, float64(k.GetOutBytes()), id, addr, "out")
				ch <- prometheus.MustNewConstMetric(lvsRSPkts, counter, float64(k.GetInPackets()), id, addr, "in")
				ch <- prometheus.MustNewConstMetric(lvsRSPkts, counter, float64(k.GetOutPackets()), id, addr, "out")
			}
		}
	}
}

// Metrics answers core with the check process's metrics.
func (s *checkServer) Metrics(context.Context, *childpb.Empty) (*childpb.MetricsReply, error) {
	return s.metrics.answer(func(reg *prometheus.Registry) {
		reg.MustRegister(checkCollector{s}, s.probeMetrics.probes, s.probeMetrics.duration)
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collectors are the collectors of both children's registries (without the runtime's), for
// listing what vigil exports (metrics.Names): they describe themselves without an engine.
func Collectors() []prometheus.Collector {
	c := &checkServer{probeMetrics: newCheckMetrics()}
	return []prometheus.Collector{vrrpCollector{&vrrpServer{}}, checkCollector{c}, c.probeMetrics.probes, c.probeMetrics.duration}
}
