package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/sdk/notify"
)

// validateNotifyPlugins asks the plugin of each vrrp_notify block whether it accepts its
// params, so that `vigil -t` reports a bad URL or a missing secret file at the block's place.
// A plugin that is not installed on this host is an error (once per plugin), as for checks:
// the notifier could not do what the file asks.
func validateNotifyPlugins(cfg *config.Config) config.Diagnostics {
	if len(cfg.Notifiers) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
