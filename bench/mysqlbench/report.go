package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"time"
)

type report struct {
	o                     options
	date                  time.Time
	took                  time.Duration
	loadBefore, loadAfter string
	vigilRev, goVersion   string
	mariadb, client       string
	keepalived            string
	leftovers             string

	cpuServer      string // address of the CPU runs' server
	script         string // the check script's text
	cpuCases       []cpuCase
	cpuResults     [][]cpuResult
	idle           []idleResult
	pluginSessions int

	fo       []foResult
	foFailed map[string]int
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("### MySQL check: vigil's plugin vs keepalived's script\n\n")
	w("What checking a MySQL server costs, and how fast the VIP leaves a node whose mariadbd died: vigil's\n")
	w("mysql check plugin beside keepalived's usual `vrrp_script` (a shell script running the `mysql` client\n")
	w("per probe), in one run. Written by `bench/mysqlbench`:\n\n")
	w("```sh\ngo run ./bench/mysqlbench %s   # as root; about %s\n```\n\n", strings.Join(os.Args[1:], " "), r.took.Round(time.Second))
	w("- date: %s UTC (run took %s)\n", r.date.UTC().Format("2006-01-02 15:04"), r.took.Round(time.Second))
	w("- machine: nproc %s, kernel %s, CPU %s; load average %s before, %s after (the 2 cores are\n  shared with other work)\n", cmdLine("nproc"), cmdLine("uname", "-r"), cpuModel(), r.loadBefore, r.loadAfter)
	w("- vigil %s (%s, plugin built with CGO_ENABLED=0); %s; %s; client: %s\n", r.vigilRev, r.goVersion, r.keepalived, r.mariadb, r.client)
	if len(r.foFailed) > 0 {
		var keys []string
		for k, n := range r.foFailed {
			keys = append(keys, fmt.Sprintf("%s: %d", k, n))
		}
		sort.Strings(keys)
		w("- **failed failover trials** (not in the numbers, see the run's log): %s\n", strings.Join(keys, ", "))
	}
	if r.leftovers != "" {
		w("- **left behind after the run**: %s\n", r.leftovers)
	} else {
		w("- left behind after the run: nothing (lab namespaces and processes started from the work directory checked)\n")
	}
	if len(r.cpuCases) > 0 {
		r.cpuMarkdown(w)
	}
	if len(r.fo) > 0 || len(r.foFailed) > 0 {
		r.foMarkdown(w)
	}
	return b.String()
}

// idleServerRate is mariadbd's CPU per second without probes (median over the runs).
func (r *report) idleServerRate() float64 {
	var v []float64
	for _, i := range r.idle {
		if i.elapsed > 0 {
			v = append(v, float64(i.server)/i.elapsed.Seconds())
		}
	}
	return medianF(v)
}

// serverNet is the server's CPU per probe of a run without what it burns idle.
func (r *report) serverNet(x cpuResult) time.Duration {
	d := x.server - time.Duration(r.idleServerRate()*x.elapsed.Seconds())
	return x.per(max(d, 0))
}

type stat struct{ med, lo, hi time.Duration }

func (r *report) stat(c int, f func(cpuResult) time.Duration) stat {
	var v []time.Duration
	for _, x := range r.cpuResults[c] {
		v = append(v, f(x))
	}
	if len(v) == 0 {
		return stat{}
	}
	slices.Sort(v)
	return stat{med: medianD(v), lo: v[0], hi: v[len(v)-1]}
}

func (s stat) String() string {
	return fmt.Sprintf("%s (%s–%s)", fmtDur(s.med), fmtDur(s.lo), fmtDur(s.hi))
}

