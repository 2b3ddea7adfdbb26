package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ProtoKeepalived is RTPROT_KEEPALIVED, the protocol keepalived stamps on
// the routes it adds unless configured otherwise; vigil uses it too so that
// routes from either daemon look alike.
const ProtoKeepalived = 18

// Route is one virtual or static route.
//
// Zero values take keepalived's defaults: Type "" is unicast, Table 0 is
// main, Protocol 0 is ProtoKeepalived, Scope "" is global when adding (not
// "link" as ip(8) would pick for a route without gateway) and "any" when
// deleting.
type Route struct {
	Type     string // "", unicast, blackhole, unreachable, prohibit, local, broadcast, anycast, multicast, throw, nat
	Dst      netip.Prefix
	Src      netip.Addr // preferred source (RTA_PREFSRC)
	Via      netip.Addr // gateway, same family as Dst
	Dev      string
	Scope    string
	Table    int
	Metric   int
	Protocol int
}

func (r Route) String() string {
	var b strings.Builder
	if r.Type != "" && r.Type != "unicast" {
		b.WriteString(r.Type + " ")
	}
	b.WriteString(r.Dst.String())
	if r.Via.IsValid() {
		b.WriteString(" via " + r.Via.String())
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	if r.Table != 0 {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	return b.String()
}

var routeTypes = map[string]int{
	"":            unix.RTN_UNICAST,
	"unicast":     unix.RTN_UNICAST,
	"blackhole":   unix.RTN_BLACKHOLE,
	"unreachable": unix.RTN_UNREACHABLE,
	"prohibit":    unix.RTN_PROHIBIT,
	"local":       unix.RTN_LOCAL,
	"broadcast":   unix.RTN_BROADCAST,
	"anycast":     unix.RTN_ANYCAST,
	"multicast":   unix.RTN_MULTICAST,
	"throw":       unix.RTN_THROW,
	"nat":         unix.RTN_NAT,
}

func ipOf(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return net.IP(a.Unmap().AsSlice())
}

// toNetlink converts r; dev is the resolved interface (nil if none).
func (r Route) toNetlink(dev netlink.Link, forAdd bool) (*netlink.Route, error) {
	if !r.Dst.IsValid() {
		return nil, errors.New("invalid or missing destination")
	}
	typ, ok := routeTypes[r.Type]
	if !ok {
		return nil, fmt.Errorf("unknown route type %q", r.Type)
	}
	v4 := r.Dst.Addr().Unmap().Is4()
	for _, a := range []netip.Addr{r.Src, r.Via} {
		if a.IsValid() && a.Unmap().Is4() != v4 {
			return nil, errors.New("src and via must be of the destination's family")
		}
	}
	nr := &netlink.Route{
		Dst:      prefixToIPNet(netip.PrefixFrom(r.Dst.Addr().Unmap(), r.Dst.Bits()).Masked()),
		Src:      ipOf(r.Src),
		Gw:       ipOf(r.Via),
		Table:    r.Table,
		Priority: r.Metric,
		Protocol: netlink.RouteProtocol(r.Protocol),
	}
	if nr.Table == 0 {
		nr.Table = unix.RT_TABLE_MAIN
	}
	if r.Protocol == 0 {
		nr.Protocol = ProtoKeepalived
	}
	if dev != nil {
		nr.LinkIndex = dev.Attrs().Index
	}
	if forAdd || r.Type != "" {
		nr.Type = typ
	}
	switch {
	case r.Scope != "":
		sc, err := parseScope(r.Scope)
		if err != nil {
			return nil, err
		}
		nr.Scope = sc
	case forAdd:
		nr.Scope = netlink.SCOPE_UNIVERSE
	default:
		nr.Scope = netlink.SCOPE_NOWHERE // the kernel reads this as "any scope"
	}
	return nr, nil
}

// AddRoute installs the route; the same route already present is not an
// error. A different route under the same kernel key (destination, table,
// metric) is ErrRouteConflict.
func (n *Netif) AddRoute(r Route) error {
	var dev netlink.Link
	if r.Dev != "" {
		l, err := n.linkByName(r.Dev)
		if err != nil {
			return fmt.Errorf("add route %s: %w", r, err)
		}
		dev = l
	}
	nr, err := r.toNetlink(dev, true)
	if err != nil {
		return fmt.Errorf("add route %s: %w", r, err)
	}
	err = n.h.RouteAdd(nr)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add route %s: %w", r, err)
	}
	same, lerr := n.hasRoute(nr)
	if lerr != nil {
		return fmt.Errorf("add route %s: %w", r, errors.Join(err, lerr))
	}
	if !same {
		return fmt.Errorf("add route %s: %w", r, ErrRouteConflict)
	}
	return nil
}

// DelRoute removes the route; an absent route, or one whose interface is
// gone, is not an error.
func (n *Netif) DelRoute(r Route) error {
	var dev netlink.Link
	if r.Dev != "" {
		l, err := n.linkByName(r.Dev)
		if errors.Is(err, ErrNoLink) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("delete route %s: %w", r, err)
		}
		dev = l
	}
	nr, err := r.toNetlink(dev, false)
	if err != nil {
		return fmt.Errorf("delete route %s: %w", r, err)
	}
	if err := n.h.RouteDel(nr); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete route %s: %w", r, err)
	}
	return nil
}

// hasRoute reports whether a route equal to want in everything the caller
// chose is installed.
func (n *Netif) hasRoute(want *netlink.Route) (bool, error) {
	family := netlink.FAMILY_V6
	if want.Dst.IP.To4() != nil {
		family = netlink.FAMILY_V4
	}
	routes, err := n.h.RouteListFiltered(family, &netlink.Route{Table: want.Table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return false, fmt.Errorf("list routes: %w", err)
	}
	wantOnes, _ := want.Dst.Mask.Size()
	wantMetric := want.Priority
	if family == netlink.FAMILY_V6 && wantMetric == 0 {
		wantMetric = 1024 // IP6_RT_PRIO_USER, what the kernel stores for 0
	}
	for _, got := range routes {
		if got.Dst == nil {
			continue
		}
		ones, _ := got.Dst.Mask.Size()
		if !got.Dst.IP.Equal(want.Dst.IP) || ones != wantOnes ||
			got.Priority != wantMetric || got.Type != want.Type ||
			!got.Gw.Equal(want.Gw) || !got.Src.Equal(want.Src) {
			continue
		}
		if want.LinkIndex != 0 && got.LinkIndex != want.LinkIndex {
			continue
		}
		return true, nil
	}
	return false, nil
}
