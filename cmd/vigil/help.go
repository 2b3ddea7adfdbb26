package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/control"
	"github.com/vigil-ha/vigil/core/manual"
	"github.com/vigil-ha/vigil/core/memdump"
	"github.com/vigil-ha/vigil/core/plugin"
)

// The manual is written once, here, and printed two ways: as text by `vigil help [TOPIC]` and
// `vigil -h`, and as the man pages vigil.8 and vigil.conf.5 by `vigil help --man 8|5` (make
// install and make package run it). The flags come from the flag sets that parse them, so a
// flag added to main.go is in both without more work (TestHelpListsEveryFlag).

// subcommand is one of vigil's commands besides the daemon itself.
type subcommand struct {
	name     string
	synopsis string // after "vigil "
	summary  string
	run      func(args []string, stdout, stderr io.Writer) int
}

// subcommands are the commands run() dispatches on their first argument, in the order the
// manual lists them. TestHelpCoversSubcommands fails when run() knows one this list lacks.
func subcommands() []subcommand {
	return []subcommand{
		{"status", "status [--json] [--control PATH]",
			"Print the running daemon's state: each instance's state and priority, each check, the children and the last reload.", statusCmd},
		{"reload", "reload [--json] [--control PATH]",
			"Make the running daemon reload its configuration (as SIGHUP does) and print the result: exit status 1 when the new file was refused, and the running configuration stays.", reloadCmd},
		{"demote", "demote INSTANCE...|--all [--for DURATION] [--json] [--control PATH]",
			"Hand mastership over for maintenance: a master resigns with a priority 0 advert, so the backup takes over after Skew_Time, and the instances stay backup, even when no other master is left, until vigil promote or DURATION. A sync group member demotes its group; the demotion survives reloads but not a restart of vigil (docs/maintenance.md). Exit status 1 for an instance the configuration does not have.",
			func(args []string, stdout, stderr io.Writer) int { return handoverCmd("demote", args, stdout, stderr) }},
		{"promote", "promote INSTANCE...|--all [--json] [--control PATH]",
			"Lift vigil demote: the instances act on their priority and preemption again (one that heard no master takes over at once).",
			func(args []string, stdout, stderr io.Writer) int { return handoverCmd("promote", args, stdout, stderr) }},
		{"plugins", "plugins [-f FILE] [--dir DIR] [--json]",
			"Start each installed plugin once and list its kind, name, version, protocol version and parameters.", pluginsCmd},
		{"genhash", "genhash [-S] [-I] [-V VIRTUALHOST] [-P PROTOCOL] [-t SECONDS] [-v] -s SERVER -p PORT -u URL",
			"Print the MD5 digest of a page's body for the digest of an HTTP_GET or SSL_GET url block, as keepalived's genhash does (`--genhash` as the first flag too).", genhashCmd},
		{"help", "help [TOPIC] [--man 8|5]",
			"Print this manual, or one topic of it; `--man 8` and `--man 5` print the man pages vigil(8) and vigil.conf(5) as roff.", nil},
	}
}

// flagMeta names the values of the daemon's flags as the manual writes them.
var flagMeta = map[string]string{"f": "FILE", "i": "ID", "p": "FILE", "control": "PATH", "watch": "DURATION"}

// flagOrder puts the flags an operator uses most first; the rest follow alphabetically.
var flagOrder = []string{"f", "t", "d", "json", "n", "l", "D", "log-json", "i"}

// subcommandFlags reads a subcommand's flags from what its -h prints.
func subcommandFlags(c subcommand) []manual.Flag {
	if c.run == nil {
		return nil
	}
	var out bytes.Buffer
	c.run([]string{"-h"}, io.Discard, &out)
	// The synopsis names the values: "-s SERVER", "--control PATH".
	meta := map[string]string{}
	words := strings.Fields(c.synopsis)
	for i := 0; i+1 < len(words); i++ {
		name, ok := strings.CutPrefix(strings.TrimLeft(words[i], "["), "-")
		arg := strings.TrimRight(words[i+1], "]")
		if ok && arg != "" && arg == strings.ToUpper(arg) && !strings.HasPrefix(arg, "-") {
			meta[strings.TrimPrefix(name, "-")] = arg
		}
	}
	return manual.ParseDefaults(out.String(), meta)
}

