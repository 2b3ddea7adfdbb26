package netif

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A VMAC (keepalived's use_vmac) is a macvlan interface on the instance's interface whose MAC
// address is the virtual router's (RFC 5798 7.3): 00:00:5e:00:01:VRID for IPv4,
// 00:00:5e:00:02:VRID for IPv6. The virtual addresses live on it, and the master's adverts
// and gratuitous ARPs leave from it, so the switches learn the virtual MAC on the master's
// port, and clients' ARP caches keep the same MAC across a failover.

// VMACAddr is the virtual router MAC address of vrid.
func VMACAddr(vrid int, v6 bool) net.HardwareAddr {
	fam := byte(1)
	if v6 {
		fam = 2
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, fam, byte(vrid)}
}

// VMACName is keepalived's default name of the VMAC interface of vrid.
func VMACName(vrid int, v6 bool) string {
	if v6 {
		return fmt.Sprintf("vrrp6.%d", vrid)
	}
	return fmt.Sprintf("vrrp.%d", vrid)
}

// EnsureVMAC makes sure that the macvlan name exists on parent with mac, up, and set up as a
// VMAC must be; it returns whether it created it (and so should delete it at the end). An
// interface of that name that is not such a macvlan is an error: it is not vigil's to change.
func (n *Netif) EnsureVMAC(parent, name string, mac net.HardwareAddr, v6 bool) (created bool, err error) {
	p, err := n.linkByName(parent)
	if err != nil {
		return false, fmt.Errorf("vmac %s: %w", name, err)
	}
	l, err := n.linkByName(name)
	switch {
	case errors.Is(err, ErrNoLink):
		mv := &netlink.Macvlan{
			LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: p.Attrs().Index, HardwareAddr: mac},
			// Private: frames between macvlans of one parent are not passed, as keepalived's.
			Mode: netlink.MACVLAN_MODE_PRIVATE,
		}
		if err := n.h.LinkAdd(mv); err != nil {
			return false, fmt.Errorf("vmac %s: create macvlan on %s: %w", name, parent, err)
		}
		created = true
		if l, err = n.linkByName(name); err != nil {
			return true, fmt.Errorf("vmac %s: %w", name, err)
		}
	case err != nil:
		return false, fmt.Errorf("vmac %s: %w", name, err)
	default:
		mv, ok := l.(*netlink.Macvlan)
		if !ok || mv.ParentIndex != p.Attrs().Index || mv.HardwareAddr.String() != mac.String() {
			return false, fmt.Errorf("vmac %s: an interface of that name exists and is not a macvlan on %s with MAC %s; rename it or set another name in use_vmac", name, parent, mac)
		}
	}
	if err := n.vmacSysctls(name, v6); err != nil {
		return created, err
	}
	// Down until its instance is master (SetVMACUp): see the comment there.
	if err := n.h.LinkSetDown(l); err != nil {
		return created, fmt.Errorf("vmac %s: set down: %w", name, err)
	}
	return created, nil
}

// SetVMACUp brings a VMAC up (its instance became master) or down. A VMAC is up only on the
// master: the kernel hands a frame whose source MAC is an up macvlan's own to that macvlan
// alone, so a backup with its VMAC up would never see the master's adverts on its interface;
// and a VMAC that is down sends nothing that could teach the switches the virtual MAC on a
// backup's port.
func (n *Netif) SetVMACUp(name string, up bool) error {
	l, err := n.linkByName(name)
	if err != nil {
		return fmt.Errorf("vmac %s: %w", name, err)
	}
	if up {
		err = n.h.LinkSetUp(l)
	} else {
		err = n.h.LinkSetDown(l)
	}
	if err != nil {
		return fmt.Errorf("vmac %s: set up=%v: %w", name, up, err)
	}
	if up {
		// The master's first advert follows at once: wait (briefly) for the carrier, or the
		// kernel drops it and a backup takes over too.
		for range 50 {
			if ql, _, err := n.quickLink(name); err == nil && ql.Up {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	return nil
}

// vmacSysctls: answer ARP on the VMAC only for its own addresses (arp_ignore 1), as on the
// parent, whose own answer would otherwise give clients the real MAC; accept traffic to the
// VIPs although replies leave through the parent (rp_filter 0); and, for an IPv4 VMAC, no
// IPv6, whose link-local traffic would teach the switches the virtual MAC on a backup's port.
func (n *Netif) vmacSysctls(name string, v6 bool) error {
	set := map[string]string{
		filepath.Join("ipv4/conf", name, "arp_ignore"): "1",
		filepath.Join("ipv4/conf", name, "rp_filter"):  "0",
	}
	if !v6 {
		set[filepath.Join("ipv6/conf", name, "disable_ipv6")] = "1"
	}
	if err := n.setSysctls(set, true); err != nil {
		return fmt.Errorf("vmac %s: %w", name, err)
	}
	return nil
}

// SetVMACParent sets what a VMAC's parent interface needs: ARP answered only for its own
// addresses (arp_ignore 1), not with its MAC for the VIPs; and its own ARP requests sent from
// its own address (arp_announce 2), not from a VIP whose reply it is sending, which would
// teach the clients the parent's MAC for the VIP.
func (n *Netif) SetVMACParent(name string) error {
	return n.setSysctls(map[string]string{
		filepath.Join("ipv4/conf", name, "arp_ignore"):   "1",
		filepath.Join("ipv4/conf", name, "arp_announce"): "2",
	}, false)
}

// setSysctls writes net sysctls (paths below /proc/sys/net) in the handle's namespace, which
// /proc/sys/net follows for the writing thread. missingOK skips those the kernel lacks (IPv6
// turned off, say).
func (n *Netif) setSysctls(set map[string]string, missingOK bool) error {
	return n.inNS(func() error {
		for k, v := range set {
			err := os.WriteFile(filepath.Join("/proc/sys/net", k), []byte(v), 0o644)
			if err != nil && !(missingOK && errors.Is(err, os.ErrNotExist)) {
				return fmt.Errorf("sysctl net/%s: %w", k, err)
			}
		}
		return nil
	})
}

// DeleteVMAC removes the VMAC; one that is already gone is not an error.
func (n *Netif) DeleteVMAC(name string) error {
	l, err := n.linkByName(name)
	if errors.Is(err, ErrNoLink) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := l.(*netlink.Macvlan); !ok {
		return fmt.Errorf("vmac %s: not a macvlan; left alone", name)
	}
	if err := n.h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("vmac %s: delete: %w", name, err)
	}
	return nil
}