func (r *report) cpuMarkdown(w func(string, ...any)) {
	o := r.o
	prober := func(x cpuResult) time.Duration { return x.per(x.host + x.child) }
	host := func(x cpuResult) time.Duration { return x.per(x.host) }
	child := func(x cpuResult) time.Duration { return x.per(x.child) }
	server := func(x cpuResult) time.Duration { return x.per(x.server) }
	net := r.serverNet
	total := func(x cpuResult) time.Duration { return prober(x) + net(x) }
	w("\n#### CPU per probe\n\n")
	w("- server: a throwaway MariaDB (internal/lab/mariadb) on %s; account `%s` with a password, no privileges;\n", r.cpuServer, monitorUser)
	w("  query `%s`\n", probeQuery)
	w("- vigil: `plugins/vigil-check-mysql` with params address, user, password, query, configured and probed\n")
	w("  through core/plugin's Host and Prober as vigil's check process does (gRPC with mutual TLS on a unix\n")
	w("  socket); the plugin keeps one connection between probes (%d session of `%s` on the server at the end)\n", r.pluginSessions, monitorUser)
	w("- keepalived's way: this script, run per probe from this process by core/procrun, as vigil-check-exec runs a\n")
	w("  vrrp_script (fork+exec, own process group, deadline, leftovers killed; the plugin boundary in front of it\n")
	w("  not included); each probe starts a shell and the client, which connects and logs in:\n\n")
	w("  ```sh\n")
	for _, line := range strings.Split(strings.TrimSpace(r.script), "\n") {
		w("  %s\n", line)
	}
	w("  ```\n\n")
	w("- prober CPU = user+system time of this process (getrusage RUSAGE_SELF: the host side, Go's os/exec for\n")
	w("  the scripts; keepalived forks from C, which costs its parent less) + \"child\": the reaped script\n")
	w("  processes, shell and client (RUSAGE_CHILDREN), or the plugin process (/proc/PID/task/*/schedstat).\n")
	w("  Server CPU = mariadbd's threads (/proc/PID/task/*/schedstat; /proc/PID/stat ticks when a thread ended\n")
	w("  in between), minus what it burns without probes (%.2f ms/s here, the median of %d idle windows of %s),\n", r.idleServerRate()/1e6, len(r.idle), o.idle)
	w("  divided by the probes. Every probe has a 1 s deadline.\n")
	w("- loads: %d plugin probes or %d script probes back to back; one check every 1 s for %s and every 0.1 s\n", o.probes, o.forks, o.window1)
	w("  for %s through core/checksched's scheduler (the plugin check aligned on vigil's grid, the script at a random\n", o.window10)
	w("  phase), all CPU of the window divided by the probes that ran in it, so the plugin's idle cost\n")
	w("  between probes counts. %d runs of every case in rotating order; medians over the runs with min–max.\n\n", o.runs)
	w("| way | load | probes/run | prober CPU/probe | host | child | server CPU/probe | server raw | prober+server | p50 latency |\n")
	w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, k := range r.cpuCases {
		if len(r.cpuResults[i]) == 0 {
			continue
		}
		probes := r.stat(i, func(x cpuResult) time.Duration { return time.Duration(x.probes) }).med
		p50 := r.stat(i, func(x cpuResult) time.Duration { return median(x.lat) }).med
		w("| %s | %s | %d | **%s** | %s | %s | **%s** | %s | %s | %s |\n", k.way, k.load, int(probes),
			r.stat(i, prober), fmtDur(r.stat(i, host).med), fmtDur(r.stat(i, child).med),
			r.stat(i, net), fmtDur(r.stat(i, server).med), fmtDur(r.stat(i, total).med), fmtDur(p50))
	}
	var idlePlug []float64
	for _, i := range r.idle {
		idlePlug = append(idlePlug, msPerSec(i.plugin, i.elapsed))
	}
	w("\nWithout probes the plugin process uses %.3f ms/s (median of the idle windows).\n\n", medianF(idlePlug))
	w("Ratios, keepalived's way over vigil's (medians):\n\n")
	w("| load | prober CPU | prober CPU, keepalived's way counting only the shell + client | server CPU | prober+server | CPU of one core at this rate (prober+server), vigil / keepalived's way |\n")
	w("|---|---:|---:|---:|---:|---|\n")
	for p, k := range r.cpuCases {
		if k.way != wayPlugin {
			continue
		}
		s := -1
		for i, c := range r.cpuCases {
			if c.way == wayScript && c.load == k.load {
				s = i
			}
		}
		if s < 0 || len(r.cpuResults[p]) == 0 || len(r.cpuResults[s]) == 0 {
			continue
		}
		// vigil's figure by fp over keepalived's way's by fs.
		ratioOf := func(fp, fs func(cpuResult) time.Duration) string {
			a, b := r.stat(p, fp).med, r.stat(s, fs).med
			if a <= 0 {
				return "–"
			}
			return fmt.Sprintf("%.1f×", float64(b)/float64(a))
		}
		core := "—"
		if k.interval > 0 {
			pct := func(c int) float64 {
				return float64(r.stat(c, total).med) / float64(k.interval) * 100
			}
			core = fmt.Sprintf("%.3f%% / %.2f%%", pct(p), pct(s))
		}
		w("| %s | %s | %s | %s | %s | %s |\n", k.load, ratioOf(prober, prober), ratioOf(prober, child), ratioOf(net, net), ratioOf(total, total), core)
	}
}

