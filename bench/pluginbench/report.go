package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/proc"
)

// The block of BENCHMARKS.md this program owns. It sits inside the notes block that
// bench/vrrpbench keeps when it rewrites the file, so the two programs never overwrite each
// other's results.
const (
	blockBegin = "<!-- pluginbench: this block is written by bench/pluginbench -->"
	blockEnd   = "<!-- end of pluginbench -->"
)

type report struct {
	o                     options
	cases                 []kase
	results               [][]result
	ka                    kaRun
	took                  time.Duration
	date                  time.Time
	loadBefore, loadAfter string
}

// stat is the median and range of one field over the runs of a case.
type stat struct{ med, lo, hi time.Duration }

func (r *report) stat(c int, field func(result) time.Duration) stat {
	return statOf(r.results[c], field)
}

// statOf is the median and range of field over runs.
func statOf[R any](runs []R, field func(R) time.Duration) stat {
	var v []time.Duration
	for _, res := range runs {
		v = append(v, field(res))
	}
	slices.Sort(v)
	return stat{med: v[len(v)/2], lo: v[0], hi: v[len(v)-1]}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func (s stat) String() string {
	return fmt.Sprintf("%s (%s–%s)", fmtDur(s.med), fmtDur(s.lo), fmtDur(s.hi))
}

func (r *report) find(name, load string) int {
	for i, k := range r.cases {
		if k.name == name && k.load == load {
			return i
		}
	}
	return -1
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cpu := func(x result) time.Duration { return x.cpuPerProbe }
	host := func(x result) time.Duration { return x.hostPerProbe }
	other := func(x result) time.Duration { return x.cpuPerProbe - x.hostPerProbe }

	w("### Plugin probe vs forked script\n\n")
	w("What one health-check probe costs through vigil's plugin boundary, beside forking a script per probe\n")
	w("(keepalived's way, and what vigil-check-exec does for each vrrp_script probe). Written by `bench/pluginbench`:\n\n")
	w("```sh\ngo run ./bench/pluginbench %s   # as root for the keepalived case; about %s\n```\n\n", strings.Join(os.Args[1:], " "), r.took.Round(time.Second))
	w("- date: %s UTC (run took %s)\n", r.date.UTC().Format("2006-01-02 15:04"), r.took.Round(time.Second))
	w("- machine: nproc %s, kernel %s, CPU %s; load average %s before, %s after\n", cmdLine("nproc"), cmdLine("uname", "-r"), cpuModel(), r.loadBefore, r.loadAfter)
	w("- vigil %s, %s; %d runs of every case in rotating order, %d plugin probes and %d script probes per case and run;\n  the machine's other load (another benchmark may share its 2 cores) shows in the load average\n",
		cmdLine("git", "rev-parse", "--short", "HEAD"), runtime.Version(), r.o.runs, r.o.probes, r.o.forks)
	w("- plugin: a trivial check built with the SDK (answers OK, no I/O), probed through core/plugin's Host and\n")
	w("  Prober as the check scheduler does (protocol 3: the probe lane, protobuf frames under TLS on two unix connections, one per direction, beside the gRPC connection);\n")
	w("  scripts: core/procrun from this process, as vigil-check-exec runs a vrrp_script (own process group, deadline,\n")
	w("  leftovers killed, output captured), without the plugin boundary in front of it. Every probe has a 5 s deadline.\n")
	w("- CPU per probe: user+system time of this process (getrusage) + of the reaped scripts (RUSAGE_CHILDREN)\n")
	w("  + of the plugin process (/proc/PID/task/*/schedstat, nanoseconds), over the measured probes, divided by\n")
	w("  their number. \"host\" is this process alone (Go's os/exec for the scripts; keepalived forks from C, which\n")
	w("  costs its parent less), \"child\" the script processes or the plugin. This process runs with GOMAXPROCS=%d,\n", runtime.GOMAXPROCS(0))
	w("  as vigil's check process does (1 unless set). Latency is per probe, p50 and p99\n")
	w("  of each run. Medians over the runs, with min–max in parentheses.\n")
	if r.o.checks > 0 {
		w("- \"%d checks every %s\": that many checks probing on their interval through core/checksched's scheduler for\n", r.o.checks, r.o.interval)
		w("  %s (all CPU of the window, divided by the probes that ran in it). \"spread\": each check starts at a\n", r.o.window)
		w("  random point of the interval (vrrp_scripts); \"aligned\": the checks share one grid, as vigil's plugin\n")
		w("  checks with the same interval do, so their probes reach the plugin together.\n")
	}
	if r.ka.skipped != "" {
		w("- keepalived itself: not measured in this run (%s)\n", r.ka.skipped)
	} else {
		w("- keepalived itself (%s): %d vrrp_scripts with interval 1 (keepalived takes whole seconds), tracked by one\n", r.ka.version, r.o.kaScripts)
		w("  instance, in a one-node namespace lab, %s windows; the same script plus `echo x >> FILE` to count the probes.\n", r.o.kaWindow)
		w("  CPU: keepalived's process tree (utime+stime, the scripts through the cutime+cstime of the process that\n")
		w("  reaped them, in %s clock ticks) minus the same keepalived without scripts over an equal window, divided by\n", fmtDur(proc.Tick()))
		w("  the probes counted; \"host\" is keepalived's own processes. keepalived does not report a probe's latency.\n")
	}
	w("\n")
	w("| case | load | CPU/probe (host+child) | host | child | wall/probe | p50 | p99 |\n")
	w("|---|---|---:|---:|---:|---:|---:|---:|\n")
	for i, k := range r.cases {
		wall := fmtDur(r.stat(i, func(x result) time.Duration { return x.wallPerProbe }).med)
		if k.sched != nil {
			wall = "—" // set by the interval, not by the probe
		}
		w("| %s | %s | **%s** | %s | %s | %s | %s | %s |\n", k.name, k.load,
			r.stat(i, cpu), fmtDur(r.stat(i, host).med), fmtDur(r.stat(i, other).med), wall,
			fmtDur(r.stat(i, func(x result) time.Duration { return x.p50 }).med),
			fmtDur(r.stat(i, func(x result) time.Duration { return x.p99 }).med))
	}
	var kaCPU time.Duration
	if len(r.ka.results) > 0 {
		all := statOf(r.ka.results, func(x kaResult) time.Duration { return x.cpuPerProbe })
		own := statOf(r.ka.results, func(x kaResult) time.Duration { return x.ownPerProbe }).med
		kaCPU = all.med
		w("| keepalived itself, vrrp_script `#!/bin/sh` | %d scripts every 1s | **%s** | %s | %s | — | — | — |\n",
			r.o.kaScripts, all, fmtDur(own), fmtDur(all.med-own))
	}
	w("\nRatios of CPU per probe, forked script over plugin probe (medians; the target is at least 20×")
	if kaCPU > 0 {
		w(", met when it holds against both the `#!/bin/sh` script and keepalived itself")
	}
	w("):\n\n")
	kaHead, kaRule := "", ""
	if kaCPU > 0 {
		kaHead, kaRule = " vs keepalived itself, all CPU |", "---:|"
	}
	w("| load | vs `#!/bin/sh` script, all CPU | vs `#!/bin/sh` script, the script's own CPU only | vs `/bin/true`, all CPU |%s 20× met? |\n", kaHead)
	w("|---|---:|---:|---:|%s---|\n", kaRule)
	for p, k := range r.cases {
		if k.name != casePlugin {
			continue
		}
		vs := k.vs
		if vs == "" {
			vs = k.load
		}
		sh, tr := r.find(caseSh, vs), r.find(caseTrue, vs)
		if sh < 0 || tr < 0 {
			continue
		}
		pc := r.stat(p, cpu).med
		ratio := func(x time.Duration) float64 { return float64(x) / float64(pc) }
		shAll := ratio(r.stat(sh, cpu).med)
		worst, kaCol := shAll, ""
		if kaCPU > 0 {
			worst = min(worst, ratio(kaCPU))
			kaCol = fmt.Sprintf(" %.1f× |", ratio(kaCPU))
		}
		met := "no"
		if worst >= 20 {
			met = "yes"
		}
		load := k.load
		if k.vs != "" {
			load += " (scripts: " + strings.TrimPrefix(k.vs, strings.SplitN(k.vs, ",", 2)[0]+", ") + ")"
		}
		w("| %s | %.1f× | %.1f× | %.1f× |%s %s |\n", load, shAll, ratio(r.stat(sh, other).med), ratio(r.stat(tr, cpu).med), kaCol, met)
	}
	return b.String()
}

// writeBlock puts md between the pluginbench markers of path.
func writeBlock(path, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i := strings.Index(s, blockBegin)
	j := strings.Index(s, blockEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q ... %q block: add the two lines inside its notes block (which bench/vrrpbench keeps) and run again", path, blockBegin, blockEnd)
	}
	s = s[:i+len(blockBegin)] + "\n" + md + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

func cmdLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
