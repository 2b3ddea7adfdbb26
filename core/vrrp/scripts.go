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
	weight, reverse := 0, false
	for _, s := range e.cfg.Scripts {
		if s.Name == name {
			weight, reverse = s.Weight, s.Reverse
		}
	}
	for _, c := range e.cfg.Checks {
		if c.Name == name {
			weight, reverse = c.Weight, c.Reverse
		}
	}
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