// daemonPage is vigil(8).
func daemonPage(fs *flag.FlagSet) *manual.Page {
	var synopsis strings.Builder
	synopsis.WriteString("vigil [-f FILE] [-t] [-d [--json]] [FLAGS...]\n")
	var cmds []manual.Block
	for _, c := range subcommands() {
		synopsis.WriteString("vigil " + c.synopsis + "\n")
		sub := manual.Sub{Title: "vigil " + c.synopsis, Blocks: []manual.Block{manual.Para(c.summary)}}
		if fl := subcommandFlags(c); len(fl) > 0 {
			sub.Blocks = append(sub.Blocks, manual.FlagList(fl))
		}
		cmds = append(cmds, sub)
	}
	return &manual.Page{
		Name:    "vigil",
		Section: "8",
		Summary: "keep virtual IP addresses highly available with VRRP, reading keepalived.conf",
		Source:  "vigil " + versionString(),
		Manual:  "System Administration",
		Sections: []manual.Section{
			{Title: "Synopsis", Topic: "usage", Blocks: []manual.Block{manual.Example(synopsis.String())}},
			{Title: "Description", Topic: "description", Blocks: []manual.Block{
				manual.Para("vigil is a VRRP (RFC 3768, RFC 5798) daemon and IPVS load-balancer manager that reads keepalived's configuration file and accepts keepalived's command-line flags, so that a host can move from keepalived to vigil without changing its files. Health checks and notifications can also be served by plugins (see vigil.conf(5))."),
				manual.Para("Without a subcommand vigil runs the daemon in the foreground, logging to stderr: a core process that reads the configuration, a vrrp process that sends and receives adverts and holds the virtual addresses, and a check process that runs the scripts, checks and plugins. With `-t` it only checks the configuration and prints every problem as `FILE:LINE:COL: severity: message`; with `-d` it prints the configuration as it understood it."),
			}},
			{Title: "Options", Topic: "flags", Blocks: []manual.Block{
				manual.Para("Long flags take one or two dashes; short flags cannot be combined (`-n -l`, not `-nl`)."),
				manual.FlagList(manual.Flags(fs, flagMeta, flagOrder...)),
			}},
			{Title: "Commands", Topic: "commands", Blocks: cmds},
			{Title: "Exit status", Topic: "exit-codes", Blocks: []manual.Block{manual.List{
				{Term: strconv.Itoa(exitOK), Text: "Success: the configuration can run (`-t`, warnings allowed), the daemon stopped on a signal, the command did what it was asked."},
				{Term: strconv.Itoa(exitConfig), Text: "The configuration has errors and cannot run; the daemon stopped because a child could not run; `vigil reload` was refused; `vigil genhash` could not fetch the page."},
				{Term: strconv.Itoa(exitUsage), Text: "The command line is wrong (an unknown flag, a missing argument)."},
				{Term: strconv.Itoa(exitInternal), Text: "Something else failed: the control socket cannot be reached (is the daemon running?), the pid file cannot be written, a plugin cannot be started."},
			}}},
			{Title: "Signals", Topic: "signals", Blocks: []manual.Block{manual.List{
				{Term: "SIGHUP", Text: "Reload the configuration, as `vigil reload` does (`systemctl reload vigil` runs `vigil reload`). A file with errors changes nothing."},
				{Term: "SIGTERM, SIGINT", Text: "Stop: run the stop notifications, send priority 0 adverts so that a backup takes over at once, remove the virtual addresses (unless `-V`) and the IPVS services (unless `-I`), then exit 0."},
				{Term: "SIGUSR1", Text: "Write the state, as `vigil status --json` prints it, to `/tmp/vigil.data`."},
				{Term: "SIGUSR2", Text: "When `" + memdump.Env + "` is set: write a heap profile and memory figures of the process into that directory (send it to the process group, `kill -USR2 -- -PID`, for the children's too). Without it SIGUSR2 keeps its default action, which ends the process: do not send it."},
			}}},
			{Title: "Files", Topic: "files", Blocks: []manual.Block{manual.List{
				{Term: defaultConfigFiles[0], Text: "The configuration, in keepalived.conf syntax (vigil.conf(5)); read when `-f` is not given."},
				{Term: defaultConfigFiles[1], Text: "Read instead when " + "`" + defaultConfigFiles[0] + "`" + " does not exist, so that a host moving from keepalived works unchanged."},
				{Term: plugin.DefaultDir, Text: "The plugins, `vigil-check-NAME` and `vigil-notify-NAME` (`plugin_dir` in `global_defs` moves it). When this directory does not exist, a vigil binary uses the plugins beside it (a build tree's `bin/`) or, installed as `PREFIX/sbin/vigil`, those in `PREFIX/lib/vigil/plugins`."},
				{Term: "/run/vigil.pid", Text: "The core process's pid (`-p`)."},
				{Term: control.DefaultSocket, Text: "The control socket that `vigil status` and `vigil reload` talk to (`--control`)."},
				{Term: "/tmp/vigil.data", Text: "The state written on SIGUSR1."},
				{Term: "/lib/systemd/system/vigil.service", Text: "The systemd unit of the Debian package (`Type=notify`; `systemctl reload` runs `vigil reload`)."},
			}}},
			{Title: "Environment", Topic: "environment", Blocks: []manual.Block{manual.List{
				{Term: "NOTIFY_SOCKET", Text: "Set by systemd for a `Type=notify` service: vigil sends READY=1 once its children run with the configuration, RELOADING=1 and READY=1 around a reload, STOPPING=1 and STATUS= lines."},
				{Term: "WATCHDOG_USEC", Text: "Set by systemd from `WatchdogSec=`: vigil pings the watchdog while both children answer."},
				{Term: memdump.Env, Text: "A directory: SIGUSR2 makes each of vigil's processes write its heap profile and memory figures there (for debugging; unset, SIGUSR2 ends a process, as it ends any program that does not catch it)."},
				{Term: "GOMAXPROCS", Text: "The Go runtime's processors. The check and vrrp processes use one unless it is set."},
				{Term: "${_ENV NAME}", Text: "Not a variable of vigil's own: in the configuration file this expands to the environment variable NAME, as in keepalived."},
			}}},
			{Title: "See also", Blocks: []manual.Block{manual.Para("vigil.conf(5), keepalived(8), keepalived.conf(5), systemd.service(5); docs/ in vigil's sources (docs/install.md: installing and the package).")}},
		},
	}
}

