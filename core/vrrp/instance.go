package vrrp

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/loglimit"
	"github.com/vigil-ha/vigil/core/netif"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// instance runs one vrrp_instance: it owns the state machine and is the only goroutine that
// touches it. Everything else (sockets, link watch, trackers) talks to it through inbox.
type instance struct {
	name string
	cfg  *config.VRRPInstance
	log  hclog.Logger
	m    *fsm.Machine
	sock *socket
	nl   *netif.Netif
	// lines limits the transition lines of a flapping instance (nil: none); notify and
	// status still get every transition.
	lines *loglimit.Limiter

	v6      bool
	src     netip.Addr   // source of our adverts
	dsts    []netip.Addr // the multicast group, or the unicast peers
	unicast bool
	// settings is what the configuration makes of the instance at run time (its addresses,
	// routes, authentication, GARP schedule ...); a reload replaces it. rx is the part the
	// socket reader needs, swapped whole by a reload.
	settings settings
	rx       atomic.Pointer[rxParams]
	sg       *sockGroup // the socket adverts arrive on
	vsg      *sockGroup // use_vmac: the VMAC's socket, which adverts leave from
	vmac     string     // use_vmac: the VMAC interface
	vmacUp   bool

	// notify receives every transition, for sync groups, status and notify actions; heard
	// every lower priority advert heard as master.
	notify func(name string, t fsm.Transition)
	heard  func(name string, h fsm.LowerPriorityHeard)

	trackers map[string]trackerState // by tracker key ("if:eth1", "file:maint")
	// trackable are the keys the configuration tracks: an update for another key (posted
	// before a reload removed it) is dropped. Only the unit touches it, after start.
	trackable map[string]bool
	buf       []byte

	// unit is the goroutine that drives this instance (alone, or with its sync group), and
	// member its index there.
	unit   *unit
	member int

	garps   garpSchedule
	garpDue time.Time // zero: no announcement pending
	// The second round of a Reannounce (garp_lower_prio_delay after the first): when, and
	// how many. Zero time: none pending.
	reannounceDue time.Time
	reannounceN   int
	// The early round of a Reannounce (fsm.Reannounce.Soon after the first); zero: none.
	reannounceSoon time.Time

	// Timers handed over while steady (unit.handOver); only the unit touches these fields,
	// except fresh, which the socket reader writes.
	out        *sender             // the socket's: sends our adverts while we are a steady master
	sending    bool                // out has our Adver_Timer
	watching   bool                // the watchdog has our Master_Down_Timer
	fresh      refresh             // adverts the reader recorded for us meanwhile
	freshSince int64               // fresh's word at the handover
	lastAdv    *fsm.AdvertReceived // the last advert handed to the machine

	snap  snapshot
	stats instanceStats

	// unready says why the instance is not set up (its interface is missing or has no
	// usable address: see Engine.resolve), "" once it is. It holds the instance in FAULT.
	// Only the unit touches it after start; waiting mirrors it for the link watch, and
	// source is the interface address the instance sends from, which the link watch
	// reports the removal of (nil while unready, or with a configured source address).
	unready string
	waiting atomic.Bool
	source  atomic.Pointer[netip.Addr]
}

// handedOver reports whether one of the instance's timers runs elsewhere.
func (in *instance) handedOver() bool { return in.sending || in.watching }

// trackerState is what an instance knows of one object it tracks: the tracker its
// effective priority is computed from (fsm.Effective), as the state machine takes it.
type trackerState struct {
	fsm.Tracker
	// pending: a tracked script or check that has no result yet (pendingScripts); Up,
	// Value and Dynamic mean nothing then.
	pending bool
}

// upDown is the state of a tracked interface, script or check: up or down, with the weight
// and direction the instance gives it, and a check plugin's dynamic weight (nil: none).
func upDown(up bool, weight int, reverse bool, dynamic *int) trackerState {
	return trackerState{Tracker: fsm.Tracker{Kind: fsm.TrackUpDown, Up: up, Weight: weight, Reverse: reverse, Dynamic: dynamic}}
}

// trackerEvents recomputes the effective priority and fault state from the trackers, as
// events for the machine.
func (in *instance) trackerEvents() []fsm.Event {
	ts := make([]fsm.Tracker, 0, len(in.trackers))
	for _, t := range in.trackers {
		if t.pending {
			continue // adds nothing until its first result
		}
		ts = append(ts, t.Tracker)
	}
	prio, fault := fsm.Effective(in.cfg.Priority, ts)
	reason := "tracking"
	if in.unready != "" {
		fault, reason = true, in.unready
	}
	return []fsm.Event{fsm.PriorityChanged{Effective: prio}, fsm.FaultChanged{Faulty: fault, Reason: reason}}
}

