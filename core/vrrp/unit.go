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

	base  time.Time // the engine's: refresh words count from it
	watch *watchdog
}

// unitEvent is an event for one member of the unit.
type unitEvent struct {
	member int
	ev     fsm.Event
}

func newUnit(members []*instance, group bool, base time.Time, watch *watchdog) *unit {
	u := &unit{members: members, inbox: make(chan unitEvent, 64*len(members)), base: base, watch: watch}
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
	if adv, ok := ev.(fsm.AdvertReceived); ok {
		u.members[member].lastAdv = &adv
	}
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

// nextDeadline is the earliest of the timers the unit keeps itself (those it did not hand
// over) and of the pending announcements. precise says that it is a backup's
// Master_Down_Timer, the one timer whose precision decides how fast a failover is.
func (u *unit) nextDeadline() (dl time.Time, ok, precise bool) {
	for _, in := range u.members {
		if in.handedOver() {
			continue
		}
		if d, has := in.m.NextDeadline(); has && (!ok || d.Before(dl)) {
			dl, ok, precise = d, true, in.m.State() == fsm.Backup
		}
	}
	for _, in := range u.members {
		if !in.garpDue.IsZero() && (!ok || in.garpDue.Before(dl)) {
			dl, ok, precise = in.garpDue, true, false
		}
	}
	return dl, ok, precise
}

// handOver gives the steady members' timers away: a master's adverts to its socket's
// sender, a backup's Master_Down_Timer to the watchdog (see watch.go). The unit then sleeps
// until something else happens.
func (u *unit) handOver(now time.Time) {
	for _, in := range u.members {
		if in.handedOver() {
			continue
		}
		dl, ok := in.m.NextDeadline()
		if !ok {
			continue
		}
		switch in.m.State() {
		case fsm.Master:
			pkts, err := in.advertPackets(uint8(in.m.EffectivePriority()))
			if err != nil {
				in.log.Error("cannot encode advert", "error", err)
				continue // the unit keeps the timer and sends them itself
			}
			in.out.put(in, dl, in.cfg.AdvertInt, pkts)
			in.sending = true
		case fsm.Backup:
			adv := in.lastAdv
			if adv == nil || !in.m.RefreshedBy(*adv) || dl.Sub(now) <= handBack {
				continue
			}
			since := int64(now.Sub(u.base))
			in.fresh.adv.Store(adv)
			in.fresh.word.Store(since)
			u.watch.put(in, since, dl, in.m.MasterDownInterval())
			in.freshSince = since
			in.watching = true
		}
	}
}

// takeBack undoes handOver before the unit handles anything: the masters learn when their
// next advert is due, and the backups get the last advert their reader recorded, at the
// time it arrived.
func (u *unit) takeBack() {
	for i, in := range u.members {
		if in.sending {
			in.sending = false
			if due, ok := in.out.take(in); ok {
				in.m.AdvertsSentUntil(due)
			}
		}
		if in.watching {
			in.watching = false
			u.watch.take(in)
			if w := in.fresh.word.Swap(-1); w > in.freshSince {
				u.handle(u.base.Add(time.Duration(w)), i, *in.fresh.adv.Load())
			}
		}
	}
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
		u.handOver(time.Now())
		var timerC <-chan time.Time
		dl, ok, precise := u.nextDeadline()
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
			u.takeBack()
			now := time.Now()
			for i := range u.members {
				u.handle(now, i, fsm.Shutdown{})
			}
			return
		case ue := <-u.inbox:
			u.takeBack()
			now := time.Now()
			in := u.members[ue.member]
			if _, ok := ue.ev.(wakeUp); ok {
				break
			}
			if te, ok := ue.ev.(trackerEvent); ok {
				in.trackers[te.key] = te.state
				for _, ev := range in.trackerEvents() {
					u.handle(now, ue.member, ev)
				}
				break
			}
			u.handle(now, ue.member, ue.ev)
		case <-timerC:
			u.takeBack()
			if precise && !u.spinUntil(dl) {
				continue // an event came first; it may well be the master's advert
			}
			u.tick(time.Now())
		}
	}
}

// earlyWake is how much sooner than Master_Down_Timer a backup wakes. Go's timers can fire up
// to a millisecond late (the runtime sleeps in whole milliseconds), which would add that much
// to every failover; the backup wakes early and waits out the rest precisely.
const earlyWake = 2 * time.Millisecond

// spinUntil waits for t without sleeping; used only for the last earlyWake before a backup's
// timer, which in steady state never gets that close (each advert pushes it back). It
// returns false as soon as an event is waiting, so that an advert arriving in those last
// milliseconds still counts.
func (u *unit) spinUntil(t time.Time) bool {
	for time.Now().Before(t) {
		if len(u.inbox) > 0 {
			return false
		}
		runtime.Gosched()
	}
	return true
}
