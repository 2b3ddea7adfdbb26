package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/daemon"
)

// Reloads of the master's configuration file: garbage written over it, and a burst of valid
// reloads. The nodes track a vrrp_script (procConf), so that a reload has a check to keep.

func init() {
	scenarios.add(
		&Scenario{
			Name: "master-config-truncated",
			Doc: `The master's keepalived.conf is cut short in the middle of its vrrp_instance (a half-written
				file), then the master is sent SIGHUP, and vigil is also asked with vigil reload (its file
				watcher tries on its own too). vigil must refuse the file with its place and reason, keep
				running the old configuration (same children) and move nothing: zero transitions
				anywhere, the VIP stays on n1; then the good file back and vigil reload: applied, still nothing
				moves. keepalived's row says what it does on the same file and SIGHUP.`,
			KeepalivedBreaks: `on SIGHUP it reads the file, finds the instance without a VIP, and exits, leaving its
				VIP on n1; n2 takes over, and both hold the VIP from then on.`,
			Short: true,
			Run:   configGarbage("truncated"),
		},
		&Scenario{
			Name: "master-config-garbage",
			Doc:  `master-config-truncated with 4 KiB of random bytes written over the master's keepalived.conf.`,
			KeepalivedBreaks: `on SIGHUP it reads the garbage as unknown keywords, keeps running with no instance,
				and n2 takes over (n1 goes FAULT).`,
			Run: configGarbage("binary"),
		},
		&Scenario{
			Name: "master-group-sighup",
			Doc: `SIGHUP to every process of the master's daemon at once, as killall -HUP or pkill -HUP
				(how many reload keepalived) or a terminal hangup sends it: the main process reloads the
				unchanged file. Must hold: zero transitions anywhere, the VIP stays on n1, and vigil's
				children carry on (before the fix they died of it, and n2 took over).`,
			Short: true,
			Run:   runGroupSighup,
		},
		&Scenario{
			Name: "master-reload-100",
			Doc: `100 valid reloads of the master in 10 s: its keepalived.conf is rewritten (a new file
				renamed over it) with a new comment each time, every other time also with the tracked
				vrrp_script's timeout changed (2 s, 3 s: vigil restarts that check, keepalived reloads
				everything anyway), and the master gets SIGHUP, every 100 ms. Must hold: zero transitions
				anywhere, the client sees no failed request, n1 the one master; vigil applies every
				reload it runs.`,
			Short: true,
			Run:   runReload100,
		},
	)
}

// badConfig is good spoiled as kind says.
func badConfig(kind string, good []byte) ([]byte, error) {
	switch kind {
	case "truncated":
		i := strings.Index(string(good), "virtual_ipaddress")
		if i < 0 {
			return nil, errors.New("no virtual_ipaddress to cut the configuration at")
		}
		return good[:i], nil
	case "binary":
		// The same bytes every run.
		b := make([]byte, 4096)
		r := rand.NewChaCha8([32]byte{'v', 'i', 'g', 'i', 'l'})
		r.Read(b)
		return b, nil
	}
	return nil, fmt.Errorf("unknown kind of bad configuration %q", kind)
}

// vigilReload runs `vigil reload` against d's control socket.
func vigilReload(ctx context.Context, d *daemon.Daemon) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, d.Impl.Bin, "reload", "-control", filepath.Join(d.Dir, "vigil.sock")).CombinedOutput()
	return string(out), err
}

// countOf counts the lines of d's log that hold every one of subs.
func countOf(d *daemon.Daemon, subs ...string) int {
	n := 0
lines:
	for line := range strings.Lines(d.Proc.Output()) {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue lines
			}
		}
		n++
	}
	return n
}

// kaStamp is the time keepalived -l puts before each line.
var kaStamp = regexp.MustCompile(`(?m)^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}: `)

// firstLines are the first n lines of log that hold sub, joined by " / ".
func firstLines(log string, sub string, n int) string {
	var out []string
	for line := range strings.Lines(log) {
		if strings.Contains(line, sub) && len(out) < n {
			out = append(out, printable(strings.TrimSpace(line), 100))
		}
	}
	return strings.Join(out, " / ")
}

