package vrrp

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// numStates is how many fsm.States there are (Init, Backup, Master, Fault: 0..3).
const numStates = 4

// instanceStats counts what an instance did, for the vrrp process's metrics. The send and
// receive paths only add to atomics: nothing is allocated or locked per advert.
type instanceStats struct {
	sent, received      atomic.Uint64 // adverts: one per advert sent (whatever the peers), one per advert taken
	zeroSent, zeroRecvd atomic.Uint64 // of those, with priority 0 (a master resigning)
	transitions         [numStates][numStates]atomic.Uint64
	since               atomic.Int64 // unix nanoseconds of the last state change (or of the start)
}

func (s *instanceStats) transition(from, to fsm.State, at time.Time) {
	if int(from) < numStates && int(to) < numStates && from >= 0 && to >= 0 {
		s.transitions[from][to].Add(1)
	}
	s.since.Store(at.UnixNano())
}

// InstanceStats is what the metrics show of one instance: its state and counters.
type InstanceStats struct {
	Name      string
	Interface string
	VRID      int
	State     fsm.State
	// Priority is the configured one; EffectivePriority what trackers made of it.
	Priority, EffectivePriority  int
	AdvertsSent, AdvertsReceived uint64
	// PriorityZeroSent and PriorityZeroReceived count the adverts of priority 0 (resigning).
	PriorityZeroSent, PriorityZeroReceived uint64
	// Transitions[from][to] counts state changes; index by fsm.State.
	Transitions [numStates][numStates]uint64
	// Since is when the instance entered its state (or started).
	Since time.Time
}

// Stats returns every instance's counters and state, by name. Counters of an instance that a
// reload keeps go on; those of one it restarts begin again (Prometheus takes a counter that
// goes down as a reset).
func (e *Engine) Stats() []InstanceStats {
	e.rw.RLock()
	defer e.rw.RUnlock()
	out := make([]InstanceStats, 0, len(e.instances))
	for _, in := range e.instances {
		in.snap.mu.Lock()
		st := InstanceStats{Name: in.name, Interface: in.cfg.Interface, VRID: in.cfg.VRID, State: in.snap.state,
			Priority: in.cfg.Priority, EffectivePriority: in.snap.prio}
		in.snap.mu.Unlock()
		s := &in.stats
		st.AdvertsSent, st.AdvertsReceived = s.sent.Load(), s.received.Load()
		st.PriorityZeroSent, st.PriorityZeroReceived = s.zeroSent.Load(), s.zeroRecvd.Load()
		for f := range numStates {
			for t := range numStates {
				st.Transitions[f][t] = s.transitions[f][t].Load()
			}
		}
		st.Since = time.Unix(0, s.since.Load())
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
