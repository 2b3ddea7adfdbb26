package check

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
// definitions can print the same text.
type keyText struct{ b strings.Builder }

func (k *keyText) field(name string, values ...string) {
	k.b.WriteString(name)
	for _, v := range values {
		k.b.WriteByte(' ')
		k.b.WriteString(strconv.Quote(v))
	}
	k.b.WriteByte('\n')
}

func (k *keyText) duration(name string, d time.Duration) { k.field(name, d.String()) }
func (k *keyText) number(name string, n int)             { k.field(name, strconv.Itoa(n)) }
func (k *keyText) flag(name string, b bool)              { k.field(name, strconv.FormatBool(b)) }

// params prints a params block with its nested blocks between braces.
func (k *keyText) params(ps []config.Param) {
	for _, p := range ps {
		k.b.WriteString("param ")
		k.field(p.Key, p.Values...)
		if len(p.Block) > 0 {
			k.b.WriteString("{\n")
			k.params(p.Block)
			k.b.WriteString("}\n")
		}
	}
}

func (k *keyText) String() string { return k.b.String() }

// pluginKey is the Key of a check that plugin host hostKey (see PluginHostKey) runs for pc.
func pluginKey(pc *config.PluginCheck, hostKey string) *keyText {
	k := &keyText{}
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
