package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addr is one virtual or static address (converted by the caller from the
// config model).
type Addr struct {
	Prefix netip.Prefix
	Dev    string
	// Broadcast is set only when given, as keepalived does (IFA_BROADCAST is
	// sent only for a configured "brd"); zero means none. IPv4 only.
	Broadcast netip.Addr
	// Scope is "", "global", "site", "link", "host", "nowhere" or a number;
	// "" is global (RT_SCOPE_UNIVERSE), keepalived's default. The kernel
	// derives IPv6 scopes from the address and ignores this for IPv6.
	Scope string
	// Label is the IPv4 address label (ip addr ... label). The kernel keeps
	// labels for IPv4 only; for IPv6 it is ignored, as by keepalived.
	Label string
	// NoDAD sets IFA_F_NODAD (IPv6). keepalived sets it on every IPv6 VIP
	// unless told "-nodad"; the caller decides here.
	NoDAD         bool
	NoPrefixRoute bool // IFA_F_NOPREFIXROUTE
	Home          bool // IFA_F_HOMEADDRESS (IPv6)
}

func (a Addr) String() string {
	return fmt.Sprintf("%s dev %s", a.Prefix, a.Dev)
}

// scopes follows /etc/iproute2/rt_scopes.
var scopes = map[string]netlink.Scope{
	"":        netlink.SCOPE_UNIVERSE,
	"global":  netlink.SCOPE_UNIVERSE,
	"site":    netlink.SCOPE_SITE,
	"link":    netlink.SCOPE_LINK,
	"host":    netlink.SCOPE_HOST,
	"nowhere": netlink.SCOPE_NOWHERE,
}

func parseScope(s string) (netlink.Scope, error) {
	if sc, ok := scopes[s]; ok {
		return sc, nil
	}
	if v, err := strconv.ParseUint(s, 0, 8); err == nil {
		return netlink.Scope(v), nil
	}
	return 0, fmt.Errorf("unknown scope %q (want global, site, link, host, nowhere or 0-255)", s)
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	addr := p.Addr()
	bits := 128
	if addr.Is4() {
		bits = 32
	}
	return &net.IPNet{IP: net.IP(addr.AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

// check validates what the kernel would otherwise reject with a less
// helpful message.
func (a Addr) check() error {
	if !a.Prefix.IsValid() {
		return errors.New("invalid prefix")
	}
	if a.Prefix.Addr().Is4In6() || a.Prefix.Addr().Zone() != "" {
		return errors.New("address must be plain IPv4 or IPv6 (no mapped form, no zone)")
	}
	if a.Dev == "" {
		return errors.New("no interface")
	}
	if a.Broadcast.IsValid() && (!a.Prefix.Addr().Is4() || !a.Broadcast.Is4()) {
		return errors.New("broadcast applies to IPv4 only")
	}
	return nil
}

func (a Addr) toNetlink(forAdd bool) (*netlink.Addr, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	scope, err := parseScope(a.Scope)
	if err != nil {
		return nil, err
	}
	na := &netlink.Addr{IPNet: prefixToIPNet(a.Prefix), Scope: int(scope)}
	if a.Prefix.Addr().Is4() {
		// netlink computes a broadcast when none is given; 0.0.0.0 tells it
		// not to, so the address carries brd only if configured.
		na.Broadcast = net.IPv4zero
		if a.Broadcast.IsValid() {
			na.Broadcast = net.IP(a.Broadcast.AsSlice())
		}
	}
	if !forAdd {
		// The kernel matches a label given on delete; keepalived sends
		// none, so an address is removed whatever label it carries.
		return na, nil
	}
	if a.Prefix.Addr().Is4() {
		na.Label = a.Label
	}
	if a.NoDAD {
		na.Flags |= unix.IFA_F_NODAD
	}
	if a.NoPrefixRoute {
		na.Flags |= unix.IFA_F_NOPREFIXROUTE
	}
	if a.Home {
		na.Flags |= unix.IFA_F_HOMEADDRESS
	}
	return na, nil
}

// AddAddr adds the address; one already present (same address and prefix
// length on the interface) is not an error.
func (n *Netif) AddAddr(a Addr) error {
	na, err := a.toNetlink(true)
	if err != nil {
		return fmt.Errorf("add address %s: %w", a, err)
	}
	l, _, err := n.quickLink(a.Dev)
	if err != nil {
		return fmt.Errorf("add address %s: %w", a, err)
	}
	if na.Label != "" && !strings.HasPrefix(na.Label, a.Dev) {
		// The kernel requires it; netlink would say so too, but only when handed the link.
		return fmt.Errorf("add address %s: label %q must start with the interface name %s", a, na.Label, a.Dev)
	}
	na.LinkIndex = l.Index
	if err := n.h.AddrAdd(nil, na); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add address %s: %w", a, err)
	}
	return nil
}

// DelAddr removes the address; an absent address, or an interface that no
// longer exists, is not an error.
func (n *Netif) DelAddr(a Addr) error {
	na, err := a.toNetlink(false)
	if err != nil {
		return fmt.Errorf("delete address %s: %w", a, err)
	}
	link, err := n.linkByName(a.Dev)
	if errors.Is(err, ErrNoLink) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete address %s: %w", a, err)
	}
	err = n.h.AddrDel(link, na)
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete address %s: %w", a, err)
	}
	return nil
}

// HasAddr reports whether the interface has the address with the same
// prefix length. Scope, label and flags are not compared.
func (n *Netif) HasAddr(a Addr) (bool, error) {
	if err := a.check(); err != nil {
		return false, fmt.Errorf("look up address %s: %w", a, err)
	}
	addrs, err := n.addrs(a.Dev, a.Prefix.Addr().Is6())
	if err != nil {
		return false, fmt.Errorf("look up address %s: %w", a, err)
	}
	for _, x := range addrs {
		if p, ok := addrPrefix(x); ok && p == a.Prefix {
			return true, nil
		}
	}
	return false, nil
}

func (n *Netif) addrs(dev string, v6 bool) ([]netlink.Addr, error) {
	link, err := n.linkByName(dev)
	if err != nil {
		return nil, err
	}
	family := netlink.FAMILY_V4
	if v6 {
		family = netlink.FAMILY_V6
	}
	addrs, err := n.h.AddrList(link, family)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", dev, err)
	}
	return addrs, nil
}

func addrPrefix(x netlink.Addr) (netip.Prefix, bool) {
	if x.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(x.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := x.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

// PrimaryAddr returns the address VRRP uses as its source on the interface:
// for IPv4 the first primary (not secondary) address, for IPv6 the first
// link-local address that is neither tentative nor failed DAD (a tentative
// address cannot be bound). ErrNoAddr if there is none yet; callers retry
// when addresses change.
func (n *Netif) PrimaryAddr(name string, v6 bool) (netip.Addr, error) {
	addrs, err := n.addrs(name, v6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("primary address of %s: %w", name, err)
	}
	for _, x := range addrs {
		p, ok := addrPrefix(x)
		if !ok {
			continue
		}
		if !v6 {
			if x.Flags&unix.IFA_F_SECONDARY == 0 {
				return p.Addr(), nil
			}
			continue
		}
		if p.Addr().IsLinkLocalUnicast() && x.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
			return p.Addr(), nil
		}
	}
	family := "IPv4"
	if v6 {
		family = "IPv6 link-local"
	}
	return netip.Addr{}, fmt.Errorf("primary %s address of %s: %w", family, name, ErrNoAddr)
}