// waitingFirst reports whether the instance waits for the first result of a script or
// check it tracks with weight 0: it may not start before (see unit.started).
func (in *instance) waitingFirst() bool {
	for _, t := range in.trackers {
		if t.pending && t.Weight == 0 {
			return true
		}
	}
	return false
}

// trackerEvent carries a tracker change into the instance goroutine.
type trackerEvent struct {
	key   string
	state trackerState
}

// logTransition logs t, unless the instance is flapping: then one summary per period
// counts the transitions left out and gives the last.
func (in *instance) logTransition(t fsm.Transition, priority int) {
	args := []any{"from", t.From.String(), "to", t.To.String(), "reason", t.Reason, "priority", priority}
	if in.lines == nil {
		in.log.Info("state change", args...)
		return
	}
	in.lines.Log(in.log, in.name, hclog.Info, "state change", args...)
}

func (in *instance) apply(now time.Time, a fsm.Action) {
	switch a := a.(type) {
	case fsm.SendAdvert:
		in.sendAdvert(a.Priority)
	case fsm.Transition:
		in.stats.transition(a.From, a.To, now)
		// Logged after the addresses moved: clients wait for the announcement, the log can.
		defer in.logTransition(a, in.m.EffectivePriority())
		if a.To == fsm.Master {
			in.takeOver()
			in.garps = newGarpSchedule(in.settings.garp)
			in.announce(in.garps.batch())
			in.scheduleGarp(now)
		} else if a.From == fsm.Master || a.From == fsm.Init {
			// From INIT too: a vrrp process restarted after a crash finds the addresses its
			// predecessor left behind, and a backup must not hold them (keepalived does the same).
			leftover := a.From == fsm.Init && in.holdsVIP()
			in.garpDue, in.reannounceDue, in.reannounceSoon = time.Time{}, time.Time{}, time.Time{}
			if in.sock != nil || leftover {
				in.release() // an instance never set up has nothing of its own to remove
			}
			if leftover && in.sock != nil {
				// The predecessor was master and died without resigning: resign for it, so
				// that a backup takes over after Skew_Time instead of Master_Down_Interval
				// with nobody holding the addresses in between (keepalived leaves them
				// waiting). Sent after the addresses are gone; a master that is still there
				// answers a priority 0 advert at once (RFC 5798 6.4.3).
				in.log.Info("addresses left by a vrrp process that died as master removed; resigning for it", "priority", 0)
				in.sendAdvert(fsm.PriorityStop)
			}
		}
		if in.notify != nil {
			// Listeners read the instance's status (its priority, for notify): publish the
			// state of this step first, not the one before it.
			in.publish()
			in.notify(in.name, a)
		}
	case fsm.Reannounce:
		// A split brain ends: clients may have followed the other master's announcements.
		in.log.Debug("re-announcing the virtual addresses after a lower priority advert", "repeat", a.Repeat, "again_after", a.Again)
		in.announce(a.Repeat)
		in.reannounceDue, in.reannounceSoon, in.reannounceN = time.Time{}, time.Time{}, a.Repeat
		if a.Again > 0 {
			in.reannounceDue = now.Add(a.Again)
		}
		if a.Soon > 0 {
			in.reannounceSoon = now.Add(a.Soon)
		}
	case fsm.NoMaster:
		// The operator demoted this instance, and now nobody serves its addresses: say so
		// loud, once, with what to do (the machine does not take over; see fsm.Demote).
		in.log.Warn("no master: the virtual addresses are served by nobody; this instance is demoted and does not take over; run vigil promote to let it")
	case fsm.LowerPriorityHeard:
		in.log.Debug("lower priority advert heard; answered at once", "from", a.From, "priority", a.Priority)
		if in.heard != nil {
			in.heard(in.name, a)
		}
	}
}

func (in *instance) scheduleGarp(now time.Time) {
	in.garpDue = time.Time{}
	if d, ok := in.garps.next(); ok {
		in.garpDue = now.Add(d)
	}
}

// garpTick sends the announcements that are due.
func (in *instance) garpTick(now time.Time) {
	if !in.reannounceSoon.IsZero() && !now.Before(in.reannounceSoon) {
		in.reannounceSoon = time.Time{}
		in.announce(in.reannounceN)
	}
	if !in.reannounceDue.IsZero() && !now.Before(in.reannounceDue) {
		in.reannounceDue = time.Time{}
		in.announce(in.reannounceN)
	}
	if in.garpDue.IsZero() || now.Before(in.garpDue) {
		return
	}
	in.announce(in.garps.batch())
	in.scheduleGarp(now)
}

// nextAnnouncement is when the next pending announcement is due; false if none is.
func (in *instance) nextAnnouncement() (time.Time, bool) {
	dl := in.garpDue
	for _, t := range []time.Time{in.reannounceDue, in.reannounceSoon} {
		if !t.IsZero() && (dl.IsZero() || t.Before(dl)) {
			dl = t
		}
	}
	return dl, !dl.IsZero()
}

