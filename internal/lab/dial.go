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
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{err: fmt.Errorf("current namespace: %w", err)}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			ch <- result{err: fmt.Errorf("namespace %s: %w", ns, err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- result{err: fmt.Errorf("enter namespace %s: %w", ns, err)}
			return
		}
		var d net.Dialer
		c, derr := d.DialContext(ctx, network, addr)
		if err := netns.Set(orig); err != nil {
			// The thread stays locked, so the runtime ends it with this goroutine.
			if c != nil {
				c.Close()
			}
			ch <- result{err: fmt.Errorf("leave namespace %s: %w", ns, err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{c, derr}
	}()
	r := <-ch
	return r.c, r.err
}
