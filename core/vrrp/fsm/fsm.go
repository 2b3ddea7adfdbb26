// Package fsm is the VRRP state machine of one virtual router (one VRID on one
// interface), without I/O: the caller passes events and the current time in and
// gets actions out, and calls Tick when NextDeadline has passed.
//
// The machine follows RFC 5798 section 6.4 (VRRPv3) and RFC 3768 section 6.4
// (VRRPv2), with keepalived's behaviour where keepalived goes beyond the RFCs
// (FAULT state, preempt_delay, answering lower-priority adverts, sync groups),
// and one extension of vigil's own: the operator's Demote and Promote, which
// neither has. The comments quote the RFC section each branch implements.
package fsm

import (
	"fmt"
	"net/netip"
	"time"
)

// State is a VRRP state. The zero value is Init.
type State int

const (
	// Init is RFC 5798 6.4.1 Initialize: not started (or shut down).
	Init State = iota
	// Backup is RFC 5798 6.4.2.
	Backup
	// Master is RFC 5798 6.4.3.
	Master
	// Fault is keepalived's extension: an interface is down or a tracker with
	// weight 0 failed; the router neither sends nor listens.
	Fault
)

// States returns every state a Machine can be in.
func States() []State { return []State{Init, Backup, Master, Fault} }

func (s State) String() string {
	switch s {
	case Init:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	case Fault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Priorities with a meaning of their own (RFC 5798 5.2.4).
const (
	PriorityStop  = 0   // sent by a master that stops being master
	PriorityOwner = 255 // the address owner
)

// Config is the static configuration of one virtual router.
type Config struct {
	VRID    uint8
	Version int // 2 or 3
	// Priority is the configured (base) priority, 1..255; 255 is the address
	// owner, whose priority trackers never change.
	Priority int
	// AdvertInterval is our Advertisement_Interval. VRRPv2 counts whole
	// seconds, VRRPv3 centiseconds; the codec is the one to round.
	AdvertInterval time.Duration
	// Preempt false is keepalived's nopreempt.
	Preempt bool
	// PreemptDelay is keepalived's preempt_delay: a backup that hears a lower
	// priority master keeps accepting its adverts for this long before it
	// lets the master down timer run out and preempts.
	PreemptDelay time.Duration
	// PrimaryAddr is the source address of our adverts, compared with the
	// sender's on equal priority (the higher address wins).
	PrimaryAddr netip.Addr
	// InitialState is keepalived's "state": Init (unset) means Master for the
	// address owner and Backup otherwise. Master for the owner goes MASTER at
	// once (RFC 5798 6.4.1). Master for a non-owner starts in BACKUP with the
	// full Master_Down_Interval, as 6.4.1 says for every router that is not
	// the owner: a restarted node must hear a running master before it may
	// claim the address, and one interval is too short for that (one lost or
	// late advert would make it a second master). keepalived 2.2.7 waits the
	// same on the wire; only preemption settings follow from "state MASTER".
	InitialState State
	// LowerPrioNoAdvert is keepalived's lower_prio_no_advert: a master does not
	// answer a lower-priority advert with its own.
	LowerPrioNoAdvert bool
	// LowerPrioGarpRepeat and LowerPrioGarpDelay are keepalived's
	// garp_lower_prio_repeat and garp_lower_prio_delay: a master that hears
	// a lower priority advert re-announces its addresses (Reannounce), so
	// that clients which followed the other master during a split brain come
	// back. A repeat of 0 turns it off.
	LowerPrioGarpRepeat int
	LowerPrioGarpDelay  time.Duration
	// HigherPrioSendAdvert is keepalived's higher_prio_send_advert: a master
	// that hears a higher priority advert sends one of its own before it
	// steps down, so that the winner hears a lower priority and re-announces
	// (the end of a split brain seen from the side that loses it).
	HigherPrioSendAdvert bool
	// DownTimerAdverts is keepalived's down_timer_adverts, the number of
	// missed adverts in Master_Down_Interval; 0 means the RFC's 3.
	DownTimerAdverts int
}

// Event is an input to the machine.
type Event interface{ isEvent() }

// Startup is RFC 5798 6.4.1 "If a Startup event is received".
type Startup struct{}

// Shutdown is "If a Shutdown event is received" in 6.4.2 and 6.4.3.
type Shutdown struct{}

// AdvertReceived is an ADVERTISEMENT for our VRID that the codec has already
// validated (version, checksum, TTL, auth, addresses). From is its IP source.
// Interval is its Max Advertise Interval (VRRPv3) or Adver Int (VRRPv2).
type AdvertReceived struct {
	From     netip.Addr
	Priority uint8
	Interval time.Duration
}

// PriorityChanged carries a new effective priority, from Effective.
type PriorityChanged struct{ Effective int }

// FaultChanged reports the fault condition (interface down or a weight-0
// tracker failed, see Effective) turning on or off.
type FaultChanged struct {
	Faulty bool
	Reason string
}

// Demote is vigil's operator handover (`vigil demote`), which neither RFC nor keepalived
// has: a master resigns as on Shutdown (6.4.3: "Send an ADVERTISEMENT with Priority = 0",
// so that a backup takes over after Skew_Time rather than Master_Down_Interval) but stays
// in Backup, and a demoted router never becomes master again until Promote, not even when
// no other master is left (see NoMaster): an operator who demotes a node to patch it wants
// it to serve nothing, and a takeover in the middle of the work would send clients to a
// node whose services are down. The router still listens, and follows whatever master it
// hears, so that status can say who serves the addresses, and whether anyone does.
//
// A member of a sync group demotes the whole group: a group whose members stood on
// different nodes would break what the group is for.
type Demote struct{}

// Promote lifts a Demote. A backup then behaves as 6.4.2 says again: with preemption and
// a higher priority than the master's it discards the master's adverts and takes over when
// its Master_Down_Timer fires; if no master was heard for a Master_Down_Interval (NoMaster),
// it takes over at once.
type Promote struct{}

func (Startup) isEvent()         {}
func (Shutdown) isEvent()        {}
func (AdvertReceived) isEvent()  {}
func (PriorityChanged) isEvent() {}
func (FaultChanged) isEvent()    {}
func (Demote) isEvent()          {}
func (Promote) isEvent()         {}

// Action is an output of the machine, for the runtime to carry out in order.
type Action interface{ isAction() }

// SendAdvert asks for one ADVERTISEMENT with this priority (0 when resigning).
type SendAdvert struct{ Priority uint8 }

// Transition reports a state change. Entering Master: add the VIPs, send
// gratuitous ARP/NA, fire notify_master. Leaving Master: remove the VIPs.
type Transition struct {
	From, To State
	Reason   string
}

// MasterRxLowerPri is the name LowerPriorityHeard goes by outside the state machine: the To
// of the transition the vrrp process reports for it, and what notify and the FIFO say
// (keepalived's MASTER_RX_LOWER_PRI). It is not a state.
const MasterRxLowerPri = "MASTER_RX_LOWER_PRI"

// LowerPriorityHeard reports that, as master, we heard an advert from a lower
// priority router (keepalived's notify_master_rx_lower_pri): another master,
// so a split brain is ending. It comes once per episode (see masterRx); if
// the config allows it, a SendAdvert and a Reannounce precede it.
type LowerPriorityHeard struct {
	From     netip.Addr
	Priority uint8
}

// Reannounce asks for Repeat rounds of gratuitous ARPs / unsolicited NAs for
// the virtual addresses now and, when Again is positive, Repeat rounds more
// after Again (keepalived's garp_lower_prio_repeat and garp_lower_prio_delay).
// A later Reannounce replaces the pending second round.
//
// Soon asks for Repeat rounds more after Soon, which keepalived does not do: a
// backup that lost our adverts and took over sends its advert, then adds the
// addresses and announces them; we re-announce as soon as we hear the advert,
// which can be before its announcements reach the clients, and they would
// stay with it until the second round, garp_lower_prio_delay (5 s) later
// (bench/faults' packet-loss rows, with keepalived and vigil alike). Soon is
// past its takeover, and past its stepping down on our answer.
type Reannounce struct {
	Repeat int
	Again  time.Duration
	Soon   time.Duration
}

// reannounceSoon is Reannounce.Soon: an advert interval (the other router hears our
// answer and steps down), and no less than 100 ms (its takeover's address change and
// announcements take milliseconds, more on a loaded host).
func reannounceSoon(advert time.Duration) time.Duration {
	return max(advert, 100*time.Millisecond)
}

// NoMaster reports that a demoted backup's Master_Down_Timer ran out: no router is
// master, the virtual addresses are served by nobody, and the demoted router does not take
// over (see Demote). It comes once per episode; the runtime warns the operator, who may
// promote the router. The episode ends when an advert is accepted or on Promote.
type NoMaster struct{ Since time.Time }

func (SendAdvert) isAction()         {}
func (Transition) isAction()         {}
func (LowerPriorityHeard) isAction() {}
func (Reannounce) isAction()         {}
func (NoMaster) isAction()           {}

// Machine is the state machine of one virtual router. It is not safe for
// concurrent use. A machine that belongs to a SyncGroup is driven only
// through the group.
type Machine struct {
	cfg Config

	state    State
	started  bool // between Startup and Shutdown
	faulty   bool // our own fault condition, from FaultChanged
	priority int  // effective priority

	masterAdverInterval time.Duration
	deadline            time.Time // Adver_Timer in Master, Master_Down_Timer in Backup; zero if none
	// resigned is set while a backup's Master_Down_Timer runs for Skew_Time only, because
	// its master resigned with a priority 0 advert: the transition it ends in says so, as
	// keepalived's log does, and tells an operator (and a test) a handover from a failure.
	resigned bool

	// wantMaster is keepalived's wantstate MASTER while a backup is held
	// back: its master down timer ran out but its sync group cannot follow
	// yet, or it was configured "state MASTER".
	wantMaster bool
	// preemptAt is when a pending preempt_delay ends; zero when none runs.
	preemptAt  time.Time
	masterAddr netip.Addr // the master we last accepted an advert from
	// lowerHeardAt is when, as master, we last heard a lower priority
	// advert; zero outside such an episode (see masterRx).
	lowerHeardAt time.Time
	// reannouncedAt is when, as master, we last re-announced our addresses
	// for a lower priority advert, ours or a sync group member's; zero
	// before the first one of a mastership.
	reannouncedAt time.Time

	// demoted is set between Demote and Promote (see Demote): goMaster refuses.
	demoted bool
	// noMasterSince is when a demoted backup's Master_Down_Timer ran out with no master
	// heard (NoMaster); zero while a master is heard, and whenever not demoted.
	noMasterSince time.Time

	group *SyncGroup
	index int      // our index in group
	out   []Action // actions of the step in progress (ungrouped machines)
}

// New returns a machine in Init. It panics on a configuration that the config
// layer must already have rejected (priority out of 1..255, version not 2 or
// 3, non-positive interval).
func New(cfg Config) *Machine {
	if cfg.Priority < 1 || cfg.Priority > PriorityOwner {
		panic(fmt.Sprintf("fsm: priority %d out of 1..255", cfg.Priority))
	}
	if cfg.Version != 2 && cfg.Version != 3 {
		panic(fmt.Sprintf("fsm: VRRP version %d", cfg.Version))
	}
	if cfg.AdvertInterval <= 0 {
		panic("fsm: advert interval must be positive")
	}
	if cfg.DownTimerAdverts <= 0 {
		cfg.DownTimerAdverts = 3
	}
	if cfg.InitialState != Master && cfg.InitialState != Backup {
		if cfg.Priority == PriorityOwner {
			cfg.InitialState = Master
		} else {
			cfg.InitialState = Backup
		}
	}
	if cfg.InitialState == Master {
		// keepalived clears both with "state MASTER": they would be no-ops.
		cfg.Preempt = true
		cfg.PreemptDelay = 0
	}
	if cfg.Priority == PriorityOwner {
		cfg.Preempt = true // keepalived: nopreempt is incompatible with 255
	}
	return &Machine{
		cfg:                 cfg,
		priority:            cfg.Priority,
		masterAdverInterval: cfg.AdvertInterval,
	}
}

// Config returns the configuration as the machine uses it, defaults applied.
func (m *Machine) Config() Config { return m.cfg }

// State returns the current state.
func (m *Machine) State() State { return m.state }

// EffectivePriority returns the priority we advertise (255 for the owner).
func (m *Machine) EffectivePriority() int { return m.priority }

// MasterAdverInterval returns Master_Adver_Interval: in a VRRPv3 backup the
// interval the master advertises, otherwise our own.
func (m *Machine) MasterAdverInterval() time.Duration { return m.masterAdverInterval }

// MasterAddr returns the address of the master whose advert we last accepted.
func (m *Machine) MasterAddr() netip.Addr { return m.masterAddr }

// Demoted reports whether the router is demoted (Demote, until Promote).
func (m *Machine) Demoted() bool { return m.demoted }

// NoMasterSince returns when a demoted backup last found that no router is master (see
// NoMaster), and false while a master is heard or the router is not demoted.
func (m *Machine) NoMasterSince() (time.Time, bool) {
	return m.noMasterSince, !m.noMasterSince.IsZero()
}

// SkewTime returns Skew_Time for the current effective priority.
//
// RFC 3768 6.1 (v2): Skew_Time = (256 - Priority) / 256 seconds.
// RFC 5798 6.1 (v3): Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
func (m *Machine) SkewTime() time.Duration { return m.skew(256 - m.priority) }

func (m *Machine) skew(n int) time.Duration {
	if m.cfg.Version == 2 {
		return time.Duration(n) * time.Second / 256
	}
	return time.Duration(n) * m.masterAdverInterval / 256
}

// MasterDownInterval returns Master_Down_Interval (RFC 5798 6.1):
// 3 * Master_Adver_Interval + Skew_Time (3 is keepalived's down_timer_adverts).
func (m *Machine) MasterDownInterval() time.Duration {
	return time.Duration(m.cfg.DownTimerAdverts)*m.masterAdverInterval + m.SkewTime()
}

// NextDeadline returns when Tick must be called next; false when no timer
// runs (Init, Fault).
func (m *Machine) NextDeadline() (time.Time, bool) {
	return m.deadline, !m.deadline.IsZero()
}

// Handle feeds one event at time now and returns the actions to carry out.
func (m *Machine) Handle(now time.Time, ev Event) []Action {
	m.mustBeAlone()
	m.handle(now, ev)
	return m.flush()
}

// Tick fires the timer if it is due at or before now.
func (m *Machine) Tick(now time.Time) []Action {
	m.mustBeAlone()
	m.tick(now)
	return m.flush()
}

func (m *Machine) mustBeAlone() {
	if m.group != nil {
		panic("fsm: machine belongs to a SyncGroup; drive it through the group")
	}
}

func (m *Machine) flush() []Action {
	out := m.out
	m.out = nil
	return out
}

func (m *Machine) emit(a Action) {
	if m.group != nil {
		m.group.out = append(m.group.out, MemberAction{Member: m.index, Action: a})
		return
	}
	m.out = append(m.out, a)
}

func (m *Machine) handle(now time.Time, ev Event) {
	switch ev := ev.(type) {
	case Startup:
		m.startup(now)
	case Shutdown:
		m.shutdown(now)
	case AdvertReceived:
		switch m.state {
		case Backup:
			m.backupRx(now, ev)
		case Master:
			m.masterRx(now, ev)
		}
		// Init and Fault do not listen (keepalived drops the packet).
	case PriorityChanged:
		m.setPriority(ev.Effective)
	case FaultChanged:
		m.setFault(now, ev.Faulty, ev.Reason)
	case Demote:
		if m.group != nil {
			m.group.demote(now)
		} else {
			m.demote(now)
		}
	case Promote:
		if m.group != nil {
			m.group.promote(now)
		} else {
			m.promote(now)
		}
	default:
		panic(fmt.Sprintf("fsm: unknown event %T", ev))
	}
}

func (m *Machine) tick(now time.Time) {
	if m.deadline.IsZero() || m.deadline.After(now) {
		return
	}
	switch m.state {
	case Backup:
		if m.demoted {
			// vigil: a demoted router does not take over (see Demote); it says once that
			// nobody serves the addresses now, and keeps no timer until an advert comes.
			m.deadline = time.Time{}
			m.resigned = false
			m.masterAddr = netip.Addr{}
			if m.noMasterSince.IsZero() {
				m.noMasterSince = now
				m.emit(NoMaster{Since: now})
			}
			return
		}
		// 6.4.2 Backup: "If the Master_Down_Timer fires": become master.
		reason := "master down timer expired"
		if m.resigned {
			reason = "master resigned (priority 0 advert)"
		}
		m.goMaster(now, reason)
	case Master:
		// 6.4.3 Master: "If the Adver_Timer fires": send an ADVERTISEMENT
		// and reset the Adver_Timer to Advertisement_Interval.
		m.emit(SendAdvert{Priority: uint8(m.priority)})
		// Count the next interval from when this advert was due, not from when the runtime
		// got round to it: otherwise every wake-up delay stretches the period, and a
		// backup's Master_Down_Interval of 3 intervals runs out under load.
		m.deadline = m.deadline.Add(m.cfg.AdvertInterval)
		if !m.deadline.After(now) {
			m.deadline = now.Add(m.cfg.AdvertInterval) // more than an interval late: resume
		}
	}
}

// 6.4.1 Initialize.
func (m *Machine) startup(now time.Time) {
	if m.started {
		return
	}
	m.started = true
	m.masterAdverInterval = m.cfg.AdvertInterval
	m.preemptAt = time.Time{}
	m.masterAddr = netip.Addr{}
	if m.faulty {
		m.setState(Fault, "startup: fault")
		if m.group != nil {
			m.group.syncFault(m)
		}
		return
	}
	if m.group.faulted() {
		m.setState(Fault, "startup: sync group in fault")
		return
	}
	wantMaster := m.cfg.InitialState == Master || m.group.isMaster()
	if wantMaster && m.isOwner() {
		// 6.4.1: "If the Priority = 255 ... transition to the Master state".
		// Unlike the RFC, keepalived lets the owner start as a backup when
		// its configured state is BACKUP; so do we.
		m.goMaster(now, "startup: address owner")
		if m.state == Master {
			return
		}
	}
	// 6.4.1 "else": Master_Adver_Interval = Advertisement_Interval, set the
	// Master_Down_Timer to Master_Down_Interval, transition to Backup.
	// "state MASTER" (or a sync group that is MASTER) does not shorten the
	// timer: a router that is not the owner never claims the address before a
	// running master has had Master_Down_Interval to show itself.
	m.enterBackup(now, Init, "startup")
	if wantMaster && !m.demoted {
		// It does count for the sync group: this member is ready for MASTER
		// when its timer runs out, so it does not hold the others back.
		m.wantMaster = true
	}
}

// 6.4.2 and 6.4.3 "If a Shutdown event is received".
func (m *Machine) shutdown(now time.Time) {
	if !m.started {
		return
	}
	m.started = false
	if m.state == Master {
		// 6.4.3: "Send an ADVERTISEMENT with Priority = 0".
		m.emit(SendAdvert{Priority: PriorityStop})
	}
	m.setState(Init, "shutdown")
	if m.group != nil && m.faulty {
		// Our fault no longer holds the rest of the group in FAULT.
		m.group.faultCleared(now, m, "sync group: faulty member shut down")
	}
}

// 6.4.2 Backup: "If an ADVERTISEMENT is received".
func (m *Machine) backupRx(now time.Time, ev AdvertReceived) {
	// keepalived: an owner that stepped down to 254 because another router
	// also claims to own the address gets 255 back once that is over. We
	// never step down (see masterRx), so there is nothing to restore.
	switch {
	case ev.Priority == PriorityStop && m.masterAddr.IsValid() && ev.From != m.masterAddr:
		// A resignation from a router that is not the master we follow resigns
		// nothing: our master is still there. The RFC and keepalived take any
		// priority 0; then a forger's, or another cluster's, sets our timer to
		// Skew_Time, and only our master's answer in time (7.8 ms at priority
		// 254) keeps us from taking over: under a storm of them on a loaded
		// host it does not (bench/faults forged-malformed).
	case ev.Priority == PriorityStop && !m.noMasterSince.IsZero():
		// vigil: a demoted backup that found no master (see Demote) has no master to
		// resign, and no takeover to time: it keeps waiting for a master's advert.
	case ev.Priority == PriorityStop:
		// "If the Priority in the ADVERTISEMENT is zero, then: Set the
		// Master_Down_Timer to Skew_Time."
		m.deadline = now.Add(m.SkewTime())
		m.resigned = true
	case m.demoted:
		// vigil: a demoted router follows any master, whatever its priority (see Demote):
		// it will not preempt, and its timer only tells whether someone serves the
		// addresses.
		m.follow(now, ev)
		m.preemptAt = time.Time{}
	case !m.cfg.Preempt || int(ev.Priority) >= m.priority || m.preemptDelayed(now):
		// "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT
		// is greater than or equal to the local Priority, then: Set
		// Master_Adver_Interval to Adver Interval contained in the
		// ADVERTISEMENT, Recompute the Master_Down_Interval, Reset the
		// Master_Down_Timer to Master_Down_Interval."
		// keepalived also accepts while a preempt_delay runs.
		m.follow(now, ev)
		if m.cfg.PreemptDelay > 0 {
			if int(ev.Priority) >= m.priority {
				m.preemptAt = time.Time{}
			} else if m.preemptAt.IsZero() {
				m.preemptAt = now.Add(m.cfg.PreemptDelay)
			}
		}
	default:
		// "Else (Priority in the ADVERTISEMENT is less than the local
		// Priority and Preempt_Mode is True): Discard the ADVERTISEMENT."
		// The Master_Down_Timer keeps running, so we preempt when it fires.
	}
}

// follow accepts ev's sender as our master (6.4.2): "Set Master_Adver_Interval to Adver
// Interval contained in the ADVERTISEMENT, Recompute the Master_Down_Interval, Reset the
// Master_Down_Timer to Master_Down_Interval".
func (m *Machine) follow(now time.Time, ev AdvertReceived) {
	if m.cfg.Version == 3 && ev.Interval > 0 {
		m.masterAdverInterval = ev.Interval // v2 adverts carry it for troubleshooting only
	}
	m.deadline = now.Add(m.MasterDownInterval())
	m.resigned = false
	m.masterAddr = ev.From
	m.wantMaster = false
	m.noMasterSince = time.Time{}
}

// demote is Demote for this machine: a master resigns as on Shutdown (6.4.3) and goes to
// Backup with a full Master_Down_Timer, which, demoted, only tells whether a new master
// shows up. Any other state just takes note: goMaster refuses from now on.
func (m *Machine) demote(now time.Time) {
	if m.markDemoted() && m.state == Master {
		m.emit(SendAdvert{Priority: PriorityStop})
		m.enterBackup(now, Master, reasonDemoted)
	}
}

const reasonDemoted = "demoted by the operator (vigil demote)"

// markDemoted sets the demotion and drops any wish to become master; false if it was set.
func (m *Machine) markDemoted() bool {
	if m.demoted {
		return false
	}
	m.demoted = true
	m.wantMaster = false
	m.preemptAt = time.Time{}
	return true
}

// promote is Promote for this machine. A backup that found no master (NoMaster) takes over
// at once, as its Master_Down_Timer ran out long ago; any other backup lets its timer run:
// it preempts by 6.4.2 if it may, when the timer fires.
func (m *Machine) promote(now time.Time) {
	if !m.demoted {
		return
	}
	m.demoted = false
	orphan := !m.noMasterSince.IsZero()
	m.noMasterSince = time.Time{}
	if !m.started || m.state != Backup {
		return
	}
	if orphan {
		m.goMaster(now, "promoted by the operator (vigil promote) with no master heard")
		return
	}
	if m.cfg.InitialState == Master {
		m.wantMaster = true // as at startup: ready for MASTER when the timer runs out
	}
}

// preemptDelayed reports whether keepalived's preempt_delay still holds off
// preemption: it starts at the first lower-priority advert we accept.
func (m *Machine) preemptDelayed(now time.Time) bool {
	return m.cfg.PreemptDelay > 0 && (m.preemptAt.IsZero() || m.preemptAt.After(now))
}

// 6.4.3 Master: "If an ADVERTISEMENT is received".
func (m *Machine) masterRx(now time.Time, ev AdvertReceived) {
	if ev.Priority == PriorityStop {
		// "If the Priority in the ADVERTISEMENT is zero, then: Send an
		// ADVERTISEMENT, Reset the Adver_Timer to Advertisement_Interval."
		m.emit(SendAdvert{Priority: uint8(m.priority)})
		m.deadline = now.Add(m.cfg.AdvertInterval)
		return
	}
	cmp := compareAddr(ev.From, m.cfg.PrimaryAddr)
	higher := int(ev.Priority) > m.priority || (int(ev.Priority) == m.priority && cmp > 0)
	lower := int(ev.Priority) < m.priority || (int(ev.Priority) == m.priority && cmp < 0)
	switch {
	case higher:
		// "If the Priority in the ADVERTISEMENT is greater than the local
		// Priority or the Priority in the ADVERTISEMENT is equal to the local
		// Priority and the primary IPvX Address of the sender is greater
		// than the local primary IPvX Address, then: Cancel Adver_Timer, Set
		// Master_Adver_Interval to Adver Interval contained in the
		// ADVERTISEMENT, Recompute the Skew_Time, Recompute the
		// Master_Down_Interval, Set Master_Down_Timer to
		// Master_Down_Interval, Transition to the Backup state."
		// Two owners: keepalived first waits to see whether the other one
		// backs off; we step down at once, as the RFC says.
		if m.cfg.HigherPrioSendAdvert {
			m.emit(SendAdvert{Priority: uint8(m.priority)})
		}
		if m.cfg.Version == 3 && ev.Interval > 0 {
			m.masterAdverInterval = ev.Interval
		}
		m.enterBackup(now, Master, fmt.Sprintf("higher priority %d advert from %s", ev.Priority, ev.From))
		m.masterAddr = ev.From
	case lower:
		// The RFC says "discard". keepalived answers at once with its own
		// advert so that the lower router, which presumably lost our adverts
		// and became master, steps down without waiting; it re-announces the
		// addresses, since clients followed the other master's gratuitous
		// ARPs (or NAs) while it was one, and fires
		// notify_master_rx_lower_pri.
		//
		// Every advert is answered, so the other master steps down even if
		// an answer is lost. keepalived also re-announces and notifies for
		// each advert; a master thawed after a freeze finds dozens queued and
		// would flood the link and the logs. So:
		//  - The notification (a script run and a log line) comes once per
		//    episode: it reports that a split brain is ending, not how long.
		//    An episode ends when no lower priority advert came for a
		//    Master_Down_Interval, or we leave MASTER.
		//  - The re-announce comes at the start of an episode and then again
		//    whenever the last one is max(garp_lower_prio_delay,
		//    Master_Down_Interval) old while the adverts keep coming. In a
		//    one-way partition the other master never hears us, keeps
		//    advertising and refreshing its own gratuitous ARPs, and the
		//    episode never ends; clients must still come back to us.
		first := m.lowerHeardAt.IsZero() || now.Sub(m.lowerHeardAt) >= m.MasterDownInterval()
		m.lowerHeardAt = now
		if !m.cfg.LowerPrioNoAdvert {
			m.emit(SendAdvert{Priority: uint8(m.priority)})
			m.deadline = now.Add(m.cfg.AdvertInterval)
		}
		if m.reannounceDue(now, first) {
			m.reannounce(now)
			// keepalived: the other members of a sync group that hold their
			// addresses re-announce them too, each with its own settings.
			m.group.reannounceOthers(m, now, first)
		}
		if first {
			m.emit(LowerPriorityHeard{From: ev.From, Priority: ev.Priority})
		}
	default:
		// Our own priority from our own address: a looped-back advert or a
		// duplicate address. keepalived logs a warning and carries on.
	}
}

// reannounceDue reports whether a lower priority advert heard at now (first:
// it starts an episode) calls for a re-announce (see masterRx). A sync group
// member's episode may have made us re-announce moments ago; the start of
// our own episode then adds nothing, or every member would announce N times
// at once in a group-wide split brain.
func (m *Machine) reannounceDue(now time.Time, first bool) bool {
	if m.reannouncedAt.IsZero() {
		return true
	}
	since := now.Sub(m.reannouncedAt)
	return since >= max(m.cfg.LowerPrioGarpDelay, m.MasterDownInterval()) ||
		first && since >= m.MasterDownInterval()
}

// reannounce emits our Reannounce, if garp_lower_prio_repeat allows one, and
// records when.
func (m *Machine) reannounce(now time.Time) {
	if m.cfg.LowerPrioGarpRepeat <= 0 {
		return
	}
	m.emit(Reannounce{Repeat: m.cfg.LowerPrioGarpRepeat, Again: m.cfg.LowerPrioGarpDelay, Soon: reannounceSoon(m.cfg.AdvertInterval)})
	m.reannouncedAt = now
}

// setPriority applies a new effective priority (keepalived's
// vrrp_set_effective_priority).
func (m *Machine) setPriority(p int) {
	if m.isOwner() {
		return // the owner's priority is always 255
	}
	p = clampPriority(p)
	if p == m.priority {
		return
	}
	oldDown := m.MasterDownInterval()
	m.priority = p
	if m.state == Backup && !m.deadline.IsZero() {
		// Skew_Time depends on the priority: move the running
		// Master_Down_Timer by the change of Master_Down_Interval, as
		// keepalived does, rather than restarting it.
		m.deadline = m.deadline.Add(m.MasterDownInterval() - oldDown)
	}
	// A master's next advert carries the new priority; a backup that now
	// outranks the master discards its next adverts and preempts when its
	// timer fires (6.4.2).
}

func (m *Machine) setFault(now time.Time, faulty bool, reason string) {
	if faulty == m.faulty {
		return
	}
	m.faulty = faulty
	if reason == "" {
		if faulty {
			reason = "fault"
		} else {
			reason = "fault cleared"
		}
	}
	if !m.started {
		return // Startup will look at m.faulty
	}
	switch {
	case faulty:
		m.enterFault(reason)
		if m.group != nil {
			m.group.syncFault(m)
		}
	case m.group != nil:
		// A member stays in FAULT while another member is faulty.
		m.group.faultCleared(now, m, reason)
	case m.state == Fault:
		m.leaveFault(now, reason)
	}
}

// enterFault: a master resigns with a priority 0 advert (keepalived), so that
// a backup takes over after Skew_Time instead of Master_Down_Interval.
func (m *Machine) enterFault(reason string) {
	if m.state == Fault {
		return
	}
	if m.state == Master {
		m.emit(SendAdvert{Priority: PriorityStop})
	}
	m.setState(Fault, reason)
}

// leaveFault re-initialises as in 6.4.1: the owner goes MASTER at once (if its
// sync group can follow), anyone else BACKUP with a full Master_Down_Timer.
func (m *Machine) leaveFault(now time.Time, reason string) {
	m.masterAdverInterval = m.cfg.AdvertInterval
	if m.isOwner() && m.cfg.InitialState == Master {
		m.goMaster(now, reason)
		if m.state == Master {
			return
		}
	}
	m.enterBackup(now, m.state, reason)
}

// goMaster is the transition to Master of 6.4.1 and 6.4.2: "Send an
// ADVERTISEMENT, ... Set the Adver_Timer to Advertisement_Interval,
// Transition to the Master state". The runtime sends the gratuitous ARPs (or
// unsolicited NAs) on the Transition, after the advert so that the old master
// drops the VIPs first.
func (m *Machine) goMaster(now time.Time, reason string) {
	if m.demoted {
		return // vigil: see Demote; every way to Master passes here
	}
	if m.group != nil && !m.group.canGoMaster(m) {
		// keepalived prefers BACKUP to thrashing: hold back until every
		// member of the group wants MASTER, re-arming the timer meanwhile.
		m.wantMaster = true
		if m.state == Backup {
			m.deadline = now.Add(m.MasterDownInterval())
			m.resigned = false
		}
		return
	}
	m.masterAdverInterval = m.cfg.AdvertInterval
	m.emit(SendAdvert{Priority: uint8(m.priority)})
	m.deadline = now.Add(m.cfg.AdvertInterval)
	m.masterAddr = m.cfg.PrimaryAddr
	m.preemptAt = time.Time{}
	from := m.state
	m.setState(Master, reason)
	if m.group != nil && from != Master {
		m.group.syncMaster(now, m)
	}
}

func (m *Machine) enterBackup(now time.Time, from State, reason string) {
	m.wantMaster = false
	m.preemptAt = time.Time{}
	// A backup follows the master whose advert it accepted, and none until then: a router
	// that was master (or in FAULT) must not take its own address for the master's, or it
	// ignores the real master's priority 0 (backupRx). The higher-priority path sets the
	// sender after this.
	m.masterAddr = netip.Addr{}
	m.noMasterSince = time.Time{}
	m.setState(Backup, reason)
	m.deadline = now.Add(m.MasterDownInterval())
	if m.group != nil && from == Master {
		m.group.syncBackup(now, m)
	}
}

func (m *Machine) setState(to State, reason string) {
	from := m.state
	m.state = to
	m.resigned = false // every timer is set anew on a change of state
	if to != Master {
		m.lowerHeardAt = time.Time{}
		m.reannouncedAt = time.Time{}
	}
	if to != Backup {
		m.noMasterSince = time.Time{}
	}
	switch to {
	case Init, Fault:
		m.deadline = time.Time{}
		m.wantMaster = false
		m.preemptAt = time.Time{}
	}
	if from != to {
		m.emit(Transition{From: from, To: to, Reason: reason})
	}
}

func (m *Machine) isOwner() bool { return m.cfg.Priority == PriorityOwner }

// compareAddr compares primary addresses as numbers, as keepalived does;
// addresses of different families compare equal.
func compareAddr(a, b netip.Addr) int {
	a, b = a.Unmap(), b.Unmap()
	if a.Is4() != b.Is4() {
		return 0
	}
	return a.Compare(b)
}
