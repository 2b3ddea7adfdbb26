package kerneltest

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/vm"
)

// The IPv6 topology: as newTopo's, over IPv6 only. The client reaches the director over
// 2001:db8:3::/64 (its default route); the director's bridge br0 holds the backends'
// network 2001:db8:2::/64, where the director is ::1 and the backends' default gateway; the
// VIP 2001:db8:1::100 is the director's own. Addresses are added without duplicate address
// detection: nothing else has them, and a tentative address cannot be used for a second.
const (
	vip6       = "2001:db8:1::100"
	backNet6   = "2001:db8:2::"
	clientNet6 = "2001:db8:3::"
)

func newTopo6(t *testing.T, tag string) *topo {
	t.Helper()
	tp := &topo{client: newNS(t, tag+"c"), dir: newNS(t, tag+"d")}
	d, c := tp.dir, tp.client
	d.sysctl(t, "net.ipv6.conf.all.forwarding=1")
	d.ip(t, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	d.ip(t, "-6", "addr", "add", backNet6+"1/64", "dev", "br0", "nodad")
	d.ip(t, "link", "set", "br0", "up")
	d.ip(t, "-6", "addr", "add", vip6+"/128", "dev", "lo")
	veth(t, d, "toc", c, "eth0")
	d.ip(t, "-6", "addr", "add", clientNet6+"1/64", "dev", "toc", "nodad")
	c.ip(t, "-6", "addr", "add", clientNet6+"2/64", "dev", "eth0", "nodad")
	c.ip(t, "-6", "route", "add", "default", "via", clientNet6+"1")
	for i := 1; i <= 3; i++ {
		b := &backend{name: fmt.Sprintf("b%d", i), ns: newNS(t, fmt.Sprintf("%sb%d", tag, i)), addr: fmt.Sprintf("%s%d", backNet6, 10+i),
			fail: map[int]bool{}, srvs: map[int]*http.Server{}, body: map[int]string{}}
		port := fmt.Sprintf("p%d", i)
		veth(t, d, port, b.ns, "eth0")
		d.ip(t, "link", "set", port, "master", "br0")
		b.ns.ip(t, "-6", "addr", "add", b.addr+"/64", "dev", "eth0", "nodad")
		b.ns.ip(t, "-6", "route", "add", "default", "via", backNet6+"1")
		b.serve(t, 8080, nil) // ":8080" listens on IPv6 too
		tp.backends = append(tp.backends, b)
	}
	return tp
}

// TestVMIPv6: an IPv6 virtual_server with NAT in front of three IPv6 Go HTTP backends, each
// with an HTTP_GET: vigil programs it ([2001:db8:1::100]:80 rr, three Masq destinations),
// 300 requests from the client through the VIP are spread 100/100/100, a backend whose
// check fails leaves the kernel's table and the next 300 go 150/150 to the other two with
// none failing, and it comes back when it answers again.
func TestVMIPv6(t *testing.T) {
	vm.Guest(t)
	t.Parallel()
	tp := newTopo6(t, "v6")
	var rs strings.Builder
	for _, b := range tp.backends {
		fmt.Fprintf(&rs, `    real_server %s 8080 {
        weight 1
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 2
            retry 1
            delay_before_retry 1
        }
    }
`, b.addr)
	}
	conf := fmt.Sprintf(`
virtual_server %s 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
%s}
`, vip6, rs.String())
	startVigil(t, tp.dir, conf)
	svc := "TCP [" + vip6 + "]:80"
	dest := func(b *backend) string { return fmt.Sprintf("[%s]:8080 Masq 1", b.addr) }
	table := func(bs ...*backend) func() bool {
		var want []string
		for _, b := range bs {
			want = append(want, dest(b))
		}
		return func() bool {
			out, _ := tp.dir.try("ipvsadm", "-Ln")
			return slices.Equal(dests(out, svc), want)
		}
	}
	b1, b2, b3 := tp.backends[0], tp.backends[1], tp.backends[2]
	waitFor(t, 60*time.Second, "vigil programs the IPv6 service with three destinations", table(b1, b2, b3))
	out := tp.dir.exec(t, "ipvsadm", "-Ln")
	t.Logf("ipvsadm -Ln:\n%s", out)
	if !strings.Contains(out, "TCP  ["+vip6+"]:80 rr") {
		t.Errorf("ipvsadm -Ln lacks the rr service [%s]:80", vip6)
	}
	url := "http://[" + vip6 + "]:80/"
	spreadIs := func(what string, want map[string]int) {
		t.Helper()
		n := 0
		for _, v := range want {
			n += v
		}
		got := spread(t, tp.client, url, n)
		t.Logf("%s: %d requests: %v", what, n, got)
		if !maps.Equal(got, want) {
			t.Errorf("%s: spread %v, want %v\n%s", what, got, want, tp.dir.exec(t, "ipvsadm", "-Ln", "--stats"))
		}
	}
	spreadIs("three backends", map[string]int{"b1": 100, "b2": 100, "b3": 100})

	b2.setFail(8080, true)
	waitFor(t, 60*time.Second, "b2's failing HTTP_GET takes it out of the table", table(b1, b3))
	spreadIs("b2 failing", map[string]int{"b1": 150, "b3": 150})

	b2.setFail(8080, false)
	waitFor(t, 60*time.Second, "b2 back in the table once it answers 200", table(b1, b2, b3))
	spreadIs("b2 back", map[string]int{"b1": 100, "b2": 100, "b3": 100})
}
