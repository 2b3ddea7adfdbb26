package main

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/bench/internal/many"
)

// metric is one row of the results table.
type metric struct {
	key, title, unit string
	format           string // fmt verb for one value
	vals             map[string]*sample
}

type report struct {
	o         options
	env       harness.Machine
	metrics   []*metric
	byKey     map[string]*metric
	failed    map[string]int
	sanity    map[string]*sample // per implementation sanity values, key "impl/what"
	duration  time.Duration
	leftovers string
}

func newReport(o options, env harness.Machine) *report {
	r := &report{o: o, env: env, byKey: map[string]*metric{}, failed: map[string]int{}, sanity: map[string]*sample{}}
	add := func(key, title, unit, format string) {
		m := &metric{key: key, title: title, unit: unit, format: format, vals: map[string]*sample{"vigil": {}, "keepalived": {}}}
		r.metrics = append(r.metrics, m)
		r.byKey[key] = m
	}
	add("detect", "1. Failover detection: (first backup advert − last master advert) − Master_Down_Interval", "ms", "%+.2f")
	add("reply", "2. First backup advert → first echo reply at the client (ping -i 0.002 -D)", "ms", "%.2f")
	add("cpu_master", fmt.Sprintf("3. CPU, master, %d instances, advert_int %s (%% of one core)", o.instances, seconds(o.cpuAdvert)), "%", "%.1f")
	add("cpu_backup", fmt.Sprintf("3. CPU, backup, %d instances, advert_int %s (%% of one core)", o.instances, seconds(o.cpuAdvert)), "%", "%.1f")
	add("rss_master", "4. VmRSS, master (sum over its processes)", "MiB", "%.1f")
	add("rss_backup", "4. VmRSS, backup (sum over its processes)", "MiB", "%.1f")
	add("storm_rate", fmt.Sprintf("5. Both nodes started at once, %d instances, advert_int %s: backup transitions to MASTER per second after %s", o.instances, seconds(o.cpuAdvert), o.stormWarm), "1/s", "%.1f")
	add("storm_cpu_master", "5. Both nodes started at once: CPU, master (% of one core)", "%", "%.1f")
	add("storm_cpu_backup", "5. Both nodes started at once: CPU, backup (% of one core)", "%", "%.1f")
	return r
}

func (r *report) put(key, im string, v float64) { r.byKey[key].vals[im].add(v) }

func (r *report) san(key string, v float64) {
	s := r.sanity[key]
	if s == nil {
		s = &sample{}
		r.sanity[key] = s
	}
	s.add(v)
}

func (r *report) addFailover(im string, f foResult) {
	r.put("detect", im, ms(f.detect))
	r.put("reply", im, ms(f.reply))
	r.san(im+"/gap", ms(f.gap))
	if f.garp >= 0 {
		r.san(im+"/garp", ms(f.garp))
	}
	if f.bridgeRepl >= 0 {
		r.san(im+"/bridge_reply", ms(f.bridgeRepl))
	}
}

func (r *report) addCPU(im string, c cpuResult) {
	r.put("cpu_master", im, c.master.cpuPct)
	r.put("cpu_backup", im, c.backup.cpuPct)
	r.put("rss_master", im, float64(c.master.rssKB)/1024)
	r.put("rss_backup", im, float64(c.backup.rssKB)/1024)
	r.san(im+"/pss_master", float64(c.master.pssKB)/1024)
	r.san(im+"/pss_backup", float64(c.backup.pssKB)/1024)
	r.san(im+"/tx_master", c.master.txPerSec)
	r.san(im+"/tx_backup", c.backup.txPerSec)
	r.san(im+"/procs_master", float64(c.master.procs))
	r.san(im+"/threads_master", float64(c.master.threads))
	r.san(im+"/threads_backup", float64(c.backup.threads))
	r.san(im+"/takeovers_backup", float64(c.backup.takeovers))
	r.san(im+"/drops_backup", float64(c.backup.rawDrops))
	r.san(im+"/drops_master", float64(c.master.rawDrops))
	r.san(im+"/takeovers_master", float64(c.master.takeovers))
	r.san(im+"/vips_master", float64(c.masterVIPs))
	r.san(im+"/vips_backup", float64(c.backupVIPs))
}

