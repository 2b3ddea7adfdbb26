package vrrp

import (
	"context"

	"github.com/vigil-ha/vigil/core/config"
)

// SetCheck feeds a tracked check's state (from the check process) to every instance that
// tracks it, with the weight the instance or the vrrp_script gives it, and the dynamic
// weight its plugin reported last (nil: none).
func (e *Engine) SetCheck(ctx context.Context, name string, up bool, dynamic *int) {
	var posts []trackerPost
	e.rw.RLock()
	weight, reverse := scriptWeight(e.cfg, name)
	post := func(in *instance, r config.TrackRef) {
		// up is the check's raw result: reverse is applied once, by fsm.Effective.
		w, rev := r.Apply(weight, reverse)
		posts = append(posts, trackerPost{in, trackerEvent{key: "script:" + name, state: trackerState{up: up, weight: w, reverse: rev, dynamic: dynamic}}})
	}
	byName := map[string]*instance{}
	for _, in := range e.instances {
		byName[in.name] = in
		for _, r := range in.cfg.TrackScripts {
			if r.Name == name {
				post(in, r)
			}
		}
	}
	// A sync group's track_script applies to every member, as in keepalived.
	for _, g := range e.cfg.SyncGroups {
		for _, r := range g.TrackScripts {
			if r.Name != name {
				continue
			}
			for _, m := range g.Members {
				if in := byName[m.Name]; in != nil {
					post(in, r)
				}
			}
		}
	}
	e.rw.RUnlock()
	postAll(ctx, posts)
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
		out["script:"+r.Name] = trackerState{pending: true, weight: w, reverse: rev}
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
