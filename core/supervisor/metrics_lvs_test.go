package supervisor_test

import (
	"path/filepath"
	"testing"
	"time"
)

// TestLoadBalancerMetrics: with a virtual_server, the check process serves the director's
// view of it (quorum, each real server's state and weight), which lints like the rest, and
// core counts the load balancer's notify scripts.
// Where the kernel has IPVS it also serves the kernel's counters; this machine's has none, so
// the test asserts only what the director knows.
func TestLoadBalancerMetrics(t *testing.T) {
	ctx, n := newLab(t, 1)
	n[0].start(t, lvsConf(n[0].dir, filepath.Join(n[0].dir, "scripts.out")), "--metrics-listen", metricsAddr)
	waitFor(t, 20*time.Second, "n1 holds the VIP", func() bool { return n[0].holds(t, ctx) })
	rs := map[string]string{"role": "check", "virtual_server": "TCP 192.0.2.100:80", "real_server": "192.0.2.11:80"}
	waitFor(t, 20*time.Second, "the real server in the metrics", func() bool {
		_, ok := value(n[0].scrape(t), "vigil_lvs_real_server_up", rs)
		return ok
	})
	fams := n[0].scrape(t)
	if v := must(t, fams, "vigil_lvs_real_server_up", rs); v != 1 {
		t.Errorf("real server up = %v, want 1 (no checker: alive)", v)
	}
	must(t, fams, "vigil_lvs_real_server_weight", rs)
	must(t, fams, "vigil_lvs_virtual_server_quorum_up", map[string]string{"role": "check", "virtual_server": "TCP 192.0.2.100:80"})
	// The quorum_up script ran through core's notify path, and core counted it.
	waitFor(t, 20*time.Second, "the quorum_up script's delivery counted", func() bool {
		v, _ := value(n[0].scrape(t), "vigil_notify_deliveries_total", map[string]string{"role": "core", "action": "quorum up", "outcome": "ok"})
		return v == 1
	})
}
