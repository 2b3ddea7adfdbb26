package netif

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLink(t *testing.T) {
	l := newLab(t)
	l.veth(t)
	var got Link
	var err error
	// Carrier (IFF_RUNNING) follows asynchronously through the kernel's linkwatch.
	eventually(t, "v0 up", func() bool {
		got, err = l.n.Link("v0")
		return err == nil && got.Up
	})
	want, _ := l.h.LinkByName("v0")
	if got.Name != "v0" || got.Index != want.Attrs().Index || !got.Up || got.MAC.String() != mac0.String() || got.MTU != 1500 {
		t.Errorf("Link(v0) = %+v", got)
	}
	l.setUp(t, "v1", false) // v0 loses carrier: up but not running
	eventually(t, "v0 to lose carrier", func() bool {
		got, err := l.n.Link("v0")
		return err == nil && !got.Up
	})
	if _, err := l.n.Link("nosuch0"); !errors.Is(err, ErrNoLink) {
		t.Errorf("Link(nosuch0) = %v, want ErrNoLink", err)
	}
}

func TestWatchLinks(t *testing.T) {
	l := newLab(t)
	l.veth(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := l.n.WatchLinks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func(name string, up bool, deleted bool) Link {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case lk, ok := <-ch:
				if !ok {
					t.Fatal("watch channel closed early")
				}
				if lk.Name == name && lk.Up == up && lk.Deleted == deleted {
					return lk
				}
			case <-timeout:
				t.Fatalf("no update %s up=%v deleted=%v within 5s", name, up, deleted)
			}
		}
	}
	// Initial state of every link first.
	seen := map[string]bool{}
	v0Up := false
	for len(seen) < 3 {
		select {
		case lk := <-ch:
			seen[lk.Name] = true
			if lk.Name == "v0" {
				v0Up = lk.Up
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("initial dump incomplete: %v", seen)
		}
	}
	if !seen["lo"] || !seen["v0"] || !seen["v1"] {
		t.Fatalf("initial dump = %v, want lo, v0, v1", seen)
	}

	if !v0Up {
		// The kernel reports carrier asynchronously after the veth came up.
		next("v0", true, false)
	}
	l.setUp(t, "v1", false)
	next("v0", false, false) // carrier lost
	l.setUp(t, "v1", true)
	lk := next("v0", true, false)
	if lk.MAC.String() != mac0.String() {
		t.Errorf("MAC = %v, want %v", lk.MAC, mac0)
	}

	v1, _ := l.h.LinkByName("v1")
	if err := l.h.LinkDel(v1); err != nil { // deleting one end removes both
		t.Fatal(err)
	}
	next("v0", false, true)

	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after cancel")
		}
	}
}
