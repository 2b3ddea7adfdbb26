package vrrp

import (
	"context"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// unit is one goroutine driving either a lone instance's machine or a whole sync group, so
// that the machines of a group are only ever touched together, from one place.
type unit struct {
	// keepAtStop says, once the unit's context ended, whether to leave the members as they
	// are (the engine stops with KeepOnStop) rather than shut them down; nil: shut down.
	keepAtStop func() bool

	members []*instance
	group   *fsm.SyncGroup // nil for a lone instance
	inbox   chan unitEvent

	base  time.Time // the engine's: refresh words count from it
	watch *watchdog

	pollfds []unix.PollFd // the members' sockets, for waitUntil and settle
	socks   []*sockGroup  // the same sockets, in the same order
	pending []unitEvent   // events that came during the startup delay
	// started is set once the members' machines have had their Startup: that waits until no
	// member waits for the first result of a weight-0 script (instance.waitingFirst), as
	// keepalived 2.2.7 holds an instance, and its whole sync group, out of BACKUP until
	// then (num_script_init). Until then the members stay in INIT: nothing is sent, and no
	// notify runs for a state nobody has decided yet.
	started bool
	// settleBound bounds how long settle waits for the socket readers (defaultSettleBound;
	// a test on a loaded machine sets a larger one).
	settleBound time.Duration

	// isDemoted says whether the operator demoted an instance, by name (the engine's set;
	// set by Engine.startUnit).
	isDemoted func(name string) bool

	stop   context.CancelFunc // ends run (set by Engine.startUnit)
	exited chan struct{}      // closed when run has returned
}

// unitEvent is what a unit's inbox carries for one member: exactly one of ev and msg is
// set. ev is an event for the member's machine, from outside the unit (a socket reader's
// advert); msg is a message for the unit itself. They are two fields rather than one
// interface with a variant wrapping the event because the wrapper would be a second heap
// box around the one fsm.Event already is, on every advert that reaches the inbox.
type unitEvent struct {
	member int
	ev     fsm.Event
	msg    inboxMsg
}

// inboxMsg is a message for the unit itself (trackerEvent, ifCheck, wakeUp, reconfigure).
// It is sealed, as fsm.Event is: unit.receive handles each variant, and a message for the
// unit can never reach a machine as an event.
type inboxMsg interface{ isInboxMsg() }

func (trackerEvent) isInboxMsg() {}
func (ifCheck) isInboxMsg()      {}
func (wakeUp) isInboxMsg()       {}
func (reconfigure) isInboxMsg()  {}

func newUnit(members []*instance, group bool, base time.Time, watch *watchdog) *unit {
	u := &unit{members: members, inbox: make(chan unitEvent, 64*len(members)), base: base, watch: watch, exited: make(chan struct{}),
		settleBound: defaultSettleBound}
	if group {
		ms := make([]*fsm.Machine, len(members))
		for i, in := range members {
			ms[i] = in.m
		}
		u.group = fsm.NewSyncGroup(ms...)
	}
	for i, in := range members {
		in.unit, in.member = u, i
		u.addSockets(in)
	}
	return u
}

// addSockets adds the sockets adverts for in arrive on to those the unit polls.
func (u *unit) addSockets(in *instance) {
	for _, sg := range []*sockGroup{in.sg, in.vsg} {
		if sg != nil && sg.sock != nil && sg.sock.fd >= 0 && !slices.ContainsFunc(u.pollfds, func(p unix.PollFd) bool { return int(p.Fd) == sg.sock.fd }) {
			u.pollfds = append(u.pollfds, unix.PollFd{Fd: int32(sg.sock.fd), Events: unix.POLLIN})
			u.socks = append(u.socks, sg)
		}
	}
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
		if due, has := in.nextAnnouncement(); has && (!ok || due.Before(dl)) {
			dl, ok, precise = due, true, false
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

// hasExited reports whether run has returned.
func (u *unit) hasExited() bool {
	select {
	case <-u.exited:
		return true
	default:
		return false
	}
}

// apply runs f on the unit's goroutine and returns when it has run, or when the unit has
// exited without running it.
func (u *unit) apply(f func(u *unit, now time.Time)) {
	r := reconfigure{apply: f, done: make(chan struct{})}
	select {
	case u.inbox <- unitEvent{msg: r}:
	case <-u.exited:
		return
	}
	select {
	case <-r.done:
	case <-u.exited:
	}
}

// run drives the unit until ctx ends, then resigns every master (priority 0) and removes
// the addresses before returning.
func (u *unit) run(ctx context.Context, startDelay time.Duration) {
	if startDelay > 0 {
		// A reload may come during vrrp_startup_delay: apply it (the machines have not
		// started) and keep every other event for after the delay.
		delay := time.NewTimer(startDelay)
		var later []unitEvent
	wait:
		for {
			select {
			case <-ctx.Done():
				delay.Stop()
				return
			case <-delay.C:
				break wait
			case ue := <-u.inbox:
				if r, ok := ue.msg.(reconfigure); ok {
					r.apply(u, time.Now())
					close(r.done)
					continue
				}
				later = append(later, ue)
			}
		}
		u.pending = later
	}
	u.startWhenReady(time.Now())
	for _, ue := range u.pending {
		u.receive(ue)
	}
	u.pending = nil
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
			if u.keepAtStop != nil && u.keepAtStop() {
				return // --dont-release-vrrp: no priority 0 advert, the addresses stay
			}
			now := time.Now()
			for i := range u.members {
				u.handle(now, i, fsm.Shutdown{})
			}
			return
		case ue := <-u.inbox:
			u.takeBack()
			u.receive(ue)
		case <-timerC:
			u.takeBack()
			u.timerFired(ctx, dl, precise)
		}
	}
}

// timerFired handles the expiry of the unit's timer, which was due at dl.
func (u *unit) timerFired(ctx context.Context, dl time.Time, precise bool) {
	if precise {
		if ue, got := u.waitUntil(dl); got {
			u.receive(ue) // it may well be the master's advert
			return
		}
	}
	if u.downTimerDue(time.Now()) {
		u.settle(ctx)
	}
	u.tick(time.Now())
}

// downTimerDue reports whether a member's Master_Down_Timer has run out at now.
func (u *unit) downTimerDue(now time.Time) bool {
	for _, in := range u.members {
		if dl, ok := in.m.NextDeadline(); ok && in.m.State() == fsm.Backup && !dl.After(now) {
			return true
		}
	}
	return false
}

// defaultSettleBound bounds how long settle waits for the socket readers. It is a failure
// bound only (a reader that cannot make progress): a reader normally hands its adverts over
// as soon as the unit parks.
const defaultSettleBound = time.Second

// settle hands the machines every event that arrived before their expired Master_Down_Timer
// is acted on: first those already in the inbox, then the adverts still in the sockets,
// which it waits for the readers to hand over. RFC 5798 6.4.2 takes events in the order they
// happen; an advert that is already here came before the expiry is handled, and it must
// win. Under overload (hundreds of instances starting, a flap storm) a unit wakes long past
// its deadline with the master's advert unread; taking over then would cost the VIPs, the
// announcements and a notify, delay the next adverts further and feed the storm.
func (u *unit) settle(ctx context.Context) {
	var got []unitEvent
	queued := func() {
		for {
			select {
			case ue := <-u.inbox:
				got = append(got, ue)
			default:
				return
			}
		}
	}
	queued()
	if len(u.pollfds) > 0 {
		for i := range u.pollfds {
			u.pollfds[i].Revents = 0
		}
		if _, err := unix.Poll(u.pollfds, 0); err == nil {
			bound := time.NewTimer(u.settleBound)
			defer bound.Stop()
		socks:
			for i, sg := range u.socks {
				// Wait if adverts are queued, or if the reader holds some it has read and not
				// handed out yet (it may be waiting for another unit's full inbox).
				if u.pollfds[i].Revents&unix.POLLIN == 0 && !sg.prog.inHand() {
					continue
				}
				since := sg.prog.started.Load()
				for !sg.prog.caughtUp(since) {
					progress := sg.prog.next()
					if sg.prog.caughtUp(since) {
						break
					}
					// Parking lets the reader run (the vrrp process has one processor), and
					// what it hands this unit meanwhile is kept, in order.
					select {
					case ue := <-u.inbox:
						got = append(got, ue)
					case <-progress:
					case <-bound.C:
						break socks
					case <-ctx.Done():
						break socks
					}
				}
			}
		}
	}
	queued()
	for _, ue := range got {
		u.receive(ue)
	}
}

// earlyWake is how much sooner than Master_Down_Timer a backup wakes. Go's timers can fire up
// to a millisecond late (the runtime sleeps in whole milliseconds), which would add that much
// to every failover; the backup wakes early and waits out the rest precisely.
const earlyWake = 2 * time.Millisecond

// receive handles one event from the inbox.
func (u *unit) receive(ue unitEvent) {
	now := time.Now()
	in := u.members[ue.member]
	if ue.ev != nil {
		u.handle(now, ue.member, ue.ev)
		return
	}
	switch ev := ue.msg.(type) {
	case wakeUp:
		// Only to take the timers back, done already.
	case ifCheck:
		u.checkInterface(now, ue.member, ev.e)
	case reconfigure:
		ev.apply(u, now)
		close(ev.done)
		u.startWhenReady(now)
	case trackerEvent:
		if in.trackable != nil && !in.trackable[ev.key] {
			return // posted before a reload stopped tracking it
		}
		in.trackers[ev.key] = ev.state
		for _, e := range in.trackerEvents() {
			u.handle(now, ue.member, e)
		}
		u.startWhenReady(now)
	}
}

// startWhenReady starts the members' machines, unless they started already or one of them
// still waits for a first result (see unit.started).
func (u *unit) startWhenReady(now time.Time) {
	if u.started || slices.ContainsFunc(u.members, (*instance).waitingFirst) {
		return
	}
	u.started = true
	// A demoted unit is demoted before Startup, so that it never goes MASTER, not even for
	// a moment (an address owner would at once).
	u.applyDemoted(now)
	for i, in := range u.members {
		// The trackers first: a fault known at start (a tracked interface down, a
		// weight-0 script that failed) keeps the instance in FAULT from its first moment,
		// where an owner started first would advertise 255 before resigning.
		for _, ev := range in.trackerEvents() {
			u.handle(now, i, ev)
		}
		u.handle(now, i, fsm.Startup{})
	}
}

// waitUntil waits for t without sleeping, for the last earlyWake before a backup's
// Master_Down_Timer (in steady state a timer never gets that close: each advert pushes it
// back). It returns early with the first event that arrives, so that an advert in those last
// milliseconds still counts.
//
// With one processor (the vrrp process runs so) a goroutine that yields with Gosched gets
// the processor straight back, and the socket readers only run when the runtime polls the
// network, which it does when every goroutine is parked. So when an advert waits in one of
// the unit's sockets, the unit parks on its inbox and lets the reader deliver it.
func (u *unit) waitUntil(t time.Time) (unitEvent, bool) {
	var parked *time.Timer
	defer func() {
		if parked != nil {
			parked.Stop()
		}
	}()
	for time.Now().Before(t) {
		select {
		case ue := <-u.inbox:
			return ue, true
		default:
		}
		if u.socketsReadable() {
			if parked == nil {
				parked = time.NewTimer(time.Until(t))
			} else {
				parked.Reset(time.Until(t))
			}
			select {
			case ue := <-u.inbox:
				return ue, true
			case <-parked.C:
				return unitEvent{}, false // it was for another unit
			}
		}
		runtime.Gosched()
	}
	return unitEvent{}, false
}

// socketsReadable reports whether a datagram waits in one of the sockets of the unit's
// instances.
func (u *unit) socketsReadable() bool {
	if len(u.pollfds) == 0 {
		return false
	}
	for i := range u.pollfds {
		u.pollfds[i].Revents = 0
	}
	n, err := unix.Poll(u.pollfds, 0)
	return err == nil && n > 0
}