func (in *instance) advert(prio uint8) packet.Advert {
	return packet.Advert{
		Version:  in.cfg.Version,
		VRID:     uint8(in.cfg.VRID),
		Priority: prio,
		Interval: in.cfg.AdvertInt,
		AuthType: in.settings.authType,
		AuthData: in.settings.auth,
		Addrs:    in.settings.advAddrs,
	}
}

// advertPackets encodes our advert once per destination, for the sender.
func (in *instance) advertPackets(prio uint8) ([]outPacket, error) {
	adv := in.advert(prio)
	out := make([]outPacket, 0, len(in.dsts))
	for _, dst := range in.dsts {
		b, err := adv.AppendMarshal(nil, in.src, dst, in.rx.Load().popts)
		if err != nil {
			return nil, err
		}
		out = append(out, outPacket{bufs: [][]byte{b}, oob: in.sock.pktinfo(in.src), to: &net.IPAddr{IP: dst.AsSlice()}})
	}
	return out, nil
}

// setVMAC brings the VMAC up (before the first advert of a new master) or down (after the
// last one and the addresses): see netif.SetVMACUp.
func (in *instance) setVMAC(up bool) {
	if in.vmac == "" || in.vmacUp == up {
		return
	}
	if err := in.nl.SetVMACUp(in.vmac, up); err != nil {
		in.log.Error("VMAC", "error", err)
		return
	}
	in.vmacUp = up
}

func (in *instance) sendAdvert(prio uint8) {
	if in.sock == nil {
		return // not set up (its interface is not ready), so in FAULT: nothing to say
	}
	if prio != 0 {
		in.setVMAC(true)
	}
	adv := in.advert(prio)
	for _, dst := range in.dsts {
		b, err := adv.AppendMarshal(in.buf[:0], in.src, dst, in.rx.Load().popts)
		if err != nil {
			in.log.Error("cannot encode advert", "error", err)
			return
		}
		in.buf = b
		if err := in.sock.send(b, in.src, dst); err != nil {
			in.log.Warn("advert not sent", "error", err)
		}
	}
	// Counted once it went to the kernel (a refusal is logged above), as the sender counts.
	in.stats.sent.Add(1)
	if prio == 0 {
		in.stats.zeroSent.Add(1)
	}
}

// takeOver adds the virtual addresses and routes: this node is now the virtual router.
func (in *instance) takeOver() {
	in.setVMAC(true)
	for _, a := range in.settings.vips {
		if err := in.nl.AddAddr(a); err != nil {
			in.log.Error("cannot add virtual address", "address", a.Prefix.String(), "dev", a.Dev, "error", err)
		}
	}
	for _, r := range in.settings.routes {
		if err := in.nl.AddRoute(r); err != nil {
			in.log.Error("cannot add virtual route", "route", r.Dst.String(), "error", err)
		}
	}
}

// holdsVIP reports whether the interface carries one of the instance's virtual addresses.
func (in *instance) holdsVIP() bool {
	for _, a := range in.settings.vips {
		if ok, err := in.nl.HasAddr(a); err == nil && ok {
			return true
		}
	}
	return false
}

// release removes what takeOver added.
func (in *instance) release() {
	for _, r := range in.settings.routes {
		if err := in.nl.DelRoute(r); err != nil {
			in.log.Error("cannot remove virtual route", "route", r.Dst.String(), "error", err)
		}
	}
	for _, a := range in.settings.vips {
		if err := in.nl.DelAddr(a); err != nil {
			in.log.Error("cannot remove virtual address", "address", a.Prefix.String(), "dev", a.Dev, "error", err)
		}
	}
	in.setVMAC(false)
}

// announce sends n gratuitous ARPs / unsolicited NAs for every virtual address.
func (in *instance) announce(n int) {
	for i := 0; i < n; i++ {
		in.announceAddrs(in.settings.vips)
	}
}

// garpSchedule follows keepalived: a burst of MasterRepeat announcements on takeover, another
// after MasterDelay, then, if MasterRefresh is set, MasterRefreshRepeat every MasterRefresh.
type garpSchedule struct {
	g     config.Garp
	stage int
}

func newGarpSchedule(g config.Garp) garpSchedule { return garpSchedule{g: g} }

// batch is the number of announcements due now.
func (s *garpSchedule) batch() int {
	if s.stage < 2 {
		return s.g.MasterRepeat
	}
	return s.g.MasterRefreshRepeat
}

// next advances to the following batch and says when it is due.
func (s *garpSchedule) next() (time.Duration, bool) {
	s.stage++
	if s.stage == 1 && s.g.MasterDelay > 0 {
		return s.g.MasterDelay, true
	}
	if s.stage == 1 {
		s.stage++ // no second burst: go straight to refreshing
	}
	if s.g.MasterRefresh > 0 {
		return s.g.MasterRefresh, true
	}
	return 0, false
}
