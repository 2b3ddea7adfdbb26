package vrrp

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// InstanceStatus is what `vigil status` shows of one instance.
type InstanceStatus struct {
	Name              string
	Group             string
	Interface         string
	VRID              int
	State             string
	Priority          int // configured
	EffectivePriority int
	Master            netip.Addr // the master heard last (ourselves when master)
	VIPs              []string
	// Demoted: the operator demoted the instance (vigil demote). NoMasterSince is when its
	// Master_Down_Timer ran out with no master heard since (zero: a master is heard).
	Demoted       bool
	NoMasterSince time.Time
	// Fault says why a FAULT instance is not set up: its interface is missing or has no
	// usable address ("" otherwise, and for the other reasons of a FAULT).
	Fault string
}

// snapshot is an instance's state as last published by its unit, for readers on other
// goroutines.
type snapshot struct {
	mu      sync.Mutex
	state   fsm.State
	prio    int
	master  netip.Addr
	demoted bool
	noMast  time.Time
	why     string // instance.unready
}

func (in *instance) publish() {
	in.snap.mu.Lock()
	in.snap.state = in.m.State()
	in.snap.prio = in.m.EffectivePriority()
	in.snap.master = in.m.MasterAddr()
	in.snap.demoted = in.m.Demoted()
	in.snap.noMast, _ = in.m.NoMasterSince()
	in.snap.why = in.unready
	if in.snap.state == fsm.Master {
		in.snap.master = in.src
	}
	in.snap.mu.Unlock()
}

// Status returns every instance's current state, by name.
func (e *Engine) Status() []InstanceStatus {
	e.rw.RLock()
	defer e.rw.RUnlock()
	group := map[string]string{}
	for _, g := range e.cfg.SyncGroups {
		for _, m := range g.Members {
			group[m.Name] = g.Name
		}
	}
	out := make([]InstanceStatus, 0, len(e.instances))
	for _, in := range e.instances {
		out = append(out, in.status(group[in.name]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// StatusOf returns one instance's status, as Status has it. A transition report needs it
// for every state change and every lower priority advert a master hears: building all
// of Status for each (255 entries, sorted) cost a master in a flap storm most of its
// processor, which delayed its adverts, which made more backups take over.
func (e *Engine) StatusOf(name string) (InstanceStatus, bool) {
	e.rw.RLock()
	defer e.rw.RUnlock()
	for _, in := range e.instances {
		if in.name != name {
			continue
		}
		group := ""
		for _, g := range e.cfg.SyncGroups {
			for _, m := range g.Members {
				if m.Name == name {
					group = g.Name
				}
			}
		}
		return in.status(group), true
	}
	return InstanceStatus{}, false
}

// status is the instance's published state. Callers hold rw (for cfg and settings).
func (in *instance) status(group string) InstanceStatus {
	in.snap.mu.Lock()
	st := InstanceStatus{
		Name: in.name, Group: group, Interface: in.cfg.Interface, VRID: in.cfg.VRID,
		State: in.snap.state.String(), Priority: in.cfg.Priority, EffectivePriority: in.snap.prio,
		Master: in.snap.master, Demoted: in.snap.demoted, NoMasterSince: in.snap.noMast,
	}
	if in.snap.state == fsm.Fault {
		st.Fault = in.snap.why
	}
	in.snap.mu.Unlock()
	for _, a := range in.settings.vips {
		st.VIPs = append(st.VIPs, a.Prefix.String())
	}
	return st
}
