package check

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"github.com/vigil-ha/vigil/core/config"
)

// FromConfig turns the vrrp_scripts that instances track into scheduled checks. Checks
// served by plugins (vrrp_check) need the plugin host, which is not part of this build yet.
func FromConfig(cfg *config.Config) ([]Spec, error) {
	scripts := map[string]*config.VRRPScript{}
	for _, s := range cfg.Scripts {
		scripts[s.Name] = s
	}
	plugins := map[string]bool{}
	for _, c := range cfg.Checks {
		plugins[c.Name] = true
	}
	used := map[string]bool{}
	var specs []Spec
	var refs []config.TrackRef
	for _, in := range cfg.Instances {
		refs = append(refs, in.TrackScripts...)
	}
	for _, g := range cfg.SyncGroups {
		refs = append(refs, g.TrackScripts...)
	}
	for _, r := range refs {
		if plugins[r.Name] {
			return nil, fmt.Errorf("%s: track_script %s is a vrrp_check: checks served by plugins are not part of this build yet; track a vrrp_script instead", r.Pos, r.Name)
		}
		s := scripts[r.Name]
		if s == nil || used[r.Name] || s.Script == nil {
			continue
		}
		used[r.Name] = true
		cred, err := credential(cfg.Global, s.Script)
		if err != nil {
			return nil, fmt.Errorf("vrrp_script %s: %w", s.Name, err)
		}
		specs = append(specs, Spec{
			Name:     s.Name,
			Prober:   Script{Argv: s.Script.Argv, Cred: cred},
			Interval: s.Interval,
			Timeout:  s.Timeout,
			Rise:     s.Rise,
			Fall:     s.Fall,
			InitFail: s.InitFail,
		})
	}
	return specs, nil
}

// credential is the user a script runs as: its own "user", else global_defs script_user,
// else the daemon's own.
func credential(g config.Global, s *config.Script) (*syscall.Credential, error) {
	name, group := s.User, s.Group
	if name == "" {
		name, group = g.ScriptUser, g.ScriptGroup
	}
	if name == "" {
		return nil, nil
	}
	cred, err := LookupUser(name, group)
	if err != nil {
		return nil, err
	}
	// The check process itself may already run as that user (core starts it as script_user):
	// then there is nothing to switch, and a non-root process could not switch anyway.
	if int(cred.Uid) == os.Getuid() && int(cred.Gid) == os.Getgid() {
		return nil, nil
	}
	if os.Getuid() != 0 {
		return nil, fmt.Errorf("cannot run scripts as %q: the check process runs as uid %d, not root", name, os.Getuid())
	}
	return cred, nil
}

// LookupUser resolves a user and optional group to the credential a process runs with; the
// group defaults to the user's primary group.
func LookupUser(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", group, err)
		}
		gid, _ = strconv.ParseUint(g.Gid, 10, 32)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
