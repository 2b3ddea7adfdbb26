package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vigil-ha/vigil/core/netif"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// An instance whose interface is missing, or has no usable address (IPv4: a primary
// address; IPv6: a link-local one that passed duplicate address detection), cannot send or
// receive. It is not an error of the configuration nor a reason to stop the other
// instances: like keepalived 2.2.7 (with dynamic_interfaces for a missing interface), the
// instance runs in FAULT, sends nothing and holds no address, and sets up when the link
// watch sees its interface appear or get an address. An instance that loses the interface
// address it sends from goes back to FAULT until the interface has one again.

// ifCheck asks a unit to look at a member's interface again: the link watch saw it, or an
// address on it, change.
type ifCheck struct {
	e *Engine
}

// watchSource has the link watch report the removal of the address the instance sends from,
// when that is the interface's address rather than a configured one.
func (in *instance) watchSource() {
	if in.cfg.UnicastSrcIP.IsValid() || in.cfg.McastSrcIP.IsValid() {
		in.source.Store(nil)
		return
	}
	a := in.src.WithZone("")
	in.source.Store(&a)
}

// checkInterface handles an ifCheck for member, on the unit's goroutine.
func (u *unit) checkInterface(now time.Time, member int, e *Engine) {
	defer u.publish()
	in := u.members[member]
	if in.unready == "" {
		src := in.source.Load()
		if src == nil {
			return
		}
		ok, err := in.nl.HasLocalAddr(in.cfg.Interface, *src)
		switch {
		case ok:
			return // a stale report: the address came back
		case errors.Is(err, netif.ErrNoLink):
			// The interface went away: the link watch reports it down, which is a FAULT
			// unless dont_track_primary (as before; see linkLoop).
			return
		case err != nil:
			in.log.Warn("cannot list the addresses of the interface", "interface", in.cfg.Interface, "error", err)
			return
		}
		in.unready = fmt.Sprintf("address %s removed from %s", *src, in.cfg.Interface)
		in.waiting.Store(true)
		in.source.Store(nil)
		in.log.Warn("the address the instance sends from is gone; FAULT until the interface has one again",
			"address", src.String(), "interface", in.cfg.Interface)
		for _, ev := range in.trackerEvents() {
			u.handle(now, member, ev)
		}
		// The interface may have another address to send from already.
	}
	u.setUp(now, member, e)
}

// setUp sets up an instance that was not (see Engine.resolve), if its interface is ready
// now, and lets it leave FAULT.
func (u *unit) setUp(now time.Time, member int, e *Engine) {
	in := u.members[member]
	src := in.cfg.UnicastSrcIP
	if !src.IsValid() {
		src = in.cfg.McastSrcIP
	}
	ifi, src, err := e.resolve(e.runCtx, in.cfg, src, 0)
	if err != nil {
		reason := err.Error()
		var nr notReady
		if errors.As(err, &nr) {
			reason = nr.reason
		}
		if reason != in.unready {
			in.log.Info("interface still not ready", "reason", reason)
			in.unready = reason
		}
		return
	}
	if src != in.src {
		// Only the primary address follows the source; the machine takes it while it
		// neither sends nor listens (FAULT, or INIT before its start).
		next := in.settings
		next.fsm.PrimaryAddr = src
		if err := in.m.Reconfigure(now, next.fsm); err != nil {
			in.log.Error("cannot take the new source address", "address", src.String(), "error", err)
			in.unready = err.Error()
			return
		}
		e.rw.Lock()
		in.src, in.settings = src, next
		e.rw.Unlock()
		in.rx.Store(next.rx(in.cfg))
	}
	if in.sg == nil || in.sg.sock.ifi.Index != ifi.Index {
		in.unlisten()
		if err := e.attach(e.runCtx, in, ifi); err != nil {
			in.log.Error("cannot set the instance up on its interface", "interface", in.cfg.Interface, "error", err)
			in.unready = err.Error()
			return
		}
		e.startSockets()
		u.addSockets(in)
		in.listen()
	}
	in.unready = ""
	in.waiting.Store(false)
	in.watchSource()
	in.log.Info("interface ready; the instance leaves FAULT", "interface", in.cfg.Interface, "source", src.String())
	for _, ev := range in.trackerEvents() {
		if fc, ok := ev.(fsm.FaultChanged); ok && !fc.Faulty {
			ev = fsm.FaultChanged{Reason: "interface " + in.cfg.Interface + " ready"}
		}
		u.handle(now, member, ev)
	}
	u.startWhenReady(now)
}

// ifChecksForLink and ifChecksForAddr list the instances a link or address change
// concerns: those waiting for their interface, and those whose source address went away.
// Other changes (a master's own virtual addresses among them) wake no unit.
func (e *Engine) ifChecksForLink(l netif.Link) []*instance {
	if l.Deleted {
		return nil
	}
	return e.interested(func(in *instance) bool { return in.cfg.Interface == l.Name && in.waiting.Load() })
}

// names maps interface indexes to names, from the link watch.
func (e *Engine) ifChecksForAddr(c netif.AddrChange, names map[int]string) []*instance {
	if c.Resync {
		return e.interested(func(in *instance) bool { return in.waiting.Load() || in.source.Load() != nil })
	}
	name, ok := names[c.Index]
	if !ok {
		ifi, err := net.InterfaceByIndex(c.Index)
		if err != nil {
			return nil // gone already; its link's removal is news enough
		}
		name = ifi.Name
	}
	addr := c.Addr.WithZone("")
	return e.interested(func(in *instance) bool {
		if in.cfg.Interface != name {
			return false
		}
		if c.New {
			return in.waiting.Load()
		}
		src := in.source.Load()
		return src != nil && *src == addr
	})
}

// interested lists the instances for which f holds. It takes rw: callers post to the
// instances after it returns (a unit applying a reload takes rw).
func (e *Engine) interested(f func(in *instance) bool) []*instance {
	e.rw.RLock()
	defer e.rw.RUnlock()
	var out []*instance
	for _, in := range e.instances {
		if f(in) {
			out = append(out, in)
		}
	}
	return out
}

func (e *Engine) postIfChecks(ctx context.Context, ins []*instance) {
	for _, in := range ins {
		in.post(ctx, ifCheck{e: e})
	}
}
