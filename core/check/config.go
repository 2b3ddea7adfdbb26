package check

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/script"
)

// PluginSpecs configures a vrrp_check on its plugin and returns it ready to schedule; the
// plugin host (core/plugin) provides it.
type PluginSpecs interface {
	CheckSpec(ctx context.Context, c *config.PluginCheck, validateOnly bool) (Spec, error)
	// HasCheck reports whether check plugin name is installed.
	HasCheck(name string) bool
}

// ExecPlugin is the check plugin that runs keepalived's vrrp_script commands.
const ExecPlugin = "exec"

// Tracked lists the names of the scripts and checks that instances and sync groups track.
func Tracked(cfg *config.Config) []config.TrackRef {
	var refs []config.TrackRef
	for _, in := range cfg.Instances {
		refs = append(refs, in.TrackScripts...)
	}
	for _, g := range cfg.SyncGroups {
		refs = append(refs, g.TrackScripts...)
	}
	return refs
}

// FromConfig turns the vrrp_scripts and vrrp_checks that instances track into scheduled
// checks; plugins configures the vrrp_checks (nil: a tracked vrrp_check is an error).
func FromConfig(ctx context.Context, cfg *config.Config, plugins PluginSpecs) ([]Spec, error) {
	scripts := map[string]*config.VRRPScript{}
	for _, s := range cfg.Scripts {
		scripts[s.Name] = s
	}
	checks := map[string]*config.PluginCheck{}
	for _, c := range cfg.Checks {
		checks[c.Name] = c
	}
	used := map[string]bool{}
	var specs []Spec
	for _, r := range Tracked(cfg) {
		if c := checks[r.Name]; c != nil && !used[r.Name] {
			used[r.Name] = true
			if plugins == nil {
				return nil, fmt.Errorf("%s: vrrp_check %s needs the plugin host", r.Pos, r.Name)
			}
			spec, err := plugins.CheckSpec(ctx, c, false)
			if err != nil {
				return nil, err
			}
			specs = append(specs, spec)
			continue
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
		if plugins != nil && plugins.HasCheck(ExecPlugin) {
			var user []string
			if cred != nil {
				user = scriptUser(cfg.Global, s.Script)
			}
			specs = append(specs, scriptSpec(ctx, plugins, s, user, cfg.Global.EnableScriptSecurity))
			continue
		}
		// Without the exec plugin (only the vigil binary was installed), the check process
		// runs the script itself, as before plugins existed.
		specs = append(specs, Spec{
			Name:     s.Name,
			Prober:   Script{Argv: s.Script.Argv, Cred: cred},
			Interval: s.Interval,
			Timeout:  s.Timeout,
			Rise:     s.Rise,
			Fall:     s.Fall,
			InitFail: s.InitFail,
			Note:     "vigil-check-" + ExecPlugin + " is not installed: the check process runs this vrrp_script itself",
		})
	}
	if plugins != nil {
		specs = append(specs, realServerSpecs(ctx, cfg, plugins)...)
	}
	return specs, nil
}

// scriptUser is the user (and group, if given) a script runs as: its own "user", else
// global_defs script_user; empty for the daemon's own.
func scriptUser(g config.Global, s *config.Script) []string {
	name, group := s.User, s.Group
	if name == "" {
		name, group = g.ScriptUser, g.ScriptGroup
	}
	switch {
	case name == "":
		return nil
	case group == "":
		return []string{name}
	}
	return []string{name, group}
}

// credential is the user a script runs as (see scriptUser), nil when no switch is needed.
func credential(g config.Global, s *config.Script) (*syscall.Credential, error) {
	var name, group string
	if u := scriptUser(g, s); len(u) > 0 {
		name = u[0]
		if len(u) > 1 {
			group = u[1]
		}
	}
	if name == "" {
		return nil, nil
	}
	cred, err := script.LookupUser(name, group)
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

// scriptSpec runs a vrrp_script through the exec plugin, with keepalived's rules for its
// exit status, user and script security. A script the plugin refuses (say, one that others
// can write to under enable_script_security) stays scheduled as a check that always fails
// with the plugin's objection, so that the instances tracking it do not count on it:
// keepalived too disables such a script rather than refusing to start.
func scriptSpec(ctx context.Context, plugins PluginSpecs, s *config.VRRPScript, user []string, secure bool) Spec {
	params := []config.Param{
		{Key: "command", Values: s.Script.Argv, Pos: s.Script.Pos},
		{Key: "mode", Values: []string{"vrrp_script"}, Pos: s.Script.Pos},
	}
	if len(user) > 0 {
		params = append(params, config.Param{Key: "user", Values: user, Pos: s.Script.Pos})
	}
	if secure {
		params = append(params, config.Param{Key: "secure", Values: []string{"yes"}, Pos: s.Script.Pos})
	}
	pc := &config.PluginCheck{
		Name: s.Name, Pos: s.Pos, Plugin: ExecPlugin, Interval: s.Interval, Timeout: s.Timeout,
		Rise: s.Rise, Fall: s.Fall, Weight: s.Weight, Reverse: s.Reverse, InitFail: s.InitFail, Params: params,
	}
	spec, err := plugins.CheckSpec(ctx, pc, false)
	if err != nil {
		return Spec{
			Name: s.Name, Prober: refused{msg: err.Error()}, Interval: s.Interval, Timeout: s.Timeout,
			Rise: s.Rise, Fall: s.Fall, InitFail: true,
			Note: "vrrp_script disabled: " + err.Error(),
		}
	}
	return spec
}

// refused is the prober of a check whose plugin refused its configuration.
type refused struct{ msg string }

func (r refused) Probe(context.Context) Result { return Result{Msg: r.msg} }
