// Package netif is everything vigil does to the host's network configuration:
// virtual addresses and routes through netlink, link facts and link watching
// for the VRRP runtime, and the gratuitous ARP / unsolicited neighbour
// advertisement announcers that move a VIP's traffic to the new master.
//
// A Netif is bound to one network namespace for its whole life. Netlink
// requests go through a handle whose sockets were opened in that namespace;
// the few operations that need a thread inside the namespace (opening packet
// sockets, reading per-namespace sysctls) run on a dedicated, locked OS thread
// so the caller's thread never changes namespace.
package netif

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Errors callers may want to tell apart with errors.Is.
var (
	// ErrNoLink: the named interface does not exist.
	ErrNoLink = errors.New("no such interface")
	// ErrNoAddr: the interface has no address usable for the request.
	ErrNoAddr = errors.New("no usable address")
	// ErrNoARP: the interface does not do ARP/ND (IFF_NOARP, or no 6-byte
	// MAC); keepalived silently skips announcements there, callers may
	// ignore this error the same way.
	ErrNoARP = errors.New("interface does not do ARP/neighbour discovery")
	// ErrRouteConflict: a different route with the same kernel key
	// (destination, table, metric) is already installed.
	ErrRouteConflict = errors.New("a different route with the same key exists")
)

// Netif changes addresses and routes through netlink, in the network
// namespace of the handle. Its methods are safe for concurrent use.
type Netif struct {
	ns netns.NsHandle // owned duplicate, closed by Close
	h  *nlHandle      // requests run on a goroutine of its own (nlworker.go)

	mu      sync.Mutex // guards the packet sockets below
	closed  bool
	arpFD   int // AF_PACKET socket for GARP, -1 until first use
	ndiscFD int // AF_PACKET socket for NA, -1 until first use
}

// New returns a Netif for the calling thread's network namespace.
func New() (*Netif, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("netif: get current network namespace: %w", err)
	}
	// The socket opens in this namespace without joining it again: joining a namespace,
	// even one's own, takes CAP_SYS_ADMIN, which vigil's processes do not keep.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netif: open netlink socket: %w", err)
	}
	return &Netif{ns: ns, h: newNLHandle(h), arpFD: -1, ndiscFD: -1}, nil
}

// NewAt returns a Netif for the given network namespace. The handle is
// duplicated: the caller keeps ownership of ns and may close it.
func NewAt(ns netns.NsHandle) (*Netif, error) {
	fd, err := unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("netif: duplicate namespace handle: %w", err)
	}
	dup := netns.NsHandle(fd)
	n, err := newAt(dup)
	if err != nil {
		dup.Close()
		return nil, err
	}
	return n, nil
}

func newAt(ns netns.NsHandle) (*Netif, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netif: open netlink socket in namespace %s: %w", ns, err)
	}
	return &Netif{ns: ns, h: newNLHandle(h), arpFD: -1, ndiscFD: -1}, nil
}

// Close releases the netlink and packet sockets and the namespace handle.
func (n *Netif) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	n.h.Close()
	var errs []error
	for _, fd := range []*int{&n.arpFD, &n.ndiscFD} {
		if *fd >= 0 {
			errs = append(errs, unix.Close(*fd))
			*fd = -1
		}
	}
	errs = append(errs, n.ns.Close())
	return errors.Join(errs...)
}

// inNS runs fn on a fresh OS thread that has joined the handle's namespace.
// The thread is thrown away if it cannot be returned to its own namespace,
// so no goroutine ever runs in a namespace it did not ask for.
func (n *Netif) inNS(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get thread network namespace: %w", err)
			return
		}
		defer orig.Close()
		if orig.Equal(n.ns) {
			runtime.UnlockOSThread()
			errc <- fn()
			return
		}
		if err := netns.Set(n.ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime ends it with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("leave network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// linkByName looks a link up in the handle's namespace, mapping "not found"
// to ErrNoLink.
func (n *Netif) linkByName(name string) (netlink.Link, error) {
	l, err := n.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("interface %s: %w", name, ErrNoLink)
		}
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	return l, nil
}