// confPage is vigil.conf(5): vigil's additions to keepalived.conf and what it does not
// support, both read off core/config.
func confPage() *manual.Page {
	var ext []manual.Block
	var cur *manual.Sub
	var items manual.List
	flush := func() {
		if cur != nil {
			cur.Blocks = append(cur.Blocks, items)
			ext = append(ext, *cur)
		}
		cur, items = nil, nil
	}
	for _, e := range config.Extensions() {
		title := contextTitle(e.Context)
		if cur == nil || cur.Title != title {
			flush()
			cur = &manual.Sub{Title: title}
		}
		items = append(items, manual.Item{Term: strings.TrimSpace(e.Keyword + " " + e.Args), Text: e.Text})
	}
	flush()

	unsupported := config.Unsupported(config.AcceptedKeywords())
	ctxs := slices.Sorted(func(yield func(string) bool) {
		for c := range unsupported {
			if len(unsupported[c]) > 0 && !yield(c) {
				return
			}
		}
	})
	var un manual.List
	for _, c := range ctxs {
		un = append(un, manual.Item{Term: contextTitle(c), Text: "`" + strings.Join(unsupported[c], "`, `") + "`"})
	}
	return &manual.Page{
		Name:    "vigil.conf",
		Section: "5",
		Summary: "vigil's additions to keepalived.conf",
		Source:  "vigil " + versionString(),
		Manual:  "File Formats",
		Sections: []manual.Section{
			{Title: "Description", Topic: "config", Blocks: []manual.Block{
				manual.Para("vigil(8) reads keepalived.conf: the syntax, the keywords and their meaning are keepalived's (keepalived.conf(5)), includes, `@ID` conditional lines and `$NAME` definitions included. This page lists only what vigil adds and what it does not implement. vigil reads `" + defaultConfigFiles[0] + "`, or `" + defaultConfigFiles[1] + "` when the former does not exist; `vigil -t` checks a file and prints every problem with its place."),
				manual.Para("Health checks and notifications can be served by plugins: executables in `plugin_dir` that vigil starts and talks to over gRPC. A plugin validates its parameters when `vigil -t` runs; `vigil plugins` lists those installed."),
			}},
			{Title: "Extensions", Topic: "extensions", Blocks: ext},
			{Title: "Example", Topic: "example", Blocks: []manual.Block{manual.Example(confExample)}},
			{Title: "Not supported", Topic: "unsupported", Blocks: append([]manual.Block{
				manual.Para("vigil knows every keyword keepalived knows. Those below are not implemented: `vigil -t` warns about each (\"not supported by vigil; ignored\") with its place, and the rest of the file runs. A keyword keepalived does not know either is an error, with the nearest known spelling as a hint. By block:"),
			}, un)},
			{Title: "See also", Blocks: []manual.Block{manual.Para("vigil(8), keepalived.conf(5)")}},
		},
	}
}

// contextTitle names a block context for the manual.
func contextTitle(ctx string) string {
	switch ctx {
	case "":
		return "top level"
	case "vrrp_check", "vrrp_notify", "vrrp_instance", "vrrp_sync_group", "vrrp_script", "track_file":
		return ctx + " NAME { }"
	}
	return strings.ReplaceAll(ctx, "/", " > ")
}

