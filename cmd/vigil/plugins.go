package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/sdk"
)

// pluginsCmd is `vigil plugins [-f FILE] [--dir DIR] [--json]`: what is installed, and what
// each takes. The configuration's plugin_dir and plugin_sha256 apply as they do for the
// daemon, so that a plugin whose checksum the configuration pins differently is listed as an
// error instead of being run.
func pluginsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("vigil plugins", stderr)
	file := fs.String("f", "", "configuration file whose plugin_dir and plugin_sha256 apply (default /etc/vigil/vigil.conf, else /etc/keepalived/keepalived.conf, if one exists)")
	dir := fs.String("dir", "", "the plugin directory, instead of the configuration's plugin_dir (default: "+plugin.DefaultDir+", or the vigil binary's own directory in a development tree)")
	asJSON := fs.Bool("json", false, "print as JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vigil plugins [-f FILE] [--dir DIR] [--json]\n\nvigil plugins starts each installed plugin once and lists its kind, name, version,\nprotocol version and params (* required).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil plugins: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	opts, cfg, code := pluginOptions(*file, stderr)
	if code != exitOK {
		return code
	}
	if *dir != "" {
		opts.Dir = plugin.ResolveDir(*dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	found, err := plugin.List(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "vigil plugins: %v\n", err)
		return exitInternal
	}
	found = notInstalled(found, cfg, opts.Dir)
	// A row with an error (a checksum that differs from its pin, an unsafe file mode, a plugin
	// that does not start, one the configuration names but that is missing) makes the exit
	// status non-zero, so that `vigil plugins` can gate a deployment.
	failed := 0
	for _, f := range found {
		if f.Err != nil {
			failed++
		}
	}
	exit := exitOK
	if failed > 0 {
		exit = exitConfig
		defer fmt.Fprintf(stderr, "vigil plugins: %d plugin(s) cannot run\n", failed)
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
		return exit
	}
	// PARAMS, the one column that can be long, comes last so that it does not push the
	// others apart.
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tVERSION\tPROTOCOL\tPATH\tPARAMS (* required)")
	for _, f := range found {
		if f.Err != nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t%s\terror: %v\n", f.Kind, f.Name, f.Path, f.Err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", f.Kind, f.Name, f.Info.Version, f.Info.ProtocolVersion, f.Path, formatParams(f.Info.Params))
	}
	tw.Flush()
	return exit
}

// formatParams is the PARAMS column: each param as NAME[*]:TYPE, * for required.
func formatParams(params []sdk.ParamSpec) string {
	if len(params) == 0 {
		return "-"
	}
	var out []string
	for _, p := range params {
		s := p.Name
		if p.Required {
			s += "*"
		}
		if p.Type != "" {
			s += ":" + string(p.Type)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// pluginOptions are the plugin host's options for `vigil plugins`: those of the
// configuration file (plugin_dir and plugin_sha256), read as `vigil -t` reads it. With no
// -f, the daemon's default file is read if it exists, and ResolveDir("") with no pins is
// used if none does. A file that cannot be read or has errors is reported, and nothing is
// run: its pins could not be honoured.
func pluginOptions(file string, stderr io.Writer) (plugin.Options, *config.Config, int) {
	log := hclog.NewNullLogger()
	if file == "" {
		for _, p := range defaultConfigFiles {
			if _, err := os.Stat(p); err == nil {
				file = p
				break
			}
		}
		if file == "" {
			return plugin.Options{Dir: plugin.ResolveDir(""), Logger: log}, nil, exitOK
		}
	}
	cfg, diags := config.Load(file, config.Options{ConfigID: config.DefaultConfigID(), InterfaceExists: interfaceExists})
	if cfg == nil || diags.HasErrors() {
		for _, d := range diags {
			fmt.Fprintln(stderr, d.String())
		}
		fmt.Fprintf(stderr, "vigil plugins: %s: configuration has %d error(s); its plugin_dir and plugin_sha256 cannot be applied (fix it, or name another file with -f)\n", file, len(diags.Errors()))
		return plugin.Options{}, nil, exitConfig
	}
	return plugin.ConfigOptions(cfg.Global, log), cfg, exitOK
}

// namedPlugin is a plugin that the configuration names, at the first place naming it.
type namedPlugin struct {
	kind sdk.Kind
	name string
	pos  config.Pos
	what string
}

// namedPlugins lists the plugins that cfg needs: those of its vrrp_checks, real_server
// checkers and vrrp_notify blocks, each once.
func namedPlugins(cfg *config.Config) []namedPlugin {
	var out []namedPlugin
	seen := map[string]bool{}
	add := func(kind sdk.Kind, name string, pos config.Pos, what string) {
		if key := plugin.Executable(kind, name); !seen[key] {
			seen[key] = true
			out = append(out, namedPlugin{kind, name, pos, what})
		}
	}
	for _, c := range cfg.Checks {
		add(sdk.KindCheck, c.Plugin, c.Pos, fmt.Sprintf("vrrp_check %q", c.Name))
	}
	for _, rc := range checksched.RealServerChecks(cfg) {
		add(sdk.KindCheck, rc.Plugin, rc.Pos, fmt.Sprintf("real_server check %q", rc.Name))
	}
	for _, n := range cfg.Notifiers {
		add(sdk.KindNotify, n.Plugin, n.Pos, fmt.Sprintf("vrrp_notify %q", n.Name))
	}
	return out
}

// notInstalled adds to found a row with an error for each plugin that cfg names and that
// is not in dir.
func notInstalled(found []plugin.Found, cfg *config.Config, dir string) []plugin.Found {
	if cfg == nil {
		return found
	}
	for _, n := range namedPlugins(cfg) {
		if slices.ContainsFunc(found, func(f plugin.Found) bool { return f.Kind == n.kind && f.Name == n.name }) {
			continue
		}
		found = append(found, plugin.Found{
			Path: filepath.Join(dir, plugin.Executable(n.kind, n.name)), Kind: n.kind, Name: n.name,
			Err: fmt.Errorf("not installed, but %s: %s names it", n.pos, n.what),
		})
	}
	return found
}
