package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	corecheck "github.com/vigil-ha/vigil/core/check"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/sdk/check"
)

// validatePlugins asks the plugin of each vrrp_check and of each real_server checker
// whether it accepts its params, so that `vigil -t` reports a plugin's objection at the
// check's place. A plugin that is not installed on this host is a warning (once per plugin),
// like a missing interface: the file may be meant for another machine.
func validatePlugins(cfg *config.Config) config.Diagnostics {
	type item struct {
		what string
		c    *config.PluginCheck
	}
	var items []item
	for _, c := range cfg.Checks {
		items = append(items, item{fmt.Sprintf("vrrp_check %q", c.Name), c})
	}
	for _, rc := range corecheck.RealServerChecks(cfg) {
		items = append(items, item{fmt.Sprintf("real_server check %q", rc.Name), rc.PluginCheck})
	}
	if len(items) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host := plugin.New(plugin.ConfigOptions(cfg.Global, hclog.NewNullLogger()))
	defer host.Close()
	dir := plugin.ResolveDir(cfg.Global.PluginDir)
	var ds config.Diagnostics
	missing := map[string]bool{}
	for _, it := range items {
		c := it.c
		if missing[c.Plugin] {
			continue
		}
		_, err := host.ConfigureCheck(ctx, c.Plugin, check.ConfigureRequest{Name: c.Name, Params: plugin.Params(c.Params), ValidateOnly: true})
		if err == nil {
			continue
		}
		d := config.Diagnostic{Pos: c.Pos, Severity: config.SevError, Msg: fmt.Sprintf("%s: plugin %s: %v", it.what, c.Plugin, err)}
		if errors.Is(err, plugin.ErrNotFound) {
			missing[c.Plugin] = true
			d.Severity = config.SevWarning
			d.Msg = fmt.Sprintf("%s: plugin %s is not installed in %s", it.what, c.Plugin, dir)
			d.Hint = "install vigil-check-" + c.Plugin + " there, or set plugin_dir in global_defs"
		}
		ds = append(ds, d)
	}
	return ds
}

// pluginsCmd is `vigil plugins [--dir DIR] [--json]`: what is installed, and what each takes.
func pluginsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("vigil plugins", stderr)
	dir := fs.String("dir", "", "the plugin directory (default: "+plugin.DefaultDir+", or the vigil binary's own directory in a development tree)")
	asJSON := fs.Bool("json", false, "print as JSON")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	found, err := plugin.List(ctx, plugin.Options{Dir: plugin.ResolveDir(*dir), Logger: hclog.NewNullLogger()})
	if err != nil {
		fmt.Fprintf(stderr, "vigil plugins: %v\n", err)
		return exitInternal
	}
	if *asJSON {
		type entry struct {
			Path  string `json:"path"`
			Kind  string `json:"kind"`
			Name  string `json:"name"`
			Info  any    `json:"info,omitempty"`
			Error string `json:"error,omitempty"`
		}
		var out []entry
		for _, f := range found {
			e := entry{Path: f.Path, Kind: string(f.Kind), Name: f.Name, Info: f.Info}
			if f.Err != nil {
				e.Error, e.Info = f.Err.Error(), nil
			}
			out = append(out, e)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return exitInternal
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tVERSION\tPROTOCOL\tPARAMS\tPATH")
	for _, f := range found {
		if f.Err != nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\terror: %v\t%s\n", f.Kind, f.Name, f.Err, f.Path)
			continue
		}
		var params []string
		for _, p := range f.Info.Params {
			s := p.Name
			if p.Required {
				s += "*"
			}
			params = append(params, s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", f.Kind, f.Name, f.Info.Version, f.Info.ProtocolVersion, strings.Join(params, " "), f.Path)
	}
	tw.Flush()
	return exitOK
}
