package vrrp

import (
	"context"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// unit drives either a lone instance's machine or a whole sync group, so that the machines of
// a group are only ever touched together. Whoever has something for it (the socket reader with
// an advert, the link watcher, its timer) drives it in place under its lock: no hand-off to
// another goroutine per advert, which at hundreds of instances with 10 ms adverts would cost
// a wake-up each and let a backup's 36 ms Master_Down_Interval run out under load.
type unit struct {
	members []*instance
	group   *fsm.SyncGroup // nil for a lone instance

	mu      sync.Mutex
	started bool
	stopped bool
	timer   *time.Timer
	armed   time.Time // when the timer fires; zero when it is not armed

	// observe, when set, sees every event delivered (the receive path's tests use it).
	observe func(member int, ev fsm.Event)
}

func newUnit(members []*instance, group bool) *unit {
	u := &unit{members: members}
	if group {
		ms := make([]*fsm.Machine, len(members))
		for i, in := range members {
			ms[i] = in.m
		}
		u.group = fsm.NewSyncGroup(ms...)
	}
	for i, in := range members {
		in.unit, in.member = u, i
	}
	return u
}

// deliver hands one event to a member. Events that arrive before the unit started (tracker
// states during the startup delay) are kept by the trackers and applied at start.
func (u *unit) deliver(member int, ev fsm.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.observe != nil {
		u.observe(member, ev)
	}
	in := u.members[member]
	if te, ok := ev.(trackerEvent); ok {
		in.trackers[te.key] = te.state
		if !u.started || u.stopped {
			return
		}
		now := time.Now()
		for _, ev := range in.trackerEvents() {
			u.handle(now, member, ev)
		}
		u.rearm(now)
		return
	}
	if !u.started || u.stopped {
		return
	}
	now := time.Now()
	u.handle(now, member, ev)
	u.rearm(now)
}

// handle runs one event through the machine (or group) and applies the actions. Callers hold mu.
func (u *unit) handle(now time.Time, member int, ev fsm.Event) {
	defer u.publish()
	if u.group == nil {
		for _, a := range u.members[member].m.Handle(now, ev) {
			u.members[member].apply(now, a)
		}
		return
	}
	for _, ma := range u.group.Handle(now, member, ev) {
		u.members[ma.Member].apply(now, ma.Action)
	}
}

func (u *unit) publish() {
	for _, in := range u.members {
		in.publish()
	}
}

// fire is the timer's callback: run what is due and arm for the next deadline.
func (u *unit) fire() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.armed = time.Time{}
	if !u.started || u.stopped {
		return
	}
	now := time.Now()
	defer u.publish()
	if u.group == nil {
		for _, a := range u.members[0].m.Tick(now) {
			u.members[0].apply(now, a)
		}
	} else {
		for _, ma := range u.group.Tick(now) {
			u.members[ma.Member].apply(now, ma.Action)
		}
	}
	for _, in := range u.members {
		in.garpTick(now)
	}
	u.rearm(now)
}

// nextDeadline is the earliest of the machines' timers and the pending announcements.
func (u *unit) nextDeadline() (time.Time, bool) {
	var dl time.Time
	var ok bool
	if u.group == nil {
		dl, ok = u.members[0].m.NextDeadline()
	} else {
		dl, ok = u.group.NextDeadline()
	}
	for _, in := range u.members {
		if !in.garpDue.IsZero() && (!ok || in.garpDue.Before(dl)) {
			dl, ok = in.garpDue, true
		}
	}
	return dl, ok
}

// rearm makes sure the timer fires no later than the next deadline. A deadline that moved
// later (a backup hearing its master) leaves the timer as it is: it fires early, finds
// nothing due and re-arms, which is far cheaper than resetting a timer on every advert.
func (u *unit) rearm(now time.Time) {
	dl, ok := u.nextDeadline()
	if !ok {
		return
	}
	if !u.armed.IsZero() && !dl.Before(u.armed) {
		return
	}
	u.armed = dl
	u.timer.Reset(dl.Sub(now))
}

// run starts the machines, keeps the unit going until ctx ends, then resigns every master
// (priority 0) and removes the addresses before returning.
func (u *unit) run(ctx context.Context, startDelay time.Duration) {
	if startDelay > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(startDelay):
		}
	}
	u.mu.Lock()
	u.timer = time.AfterFunc(time.Hour, u.fire)
	u.started = true
	now := time.Now()
	for i, in := range u.members {
		u.handle(now, i, fsm.Startup{})
		for _, ev := range in.trackerEvents() {
			u.handle(now, i, ev)
		}
	}
	u.armed = time.Time{}
	u.rearm(now)
	u.mu.Unlock()

	<-ctx.Done()

	u.mu.Lock()
	defer u.mu.Unlock()
	u.timer.Stop()
	u.stopped = true
	now = time.Now()
	for i := range u.members {
		u.handle(now, i, fsm.Shutdown{})
	}
}
