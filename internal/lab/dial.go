package lab

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
)

// DialContext dials from inside the node's network namespace, for clients that a test or
// demo runs in-process (a database driver's DialFunc).
func (nd *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return DialIn(ctx, nd.NS, network, addr)
}

// DialIn dials from inside the named network namespace ns. A socket belongs to the
// namespace of the thread that creates it, so a locked thread of a goroutine of its own
// moves there for the dial and back; should it fail to come back, it stays locked and ends
// with that goroutine instead of running other code in the wrong namespace. addr should be
// an IP literal: a name with several addresses would be dialled from other threads.
func DialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNamespace(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil && c != nil {
		c.Close()
		c = nil
	}
	return c, err
}

// ListenIn listens inside the named network namespace ns (see DialIn): the listener and the
// connections it accepts belong to that namespace, whichever thread serves them.
func ListenIn(ns, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNamespace(ns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil && l != nil {
		l.Close()
		l = nil
	}
	return l, err
}

// inNamespace runs f on a locked thread of a goroutine of its own that moves into ns for
// the call and back; should it fail to come back, it stays locked and ends with that
// goroutine instead of running other code in the wrong namespace. f's sockets stay in ns.
func inNamespace(ns string, f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			ch <- fmt.Errorf("namespace %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			// The thread stays locked, so the runtime ends it with this goroutine. f's
			// sockets are fine (they belong to ns), but the caller is told.
			ch <- fmt.Errorf("leave namespace %s: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		ch <- ferr
	}()
	return <-ch
}
