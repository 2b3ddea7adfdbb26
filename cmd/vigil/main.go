// Command vigil keeps virtual IP addresses highly available with VRRP. It reads
// keepalived.conf and accepts keepalived's command-line flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/control"
	"github.com/vigil-ha/vigil/core/daemon"
	"github.com/vigil-ha/vigil/core/memdump"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise the module
// version from the build info is used.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes. keepalived exits non-zero on a bad configuration too; scripts only test for 0.
const (
	exitOK       = 0
	exitConfig   = 1
	exitUsage    = 2
	exitInternal = 3
)

type options struct {
	file      string
	test      bool
	dump      bool
	json      bool
	dontFork  bool
	console   bool
	detail    bool
	logJSON   bool
	configID  string
	version   bool
	strictInc bool
	pidFile   string
	control   string
	role      string
	// dontReleaseIPVS is keepalived's -I: at stop, the IPVS table is left as it is.
	dontReleaseIPVS bool
	// dontReleaseVRRP is keepalived's -V: at stop, VRRP's addresses and routes stay.
	dontReleaseVRRP bool
	// metricsListen is --metrics-listen: where core serves Prometheus metrics and the
	// read-only status; it overrides global_defs' metrics_listen. Empty: that keyword's.
	metricsListen string
	// watch is the file watcher's debounce; 0 turns it off (reload by SIGHUP or vigil
	// reload only).
	watch time.Duration
}

