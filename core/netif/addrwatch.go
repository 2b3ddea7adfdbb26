package netif

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddrChange is an address added to or removed from an interface, as WatchAddrs reports it.
type AddrChange struct {
	Index int        // the interface's index
	Addr  netip.Addr // without zone
	// New is set for an address added or changed (an IPv6 address that finished duplicate
	// address detection is reported again, without IFA_F_TENTATIVE), clear for one removed.
	New bool
	// Resync is set, alone, after the kernel dropped notifications: the receiver may have
	// missed changes on any interface and should look again.
	Resync bool
}

// WatchAddrs reports address changes on every interface until ctx ends, when the channel
// is closed. It does not list the addresses that exist already.
func (n *Netif) WatchAddrs(ctx context.Context) (<-chan AddrChange, error) {
	updates, stop, err := n.subscribeAddrs()
	if err != nil {
		return nil, fmt.Errorf("watch addresses: %w", err)
	}
	out := make(chan AddrChange)
	go func() {
		defer close(out)
		send := func(c AddrChange) bool {
			select {
			case out <- c:
				return true
			case <-ctx.Done():
				stop()
				return false
			}
		}
		for {
			select {
			case <-ctx.Done():
				stop()
				return
			case u, ok := <-updates:
				if !ok {
					// The subscription ended (a receive buffer overrun, an error): subscribe
					// again and have the receiver look at everything it waits for.
					stop()
					if updates, stop = resubscribe(ctx, n.subscribeAddrs); updates == nil {
						return
					}
					if !send(AddrChange{Resync: true}) {
						return
					}
					continue
				}
				ip, valid := netip.AddrFromSlice(u.LinkAddress.IP)
				if !valid {
					continue
				}
				if !send(AddrChange{Index: u.LinkIndex, Addr: ip.Unmap(), New: u.NewAddr}) {
					return
				}
			}
		}
	}()
	return out, nil
}

// subscribeAddrs starts a netlink address subscription in the handle's namespace; stop
// ends it and waits until the library's reader has finished.
func (n *Netif) subscribeAddrs() (<-chan netlink.AddrUpdate, func(), error) {
	return subscription(func(ch chan netlink.AddrUpdate, done chan struct{}) error {
		return netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
			Namespace:         n.subscribeNS(),
			ReceiveBufferSize: 1 << 20,
			// Errors end the subscription (the channel closes); nothing to log here.
			ErrorCallback: func(error) {},
		})
	})
}

// HasLocalAddr reports whether ip is an address of the named interface, usable as a
// source: an IPv6 address still in (or failed) duplicate address detection is not.
func (n *Netif) HasLocalAddr(name string, ip netip.Addr) (bool, error) {
	addrs, err := n.addrs(name, ip.Is6())
	if err != nil {
		return false, err
	}
	ip = ip.WithZone("")
	for _, x := range addrs {
		p, ok := addrPrefix(x)
		if ok && p.Addr() == ip && x.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
			return true, nil
		}
	}
	return false, nil
}
