package checksched

import (
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/core/config"
)

// What goes into a Spec's Key, and what does not:
//
//   - In: everything the check process does with the check: how it runs (in-process
//     script, or which plugin with which params, and which plugin binaries the host may
//     run), its timing (interval, timeout, delay_before_retry, warmup), its thresholds
//     (rise, fall, init_fail).
//   - Out: the name (the scheduler compares it separately), positions in the file (moving
//     a block is no change), and the configured weight and reverse, which the vrrp process
//     applies from its own copy of the configuration (fsm.Effective): a new weight or
//     direction must not cost the check its state.

// keyText builds a Key: one line per field, every value quoted, so that no two different
// definitions can print the same text. It appends to one buffer: a reload of a thousand
// real servers keys every checker of two configurations, and a string per quoted value
// was most of that work.
type keyText struct{ b []byte }

func (k *keyText) field(name string, values ...string) {
	k.b = append(k.b, name...)
	for _, v := range values {
		k.b = append(k.b, ' ')
		k.b = strconv.AppendQuote(k.b, v)
	}
	k.b = append(k.b, '\n')
}

func (k *keyText) duration(name string, d time.Duration) { k.field(name, d.String()) }

func (k *keyText) number(name string, n int) {
	k.b = append(k.b, name...)
	k.b = append(k.b, ' ', '"')
	k.b = strconv.AppendInt(k.b, int64(n), 10)
	k.b = append(k.b, '"', '\n')
}

func (k *keyText) flag(name string, b bool) {
	k.b = append(k.b, name...)
	k.b = append(k.b, ' ', '"')
	k.b = strconv.AppendBool(k.b, b)
	k.b = append(k.b, '"', '\n')
}

// params prints a params block with its nested blocks between braces.
func (k *keyText) params(ps []config.Param) {
	for _, p := range ps {
		k.b = append(k.b, "param "...)
		k.field(p.Key, p.Values...)
		if len(p.Block) > 0 {
			k.b = append(k.b, "{\n"...)
			k.params(p.Block)
			k.b = append(k.b, "}\n"...)
		}
	}
}

func (k *keyText) String() string { return string(k.b) }

// pluginKey is the Key of a check that plugin host hostKey (see PluginHostKey) runs for pc.
func pluginKey(pc *config.PluginCheck, hostKey string) *keyText {
	k := &keyText{b: make([]byte, 0, 256+len(hostKey))}
	k.field("kind", "plugin")
	k.field("plugin", pc.Plugin)
	k.field("host", hostKey)
	k.duration("interval", pc.Interval)
	k.duration("timeout", pc.Timeout)
	k.number("rise", pc.Rise)
	k.number("fall", pc.Fall)
	k.flag("init_fail", pc.InitFail)
	k.params(pc.Params)
	return k
}

// realServerKey is the Key of a real_server checker ck that runs as pc.
func realServerKey(pc *config.PluginCheck, ck *config.Checker, hostKey string) string {
	k := pluginKey(pc, hostKey)
	k.duration("retry_delay", ck.DelayBeforeRetry)
	k.duration("warmup", ck.Warmup)
	return k.String()
}

// pluginKeys is the Key of each check of cfg that runs through a plugin, by name: the
// vrrp_checks that instances track and every real_server checker, as FromConfigReusing
// makes them when their plugins are installed.
func pluginKeys(cfg *config.Config) map[string]string {
	hostKey := PluginHostKey(cfg.Global)
	checks := map[string]*config.PluginCheck{}
	for _, c := range cfg.Checks {
		checks[c.Name] = c
	}
	keys := map[string]string{}
	for _, r := range Tracked(cfg) {
		if c := checks[r.Name]; c != nil {
			keys[c.Name] = pluginKey(c, hostKey).String()
		}
	}
	for _, rc := range RealServerChecks(cfg) {
		keys[rc.Name] = realServerKey(rc.PluginCheck, rc.Checker, hostKey)
	}
	return keys
}

// Reconfigured says, for a reload from running to cfg, whether the check process configures
// the plugin check name of cfg (a vrrp_check or a real_server checker, see RealServerChecks)
// on its plugin again: when the check is new, or its Key changed (its plugin, params, timing,
// thresholds, or the plugin host). Otherwise the check keeps running as it is and its plugin
// is asked nothing. `vigil reload` validates the params of these checks only, so that what it
// validates is what the check process configures. With running nil, every check is.
//
// (A check that runs failing because its plugin was missing has no Key and is configured
// again by any reload; Reconfigured cannot know that its plugin was missing then.)
func Reconfigured(running, cfg *config.Config) func(name string) bool {
	if running == nil {
		return func(string) bool { return true }
	}
	was, now := pluginKeys(running), pluginKeys(cfg)
	return func(name string) bool {
		w, ok := was[name]
		return !ok || w != now[name]
	}
}

// scriptKey is the Key of a vrrp_script that the check process runs itself.
func scriptKey(s *config.VRRPScript, cred *syscall.Credential) string {
	k := &keyText{}
	k.field("kind", "script")
	k.field("argv", s.Script.Argv...)
	if cred != nil {
		k.field("cred", strconv.FormatUint(uint64(cred.Uid), 10), strconv.FormatUint(uint64(cred.Gid), 10))
	}
	k.duration("interval", s.Interval)
	k.duration("timeout", s.Timeout)
	k.number("rise", s.Rise)
	k.number("fall", s.Fall)
	k.flag("init_fail", s.InitFail)
	return k.String()
}

// PluginHostKey is a canonical text of the settings of global_defs that the check process's
// plugin host is made with: plugin_dir, and the plugin_sha256 pins of check plugins (the
// check process runs no notify plugin, so their pins do not matter to it). A plugin host
// cannot change its settings, so when this text changes the check process replaces its
// host, and the Key of every check that runs through a plugin includes it: those checks then
// restart on the new host, and none stays on the old one.
func PluginHostKey(g config.Global) string {
	k := &keyText{}
	k.field("plugin_dir", g.PluginDir)
	names := make([]string, 0, len(g.PluginSHA256))
	for name := range g.PluginSHA256 {
		// The executable name of a check plugin (core/plugin.Executable, which this
		// package cannot import: core/plugin imports it).
		if strings.HasPrefix(name, "vigil-check-") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		k.field("plugin_sha256", name, g.PluginSHA256[name])
	}
	return k.String()
}
