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
	"github.com/vigil-ha/vigil/core/supervisor"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/notify"
)

// ConfigTest is what `vigil -t` checks of a parsed configuration beyond the parser: the
// plugins' verdicts on their params, as a reload asks them, and the scripts that the daemon
// would not run (enable_script_security: keepalived's -t fails on them too).
func ConfigTest(ctx context.Context, cfg *config.Config) config.Diagnostics {
	ds := validatePlugins(ctx, cfg, nil)
	ds = append(ds, validateNotifyPlugins(ctx, cfg)...)
	return append(ds, checksched.ScriptSecurity(cfg)...)
}

// validatePlugins asks the plugin of each vrrp_check and of each real_server checker
// whether it accepts its params, so that `vigil -t` reports a plugin's objection at the
// check's place. A plugin that is not installed on this host is an error (once per plugin):
// the daemon refuses such a vrrp_check, and `vigil -t && systemctl reload vigil` must not
// pass a file that the daemon then refuses.
//
// A reload passes the running configuration: only the checks that the check process
// configures on their plugins again are asked (core/checksched Reconfigured: new checks, and those
// whose plugin, params, timing or thresholds changed, or all when plugin_dir or a check
// plugin's plugin_sha256 changed); it keeps the others running as they are. Asking each of a
// thousand real servers' checkers again on every reload, one call after another on a fresh
// plugin process, took longer than the reload's budget on a slow machine and refused the
// reload for it.
func validatePlugins(ctx context.Context, cfg, running *config.Config) config.Diagnostics {
	return validatePluginsOn(ctx, cfg, running, nil, nil)
}

// childValidateWait bounds the check process's answer before a reload validates on a fresh
// plugin host instead: a busy child is not waited for as long as a reload may take.
const childValidateWait = 15 * time.Second

// validatePluginsOn is validatePlugins for a reload of the running daemon: it asks the
// check process first, whose plugin processes already run, and validates on a fresh plugin
// host (as `vigil -t` does) only when that process cannot answer (there is none, it is
// restarting, it runs another plugin_dir, the call fails or times out). A fresh host starts
// each plugin anew: a Go runtime, go-plugin's handshake and its TLS certificates, which took
// seconds of a reload under qemu TCG. The diagnostics read the same either way.
func validatePluginsOn(ctx context.Context, cfg, running *config.Config, checks checkValidator, log hclog.Logger) config.Diagnostics {
	type item struct {
		what string
		c    *config.PluginCheck
	}
	asked := checksched.Reconfigured(running, cfg)
	var items []item
	for _, c := range cfg.Checks {
		if asked(c.Name) {
			items = append(items, item{fmt.Sprintf("vrrp_check %q", c.Name), c})
		}
	}
	for _, rc := range checksched.RealServerChecks(cfg) {
		if asked(rc.Name) {
			items = append(items, item{fmt.Sprintf("real_server check %q", rc.Name), rc.PluginCheck})
		}
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
	var verdicts []supervisor.CheckVerdict
	if checks != nil {
		asks := make([]child.ValidateItem, len(items))
		for i, it := range items {
			asks[i] = child.ValidateItem{Plugin: it.c.Plugin, Name: it.c.Name, Params: it.c.Params}
		}
		cctx, cancel := context.WithTimeout(ctx, childValidateWait)
		vs, err := checks.ValidateChecks(cctx, cfg, asks)
		cancel()
		if err != nil {
			log.Debug("validating checks on a fresh plugin host: the check process cannot", "checks", len(items), "reason", err)
		} else {
			log.Debug("validated checks on the check process's plugins", "checks", len(items))
			verdicts = vs
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var ds config.Diagnostics
	missing := map[string]bool{}
	for i, it := range items {
		c := it.c
		if missing[c.Plugin] {
			continue
		}
		var msg string
		var notInstalled bool
		if verdicts != nil {
			msg, notInstalled = verdicts[i].Err, verdicts[i].NotInstalled
		} else if _, err := host.ConfigureCheck(ctx, c.Plugin, check.ConfigureRequest{Name: c.Name, Params: plugin.Params(c.Params), ValidateOnly: true}); err != nil {
			msg, notInstalled = err.Error(), errors.Is(err, plugin.ErrNotFound)
		}
		if msg == "" && !notInstalled {
			continue
		}
		d := config.Diagnostic{Pos: c.Pos, Severity: config.SevError, Msg: fmt.Sprintf("%s: plugin %s: %s", it.what, c.Plugin, msg)}
		if notInstalled {
			missing[c.Plugin] = true
			d.Msg = fmt.Sprintf("%s: plugin %s is not installed in %s", it.what, c.Plugin, dir)
			d.Hint = "install vigil-check-" + c.Plugin + " there, or set plugin_dir in global_defs"
		}
		ds = append(ds, d)
	}
	return ds
}

// validateNotifyPlugins asks the plugin of each vrrp_notify block whether it accepts its
// params, so that `vigil -t` reports a bad URL or a missing secret file at the block's place.
// A plugin that is not installed on this host is an error (once per plugin), as for checks:
// the notifier could not do what the file asks.
func validateNotifyPlugins(ctx context.Context, cfg *config.Config) config.Diagnostics {
	if len(cfg.Notifiers) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	host := plugin.New(plugin.ConfigOptions(cfg.Global, hclog.NewNullLogger()))
	defer host.Close()
	dir := host.Dir()
	var ds config.Diagnostics
	missing := map[string]bool{}
	for _, n := range cfg.Notifiers {
		if missing[n.Plugin] {
			continue
		}
		resp, err := host.ConfigureNotifier(ctx, n.Plugin, notify.ConfigureRequest{Name: n.Name, Params: plugin.Params(n.Params), ValidateOnly: true})
		for _, w := range resp.Warnings {
			ds = append(ds, config.Diagnostic{Pos: n.Pos, Severity: config.SevWarning, Msg: fmt.Sprintf("vrrp_notify %q: plugin %s: %s", n.Name, n.Plugin, w)})
		}
		if err == nil {
			continue
		}
		d := config.Diagnostic{Pos: n.Pos, Severity: config.SevError, Msg: fmt.Sprintf("vrrp_notify %q: plugin %s: %v", n.Name, n.Plugin, err)}
		if errors.Is(err, plugin.ErrNotFound) {
			missing[n.Plugin] = true
			d.Msg = fmt.Sprintf("vrrp_notify %q: plugin %s is not installed in %s", n.Name, n.Plugin, dir)
			d.Hint = "install vigil-notify-" + n.Plugin + " there, or set plugin_dir in global_defs"
		}
		ds = append(ds, d)
	}
	return ds
}