// defaultConfigFiles are tried in order when -f is not given: vigil's own place first, then
// keepalived's, so that a host moving from keepalived works unchanged.
var defaultConfigFiles = []string{"/etc/vigil/vigil.conf", "/etc/keepalived/keepalived.conf"}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "status" {
		return statusCmd(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "reload" {
		return reloadCmd(args[1:], stdout, stderr)
	}
	if len(args) > 0 && (args[0] == "demote" || args[0] == "promote") {
		return handoverCmd(args[0], args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "plugins" {
		return pluginsCmd(args[1:], stdout, stderr)
	}
	if len(args) > 0 && (args[0] == "genhash" || args[0] == "--genhash") {
		return genhashCmd(args[1:], stdout, stderr)
	}
	var o options
	fs := flag.NewFlagSet("vigil", flag.ContinueOnError)
	fs.SetOutput(stderr)
	both := func(p *bool, short, long, usage string) {
		fs.BoolVar(p, short, false, usage)
		fs.BoolVar(p, long, false, usage)
	}
	fs.StringVar(&o.file, "f", "", "configuration file (default /etc/vigil/vigil.conf, else /etc/keepalived/keepalived.conf)")
	fs.StringVar(&o.file, "use-file", "", "same as -f")
	both(&o.test, "t", "config-test", "check the configuration, print every problem, exit non-zero if it cannot run")
	both(&o.dump, "d", "dump-conf", "print the resolved configuration (includes, conditionals and $parameters applied)")
	fs.BoolVar(&o.json, "json", false, "with -d: print the typed model, defaults included, as JSON")
	both(&o.dontFork, "n", "dont-fork", "stay in the foreground (vigil always does; accepted for keepalived compatibility)")
	both(&o.console, "l", "log-console", "log to the console (vigil always logs to stderr; accepted for keepalived compatibility)")
	both(&o.detail, "D", "log-detail", "detailed (debug) logging")
	both(&o.dontReleaseIPVS, "I", "dont-release-ipvs", "at stop, leave the virtual servers in the kernel's IPVS table (keepalived's -I)")
	both(&o.dontReleaseVRRP, "V", "dont-release-vrrp", "at stop, leave VRRP's virtual addresses and routes in place, and do not resign (keepalived's -V)")
	fs.BoolVar(&o.logJSON, "log-json", false, "log as JSON lines instead of text")
	fs.StringVar(&o.configID, "i", config.DefaultConfigID(), "config id for @id conditional lines (default: the host name up to its first dot)")
	fs.StringVar(&o.configID, "config-id", config.DefaultConfigID(), "same as -i")
	both(&o.version, "v", "version", "print the version and exit")
	fs.BoolVar(&o.strictInc, "strict-includes", false, "an include that matches no file is an error")
	fs.StringVar(&o.pidFile, "p", "/run/vigil.pid", "pid file of the core process")
	fs.StringVar(&o.pidFile, "pid", "/run/vigil.pid", "same as -p")
	fs.StringVar(&o.control, "control", control.DefaultSocket, "control socket (vigil status talks to it)")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus metrics, /status, /healthz and /readyz on HOST:PORT, without authentication (overrides global_defs metrics_listen; default off; see docs/metrics.md)")
	fs.DurationVar(&o.watch, "watch", daemon.DefaultWatchDebounce, "reload when the configuration files change, once they have been quiet this long; 0: only on SIGHUP or vigil reload")
	// The role flag is how core starts its children; it is not for operators.
	fs.StringVar(&o.role, "role", "", "internal: run as the check or vrrp child")
	fs.Usage = func() { writeUsage(stderr, fs) }
	// help reads the flags off fs, so it is dispatched here rather than with the others.
	if len(args) > 0 && args[0] == "help" {
		return helpCmd(fs, args[1:], stdout, stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if o.version {
		fmt.Fprintf(stdout, "vigil %s\n", versionString())
		return exitOK
	}

	if o.role != "" && os.Getenv("GOMAXPROCS") == "" {
		// Each child is an event loop's worth of work, as keepalived's processes are. With
		// one processor the runtime passes packets, probes and timers between goroutines
		// without waking a second thread each time: at 255 instances with 10 ms adverts that
		// took a third off the vrrp backup's CPU, and a quarter off the check process's side
		// of a plugin probe (BENCHMARKS.md). Blocking system calls (netlink, fork) still hand
		// the processor on, and GOMAXPROCS in the environment overrides this.
		runtime.GOMAXPROCS(1)
	}
	if o.role != "" {
		memdump.OnSignal(o.role, func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) })
		// A child logs JSON: core's go-plugin client parses it and re-logs each line in core's
		// one stream, with the role as a field.
		child.Serve(child.Role(o.role), hclog.New(&hclog.LoggerOptions{
			Level: levelOf(o), Output: stderr, JSONFormat: true, // no name: core names the stream by role
		}), child.Options{DontReleaseIPVS: o.dontReleaseIPVS, DontReleaseVRRP: o.dontReleaseVRRP})
		return exitOK
	}
	log := newLogger(stderr, o)
	if o.file == "" {
		o.file = firstExisting(defaultConfigFiles)
	}
	opts := config.Options{
		ConfigID:        o.configID,
		StrictIncludes:  o.strictInc,
		InterfaceExists: interfaceExists,
	}
	cfg, diags := config.Load(o.file, opts)
	if o.test && cfg != nil && !diags.HasErrors() {
		// What the daemon would refuse beyond the parser: the plugins' verdicts, the scripts
		// it would not run.
		diags = append(diags, daemon.ConfigTest(context.Background(), cfg)...)
	}
	for _, d := range diags {
		if o.test || o.dump {
			// The format editors and CI annotate: FILE:LINE:COL: severity: message.
			fmt.Fprintln(stderr, d.String())
			continue
		}
		args := []any{"at", d.Pos.String()}
		if d.Hint != "" {
			args = append(args, "hint", d.Hint)
		}
		if d.Severity == config.SevError {
			log.Error(d.Msg, args...)
		} else {
			log.Warn(d.Msg, args...)
		}
	}
	if o.dump && cfg != nil {
		if err := dump(stdout, cfg, o.json); err != nil {
			log.Error("cannot print the configuration", "error", err)
			return exitInternal
		}
	}
	if cfg == nil || diags.HasErrors() {
		errs := len(diags.Errors())
		fmt.Fprintf(stderr, "vigil: %s: configuration has %d error(s) and %d warning(s); it cannot run\n", o.file, errs, len(diags)-errs)
		return exitConfig
	}
	if o.test || o.dump {
		if o.test {
			fmt.Fprintf(stderr, "vigil: %s: configuration OK (%d warning(s))\n", o.file, len(diags))
		}
		return exitOK
	}
	memdump.OnSignal("core", func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) })
	log.Info("configuration loaded", "file", o.file, "instances", len(cfg.Instances), "checks", len(cfg.Checks)+len(cfg.Scripts))
	var childArgs []string
	if o.detail {
		childArgs = append(childArgs, "-D")
	}
	if o.dontReleaseIPVS {
		childArgs = append(childArgs, "-I")
	}
	if o.dontReleaseVRRP {
		childArgs = append(childArgs, "-V")
	}
	err := daemon.Run(context.Background(), cfg, daemon.Options{File: o.file, Config: opts, PidFile: o.pidFile, Control: o.control,
		MetricsListen: o.metricsListen, Watch: o.watch, ChildArgs: childArgs, Log: log})
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, daemon.ErrConfig):
		return exitConfig
	default:
		return exitInternal
	}
}

func dump(w io.Writer, cfg *config.Config, asJSON bool) error {
	if !asJSON {
		_, err := io.WriteString(w, cfg.Text())
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(cfg)
}

func levelOf(o options) hclog.Level {
	if o.detail {
		return hclog.Debug
	}
	return hclog.Info
}

func newLogger(w io.Writer, o options) hclog.Logger {
	// Every line of core carries role=core, as the children's lines carry theirs (the
	// supervisor adds it as it re-logs them): one field selects a process (docs/logging.md).
	return hclog.New(&hclog.LoggerOptions{
		Name:       "vigil",
		Level:      levelOf(o),
		Output:     w,
		JSONFormat: o.logJSON,
	}).With("role", "core")
}

func firstExisting(paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[len(paths)-1]
}

func interfaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