const confExample = `global_defs {
    plugin_dir /usr/lib/vigil/plugins
    # refuse vigil-check-mysql unless its SHA-256 is this one
    plugin_sha256 vigil-check-mysql 4f2c0e1d9a7b3c5e8f6a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6
}
vrrp_check chk_mysql {
    plugin mysql
    interval 2
    fall 3
    rise 2
    params {
        address 127.0.0.1:3306
        user vigil_monitor
        password_file /etc/vigil/mysql.pw
    }
}
vrrp_notify ops_webhook {
    plugin webhook
    params {
        url http://127.0.0.1:9000/vigil
    }
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk_mysql
    }
    notify_action ops_webhook
}
`

// helpCmd is `vigil help [TOPIC] [--man 8|5]`. fs is the daemon's flag set, registered by
// run(): the manual reads the flags from it.
func helpCmd(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	hfs := flagSet("vigil help", stderr)
	man := hfs.String("man", "", "print the man page of this section (8: vigil, 5: vigil.conf) as roff")
	// Flags may follow the topic: vigil help config --man 5 reads as well as the other order.
	var topics []string
	for len(args) > 0 {
		if err := hfs.Parse(args); err != nil {
			return exitUsage
		}
		if hfs.NArg() == 0 {
			break
		}
		topics = append(topics, hfs.Arg(0))
		args = hfs.Args()[1:]
	}
	pages := []*manual.Page{daemonPage(fs), confPage()}
	if *man != "" {
		for _, p := range pages {
			if p.Section == *man {
				if err := manual.Roff(stdout, p, manDate()); err != nil {
					fmt.Fprintf(stderr, "vigil help: %v\n", err)
					return exitInternal
				}
				return exitOK
			}
		}
		fmt.Fprintf(stderr, "vigil help: --man %q: there are man pages in sections 8 (vigil) and 5 (vigil.conf)\n", *man)
		return exitUsage
	}
	if len(topics) > 1 {
		fmt.Fprintf(stderr, "vigil help: one topic at a time, not %q\n", strings.Join(topics, " "))
		return exitUsage
	}
	if len(topics) == 0 {
		writeOverview(stdout, pages)
		return exitOK
	}
	topic := topics[0]
	switch topic {
	case "all":
		manual.Text(stdout, pages[0].Sections...)
		return exitOK
	case "conf", "vigil.conf":
		manual.Text(stdout, pages[1].Sections...)
		return exitOK
	}
	for _, c := range subcommands() {
		if c.name == topic {
			cmds, _ := pages[0].Topic("commands")
			for _, b := range cmds.Blocks {
				if s, ok := b.(manual.Sub); ok && strings.HasPrefix(s.Title, "vigil "+topic+" ") {
					var out strings.Builder
					manual.TextBlock(&out, s, "")
					io.WriteString(stdout, out.String())
				}
			}
			return exitOK
		}
	}
	for _, p := range pages {
		if s, ok := p.Topic(topic); ok {
			if topic == "config" { // the page's description leads into the whole page
				manual.Text(stdout, p.Sections...)
			} else {
				manual.Text(stdout, s)
			}
			return exitOK
		}
	}
	fmt.Fprintf(stderr, "vigil help: no topic %q; the topics are: %s\n", topic, strings.Join(helpTopics(pages), ", "))
	return exitUsage
}

func helpTopics(pages []*manual.Page) []string {
	topics := []string{"all"}
	for _, p := range pages {
		topics = append(topics, p.Topics()...)
	}
	for _, c := range subcommands() {
		topics = append(topics, c.name)
	}
	return topics
}

// writeUsage is `vigil -h` (and what follows a wrong flag): the overview on stderr.
func writeUsage(w io.Writer, fs *flag.FlagSet) {
	writeOverview(w, []*manual.Page{daemonPage(fs), confPage()})
}

// writeOverview is `vigil help` and `vigil -h`: the synopsis, the flags and the topics.
func writeOverview(w io.Writer, pages []*manual.Page) {
	var secs []manual.Section
	for _, t := range []string{"usage", "flags"} {
		if s, ok := pages[0].Topic(t); ok {
			secs = append(secs, s)
		}
	}
	secs = append(secs, manual.Section{Title: "MORE", Blocks: []manual.Block{
		manual.Para("vigil help TOPIC prints one part of the manual; the topics are: " + strings.Join(helpTopics(pages), ", ") + ". The man pages are vigil(8) and vigil.conf(5)."),
	}})
	for i := range secs {
		secs[i].Title = strings.ToUpper(secs[i].Title)
	}
	manual.Text(w, secs...)
}

// manDate is the date in a man page's header: SOURCE_DATE_EPOCH's when it is set (a
// reproducible build), else none.
func manDate() string {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC().Format("2006-01-02")
		}
	}
	return ""
}