func (r *report) addStorm(im string, s many.StormResult) {
	r.put("storm_rate", im, s.BackupPerSec)
	r.put("storm_cpu_master", im, s.Master.CPUPct)
	r.put("storm_cpu_backup", im, s.Backup.CPUPct)
	r.san(im+"/storm_startup", float64(s.Startup))
	r.san(im+"/storm_master_rate", s.MasterPerSec)
	r.san(im+"/storm_quiet", float64(s.QuietSeconds))
	r.san(im+"/storm_vips_master", float64(s.MasterVIPs))
	r.san(im+"/storm_vips_backup", float64(s.BackupVIPs))
	r.san(im+"/storm_tx_master", s.MasterTxPerSec)
	r.san(im+"/storm_drops_backup", float64(s.BackupRawDrops))
	r.san(im+"/storm_rss_master", float64(s.Master.RSSKB)/1024)
	r.san(im+"/storm_rss_backup", float64(s.Backup.RSSKB)/1024)
}

func (m *metric) cell(im string) (median, spread string) {
	s := m.vals[im]
	if s.n() == 0 {
		return "–", "–"
	}
	f := m.format
	median = fmt.Sprintf(f, s.median())
	if s.n() >= 5 {
		spread = fmt.Sprintf("p10 "+f+" / p90 "+f+"; min "+f+" / max "+f, s.quantile(0.1), s.quantile(0.9), s.min(), s.max())
	} else {
		spread = fmt.Sprintf("min "+f+" / max "+f, s.min(), s.max())
	}
	return median, spread
}

