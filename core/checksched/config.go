package checksched

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

// FromConfig turns the vrrp_scripts and vrrp_checks that instances track, and the checkers
// of real servers, into scheduled checks, each with its Key; plugins configures the
// vrrp_checks (nil: a tracked vrrp_check is an error).
func FromConfig(ctx context.Context, cfg *config.Config, plugins PluginSpecs) ([]Spec, error) {
	return FromConfigReusing(ctx, cfg, plugins, nil)
}

// Reuse returns the spec of the running check name when its Key is key (and key is not
// empty); Scheduler.Running is one.
type Reuse func(name, key string) (Spec, bool)

// FromConfigReusing is FromConfig for a reload. A check that reuse finds running with the
// same Name and Key is returned as it runs, without asking its plugin anything: Configure
// may cost a plugin what it holds for the check (vigil-check-mysql opens a new connection
// pool when its params change), and the scheduler will keep that check running anyway.
//
// With reuse set, the plugin of every vrrp_check that has to be configured first validates
// its params (validate-only), before any check is configured for real: a vrrp_check that
// its plugin rejects then fails the reload without having changed the configuration that a
// plugin holds for a running check. (A plugin that accepts params when validating and
// rejects them when configuring could still leave a changed check reconfigured.)
func FromConfigReusing(ctx context.Context, cfg *config.Config, plugins PluginSpecs, reuse Reuse) ([]Spec, error) {
	hostKey := PluginHostKey(cfg.Global)
	if plugins != nil {
		plugins = newMemo(plugins)
	}
	scripts := map[string]*config.VRRPScript{}
	for _, s := range cfg.Scripts {
		scripts[s.Name] = s
	}
	checks := map[string]*config.PluginCheck{}
	for _, c := range cfg.Checks {
		checks[c.Name] = c
	}
	// First plan every check, with its Key and how to build it; nothing is configured
	// until every error that the configuration can have has been found.
	var items []item
	var validate []*config.PluginCheck
	used := map[string]bool{}
	for _, r := range Tracked(cfg) {
		if c := checks[r.Name]; c != nil && !used[r.Name] {
			used[r.Name] = true
			if plugins == nil {
				return nil, fmt.Errorf("%s: vrrp_check %s needs the plugin host", r.Pos, r.Name)
			}
			it := newItem(c.Name, pluginKey(c, hostKey).String(), reuse, func() (Spec, error) {
				return plugins.CheckSpec(ctx, c, false)
			})
			if reuse != nil {
				// The plugin process keeps running across reloads without its file being
				// looked at again: a reload checks that file as a start would.
				failing := Spec{Name: c.Name, Interval: c.Interval, Timeout: c.Timeout, Rise: c.Rise, Fall: c.Fall}
				it = it.refuse(verifyPlugin(plugins, c.Plugin), failing, "vrrp_check disabled: ")
			}
			if reuse != nil && !it.reused && it.unsafe == nil {
				validate = append(validate, c)
			}
			items = append(items, it)
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
		// The script's file is checked again on every reload, kept or not: a script that
		// became writable by others since the last one must stop running, as keepalived
		// disables it on a reload.
		var unsafe error
		if cfg.Global.EnableScriptSecurity {
			unsafe = script.CheckCommand(s.Script.Argv[0], cred)
		}
		failing := Spec{Name: s.Name, Interval: s.Interval, Timeout: s.Timeout, Rise: s.Rise, Fall: s.Fall}
		if plugins != nil && plugins.HasCheck(ExecPlugin) {
			var user []string
			if cred != nil {
				user = scriptUser(cfg.Global, s.Script)
			}
			pc := scriptCheck(s, user, cfg.Global.EnableScriptSecurity)
			it := newItem(s.Name, pluginKey(pc, hostKey).String(), reuse, func() (Spec, error) {
				return scriptSpec(ctx, plugins, pc), nil
			})
			if unsafe == nil && reuse != nil {
				unsafe = verifyPlugin(plugins, ExecPlugin)
			}
			items = append(items, it.refuse(unsafe, failing, "vrrp_script disabled: "))
			continue
		}
		// Without the exec plugin (only the vigil binary was installed), the check process
		// runs the script itself, as before plugins existed.
		items = append(items, newItem(s.Name, scriptKey(s, cred), reuse, func() (Spec, error) {
			return Spec{
				Name:     s.Name,
				Prober:   Script{Argv: s.Script.Argv, Cred: cred},
				Interval: s.Interval,
				Timeout:  s.Timeout,
				Rise:     s.Rise,
				Fall:     s.Fall,
				InitFail: s.InitFail,
				Note:     "vigil-check-" + ExecPlugin + " is not installed: the check process runs this vrrp_script itself",
			}, nil
		}).refuse(unsafe, failing, "vrrp_script disabled: "))
	}
	// The vrrp_scripts and vrrp_checks start unknown, as keepalived's tracked scripts do;
	// the real_server checkers after them start up, as keepalived's checkers do.
	tracked := len(items)
	if plugins != nil {
		items = append(items, realServerItems(ctx, cfg, plugins, hostKey, reuse)...)
	}
	for _, c := range validate {
		if _, err := plugins.CheckSpec(ctx, c, true); err != nil {
			return nil, err
		}
	}
	specs := make([]Spec, 0, len(items))
	for i, it := range items {
		sp, err := it.spec()
		if err != nil {
			return nil, err
		}
		sp.FirstDecides = i < tracked
		specs = append(specs, sp)
	}
	return specs, nil
}

// item is one planned check: the running spec it reuses, or how to build it.
type item struct {
	key    string
	reused bool
	run    Spec
	build  func() (Spec, error)
	// unsafe is why the check's script or plugin may not run (see refuse).
	unsafe error
}

// refuse turns it, when err is set, into failing (a check that fails at every probe with
// prefix and err as its message, starting down), whether it was to be reused or built:
// a check whose script or plugin is not safe to run any more stops running it, and the
// instances tracking it stop counting on it. The failing check has no Key, so that the
// next reload looks at the file again.
func (it item) refuse(err error, failing Spec, prefix string) item {
	if err == nil {
		return it
	}
	it.reused, it.unsafe = false, err
	failing.Prober, failing.InitFail, failing.Note = refused{msg: err.Error()}, true, prefix+err.Error()
	it.build = func() (Spec, error) { return failing, nil }
	return it
}

// PluginVerifier is a PluginSpecs that can look at a check plugin's file again (core/plugin's
// Host: is it safe to run, does it have its pinned checksum). A reload asks it for every
// plugin its checks use, since a running plugin process is not started again.
type PluginVerifier interface {
	VerifyCheck(name string) error
}

// verifyPlugin is plugins' objection to check plugin name, nil when it has none or cannot
// tell.
func verifyPlugin(plugins PluginSpecs, name string) error {
	if v, ok := plugins.(PluginVerifier); ok {
		return v.VerifyCheck(name)
	}
	return nil
}

func newItem(name, key string, reuse Reuse, build func() (Spec, error)) item {
	it := item{key: key, build: build}
	if reuse != nil && key != "" {
		it.run, it.reused = reuse(name, key)
	}
	return it
}

// spec is the reused spec, or the built one with the item's Key. A spec that its builder
// left failing (a plugin that refuses the check or is missing, see refused) keeps no Key:
// it is not what the Key describes, and a reload must try it again.
func (it item) spec() (Spec, error) {
	if it.reused {
		return it.run, nil
	}
	sp, err := it.build()
	if err != nil {
		return Spec{}, err
	}
	if _, failing := sp.Prober.(refused); !failing {
		sp.Key = it.key
	}
	return sp, nil
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

// scriptCheck is the check of the exec plugin that runs a vrrp_script with keepalived's
// rules for its exit status, user and script security.
func scriptCheck(s *config.VRRPScript, user []string, secure bool) *config.PluginCheck {
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
	return &config.PluginCheck{
		Name: s.Name, Pos: s.Pos, Plugin: ExecPlugin, Interval: s.Interval, Timeout: s.Timeout,
		Rise: s.Rise, Fall: s.Fall, Weight: s.Weight, InitFail: s.InitFail, Params: params,
	}
}

// scriptSpec runs a vrrp_script through the exec plugin (pc, from scriptCheck). A script the
// plugin refuses (say, one that others can write to under enable_script_security) stays
// scheduled as a check that always fails with the plugin's objection, so that the instances
// tracking it do not count on it: keepalived too disables such a script rather than refusing
// to start.
func scriptSpec(ctx context.Context, plugins PluginSpecs, pc *config.PluginCheck) Spec {
	spec, err := plugins.CheckSpec(ctx, pc, false)
	if err != nil {
		return Spec{
			Name: pc.Name, Prober: refused{msg: err.Error()}, Interval: pc.Interval, Timeout: pc.Timeout,
			Rise: pc.Rise, Fall: pc.Fall, InitFail: true,
			Note: "vrrp_script disabled: " + err.Error(),
		}
	}
	return spec
}

// refused is the prober of a check whose plugin refused its configuration.
type refused struct{ msg string }

func (r refused) Probe(context.Context) Result { return Result{Msg: r.msg} }
