package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/notify"
)

// ConfigTest is what `vigil -t` checks of a parsed configuration beyond the parser: the
// plugins' verdicts on their params, as a reload asks them, and the scripts that the daemon
// would not run (enable_script_security: keepalived's -t fails on them too).
func ConfigTest(ctx context.Context, cfg *config.Config) config.Diagnostics {
	ds := validatePlugins(ctx, cfg, nil, nil, nil)
	return append(ds, checksched.ScriptSecurity(cfg)...)
}

// childValidateWait bounds the check process's answer before a reload validates on a fresh
// plugin host instead: a busy child is not waited for as long as a reload may take.
const childValidateWait = 15 * time.Second

// pluginValidateWait bounds the fresh plugin host's answers about one kind of plugin.
const pluginValidateWait = 30 * time.Second

// validatePlugins asks the plugin of each vrrp_check, each real_server checker and each
// vrrp_notify whether it accepts its params, so that `vigil -t` and a reload report a
// plugin's objection, and its warnings, at the block's place. A plugin that is not installed
// on this host is an error (once per plugin): the daemon refuses such a check, and a
// notifier could not do what the file asks; `vigil -t && systemctl reload vigil` must not
// pass a file that the daemon then refuses.
//
// A reload passes the running configuration: only the checks that the check process
// configures on their plugins again are asked (core/checksched Reconfigured: new checks, and
// those whose plugin, params, timing or thresholds changed, or all when plugin_dir or a check
// plugin's plugin_sha256 changed); it keeps the others running as they are. Asking each of a
// thousand real servers' checkers again on every reload, one call after another on a fresh
// plugin process, took longer than the reload's budget on a slow machine and refused the
// reload for it. Every vrrp_notify is asked: a reload starts every notifier anew.
//
// A reload also passes the check process (checks), asked first: its plugin processes already
// run. The checks are validated on a fresh plugin host (as `vigil -t` does) only when that
// process cannot answer (there is none, it is restarting, it runs another plugin_dir, the
// call fails or times out). A fresh host starts each plugin anew: a Go runtime, go-plugin's
// handshake and its TLS certificates, which took seconds of a reload under qemu TCG. The
// errors read the same either way; the check process does not pass on a plugin's warnings,
// so a check plugin's warnings are reported only from a fresh host.
func validatePlugins(ctx context.Context, cfg, running *config.Config, checks checkValidator, log hclog.Logger) config.Diagnostics {
	type item struct {
		kind   sdk.Kind
		what   string
		plugin string
		name   string
		params []config.Param
		pos    config.Pos
	}
	asked := checksched.Reconfigured(running, cfg)
	var items []item
	addCheck := func(what string, c *config.PluginCheck) {
		if asked(c.Name) {
			items = append(items, item{sdk.KindCheck, what, c.Plugin, c.Name, c.Params, c.Pos})
		}
	}
	for _, c := range cfg.Checks {
		addCheck(fmt.Sprintf("vrrp_check %q", c.Name), c)
	}
	for _, rc := range checksched.RealServerChecks(cfg) {
		addCheck(fmt.Sprintf("real_server check %q", rc.Name), rc.PluginCheck)
	}
	nChecks := len(items)
	for _, n := range cfg.Notifiers {
		items = append(items, item{sdk.KindNotify, fmt.Sprintf("vrrp_notify %q", n.Name), n.Plugin, n.Name, n.Params, n.Pos})
	}
	if len(items) == 0 {
		return nil
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	// The host starts nothing until it is used: a reload that the check process answers
	// only takes its directory, for the messages.
	host := plugin.New(plugin.ConfigOptions(cfg.Global, hclog.NewNullLogger()))
	defer host.Close()
	dir := host.Dir()

	// verdict is a plugin's answer to one item: its warnings, its objection (empty: none),
	// and whether it is not installed.
	type verdict struct {
		warnings     []string
		err          string
		notInstalled bool
	}
	var fromChild []verdict
	if checks != nil && nChecks > 0 {
		asks := make([]child.ValidateItem, nChecks)
		for i, it := range items[:nChecks] {
			asks[i] = child.ValidateItem{Plugin: it.plugin, Name: it.name, Params: it.params}
		}
		cctx, cancel := context.WithTimeout(ctx, childValidateWait)
		vs, err := checks.ValidateChecks(cctx, cfg, asks)
		cancel()
		if err != nil {
			log.Debug("validating checks on a fresh plugin host: the check process cannot", "checks", nChecks, "reason", err)
		} else {
			log.Debug("validated checks on the check process's plugins", "checks", nChecks)
			for _, v := range vs {
				fromChild = append(fromChild, verdict{err: v.Err, notInstalled: v.NotInstalled})
			}
		}
	}
	// Each kind's questions to the fresh host have a budget of their own, from the first.
	budgets := map[sdk.Kind]context.Context{}
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	ask := func(i int, it item) verdict {
		if it.kind == sdk.KindCheck && fromChild != nil {
			return fromChild[i]
		}
		hctx, ok := budgets[it.kind]
		if !ok {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, pluginValidateWait)
			budgets[it.kind], cancels = hctx, append(cancels, cancel)
		}
		var warnings []string
		var err error
		if it.kind == sdk.KindCheck {
			var resp check.ConfigureResponse
			resp, err = host.ConfigureCheck(hctx, it.plugin, check.ConfigureRequest{Name: it.name, Params: plugin.Params(it.params), ValidateOnly: true})
			warnings = resp.Warnings
		} else {
			var resp notify.ConfigureResponse
			resp, err = host.ConfigureNotifier(hctx, it.plugin, notify.ConfigureRequest{Name: it.name, Params: plugin.Params(it.params), ValidateOnly: true})
			warnings = resp.Warnings
		}
		v := verdict{warnings: warnings}
		if err != nil {
			v.err, v.notInstalled = err.Error(), errors.Is(err, plugin.ErrNotFound)
		}
		return v
	}

	var ds config.Diagnostics
	missing := map[string]bool{} // by executable: a check and a notifier may share a name
	for i, it := range items {
		exe := plugin.Executable(it.kind, it.plugin)
		if missing[exe] {
			continue
		}
		v := ask(i, it)
		for _, w := range v.warnings {
			ds = append(ds, config.Diagnostic{Pos: it.pos, Severity: config.SevWarning, Msg: fmt.Sprintf("%s: plugin %s: %s", it.what, it.plugin, w)})
		}
		if v.err == "" && !v.notInstalled {
			continue
		}
		d := config.Diagnostic{Pos: it.pos, Severity: config.SevError, Msg: fmt.Sprintf("%s: plugin %s: %s", it.what, it.plugin, v.err)}
		if v.notInstalled {
			missing[exe] = true
			d.Msg = fmt.Sprintf("%s: plugin %s is not installed in %s", it.what, it.plugin, dir)
			d.Hint = "install " + exe + " there, or set plugin_dir in global_defs"
		}
		ds = append(ds, d)
	}
	return ds
}