func configGarbage(kind string) func(context.Context, *Env) (*Result, error) {
	return func(ctx context.Context, e *Env) (*Result, error) {
		if err := e.StartCluster(ctx, procConf(3)); err != nil {
			return nil, err
		}
		d := e.Daemons[0]
		vigil := e.Impl.Name == "vigil"
		good, err := os.ReadFile(d.Conf)
		if err != nil {
			return nil, err
		}
		bad, err := badConfig(kind, good)
		if err != nil {
			return nil, err
		}
		kids := d.Children()
		logBefore := len(d.Proc.Output())
		w := watchHolders(ctx, e, 0)
		fault := time.Now()
		// Written in place, as a careless editor, a full disk or a broken deployment tool does.
		if err := os.WriteFile(d.Conf, bad, 0o644); err != nil {
			return nil, err
		}
		if err := d.Proc.Signal(syscall.SIGHUP); err != nil {
			return nil, fmt.Errorf("SIGHUP: %w", err)
		}
		var fails, notes []string
		if vigil {
			if err := e.waitFor(ctx, 30*time.Second, func() bool {
				return countOf(d, "reload refused", "trigger=SIGHUP") > 0
			}); err != nil {
				fails = append(fails, "no refused SIGHUP reload in vigil's log within 30 s")
			}
			out, err := vigilReload(ctx, d)
			var ee *exec.ExitError
			switch {
			case !errors.As(err, &ee):
				fails = append(fails, fmt.Sprintf("vigil reload did not fail: %v: %s", err, oneLine(out)))
			case !strings.Contains(out, "REFUSED") || !strings.Contains(out, d.Conf+":"):
				fails = append(fails, "vigil reload does not say it refused the file, and where: "+oneLine(out))
			default:
				// Its first lines: the verdict, then the first error with its place.
				lines := strings.SplitN(strings.ReplaceAll(out, d.Dir+"/", ""), "\n", 3)
				notes = append(notes, fmt.Sprintf("vigil reload (exit %d) says: %s", ee.ExitCode(), oneLine(strings.Join(lines[:min(2, len(lines))], " / "))))
			}
		} else {
			// keepalived logs "Reloading" as it starts; give it time to finish whatever it does.
			if err := e.waitFor(ctx, 30*time.Second, func() bool { return strings.Contains(d.Proc.Output()[logBefore:], "Reloading") }); err != nil {
				fails = append(fails, "keepalived did not log a reload within 30 s")
			}
			if err := sleepCtx(ctx, 3*time.Second); err != nil {
				return nil, err
			}
		}
		r, err := e.Measure(ctx, fault, 0, 0, others(e)...)
		if err != nil {
			return r, err
		}
		for _, f := range fails {
			r.Fail("%s", f)
		}
		r.Note("%s", w.end(e))
		log := d.Proc.Output()[logBefore:]
		if vigil {
			r.Check(strings.Contains(log, "reload refused: "), "vigil did not log the refused reload")
			r.Check(fmt.Sprint(d.Children()) == fmt.Sprint(kids), "children changed: %v, then %v", kids, d.Children())
			r.Check(holderIs(ctx, e, 0), "n1 does not hold the VIP alone at the end")
			// The good file back: applied, and still nothing moves.
			if err := os.WriteFile(d.Conf, good, 0o644); err != nil {
				return r, err
			}
			if out, err := vigilReload(ctx, d); err != nil {
				r.Fail("the good file back: vigil reload: %v: %s", err, oneLine(out))
			}
			moved := 0
			for i := range e.Nodes {
				moved += len(e.Transitions(i, fault))
			}
			r.Check(moved == 0, "%d transitions after the good file was reloaded", moved)
		} else {
			r.Note("keepalived %s afterwards; its log after the SIGHUP: %s", map[bool]string{true: "had exited", false: "still ran"}[d.Proc.Exited()],
				firstLines(strings.ReplaceAll(kaStamp.ReplaceAllString(log, ""), d.Dir+"/", ""), "", 8))
		}
		r.Notes = append(r.Notes, notes...)
		r.Note("transitions since the fault: %s", allStates(e, fault))
		return r, nil
	}
}

// reloads is the number of reloads of master-reload-100, and every is their period.
const (
	reloads = 100
	every   = 100 * time.Millisecond
)

