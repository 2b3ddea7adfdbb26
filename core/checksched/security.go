package checksched

import (
	"fmt"
	"syscall"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/script"
)

// ScriptSecurity lists, under enable_script_security, every script of cfg that vigil would
// not run because someone other than root or the script's user could change it
// (script.CheckCommand, the rule the daemon applies when it starts or reloads): the tracked
// vrrp_scripts, the MISC_CHECK scripts, the notify scripts of instances and sync groups and
// the notify FIFO scripts. Each is an error at the script's place, for `vigil -t`: the
// daemon would run on without it (a vrrp_script then fails, and the instances tracking it
// with it), which is not what the file says. A script that does not exist is not listed:
// the file may be meant for another host. Without enable_script_security it lists nothing.
func ScriptSecurity(cfg *config.Config) config.Diagnostics {
	g := cfg.Global
	if !g.EnableScriptSecurity {
		return nil
	}
	var ds config.Diagnostics
	for _, sc := range scriptsOf(cfg) {
		var uid uint32
		if u := scriptUser(g, sc.s); len(u) > 0 {
			cred, err := script.LookupUserWords(u)
			if err != nil {
				continue // an unknown user is reported where the user is used
			}
			uid = cred.Uid
		}
		if err := script.CheckCommand(sc.s.Argv[0], &syscall.Credential{Uid: uid}); err != nil {
			ds = append(ds, config.Diagnostic{Pos: sc.s.Pos, Severity: config.SevError, Msg: fmt.Sprintf("%s: %v", sc.what, err)})
		}
	}
	return ds
}

// RunsScriptsAsRoot reports whether some script of cfg (as ScriptSecurity lists them) runs
// as root: it has no user and global_defs has no script_user, or its user is root. vigil's
// core then keeps root's bounding set of capabilities for such scripts, which keepalived runs
// with all of root's powers (see core/daemon).
func RunsScriptsAsRoot(cfg *config.Config) bool {
	for _, sc := range scriptsOf(cfg) {
		u := scriptUser(cfg.Global, sc.s)
		if len(u) == 0 {
			return true
		}
		if cred, err := script.LookupUserWords(u); err == nil && cred.Uid == 0 {
			return true
		}
	}
	return false
}

// namedScript is one script of a configuration and what it is, for messages.
type namedScript struct {
	what string
	s    *config.Script
}

// scriptsOf lists the scripts vigil runs for cfg: the tracked vrrp_scripts, the MISC_CHECK
// scripts, the notify scripts of instances and sync groups and the notify FIFO scripts.
func scriptsOf(cfg *config.Config) []namedScript {
	var out []namedScript
	add := func(what string, s *config.Script) {
		if s != nil && len(s.Argv) > 0 {
			out = append(out, namedScript{what, s})
		}
	}
	scripts := map[string]*config.VRRPScript{}
	for _, s := range cfg.Scripts {
		scripts[s.Name] = s
	}
	seen := map[string]bool{}
	for _, r := range Tracked(cfg) {
		if s := scripts[r.Name]; s != nil && !seen[r.Name] {
			seen[r.Name] = true
			add("vrrp_script "+s.Name, s.Script)
		}
	}
	for _, rc := range RealServerChecks(cfg) {
		if rc.Checker.Type == "MISC_CHECK" {
			add("MISC_CHECK of "+rc.Name, rc.Checker.MiscPath)
		}
	}
	notifyScripts := func(what string, n config.Notify) {
		for _, ns := range []struct {
			kw string
			s  *config.Script
		}{{"notify_master", n.Master}, {"notify_backup", n.Backup}, {"notify_fault", n.Fault}, {"notify_stop", n.Stop},
			{"notify_deleted", n.Deleted}, {"notify", n.Generic}, {"notify_master_rx_lower_pri", n.MasterRxLowerPri}} {
			add(what+" "+ns.kw, ns.s)
		}
	}
	for _, in := range cfg.Instances {
		notifyScripts("vrrp_instance "+in.Name, in.Notify)
	}
	for _, sg := range cfg.SyncGroups {
		notifyScripts("vrrp_sync_group "+sg.Name, sg.Notify)
	}
	for _, f := range []*config.FIFO{cfg.Global.NotifyFIFO, cfg.Global.VRRPNotifyFIFO} {
		if f != nil {
			add("notify FIFO "+f.Path+" script", f.Script)
		}
	}
	return out
}
