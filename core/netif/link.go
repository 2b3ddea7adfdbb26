package netif

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Link holds the facts about an interface that the VRRP runtime needs.
type Link struct {
	Name  string
	Index int
	// Up is keepalived's notion of up: administratively up (IFF_UP) and
	// with carrier (IFF_RUNNING).
	Up  bool
	MAC net.HardwareAddr
	MTU int
	// Deleted is set by WatchLinks when the interface went away.
	Deleted bool
}

func linkFromAttrs(a *netlink.LinkAttrs) Link {
	const upRunning = unix.IFF_UP | unix.IFF_RUNNING
	return Link{
		Name:  a.Name,
		Index: a.Index,
		Up:    a.RawFlags&upRunning == upRunning,
		MAC:   slices.Clone(a.HardwareAddr),
		MTU:   a.MTU,
	}
}

// Link returns the current facts of the named interface.
func (n *Netif) Link(name string) (Link, error) {
	l, err := n.linkByName(name)
	if err != nil {
		return Link{}, err
	}
	return linkFromAttrs(l.Attrs()), nil
}

// WatchLinks reports link changes until ctx ends. It first sends the current
// state of every link, then one Link whenever a link's up state, name, MAC
// or MTU changes, or it is deleted (Deleted set). The channel is closed when
// ctx ends. If the kernel drops notifications (receive buffer overrun) the
// watch resubscribes and resends links whose state changed meanwhile.
func (n *Netif) WatchLinks(ctx context.Context) (<-chan Link, error) {
	updates, stop, err := n.subscribeLinks()
	if err != nil {
		return nil, fmt.Errorf("watch links: %w", err)
	}
	out := make(chan Link)
	go func() {
		defer close(out)
		last := map[int]Link{} // by ifindex, what the receiver was last told
		for {
			select {
			case <-ctx.Done():
				stop()
				return
			case u, ok := <-updates:
				if !ok {
					// Subscription failed; resync after a pause.
					stop()
					updates, stop = resubscribe(ctx, n.subscribeLinks)
					if updates == nil {
						return
					}
					continue
				}
				l := linkFromAttrs(u.Link.Attrs())
				if u.Header.Type == unix.RTM_DELLINK {
					l.Up, l.Deleted = false, true
					delete(last, l.Index)
				} else {
					prev, seen := last[l.Index]
					if seen && sameLink(prev, l) {
						continue
					}
					last[l.Index] = l
				}
				select {
				case out <- l:
				case <-ctx.Done():
					stop()
					return
				}
			}
		}
	}()
	return out, nil
}

func sameLink(a, b Link) bool {
	return a.Name == b.Name && a.Up == b.Up && a.MTU == b.MTU && a.MAC.String() == b.MAC.String()
}

// subscribeLinks starts a netlink link subscription in the handle's
// namespace that lists existing links first. stop ends it and waits until
// the library's reader has finished, so no goroutine outlives the watch.
func (n *Netif) subscribeLinks() (<-chan netlink.LinkUpdate, func(), error) {
	return subscription(func(ch chan netlink.LinkUpdate, done chan struct{}) error {
		return netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
			Namespace:         n.subscribeNS(),
			ListExisting:      true,
			ReceiveBufferSize: 1 << 20,
			// Errors end the subscription (the channel closes); nothing to log here.
			ErrorCallback: func(error) {},
		})
	})
}

// subscription runs one of the netlink library's Subscribe functions with a channel and a
// done channel of its own. Its stop closes done and drains the channel until the library's
// reader closes it: the reader blocks on a full channel, and would otherwise outlive the watch.
func subscription[T any](subscribe func(ch chan T, done chan struct{}) error) (<-chan T, func(), error) {
	ch := make(chan T, 64)
	done := make(chan struct{})
	if err := subscribe(ch, done); err != nil {
		close(done)
		return nil, nil, err
	}
	stop := func() {
		close(done)
		for range ch {
		}
	}
	return ch, stop, nil
}

func (n *Netif) subscribeNS() *netns.NsHandle {
	cur, err := netns.Get()
	if err == nil {
		defer cur.Close()
		if cur.Equal(n.ns) {
			return nil
		}
	}
	ns := n.ns
	return &ns
}

// resubscribe subscribes again, every 100 ms, until it succeeds or ctx ends (nil then).
func resubscribe[T any](ctx context.Context, subscribe func() (<-chan T, func(), error)) (<-chan T, func()) {
	for {
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(100 * time.Millisecond):
		}
		ch, stop, err := subscribe()
		if err == nil {
			return ch, stop
		}
	}
}
