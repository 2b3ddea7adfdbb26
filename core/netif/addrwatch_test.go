package netif

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// TestWatchAddrs: an address added to and removed from an interface is reported with the
// interface's index, and HasLocalAddr follows.
func TestWatchAddrs(t *testing.T) {
	l := newLab(t)
	l.veth(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := l.n.WatchAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v0, err := l.h.LinkByName("v0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("198.51.100.7")
	next := func(isNew bool) {
		t.Helper()
		timeout := time.After(5 * time.Second) // ends only a test whose event never comes
		for {
			select {
			case c, ok := <-ch:
				if !ok {
					t.Fatal("watch channel closed early")
				}
				if c.Index == v0.Attrs().Index && c.Addr == addr && c.New == isNew {
					return
				}
			case <-timeout:
				t.Fatalf("no change %s new=%v on v0", addr, isNew)
			}
		}
	}
	if ok, err := l.n.HasLocalAddr("v0", addr); ok || err != nil {
		t.Fatalf("HasLocalAddr before the address = %v, %v", ok, err)
	}
	l.ip(t, "addr", "add", "198.51.100.7/24", "dev", "v0")
	next(true)
	if ok, err := l.n.HasLocalAddr("v0", addr); !ok || err != nil {
		t.Fatalf("HasLocalAddr after adding the address = %v, %v", ok, err)
	}
	l.ip(t, "addr", "del", "198.51.100.7/24", "dev", "v0")
	next(false)
	if ok, err := l.n.HasLocalAddr("v0", addr); ok || err != nil {
		t.Fatalf("HasLocalAddr after removing the address = %v, %v", ok, err)
	}
	cancel()
	for range ch { // closes once the watch has stopped
	}
}
