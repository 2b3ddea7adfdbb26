package vrrp

import (
	"context"
	"runtime"
	"time"

	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// unit is one goroutine driving either a lone instance's machine or a whole sync group, so
// that the machines of a group are only ever touched together, from one place.
type unit struct {
	members []*instance
	group   *fsm.SyncGroup // nil for a lone instance
	inbox   chan unitEvent
}

// unitEvent is an event for one member of the unit.
type unitEvent struct {
	member int
	ev     fsm.Event
}

func newUnit(members []*instance, group bool) *unit {
	u := &unit{members: members, inbox: make(chan unitEvent, 64*len(members))}
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

func (u *unit) tick(now time.Time) {
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

// run drives the unit until ctx ends, then resigns every master (priority 0) and removes
// the addresses before returning.
func (u *unit) run(ctx context.Context, startDelay time.Duration) {
	if startDelay > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(startDelay):
		}
	}
	now := time.Now()
	for i, in := range u.members {
		u.handle(now, i, fsm.Startup{})
		for _, ev := range in.trackerEvents() {
			u.handle(now, i, ev)
		}
	}
	// Go 1.23 timers: Reset never delivers a stale expiry, so no draining is needed.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var timerC <-chan time.Time
		dl, ok := u.nextDeadline()
		precise := ok && u.waitingForMaster()
		if ok {
			wait := time.Until(dl)
			if precise {
				wait -= earlyWake
			}
			timer.Reset(wait)
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
			now := time.Now()
			for i := range u.members {
				u.handle(now, i, fsm.Shutdown{})
			}
			return
		case ue := <-u.inbox:
			now := time.Now()
			in := u.members[ue.member]
			if te, ok := ue.ev.(trackerEvent); ok {
				in.trackers[te.key] = te.state
				for _, ev := range in.trackerEvents() {
					u.handle(now, ue.member, ev)
				}
				break
			}
			u.handle(now, ue.member, ue.ev)
		case <-timerC:
			if precise {
				spinUntil(dl)
			}
			u.tick(time.Now())
		}
	}
}

// earlyWake is how much sooner than Master_Down_Timer a backup wakes. Go's timers can fire up
// to a millisecond late (the runtime sleeps in whole milliseconds), which would add that much
// to every failover; the backup wakes early and waits out the rest precisely.
const earlyWake = 2 * time.Millisecond

// waitingForMaster reports whether the next deadline is a backup's Master_Down_Timer, the one
// timer whose precision decides how fast a failover is.
func (u *unit) waitingForMaster() bool {
	for _, in := range u.members {
		if in.m.State() == fsm.Backup {
			return true
		}
	}
	return false
}

// spinUntil waits for t without sleeping; used only for the last earlyWake before a backup's
// timer, which in steady state never gets that close (each advert pushes it back).
func spinUntil(t time.Time) {
	for time.Now().Before(t) {
		runtime.Gosched()
	}
}
