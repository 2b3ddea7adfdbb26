package netif

import (
	"github.com/vishvananda/netlink"
)

// nlHandle is the netlink handle, its requests run on one goroutine of its own.
//
// The netlink library reads each answer into a 64 KiB array on the caller's stack
// (nl.NetlinkSocket.Receive), so every goroutine that ever made a request kept a stack of
// 128 KiB until collections shrank it, half a step per cycle. The vrrp process has a
// goroutine per instance and each looks its addresses up at start: at 255 instances that was
// 32 MiB of stacks, freed over the next seconds into heap the runtime returns to the kernel
// only slowly (BENCHMARKS.md notes, issue 17). Requests on one shared socket were one at a
// time already (the library locks it), so handing them to one goroutine costs a channel
// round trip and nothing in throughput.
type nlHandle struct {
	h     *netlink.Handle
	calls chan func()
	stop  chan struct{}
}

func newNLHandle(h *netlink.Handle) *nlHandle {
	w := &nlHandle{h: h, calls: make(chan func()), stop: make(chan struct{})}
	go w.serve()
	return w
}

func (w *nlHandle) serve() {
	for {
		select {
		case f := <-w.calls:
			f()
		case <-w.stop:
			return
		}
	}
}

// do runs f on the handle's goroutine and returns its error. After Close it runs f here:
// the closed handle answers with an error of its own.
func (w *nlHandle) do(f func(h *netlink.Handle) error) error {
	var err error
	done := make(chan struct{})
	select {
	case w.calls <- func() { err = f(w.h); close(done) }:
		<-done
	case <-w.stop:
		err = f(w.h)
	}
	return err
}

// Close ends the goroutine and closes the handle. Netif.Close calls it once.
func (w *nlHandle) Close() {
	close(w.stop)
	w.h.Close()
}

func (w *nlHandle) LinkByName(name string) (netlink.Link, error) {
	var l netlink.Link
	err := w.do(func(h *netlink.Handle) (err error) { l, err = h.LinkByName(name); return err })
	return l, err
}

func (w *nlHandle) LinkAdd(l netlink.Link) error {
	return w.do(func(h *netlink.Handle) error { return h.LinkAdd(l) })
}

func (w *nlHandle) LinkDel(l netlink.Link) error {
	return w.do(func(h *netlink.Handle) error { return h.LinkDel(l) })
}

func (w *nlHandle) LinkSetUp(l netlink.Link) error {
	return w.do(func(h *netlink.Handle) error { return h.LinkSetUp(l) })
}

func (w *nlHandle) LinkSetDown(l netlink.Link) error {
	return w.do(func(h *netlink.Handle) error { return h.LinkSetDown(l) })
}

func (w *nlHandle) AddrAdd(l netlink.Link, a *netlink.Addr) error {
	return w.do(func(h *netlink.Handle) error { return h.AddrAdd(l, a) })
}

func (w *nlHandle) AddrDel(l netlink.Link, a *netlink.Addr) error {
	return w.do(func(h *netlink.Handle) error { return h.AddrDel(l, a) })
}

func (w *nlHandle) AddrList(l netlink.Link, family int) ([]netlink.Addr, error) {
	var addrs []netlink.Addr
	err := w.do(func(h *netlink.Handle) (err error) { addrs, err = h.AddrList(l, family); return err })
	return addrs, err
}

func (w *nlHandle) RouteAdd(r *netlink.Route) error {
	return w.do(func(h *netlink.Handle) error { return h.RouteAdd(r) })
}

func (w *nlHandle) RouteDel(r *netlink.Route) error {
	return w.do(func(h *netlink.Handle) error { return h.RouteDel(r) })
}

func (w *nlHandle) RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	var routes []netlink.Route
	err := w.do(func(h *netlink.Handle) (err error) {
		routes, err = h.RouteListFiltered(family, filter, mask)
		return err
	})
	return routes, err
}
