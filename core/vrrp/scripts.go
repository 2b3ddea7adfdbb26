package vrrp

import (
	"context"
	"fmt"
	"os/user"
	"strconv"
	"syscall"

	"github.com/vigil-ha/vigil/core/check"
	"github.com/vigil-ha/vigil/core/config"
)

// scriptSpecs turns the vrrp_scripts that instances track into scheduled checks. Checks
// served by plugins (vrrp_check) need the plugin host, which this engine does not run.
func (e *Engine) scriptSpecs() ([]check.Spec, error) {
	scripts := map[string]*config.VRRPScript{}
	for _, s := range e.cfg.Scripts {
		scripts[s.Name] = s
	}
	plugins := map[string]bool{}
	for _, c := range e.cfg.Checks {
		plugins[c.Name] = true
	}
	used := map[string]bool{}
	var specs []check.Spec
	for _, in := range e.instances {
		for _, r := range in.cfg.TrackScripts {
			if plugins[r.Name] {
				return nil, fmt.Errorf("vrrp_instance %s tracks vrrp_check %s at %s: checks served by plugins are not part of this build yet; track a vrrp_script instead", in.name, r.Name, r.Pos)
			}
			s := scripts[r.Name]
			if s == nil || used[r.Name] || s.Script == nil {
				continue
			}
			used[r.Name] = true
			cred, err := e.credential(s.Script)
			if err != nil {
				return nil, fmt.Errorf("vrrp_script %s: %w", s.Name, err)
			}
			specs = append(specs, check.Spec{
				Name:     s.Name,
				Prober:   check.Script{Argv: s.Script.Argv, Cred: cred},
				Interval: s.Interval,
				Timeout:  s.Timeout,
				Rise:     s.Rise,
				Fall:     s.Fall,
				InitFail: s.InitFail,
			})
		}
	}
	return specs, nil
}

// credential is the user a script runs as: its own "user", else global_defs script_user,
// else the daemon's own.
func (e *Engine) credential(s *config.Script) (*syscall.Credential, error) {
	name, group := s.User, s.Group
	if name == "" {
		name, group = e.cfg.Global.ScriptUser, e.cfg.Global.ScriptGroup
	}
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("script user %q: %w", name, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("script group %q: %w", group, err)
		}
		gid, _ = strconv.ParseUint(g.Gid, 10, 32)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// runScripts schedules the tracked scripts and turns their changes into tracker events for
// every instance that tracks them.
func (e *Engine) runScripts(ctx context.Context, specs []check.Spec) {
	if len(specs) == 0 {
		return
	}
	changes := make(chan check.Change, len(specs))
	go check.Run(ctx, specs, changes)
	weights := map[string]*config.VRRPScript{}
	for _, s := range e.cfg.Scripts {
		weights[s.Name] = s
	}
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-changes:
			if c.Msg != "initial state" {
				e.log.Info("vrrp_script changed", "script", c.Name, "up", c.Up, "detail", c.Msg)
			}
			s := weights[c.Name]
			for _, in := range e.instances {
				for _, r := range in.cfg.TrackScripts {
					if r.Name != c.Name {
						continue
					}
					w, rev := s.Weight, s.Reverse
					if r.HasWeight {
						w, rev = r.Weight, r.Reverse
					}
					in.post(ctx, trackerEvent{key: "script:" + c.Name, state: trackerState{up: c.Up, weight: w, reverse: rev}})
				}
			}
		}
	}
}
