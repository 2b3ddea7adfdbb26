package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
)

// VIPIface is the interface of a routed lab's nodes that carries their virtual addresses:
// a loopback-style place, up but attached to nothing, which makes an address local to the
// node without announcing it on a link (the router learns it by BGP). It is a bridge with
// no ports rather than a dummy: kernels without the dummy driver (this machine's) have
// bridges, and a portless bridge is up and holds local addresses just the same.
const VIPIface = "vip0"

// maxRoutedNodes is how many /29 node links 198.51.100.0/24 holds.
const maxRoutedNodes = 32

// NewRouted builds a routed lab: a client namespace, a router namespace, and n nodes, each
// on a link of its own to the router (no shared L2):
//
//	client eth0 203.0.113.2/28, 2001:db8:c::2/64  --  router eth0 .1, ::1
//	nI eth0 198.51.100.(8(I-1)+2)/29, 2001:db8:I::2/64  --  router pI .1, ::1 of the same
//
// The router forwards (both families, set inside its namespace only); the client's and the
// nodes' default routes go through it; each node has VIPIface for its virtual addresses,
// which RoutedVIP numbers. The router knows no route to them until someone puts one there
// (bgpd, or `ip route` in Router.NS). Router and Client are nodes like the others (Start,
// Exec, StartFRRDaemons); Switch is the router's namespace, so a node's Cut takes the
// router's end of its link down. Isolate is for bridged labs only. Close removes it all.
func NewRouted(ctx context.Context, name string, n int, dir string) (*Lab, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if n < 1 || n > maxRoutedNodes {
		return nil, fmt.Errorf("routed lab %s: %d nodes: want 1..%d (one /29 of 198.51.100.0/24 each)", name, n, maxRoutedNodes)
	}
	base := fmt.Sprintf("vg-%s-%d", name, os.Getpid())
	l := &Lab{Name: base, Switch: base + "-rt", dir: dir}
	if err := l.buildRouted(ctx, n); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// RoutedVIP returns the i-th virtual address (from 1) for a routed lab's nodes:
// 203.0.113.(64+i)/32 or 2001:db8:ffff::(64+i)/128 (i in hex), outside every link.
func RoutedVIP(i int, v6 bool) netip.Prefix {
	if v6 {
		return netip.MustParsePrefix(fmt.Sprintf("2001:db8:ffff::%x/128", 64+i))
	}
	return netip.MustParsePrefix(fmt.Sprintf("203.0.113.%d/32", 64+i))
}

func (l *Lab) buildRouted(ctx context.Context, n int) error {
	l.Router = &Node{lab: l, Name: "router", NS: l.Switch, Iface: "eth0",
		Addr4: netip.MustParsePrefix("203.0.113.1/28"), Addr6: netip.MustParsePrefix("2001:db8:c::1/64")}
	if err := l.addNamespace(ctx, l.Router.NS); err != nil {
		return err
	}
	// Forwarding is per namespace: the router's, never the machine's.
	for _, kv := range []string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"} {
		if err := run(ctx, "ip", "netns", "exec", l.Router.NS, "sysctl", "-qw", kv); err != nil {
			return err
		}
	}
	if err := l.ip(ctx, l.Router.NS, "link", "set", "lo", "up"); err != nil {
		return err
	}
	l.Client = &Node{lab: l, Name: "client", NS: l.Name + "-client", Iface: "eth0",
		Addr4: netip.MustParsePrefix("203.0.113.2/28"), Addr6: netip.MustParsePrefix("2001:db8:c::2/64"),
		Gateway4: l.Router.Addr4.Addr(), Gateway6: l.Router.Addr6.Addr()}
	if err := l.link(ctx, l.Client, l.Router.Iface, l.Router.Addr4, l.Router.Addr6); err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		base := 8 * (i - 1)
		gw4 := netip.MustParsePrefix(fmt.Sprintf("198.51.100.%d/29", base+1))
		gw6 := netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::1/64", i))
		nd := &Node{lab: l, Name: fmt.Sprintf("n%d", i), NS: fmt.Sprintf("%s-n%d", l.Name, i), Iface: "eth0",
			Addr4:    netip.MustParsePrefix(fmt.Sprintf("198.51.100.%d/29", base+2)),
			Addr6:    netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::2/64", i)),
			Gateway4: gw4.Addr(), Gateway6: gw6.Addr(), VIPIface: VIPIface}
		l.Nodes = append(l.Nodes, nd)
		if err := l.link(ctx, nd, fmt.Sprintf("p%d", i), gw4, gw6); err != nil {
			return err
		}
		for _, s := range [][]string{
			{"link", "add", VIPIface, "type", "bridge"},
			{"link", "set", VIPIface, "up"},
		} {
			if err := l.ip(ctx, nd.NS, s...); err != nil {
				return err
			}
		}
	}
	return nil
}

// addNamespace creates namespace ns without duplicate address detection (see AddNode).
func (l *Lab) addNamespace(ctx context.Context, ns string) error {
	if err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return err
	}
	for _, kv := range []string{"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"} {
		if err := run(ctx, "ip", "netns", "exec", ns, "sysctl", "-qw", kv); err != nil {
			return err
		}
	}
	return nil
}

// link creates nd's namespace and a veth pair from its Iface to the router's interface
// rIface, addresses both ends (the router's with gw4 and gw6) and routes nd's default
// traffic through the router.
func (l *Lab) link(ctx context.Context, nd *Node, rIface string, gw4, gw6 netip.Prefix) error {
	if err := l.addNamespace(ctx, nd.NS); err != nil {
		return err
	}
	steps := [][]string{
		{"-n", nd.NS, "link", "add", nd.Iface, "type", "veth", "peer", "name", rIface, "netns", l.Router.NS},
		{"-n", nd.NS, "link", "set", "lo", "up"},
		{"-n", nd.NS, "addr", "add", nd.Addr4.String(), "dev", nd.Iface},
		{"-n", nd.NS, "addr", "add", nd.Addr6.String(), "dev", nd.Iface, "nodad"},
		{"-n", nd.NS, "link", "set", nd.Iface, "up"},
		{"-n", l.Router.NS, "addr", "add", gw4.String(), "dev", rIface},
		{"-n", l.Router.NS, "addr", "add", gw6.String(), "dev", rIface, "nodad"},
		{"-n", l.Router.NS, "link", "set", rIface, "up"},
		{"-n", nd.NS, "route", "add", "default", "via", gw4.Addr().String()},
		{"-n", nd.NS, "-6", "route", "add", "default", "via", gw6.Addr().String()},
	}
	for _, s := range steps {
		if err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	return nil
}
