package lab

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRouted builds a routed lab of two nodes: the client reaches each node's link address
// through the router in both families, a node's virtual address once the router has a
// route to it, and nothing crosses a cut link. Forwarding is on in the router only.
func TestRouted(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := NewRouted(ctx, "routed", 2, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			l.Close()
		}
	}()
	for _, nd := range l.Nodes {
		for _, a := range []string{nd.Addr4.Addr().String(), nd.Addr6.Addr().String()} {
			if _, err := l.Client.Exec(ctx, "ping", "-c1", "-W2", a); err != nil {
				t.Errorf("client cannot reach %s's %s through the router: %v", nd.Name, a, err)
			}
		}
		if l.Nodes[0].Addr4.Overlaps(nd.Addr4) != (nd == l.Nodes[0]) {
			t.Errorf("%s's link %s overlaps n1's %s", nd.Name, nd.Addr4, l.Nodes[0].Addr4)
		}
	}
	for _, c := range []struct{ ns, key, want string }{
		{l.Router.NS, "net.ipv4.ip_forward", "1"},
		{l.Router.NS, "net.ipv6.conf.all.forwarding", "1"},
		{l.Client.NS, "net.ipv4.ip_forward", "0"},
		{l.Nodes[0].NS, "net.ipv4.ip_forward", "0"},
	} {
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", c.ns, "sysctl", "-n", c.key).Output()
		if err != nil || strings.TrimSpace(string(out)) != c.want {
			t.Errorf("%s in %s = %q, %v; want %s", c.key, c.ns, out, err, c.want)
		}
	}

	// A virtual address on n2's VIPIface answers once the router routes it there.
	n2 := l.Nodes[1]
	for _, v6 := range []bool{false, true} {
		vip, via := RoutedVIP(1, v6), n2.Addr4.Addr()
		if v6 {
			via = n2.Addr6.Addr()
		}
		if _, err := n2.Exec(ctx, "ip", "addr", "add", vip.String(), "dev", n2.VIPIface); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Client.Exec(ctx, "ping", "-c1", "-W1", vip.Addr().String()); err == nil {
			t.Errorf("client reached %s before the router had a route to it", vip)
		}
		if _, err := l.Router.Exec(ctx, "ip", "route", "add", vip.String(), "via", via.String()); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Client.Exec(ctx, "ping", "-c1", "-W2", vip.Addr().String()); err != nil {
			t.Errorf("client cannot reach %s on %s: %v", vip, n2.Name, err)
		}
	}

	if err := n2.Cut(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Client.Exec(ctx, "ping", "-c1", "-W1", n2.Addr4.Addr().String()); err == nil {
		t.Error("ping crossed a cut link")
	}
	if _, err := l.AddNode(ctx); err == nil {
		t.Error("AddNode in a routed lab succeeded")
	}
	p, err := l.Client.Start("sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if !p.Exited() {
		t.Error("process outlived the lab")
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), l.Name) {
		t.Errorf("namespaces left behind:\n%s", out)
	}
}