func (r *report) table() string {
	var b strings.Builder
	b.WriteString("| Metric | unit | vigil median | vigil spread | keepalived median | keepalived spread | ratio vigil/keepalived | vigil − keepalived | n (vigil/keepalived) |\n")
	b.WriteString("|---|---|---:|---|---:|---|---:|---:|---|\n")
	for _, m := range r.metrics {
		vm, vs := m.cell("vigil")
		km, ks := m.cell("keepalived")
		ratio, diff := "–", "–"
		v, k := m.vals["vigil"], m.vals["keepalived"]
		if v.n() > 0 && k.n() > 0 {
			if k.median() != 0 && !math.IsNaN(k.median()) {
				ratio = fmt.Sprintf("%.2f", v.median()/k.median())
			}
			diff = fmt.Sprintf("%+.2f", v.median()-k.median())
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %d/%d |\n", m.title, m.unit, vm, vs, km, ks, ratio, diff, v.n(), k.n())
	}
	return b.String()
}

func (r *report) sanityTable() string {
	rows := []struct{ key, title, f string }{
		{"gap", "failover: last master advert → first backup advert (ms; Master_Down_Interval is " + fmt.Sprintf("%.2f", ms(masterDownInterval(r.o.advert, foPrioLow))) + ")", "%.2f"},
		{"garp", "failover: first backup advert → first GARP for the VIP on the bridge (ms)", "%+.2f"},
		{"bridge_reply", "failover: first backup advert → first echo reply on the bridge (ms)", "%.2f"},
		{"tx_master", "steady state: frames/s sent by the master's eth0 (expected instances × 100)", "%.0f"},
		{"tx_backup", "steady state: frames/s sent by the backup's eth0 (expected 0)", "%.0f"},
		{"vips_master", "steady state: VIPs on the master after the window", "%.0f"},
		{"vips_backup", "steady state: VIPs on the backup after the window", "%.0f"},
		{"takeovers_backup", "steady state: backup transitions to MASTER during the window", "%.0f"},
		{"drops_backup", "steady state: datagrams dropped by the backup's raw sockets during the window (/proc/net/raw)", "%.0f"},
		{"drops_master", "steady state: datagrams dropped by the master's raw sockets during the window", "%.0f"},
		{"pss_master", "steady state: PSS, master (MiB, shared pages split between processes)", "%.1f"},
		{"pss_backup", "steady state: PSS, backup (MiB)", "%.1f"},
		{"procs_master", "steady state: processes per node", "%.0f"},
		{"threads_master", "steady state: threads, master", "%.0f"},
		{"threads_backup", "steady state: threads, backup", "%.0f"},
		{"storm_startup", "simultaneous start: backup transitions to MASTER during the warm-up", "%.0f"},
		{"storm_master_rate", "simultaneous start: master transitions to MASTER per second during the window", "%.1f"},
		{"storm_quiet", "simultaneous start: whole seconds at the end of the window without a backup takeover (of " + fmt.Sprint(int(r.o.window/time.Second)) + ")", "%.0f"},
		{"storm_vips_master", "simultaneous start: VIPs on the master after the window", "%.0f"},
		{"storm_vips_backup", "simultaneous start: VIPs on the backup after the window", "%.0f"},
		{"storm_tx_master", "simultaneous start: frames/s sent by the master's eth0 during the window (expected instances × 100)", "%.0f"},
		{"storm_drops_backup", "simultaneous start: datagrams dropped by the backup's raw sockets during the window", "%.0f"},
		{"storm_rss_master", "simultaneous start: VmRSS, master (MiB)", "%.1f"},
		{"storm_rss_backup", "simultaneous start: VmRSS, backup (MiB)", "%.1f"},
	}
	var b strings.Builder
	b.WriteString("| Check | vigil median (min / max) | keepalived median (min / max) |\n|---|---|---|\n")
	for _, row := range rows {
		cell := func(im string) string {
			s := r.sanity[im+"/"+row.key]
			if s == nil || s.n() == 0 {
				return "–"
			}
			return fmt.Sprintf(row.f+" ("+row.f+" / "+row.f+", n=%d)", s.median(), s.min(), s.max(), s.n())
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", row.title, cell("vigil"), cell("keepalived"))
	}
	return b.String()
}

const notesBegin = "<!-- notes: kept when vrrpbench rewrites this file -->"
const notesEnd = "<!-- end of notes -->"

// keptNotes returns the hand-written block of an existing report.
func keptNotes(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.Index(s, notesBegin)
	j := strings.Index(s, notesEnd)
	if i < 0 || j < i {
		return ""
	}
	return strings.TrimSpace(s[i+len(notesBegin) : j])
}

func (r *report) markdown(outPath string) string {
	var b strings.Builder
	e := r.env
	o := r.o
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Benchmarks: vigil and keepalived side by side\n\n")
	w("This file is written by `bench/vrrpbench`; edit only the notes block at the end (it is kept when the\n")
	w("file is regenerated). Both implementations run in the same invocation, on the same namespace lab,\n")
	w("with the same keepalived.conf, trial by trial in alternating order.\n\n")
	w("## How to run\n\n")
	w("```sh\n# as root, from the repository root; needs iproute2, iputils ping and keepalived (apt-get install keepalived)\n")
	w("go run ./bench/vrrpbench -out BENCHMARKS.md\n```\n\n")
	w("It builds vigil as `make build` does (`CGO_ENABLED=0 go build ./cmd/vigil`), creates its own lab\n")
	w("(namespaces `vg-bench-PID-*`, a bridge and\n")
	w("three nodes, documentation addresses only), runs the trials and removes everything again (processes by\n")
	w("process group, then the namespaces). A full run takes about %s. Useful flags: `-trials N` (failover\n", roundDur(r.duration))
	w("trials per implementation, default 15), `-cpu-runs N` (default 3), `-window 20s`, `-instances 255`,\n")
	w("`-skip-failover`, `-skip-cpu`, `-storm-runs N` (default 3), `-skip-storm`, `-keep` (keep configs and daemon\n")
	w("logs), `-out ''` (print only).\n\n")

	w("## Last run\n\n")
	args := strings.Join(os.Args[1:], " ")
	w("- command: `go run ./bench/vrrpbench %s`\n", args)
	w("- date: %s (run took %s)\n", e.Date.Format("2006-01-02 15:04 MST"), roundDur(r.duration))
	w("- machine: nproc %s, kernel %s, CPU %s; load average %s before, %s after\n", e.NProc, e.Kernel, e.CPU, e.LoadBefore, e.LoadAfter)
	w("- vigil %s (built with %s), %s\n", e.VigilRev, e.GoVersion, e.Keepalived)
	w("- failover: %d trials per implementation, VRRPv3 advert_int %s; steady state: %d runs per implementation, %d instances, advert_int %s, %s window; simultaneous start: %d runs per implementation, %s warm-up, same window\n",
		o.trials, seconds(o.advert), o.cpuRuns, o.instances, seconds(o.cpuAdvert), o.window, o.stormRuns, o.stormWarm)
	if len(r.failed) > 0 {
		var keys []string
		for k, n := range r.failed {
			keys = append(keys, fmt.Sprintf("%s: %d", k, n))
		}
		sort.Strings(keys)
		w("- **failed trials** (not in the numbers, see the run's log): %s\n", strings.Join(keys, ", "))
	} else {
		w("- failed trials: none\n")
	}
	if r.leftovers != "" {
		w("- **left behind after the run**: %s\n", r.leftovers)
	} else {
		w("- left behind after the run: nothing (lab namespaces and daemon processes checked)\n")
	}
	w("\n## Results\n\n")
	w("Medians over the trials; spread as p10/p90 and min/max (with fewer than 5 values, min/max only).\n")
	w("The ratio is vigil's median over keepalived's; lower is better for every metric. For metric 1 the\n")
	w("values are tiny overshoots around zero, so read the difference column rather than the ratio.\n\n")
	b.WriteString(r.table())
	w("\n### Sanity checks\n\n")
	b.WriteString(r.sanityTable())

	w("\n## Method\n\n")
	w("Lab: `internal/lab` — a bridge `br0` in a switch namespace and nodes n1 (192.0.2.11), n2 (192.0.2.12),\n")
	w("n3 (192.0.2.13) on veth pairs. Daemons run with `Node.Start` (own process group): vigil as `vigil -f CONF`,\n")
	w("keepalived as `keepalived -n -l -G -P -f CONF -p/-r/-c/-b <own pid files>`. Neither gets debug logging.\n")
	w("The capture is an AF_PACKET socket in the switch namespace bound to `br0` (promiscuous), with kernel\n")
	w("receive timestamps (SO_TIMESTAMPNS, CLOCK_REALTIME, the clock `ping -D` prints).\n\n")
	w("**Metrics 1 and 2 (failover).** n1: `state MASTER`, priority 150; n2: `state BACKUP`, priority 100; one\n")
	w("VRRPv3 instance, VRID %d, advert_int %s, VIP %s/24. After n1 holds the VIP and n2 has settled, n3 runs\n", foVRID, seconds(o.advert), foVIP)
	w("`ping -n -D -i 0.002 %s` for 0.4 s, then n1's process group gets SIGKILL and n1's bridge port is taken\n", foVIP)
	w("down (the crashed daemon leaves its VIP on n1, which would keep answering the pings; a dead host does\n")
	w("not). Metric 1 = (first advert from n2) − (last advert from n1) − Master_Down_Interval, with\n")
	w("Master_Down_Interval = 3 × advert_int + (256 − 100) × advert_int / 256 = %.4f ms (RFC 5798 6.1; both\n", ms(masterDownInterval(o.advert, foPrioLow)))
	w("implementations use 3 missed adverts). Metric 2 = (first echo reply line printed by ping, `-D` timestamp)\n")
	w("− (first advert from n2 on the bridge): the new master adds the VIP and sends its GARP, n3 must update\n")
	w("its ARP entry (still pointing at n1's MAC), and the next 2 ms ping must come back — the ping interval\n")
	w("alone adds 0..2 ms. Between trials both daemons are killed, leftover VIPs removed, n1 re-plugged and n3's\n")
	w("neighbour cache flushed.\n\n")
	w("**Metrics 3 and 4 (steady state).** n1 (priority 150, MASTER) and n2 (priority 100, BACKUP) run %d\n", o.instances)
	w("VRRPv3 instances, VRIDs 1..%d, advert_int %s, one /32 VIP each (198.51.100.1-254, then 203.0.113.x).\n", o.instances, seconds(o.cpuAdvert))
	w("After n1 holds every VIP, n2 starts; after a %s warm-up (past the two GARP bursts) the process trees of\n", o.warm)
	w("both daemons (root PID plus descendants, from /proc/*/stat) are sampled: utime+stime over a %s window,\n", o.window)
	w("in percent of one core (can exceed 100 with several threads); VmRSS summed over the tree at the end of\n")
	w("the window (keepalived: parent + VRRP child, so shared pages count twice; the PSS row splits them).\n")
	w("The capture is closed during these runs, and nothing else runs in the lab; the harness only reads\n")
	w("/proc and the nodes' eth0 tx counters before and after the window.\n\n")
	w("**Metric 5 (simultaneous start).** The configurations of metrics 3 and 4, but n1 and n2 are started\n")
	w("together, as after a power cut or a cluster-wide deploy: start-up is the costliest moment, and a backup\n")
	w("that misses its master's adverts for a Master_Down_Interval takes over, which costs more CPU, which\n")
	w("delays more adverts. After a %s warm-up the backup's transitions to MASTER (log lines: vigil\n", o.stormWarm)
	w("`to=MASTER`, keepalived `Entering MASTER STATE`) are counted over a %s window, per second, with the\n", o.window)
	w("CPU of both process trees as for metric 3. Lower is better; 0 means the pair settled during the warm-up.\n\n")
	w("**Noise.** The machine's cores are shared with other work; compare the p10/p90 and min/max columns and\n")
	w("the load averages above before trusting a difference smaller than the spread.\n\n")

	w("## Notes\n\n%s\n", notesBegin)
	if n := keptNotes(outPath); n != "" {
		w("%s\n", n)
	} else {
		w("(none yet)\n")
	}
	w("%s\n", notesEnd)
	return b.String()
}

func roundDur(d time.Duration) time.Duration {
	return d.Round(time.Second)
}
