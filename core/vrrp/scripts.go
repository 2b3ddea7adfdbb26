package vrrp

import (
	"context"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// SetCheck feeds a tracked check's state (from the check process) to every instance that
// tracks it, with the weight the instance or the vrrp_script gives it, and the dynamic
// weight its plugin reported last (nil: none). It looks them up in the engine's check index,
// which the configuration's load and each reload build (checkIndexOf).
func (e *Engine) SetCheck(ctx context.Context, name string, up bool, dynamic *int) {
	e.rw.RLock()
	tracked := e.checks[name]
	e.rw.RUnlock()
	// The index is never changed, only replaced: it is safe to read without rw, and the
	// posts go without it (a unit applying a reload takes rw).
	for _, t := range tracked.by {
		// up is the check's raw result: reverse is applied once, by fsm.Effective.
		t.in.post(ctx, trackerEvent{key: tracked.key, state: upDown(up, t.weight, t.reverse, dynamic)})
	}
}

// checkIndex is, by check name (vrrp_script or vrrp_check), what SetCheck posts a state of
// that check to.
type checkIndex map[string]trackedCheck

// trackedCheck is a check's tracker key and the instances that track it, in the order
// their states are posted: the instances' own track_script lines, then their sync groups'
// (for an instance that has both, the group's weight is the one that holds).
type trackedCheck struct {
	key string // "script:" + name
	by  []checkTracker
}

// checkTracker is one track_script line that applies to an instance: the weight and the
// direction it gives the check (config.TrackRef.Apply over the check's own block).
type checkTracker struct {
	in      *instance
	weight  int
	reverse bool
}

// checkIndexOf builds the check index of cfg, run by instances.
func checkIndexOf(cfg *config.Config, instances []*instance) checkIndex {
	idx := checkIndex{}
	add := func(in *instance, r config.TrackRef) {
		t, ok := idx[r.Name]
		if !ok {
			t.key = "script:" + r.Name
		}
		w, rev := r.Apply(scriptWeight(cfg, r.Name))
		t.by = append(t.by, checkTracker{in: in, weight: w, reverse: rev})
		idx[r.Name] = t
	}
	byName := map[string]*instance{}
	for _, in := range instances {
		byName[in.name] = in
		for _, r := range in.cfg.TrackScripts {
			add(in, r)
		}
	}
	// A sync group's track_script applies to every member, as in keepalived.
	for _, g := range cfg.SyncGroups {
		for _, r := range g.TrackScripts {
			for _, m := range g.Members {
				if in := byName[m.Name]; in != nil {
					add(in, r)
				}
			}
		}
	}
	return idx
}

// scriptWeight is the weight and direction a vrrp_script or vrrp_check named name gives in
// its own block (a track_script line may change them: config.TrackRef.Apply).
func scriptWeight(cfg *config.Config, name string) (weight int, reverse bool) {
	for _, s := range cfg.Scripts {
		if s.Name == name {
			weight, reverse = s.Weight, s.Reverse
		}
	}
	for _, c := range cfg.Checks {
		if c.Name == name {
			weight, reverse = c.Weight, c.Reverse
		}
	}
	return weight, reverse
}

// pendingScripts is the tracker state of every script and check that vc tracks, itself or
// through its sync group, before the check process has said anything about it: pending,
// with the weight the instance gives it. A pending tracker adds nothing to the priority,
// and one of weight 0 keeps the instance from starting until the first result (see
// unit.started), as keepalived 2.2.7 holds an instance out of BACKUP (num_script_init)
// until each of its weight-0 scripts has run once: a master must not claim the address
// for a service nobody has seen up, and a weighted script must not lend the weight of a
// result it has not had.
func pendingScripts(vc *config.VRRPInstance, cfg *config.Config) map[string]trackerState {
	out := map[string]trackerState{}
	add := func(r config.TrackRef) {
		w, rev := r.Apply(scriptWeight(cfg, r.Name))
		out["script:"+r.Name] = trackerState{Tracker: fsm.Tracker{Kind: fsm.TrackUpDown, Weight: w, Reverse: rev}, pending: true}
	}
	for _, g := range cfg.SyncGroups {
		for _, m := range g.Members {
			if m.Name != vc.Name {
				continue
			}
			for _, r := range g.TrackScripts {
				add(r)
			}
		}
	}
	// The instance's own line wins over its group's, as in SetCheck (posted after).
	for _, r := range vc.TrackScripts {
		add(r)
	}
	return out
}

// startPending puts the instance's tracked scripts and checks in their pending state, for
// its start: nothing is known about them yet.
func (in *instance) startPending(vc *config.VRRPInstance, cfg *config.Config) {
	for k, st := range pendingScripts(vc, cfg) {
		in.trackers[k] = st
	}
}
