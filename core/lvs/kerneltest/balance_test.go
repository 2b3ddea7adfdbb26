package kerneltest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/lab/vm"
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
// as the scheduler says: rr over NAT exactly evenly, wrr 3/2/1 exactly by the weights, and
// DR (the VIP on the backends' loopback) answers through the same VIP.
func TestVMBalance(t *testing.T) {
	vm.Guest(t)
	// Not parallel: it runs alone before the others (which overlap their waits). Under the
	// load of the others, a wrr count once came out 148/101/51: the kernel's counters are
	// logged when a spread is off, to tell an extra connection from a scheduling fault.
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
	d := startVigil(t, tp.dir, conf)
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
	}{
		{"rr NAT", "http://" + vipNAT + ":80/", map[string]int{"b1": 100, "b2": 100, "b3": 100}},
		{"wrr NAT 3/2/1", "http://" + vipNAT + ":81/", map[string]int{"b1": 150, "b2": 100, "b3": 50}},
		{"rr DR", "http://" + vipDR + ":8080/", map[string]int{"b1": 100, "b2": 100, "b3": 100}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := spread(t, tp.client, c.url, 300)
			t.Logf("300 requests: %v", got)
			if !maps.Equal(got, c.want) {
				t.Errorf("spread %v, want %v\n%s", got, c.want, tp.dir.exec(t, "ipvsadm", "-Ln", "--stats"))
			}
		})
	}
}
