package vrrp

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// demotions is the set of instances the operator demoted (vigil demote), by name, as core
// last sent it. The engine keeps it, not only the machines, because a reload makes new
// machines (an instance that is added, restarted, or moved to another sync group) and a
// unit that starts late (vrrp_startup_delay, a weight-0 script's first result) must start
// demoted: a demoted address owner would otherwise go MASTER at its Startup.
type demotions struct {
	mu    sync.Mutex // serialises SetDemoted: the last set sent is the one applied
	setMu sync.Mutex // guards set, which units read
	set   map[string]bool
}

func (d *demotions) has(name string) bool {
	d.setMu.Lock()
	defer d.setMu.Unlock()
	return d.set[name]
}

// SetDemoted replaces the set of demoted instances (fsm.Demote): an instance in names is
// demoted, any other one promoted. A member of a sync group demotes its group. It returns
// once every running unit has applied it; units that have not started take it at their
// start. Names the configuration does not have are kept, for a reload that adds them.
func (e *Engine) SetDemoted(names []string) {
	e.demoted.mu.Lock()
	defer e.demoted.mu.Unlock()
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	e.demoted.setMu.Lock()
	e.demoted.set = set
	e.demoted.setMu.Unlock()
	// Units a reload starts after this read the new set at their start; those started
	// before are in e.units now.
	e.rw.RLock()
	var running []*unit
	for _, u := range e.units {
		if u.stop != nil {
			running = append(running, u)
		}
	}
	e.rw.RUnlock()
	for _, u := range running {
		u.apply(func(u *unit, now time.Time) { u.applyDemoted(now) })
	}
}

// Demoted returns the names in the set of demoted instances, sorted.
func (e *Engine) Demoted() []string {
	e.demoted.setMu.Lock()
	defer e.demoted.setMu.Unlock()
	return slices.Sorted(maps.Keys(e.demoted.set))
}

// applyDemoted brings the unit's machines to the engine's set: a unit is demoted when one
// of its members is (a sync group moves as one), and one event to the first member moves a
// whole group.
func (u *unit) applyDemoted(now time.Time) {
	if u.isDemoted == nil {
		return
	}
	want := slices.ContainsFunc(u.members, func(in *instance) bool { return u.isDemoted(in.name) })
	if want == u.members[0].m.Demoted() {
		return
	}
	if want {
		u.handle(now, 0, fsm.Demote{})
	} else {
		u.handle(now, 0, fsm.Promote{})
	}
}
