package vrrp

import (
	"net/netip"
	"sort"
	"sync"

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
}

// snapshot is an instance's state as last published by its unit, for readers on other
// goroutines.
type snapshot struct {
	mu     sync.Mutex
	state  fsm.State
	prio   int
	master netip.Addr
}

func (in *instance) publish() {
	in.snap.mu.Lock()
	in.snap.state = in.m.State()
	in.snap.prio = in.m.EffectivePriority()
	in.snap.master = in.m.MasterAddr()
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
		in.snap.mu.Lock()
		st := InstanceStatus{
			Name: in.name, Group: group[in.name], Interface: in.cfg.Interface, VRID: in.cfg.VRID,
			State: in.snap.state.String(), Priority: in.cfg.Priority, EffectivePriority: in.snap.prio,
			Master: in.snap.master,
		}
		in.snap.mu.Unlock()
		for _, a := range in.settings.vips {
			st.VIPs = append(st.VIPs, a.Prefix.String())
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
