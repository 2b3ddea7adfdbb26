package kerneltest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/vm"
)

// realServers is a real_server block per backend, with the given weights and body.
func realServers(tp *topo, port int, weights []int, body string) string {
	var b strings.Builder
	for i, be := range tp.backends {
		fmt.Fprintf(&b, "    real_server %s %d {\n        weight %d\n%s    }\n", be.addr, port, weights[i], body)
	}
	return b.String()
}

// TestVMBalance: vigil as the director of three Go HTTP backends spreads new connections
// as the scheduler says: rr over NAT exactly evenly, wrr 3/2/1 by the weights, and
// DR (the VIP on the backends' loopback) answers through the same VIP.
func TestVMBalance(t *testing.T) {
	vm.Guest(t)
	// Not parallel: it runs alone before the others (which overlap their waits).
	tp := newTopo(t, "bal")
	conf := fmt.Sprintf(`
virtual_server %[1]s 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
%[2]s}
virtual_server %[1]s 81 {
    lb_algo wrr
    lb_kind NAT
    protocol TCP
%[3]s}
virtual_server %[4]s 8080 {
    lb_algo rr
    lb_kind DR
    protocol TCP
%[5]s}
`, vipNAT, realServers(tp, 8080, []int{1, 1, 1}, ""), realServers(tp, 8080, []int{3, 2, 1}, ""),
		vipDR, realServers(tp, 8080, []int{1, 1, 1}, ""))
	// -D: the log shown on a failure lists every IPVS operation vigil made.
	d := startVigil(t, tp.dir, conf, "-D")
	want := map[string][]string{
		"TCP " + vipNAT + ":80":  {"198.51.100.11:8080 Masq 1", "198.51.100.12:8080 Masq 1", "198.51.100.13:8080 Masq 1"},
		"TCP " + vipNAT + ":81":  {"198.51.100.11:8080 Masq 3", "198.51.100.12:8080 Masq 2", "198.51.100.13:8080 Masq 1"},
		"TCP " + vipDR + ":8080": {"198.51.100.11:8080 Route 1", "198.51.100.12:8080 Route 1", "198.51.100.13:8080 Route 1"},
	}
	var out string
	waitFor(t, 60*time.Second, "vigil programs the three services", func() bool {
		out, _ = tp.dir.try("ipvsadm", "-Ln")
		for svc, ds := range want {
			if !slices.Equal(dests(out, svc), ds) {
				return false
			}
		}
		return true
	})
	t.Logf("ipvsadm -Ln:\n%s", out)
	for _, s := range []string{"TCP  " + vipNAT + ":80 rr", "TCP  " + vipNAT + ":81 wrr", "TCP  " + vipDR + ":8080 rr"} {
		if !strings.Contains(out, s) {
			t.Errorf("ipvsadm -Ln lacks %q", s)
		}
	}
	st, err := d.status()
	if err != nil {
		t.Fatalf("vigil status: %v", err)
	}
	if !st.Running || len(st.VirtualServers) != 3 {
		t.Fatalf("vigil status: running %v, %d virtual servers, error %q", st.Running, len(st.VirtualServers), st.Error)
	}

	for _, c := range []struct {
		name, url string
		want      map[string]int
		// slack is how far each count may be from want. The kernel's wrr under this VM
		// came out 148/101/51, 149/101/50 and 149/102/49 in about one run of two: its own
		// connection table then held exactly 300 entries, one per request, spread so, and
		// vigil had made no IPVS operation since programming the table (its -D log). rr
		// has always been exact. The table itself (weights, scheduler) is compared exactly
		// above; rr or equal weights would be 50 off here.
		slack int
	}{
		{"rr NAT", "http://" + vipNAT + ":80/", map[string]int{"b1": 100, "b2": 100, "b3": 100}, 0},
		{"wrr NAT 3/2/1", "http://" + vipNAT + ":81/", map[string]int{"b1": 150, "b2": 100, "b3": 50}, 3},
		{"rr DR", "http://" + vipDR + ":8080/", map[string]int{"b1": 100, "b2": 100, "b3": 100}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := spread(t, tp.client, c.url, 300)
			t.Logf("300 requests: %v", got)
			if !near(got, c.want, c.slack) {
				t.Errorf("spread %v, want %v (each within %d); the kernel's connections:\n%s", got, c.want, c.slack, tp.dir.exec(t, "ipvsadm", "-Lnc"))
			}
		})
	}
}

// near says whether got has the keys of want, each count within slack of it.
func near(got, want map[string]int, slack int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || g < w-slack || g > w+slack {
			return false
		}
	}
	return true
}
