package fsm

import (
	"fmt"
	"time"
)

// SyncGroup makes several virtual routers (keepalived's vrrp_sync_group) move
// together, with keepalived's vrrp_sync.c semantics:
//
//   - one member entering FAULT takes every other member to FAULT (a master
//     resigns with a priority 0 advert), and the group leaves FAULT only when
//     no member is faulty any more;
//   - one member going MASTER takes the others to MASTER, but a member goes
//     MASTER only when every other member wants to as well (its own master
//     down timer ran out too) — keepalived prefers BACKUP to thrashing;
//   - one member going from MASTER to BACKUP takes the others to BACKUP.
//
// Like Machine it does no I/O and is not safe for concurrent use.
type SyncGroup struct {
	members []*Machine
	state   State
	out     []MemberAction
}

// MemberAction is an action of the group's member with index Member.
type MemberAction struct {
	Member int
	Action Action
}

// NewSyncGroup makes the machines, all in Init, members of one group, in that
// order. They must from then on be driven only through the group.
func NewSyncGroup(members ...*Machine) *SyncGroup {
	g := &SyncGroup{members: members}
	for i, m := range members {
		if m.group != nil || m.started {
			panic("fsm: sync group member already grouped or started")
		}
		m.group, m.index = g, i
	}
	return g
}

// State returns the group's state: the state its members last moved to
// together (Init until then).
func (g *SyncGroup) State() State { return g.state }

// Len returns the number of members.
func (g *SyncGroup) Len() int { return len(g.members) }

// Member returns member i, for its accessors (State, EffectivePriority ...).
func (g *SyncGroup) Member(i int) *Machine { return g.members[i] }

// Handle feeds an event to member i and returns the actions of every member
// that moved.
func (g *SyncGroup) Handle(now time.Time, member int, ev Event) []MemberAction {
	g.members[member].handle(now, ev)
	return g.flush()
}

// Tick fires the members' timers due at or before now.
func (g *SyncGroup) Tick(now time.Time) []MemberAction {
	for _, m := range g.members {
		m.tick(now)
	}
	return g.flush()
}

// NextDeadline returns the earliest deadline of any member.
func (g *SyncGroup) NextDeadline() (time.Time, bool) {
	var next time.Time
	for _, m := range g.members {
		if d, ok := m.NextDeadline(); ok && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next, !next.IsZero()
}

func (g *SyncGroup) flush() []MemberAction {
	out := g.out
	g.out = nil
	return out
}

// faulted reports whether a running member is faulty. It is false for a nil
// group so that ungrouped machines can ask too.
func (g *SyncGroup) faulted() bool {
	if g == nil {
		return false
	}
	for _, m := range g.members {
		if m.started && m.faulty {
			return true
		}
	}
	return false
}

// isMaster reports whether the group is MASTER (false for a nil group): a
// member that starts then does as keepalived's "state MASTER".
func (g *SyncGroup) isMaster() bool { return g != nil && g.state == Master }

// canGoMaster is keepalived's vrrp_sync_can_goto_master.
func (g *SyncGroup) canGoMaster(m *Machine) bool {
	if g.state == Master {
		return true
	}
	for _, o := range g.members {
		if o != m && o.state != Master && !o.wantMaster {
			return false
		}
	}
	return true
}

// reannounceOthers asks the members other than m that are MASTER to
// re-announce their addresses with their own lower priority settings, as
// keepalived does when one member hears a lower priority advert (first: it
// starts m's episode). Each member keeps its own rate limit and records the
// round, so that its own lower priority adverts, which in a group-wide split
// brain come moments later, do not start another round for every member. A
// nil group has no other members.
func (g *SyncGroup) reannounceOthers(m *Machine, now time.Time, first bool) {
	if g == nil {
		return
	}
	for _, o := range g.members {
		if o != m && o.state == Master && o.reannounceDue(now, first) {
			o.reannounce(now)
		}
	}
}

// demote is Demote for a group: every member is demoted (vigil's rule: a sync group moves
// as one). Every master resigns with its own priority 0 advert before any of them steps
// down, so that each backup router takes over after Skew_Time; syncBackup would take the
// others to BACKUP silently, and their backups would wait Master_Down_Interval.
func (g *SyncGroup) demote(now time.Time) {
	var masters []*Machine
	for _, m := range g.members {
		if m.markDemoted() && m.state == Master {
			masters = append(masters, m)
		}
	}
	if len(masters) == 0 {
		return
	}
	for _, m := range masters {
		m.emit(SendAdvert{Priority: PriorityStop})
	}
	g.state = Backup // each member steps down itself, with the operator's reason
	for _, m := range masters {
		m.enterBackup(now, Master, reasonDemoted+" with its sync group")
	}
}

// promote is Promote for a group: every member is promoted. Members that found no master
// go MASTER together once the last of them is promoted (canGoMaster holds the first back).
func (g *SyncGroup) promote(now time.Time) {
	for _, m := range g.members {
		m.promote(now)
	}
}

// syncFault is keepalived's vrrp_sync_fault.
func (g *SyncGroup) syncFault(m *Machine) {
	if g.state == Fault {
		return
	}
	g.state = Fault
	reason := fmt.Sprintf("sync group: member %d in fault", m.index)
	for _, o := range g.members {
		if o != m && o.started {
			o.enterFault(reason)
		}
	}
}

// syncBackup is keepalived's vrrp_sync_backup.
func (g *SyncGroup) syncBackup(now time.Time, m *Machine) {
	if g.state == Backup {
		return
	}
	g.state = Backup
	reason := fmt.Sprintf("sync group: member %d went backup", m.index)
	for _, o := range g.members {
		if o == m || !o.started || o.faulty || o.state == Backup {
			continue
		}
		if o.state == Fault {
			o.masterAdverInterval = o.cfg.AdvertInterval
		}
		o.enterBackup(now, o.state, reason)
	}
}

// syncMaster is keepalived's vrrp_sync_master.
func (g *SyncGroup) syncMaster(now time.Time, m *Machine) {
	if g.state == Master || !g.canGoMaster(m) {
		return
	}
	g.state = Master
	reason := fmt.Sprintf("sync group: member %d went master", m.index)
	for _, o := range g.members {
		if o != m && o.started && !o.faulty && o.state != Master {
			o.goMaster(now, reason)
		}
	}
}

// faultCleared brings the group out of FAULT once no running member is
// faulty: m (or else the first member in FAULT) re-initialises and takes the
// others along (keepalived's try_up_instance).
func (g *SyncGroup) faultCleared(now time.Time, m *Machine, reason string) {
	if g.faulted() {
		return
	}
	lead := m
	if !m.started || m.state != Fault {
		lead = nil
		for _, o := range g.members {
			if o.started && o.state == Fault {
				lead = o
				break
			}
		}
	}
	if lead == nil {
		if g.state == Fault {
			g.state = Init
		}
		return
	}
	lead.leaveFault(now, reason)
	if lead.state == Master {
		g.syncMaster(now, lead)
	} else {
		g.syncBackup(now, lead)
	}
}