func runReload100(ctx context.Context, e *Env) (*Result, error) {
	if err := e.StartCluster(ctx, procConf(3)); err != nil {
		return nil, err
	}
	d := e.Daemons[0]
	good, err := os.ReadFile(d.Conf)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(good), "timeout 2") {
		return nil, errors.New("the configuration has no vrrp_script timeout to change")
	}
	logBefore := len(d.Proc.Output())
	kids := d.Children()
	w := watchHolders(ctx, e, 0)
	fault := time.Now()
	tmp := d.Conf + ".new"
	for i := range reloads {
		text := fmt.Sprintf("%s# reload %d\n", good, i)
		if i%2 == 0 {
			text = strings.Replace(text, "timeout 2", "timeout 3", 1)
		}
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, d.Conf); err != nil {
			return nil, err
		}
		if err := d.Proc.Signal(syscall.SIGHUP); err != nil {
			return nil, fmt.Errorf("SIGHUP %d: %w", i+1, err)
		}
		if err := sleepCtx(ctx, time.Until(fault.Add(time.Duration(i+1)*every))); err != nil {
			return nil, err
		}
	}
	sent := time.Since(fault)
	r, err := e.Measure(ctx, fault, 0, 0, others(e)...)
	if err != nil {
		return r, err
	}
	r.Note("%s", w.end(e))
	r.Check(r.Outage == 0, "the client saw an outage of %s", dur(r.Outage))
	r.Check(holderIs(ctx, e, 0), "n1 does not hold the VIP alone at the end")
	log := d.Proc.Output()[logBefore:]
	if e.Impl.Name == "vigil" {
		// SIGHUPs that arrive during a reload are merged; the file watcher adds its own.
		applied := strings.Count(log, "vigil: reloaded: role=core trigger=")
		r.Check(!strings.Contains(log, "reload refused") && !strings.Contains(log, "applied in part"),
			"a reload failed: %s", firstLines(log, "reload", 2))
		r.Check(fmt.Sprint(d.Children()) == fmt.Sprint(kids), "children changed: %v, then %v", kids, d.Children())
		r.Note("%d SIGHUPs in %s; %d reloads applied (%d by SIGHUP, %d by the file watcher), %d of them restarting the changed check",
			reloads, dur(sent), applied, strings.Count(log, "vigil: reloaded: role=core trigger=SIGHUP"),
			strings.Count(log, "vigil: reloaded: role=core trigger=\"file change\""), strings.Count(log, `checks_restarted=["chk"]`))
	} else {
		r.Note("%d SIGHUPs in %s; keepalived logged %d reloads", reloads, dur(sent), strings.Count(log, "Reloading ..."))
	}
	return r, nil
}

// printable is s with every byte outside printable ASCII shown as '?' (keepalived echoes the
// garbage it read), cut to n bytes.
func printable(s string, n int) string {
	b := []byte(s)
	for i, c := range b {
		if c < ' ' || c > '~' {
			b[i] = '?'
		}
	}
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

func runGroupSighup(ctx context.Context, e *Env) (*Result, error) {
	if err := e.StartCluster(ctx, procConf(3)); err != nil {
		return nil, err
	}
	d := e.Daemons[0]
	vigil := e.Impl.Name == "vigil"
	kids := d.Children()
	logBefore := len(d.Proc.Output())
	w := watchHolders(ctx, e, 0)
	fault := time.Now()
	if err := d.Signal(syscall.SIGHUP); err != nil {
		return nil, err
	}
	var fails []string
	if vigil {
		if err := e.waitFor(ctx, 30*time.Second, func() bool { return countOf(d, "vigil: reloaded: role=core trigger=SIGHUP") > 0 }); err != nil {
			fails = append(fails, "vigil did not log the reload within 30 s")
		}
	} else {
		if err := e.waitFor(ctx, 30*time.Second, func() bool { return strings.Contains(d.Proc.Output()[logBefore:], "Reloading") }); err != nil {
			fails = append(fails, "keepalived did not log a reload within 30 s")
		}
	}
	r, err := e.Measure(ctx, fault, 0, 0, others(e)...)
	if err != nil {
		return r, err
	}
	for _, f := range fails {
		r.Fail("%s", f)
	}
	r.Note("%s", w.end(e))
	r.Check(holderIs(ctx, e, 0), "n1 does not hold the VIP alone at the end")
	log := d.Proc.Output()[logBefore:]
	if vigil {
		r.Check(fmt.Sprint(d.Children()) == fmt.Sprint(kids), "children changed: %v, then %v", kids, d.Children())
		r.Check(!strings.Contains(log, "applied in part"), "the reload failed in a child: %s", firstLines(log, "applied in part", 1))
	} else {
		r.Note("keepalived logged %d reloads; children %v, then %v", strings.Count(log, "Reloading"), kids, d.Children())
	}
	r.Note("transitions since the fault: %s", allStates(e, fault))
	return r, nil
}