func (r *report) foMarkdown(w func(string, ...any)) {
	o := r.o
	w("\n#### Failover: mariadbd killed on the master → the VIP answering on the peer\n\n")
	w("- lab: internal/lab namespaces, n1 (192.0.2.11, priority 150) and n2 (192.0.2.12, priority 100) each with their\n")
	w("  own MariaDB (internal/lab/mariadb: bind 0.0.0.0 in the node, server_id 1/2, binary log; no replication,\n")
	w("  which this timing does not need) and the same VRRPv3 instance: VRID %d, `state BACKUP`, advert_int %s,\n", foVRID, seconds(o.advert))
	w("  VIP %s/24, `track_script { chk }`; n3 is the client\n", foVIP)
	w("- vigil: `vrrp_check chk { plugin mysql; interval I; timeout min(I, 1); fall %d; rise 2; weight 0; params {\n", o.fall)
	w("  address 127.0.0.1:3306; user; password; query \"%s\" } }`\n", probeQuery)
	w("- keepalived: `vrrp_script chk { script \"<the script above, port 3306>\"; interval I; timeout 1; fall %d;\n", o.fall)
	w("  rise 2; weight 0 }` with `script_user root` and `enable_script_security`; `keepalived -n -l -G -P`.\n")
	w("  keepalived's vrrp_script interval is whole seconds (1 or more; `interval 0.1` is refused), so its\n")
	w("  0.1 s row cannot exist: compare vigil at 0.1 s with keepalived at its shortest, 1 s\n")
	w("- trial: both daemons start; once n1 holds the VIP alone, after 3 intervals + 1 s + a random part of one\n")
	w("  interval (so that the kill lands anywhere in the check's schedule), mariadbd on n1 gets SIGKILL and\n")
	w("  the client on n3 opens a new connection to the VIP and runs `SELECT @@server_id` every %s (connect\n", clientEvery)
	w("  limit 50 ms: a SYN that goes to n1's MAC during the handover is dropped, and a new one is sent rather\n")
	w("  than waiting for the kernel's 1 s retransmission). Time = from the SIGKILL to the first answer from\n")
	w("  server 2 (n2). weight 0 puts n1's instance in FAULT after fall failed probes; it resigns (priority 0\n")
	w("  advert) and n2 takes over after its skew time (%.0f ms). Expected: (fall − 1) × I + U(0, I) + skew +\n", ms(time.Duration(256-prioLow)*o.advert/256))
	w("  the probe's own time to fail + GARP + the client's %s step. Between trials both daemons stop\n", clientEvery)
	w("  (SIGTERM, then SIGKILL to their process groups), n1's mariadbd restarts on its data (crash recovery).\n")
	w("  %d trials per implementation and interval, the implementations alternating.\n\n", o.trials)
	w("| implementation | check interval | fall | trials | median | min | max | detection alone, (fall − 1) × I … fall × I |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---|\n")
	med := map[string]float64{}
	for _, iv := range o.intervals {
		for _, name := range []string{"vigil", "keepalived"} {
			var v []float64
			for _, x := range r.fo {
				if x.kind == name && x.interval == iv {
					v = append(v, ms(x.took))
				}
			}
			if len(v) == 0 {
				if name == "keepalived" && (iv < time.Second || iv%time.Second != 0) {
					w("| keepalived | %s s | %d | – | not possible | | | vrrp_script interval is whole seconds |\n", seconds(iv), o.fall)
				}
				continue
			}
			slices.Sort(v)
			m := medianF(v)
			med[fmt.Sprintf("%s/%s", name, iv)] = m
			w("| %s | %s s | %d | %d | **%.0f ms** | %.0f ms | %.0f ms | %.0f … %.0f ms |\n", name, seconds(iv), o.fall, len(v), m, v[0], v[len(v)-1],
				ms(time.Duration(o.fall-1)*iv), ms(time.Duration(o.fall)*iv))
		}
	}
	w("\nWhere in its interval the kill lands is random, so at 1 s each trial varies by up to a second; with few\n")
	w("trials a difference of a few hundred milliseconds between the 1 s rows is that phase, not the check.\n\n")
	ka, ok := med["keepalived/"+time.Second.String()]
	if !ok {
		return
	}
	for _, iv := range o.intervals {
		if v, ok := med["vigil/"+iv.String()]; ok {
			w("- vigil at %s s over keepalived at 1 s: %.2f (%+.0f ms)\n", seconds(iv), v/ka, v-ka)
		}
	}
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

func medianD(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianF(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
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

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// vigilRev is the commit vigil was built from, marked when its code had uncommitted changes.
func vigilRev(root string) string {
	rev := cmdLine("git", "-C", root, "rev-parse", "--short", "HEAD")
	if st := cmdLine("git", "-C", root, "status", "--porcelain", "--", "cmd", "core", "plugins", "sdk", "go.mod", "go.sum", ":(exclude)*_test.go"); st != "" && st != "?" {
		rev += " (with uncommitted changes)"
	}
	return rev
}
