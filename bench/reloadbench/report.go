package main

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/harness"
)

const (
	beginMarker = "<!-- reloadbench: this block is written by bench/reloadbench -->"
	endMarker   = "<!-- end of reloadbench -->"
)

// cell collects the trials of one variant with or without vrrp_skip_check_adv_addr.
type cell struct {
	v         variant
	skip      bool
	failed    int
	latency   []float64 // ms
	reqSent   []float64 // ms
	gap       []float64 // ms
	lost      []int     // requests to VI_2's VIP without a reply
	lostOf    int
	pause     []float64 // ms
	changed   map[string]int
	unchanged map[string]int
	nChanged  []int
	nUnch     []int
	reloads   []int
	vipsBad   int
	reports   map[string]int // vigil's last_reload, as text
	problems  map[string]int // what was wrong with the VIPs after a trial
}

type report struct {
	o         options
	env       harness.Machine
	variants  []variant
	cells     map[string]*cell
	duration  time.Duration
	leftovers string
}

func newReport(o options, env harness.Machine, vs []variant) *report {
	return &report{o: o, env: env, variants: vs, cells: map[string]*cell{}}
}

func (r *report) cell(v variant, skip bool) *cell {
	k := fmt.Sprintf("%s/%v", v.name, skip)
	c := r.cells[k]
	if c == nil {
		c = &cell{v: v, skip: skip, changed: map[string]int{}, unchanged: map[string]int{}, reports: map[string]int{}, problems: map[string]int{}}
		r.cells[k] = c
	}
	return c
}

func (r *report) fail(v variant, skip bool, n int) { r.cell(v, skip).failed += n }

func (r *report) add(v variant, skip bool, t trialResult) {
	c := r.cell(v, skip)
	c.latency = append(c.latency, ms(t.latency))
	c.reqSent = append(c.reqSent, ms(t.reqSent))
	c.gap = append(c.gap, ms(t.gap))
	c.lost = append(c.lost, t.lost)
	c.lostOf += t.lostOf
	c.pause = append(c.pause, ms(t.pause))
	for _, x := range t.changed {
		c.changed[x.node+" "+x.inst+" → "+x.to]++
	}
	for _, x := range t.unchanged {
		c.unchanged[x.node+" "+x.inst+" → "+x.to]++
	}
	c.nChanged = append(c.nChanged, len(t.changed))
	c.nUnch = append(c.nUnch, len(t.unchanged))
	c.reloads = append(c.reloads, t.reloads)
	if !t.vipsOK {
		c.vipsBad++
		c.problems[t.vipsProblems]++
	}
	if t.lastReload != "" {
		c.reports[t.lastReload]++
	}
}

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo, hi := int(math.Floor(pos)), int(math.Ceil(pos))
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}

func median(v []float64) float64 { return quantile(v, 0.5) }

func ints(v []int) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func sum(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s
}

// perTrial is "total (a/b/c per trial)".
func perTrial(v []int) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprint(x)
	}
	return fmt.Sprintf("**%d** (%s)", sum(v), strings.Join(parts, "/"))
}

func kinds(m map[string]int) string {
	if len(m) == 0 {
		return "–"
	}
	var ks []string
	for k, n := range m {
		ks = append(ks, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

func (r *report) markdown() string {
	o, e := r.o, r.env
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("%s\n### Hot reload: adding a VIP on a master, vigil vs keepalived\n\n", beginMarker)
	w("Time from saving the edited file to the new VIP answering, and the state changes the reload causes,\n")
	w("vigil (file watch, or SIGHUP) beside keepalived (SIGHUP). Written by `bench/reloadbench`:\n\n")
	w("```sh\ngo run ./bench/reloadbench -out BENCHMARKS.md   # as root; needs iproute2 and keepalived; about %s\n```\n\n", r.duration.Round(time.Second))
	w("- command: `go run ./bench/reloadbench%s -out BENCHMARKS.md`\n", r.flagsLine())
	w("- date: %s (run took %s)\n", e.Date.Format("2006-01-02 15:04 UTC"), r.duration.Round(time.Second))
	w("- machine: nproc %s, kernel %s, CPU %s; load average %s before, %s after (the cores are shared with other work)\n",
		e.NProc, e.Kernel, e.CPU, e.LoadBefore, harness.Loadavg())
	w("- vigil %s (%s), %s\n", e.VigilRev, e.GoVersion, e.Keepalived)
	lo := "nothing (lab namespaces and the run's vigil/keepalived processes checked)"
	if r.leftovers != "" {
		lo = r.leftovers
	}
	w("- left behind after the run: %s\n\n", lo)

	w("**Setup.** internal/lab namespaces: n1 (192.0.2.11) and n2 (192.0.2.12) run the implementation, n3 (192.0.2.13)\n")
	w("is the client. Both nodes have %d VRRPv3 instances VI_1..VI_%d (VRIDs 51..%d, advert_int %s, VI_i holds\n",
		o.instances, o.instances, 50+o.instances, seconds(o.advert))
	w("192.0.2.(100+i)/24); n1 `state MASTER` priority %d, n2 `state BACKUP` priority %d; `global_defs {\n", prioMaster, prioBackup)
	w("vrrp_skip_check_adv_addr }` in both files (main table), so that n2, which keeps the old address list, still\n")
	w("accepts n1's adverts with the longer list. The same text is given to both implementations. vigil runs as\n")
	w("`vigil -f CONF -p PID --control SOCK`, keepalived as `keepalived -n -l -D -P -G -f CONF -p/-r/-c/-b PIDFILES`.\n\n")
	w("**Trial.** n1's file gets one new address, 198.51.100.N/24 (a new N each trial), in VI_1's\n")
	w("virtual_ipaddress: written to a temporary file and renamed over the configuration. \"file watch\": nothing\n")
	w("else, vigil sees the rename (fsnotify, 300 ms debounce); \"SIGHUP\": SIGHUP to the daemon's main process right\n")
	w("after the rename (keepalived's way; for vigil the file watch also fires 300 ms later and finds nothing new).\n")
	w("Latency = rename → the first ICMP echo reply from the new VIP at n3. n3 sends an echo request every %s\n", o.interval)
	w("from a raw socket in its namespace (this process, one goroutine reading the replies, Go's clock), so the\n")
	w("reply time carries up to %s of polling plus the client's scheduling. Each request carries its send time;\n", o.interval)
	w("the second latency column is when the first answered request left: the address was up on n1 between about\n")
	w("%s before that and just after it (the previous request went unanswered). n3 has a static neighbour entry for the new VIP on n1's MAC, so\n", o.interval)
	w("the time is the daemon's (address configured on n1), not ARP's. Meanwhile n3 also pings VI_2's VIP\n")
	w("192.0.2.102 (static entry on n1's MAC) every %s: \"VI_2 gap\" is the longest time without a reply from the\n", o.interval)
	w("rename until %s after the first new reply (a few ms, in every variant alike, is the client's own timer jitter),\n", o.settle)
	w("and \"unanswered\" counts the requests to it, sent in that span (less its last 100 ms), that got no reply: whether\n")
	w("an unchanged instance's address ever stopped answering on n1.\n")
	w("State changes are counted in both nodes' logs over the same span: vigil's `state change: instance=…`\n")
	w("lines, keepalived's `(VI_x) Entering … STATE` lines (such a line would also count an instance that keepalived\n")
	kaSeen := "see the table for what it logged"
	if c := r.cells["keepalived, SIGHUP/true"]; c != nil && len(c.latency) > 0 && sum(c.nUnch)+sum(c.nChanged) == 0 {
		kaSeen = "it logged none on these reloads, only `Reloading`, `(VI_1) setting VIPs.` and gratuitous ARPs"
	}
	w("re-initialised into the state it had; %s). The trials are in blocks: a block starts both\n", kaSeen)
	w("daemons, waits until n1 holds every VIP and n2 has settled, runs %d trials (VI_1's list grows by one address\n", o.trials)
	w("each), and stops them; %d blocks per variant, the variants' blocks alternating. Medians with min–max.\n\n", o.blocks)

	w("| variant | trials (failed) | rename → first reply from the new VIP, median | min – max | ratio to keepalived | rename → sending of the first answered request, median (min – max) | state changes on unchanged instances VI_2..VI_%d, both nodes (per trial) | state changes on VI_1 (the edited one) | VI_2 gap, median (max) | VI_2 requests unanswered, all trials | reloads logged by n1 per trial |\n", o.instances)
	w("|---|---|---:|---|---:|---|---|---|---:|---:|---|\n")
	ka := r.cells["keepalived, SIGHUP/true"]
	for _, v := range r.variants {
		c := r.cells[v.name+"/true"]
		if c == nil {
			continue
		}
		ratio := "–"
		if ka != nil && len(ka.latency) > 0 && len(c.latency) > 0 {
			ratio = fmt.Sprintf("%.2f", median(c.latency)/median(ka.latency))
		}
		w("| %s | %d (%d) | **%.1f ms** | %.1f – %.1f ms | %s | %.1f ms (%.1f – %.1f) | %s %s | %s %s | %.1f ms (%.1f) | %d of %d | %s |\n",
			v.name, len(c.latency), c.failed, median(c.latency), quantile(c.latency, 0), quantile(c.latency, 1), ratio,
			median(c.reqSent), quantile(c.reqSent, 0), quantile(c.reqSent, 1),
			perTrial(c.nUnch), kinds(c.unchanged), perTrial(c.nChanged), kinds(c.changed),
			median(c.gap), quantile(c.gap, 1), sum(c.lost), c.lostOf, rangeInts(c.reloads))
	}
	w("\n")
	bad, probs := 0, map[string]int{}
	for _, v := range r.variants {
		if c := r.cells[v.name+"/true"]; c != nil {
			bad += c.vipsBad
			for k, n := range c.problems {
				probs[v.name+": "+k] += n
			}
		}
	}
	var pauses []string
	for _, v := range r.variants {
		if c := r.cells[v.name+"/true"]; c != nil && len(c.pause) > 0 {
			pauses = append(pauses, fmt.Sprintf("%s %.1f ms (max %.1f)", v.name, median(c.pause), quantile(c.pause, 1)))
		}
	}
	w("The client's own longest pause between two requests, from the rename to the first reply (a pause of the\n")
	w("client adds to the latency): median %s. The run's first trial is a warm-up and not counted.\n", strings.Join(pauses, ", "))
	w("After every trial n1 held all VIPs and n2 none: %s.", map[bool]string{true: "yes", false: fmt.Sprintf("no, %d trials (%s)", bad, kinds(probs))}[bad == 0])
	for _, v := range r.variants {
		if c := r.cells[v.name+"/true"]; c != nil && len(c.reports) > 0 {
			w(" `vigil status` after the %s trials, last reload: %s.", v.name, kinds(c.reports))
		}
	}
	w("\n\n")

	if o.noSkipTrials > 0 {
		w("Without `vrrp_skip_check_adv_addr` (%d trials in one block per implementation, otherwise the same):\n\n", o.noSkipTrials)
		w("| variant | trials (failed) | rename → first reply, median | state changes on unchanged instances (per trial) | state changes on VI_1 | VI_2 gap, max | VI_2 requests unanswered | n1 holds all, n2 none afterwards |\n")
		w("|---|---|---:|---|---|---:|---:|---|\n")
		for _, v := range r.variants {
			c := r.cells[v.name+"/false"]
			if c == nil {
				continue
			}
			w("| %s | %d (%d) | %.1f ms | %s %s | %s %s | %.1f ms | %d of %d | %s |\n", v.name, len(c.latency), c.failed, median(c.latency),
				perTrial(c.nUnch), kinds(c.unchanged), perTrial(c.nChanged), kinds(c.changed), quantile(c.gap, 1), sum(c.lost), c.lostOf,
				map[bool]string{true: "yes", false: fmt.Sprintf("no in %d of %d: %s", c.vipsBad, len(c.latency), kinds(c.problems))}[c.vipsBad == 0])
		}
		w("\n")
	}
	w("%s\n%s\n", r.interpretation(), endMarker)
	return b.String()
}

func rangeInts(v []int) string {
	f := ints(v)
	lo, hi := quantile(f, 0), quantile(f, 1)
	if lo == hi {
		return fmt.Sprintf("%.0f", lo)
	}
	return fmt.Sprintf("%.0f–%.0f", lo, hi)
}

// interpretation is one sentence read off the numbers.
func (r *report) interpretation() string {
	fw, sh, ka := r.cells["vigil, file watch/true"], r.cells["vigil, SIGHUP/true"], r.cells["keepalived, SIGHUP/true"]
	if fw == nil || sh == nil || ka == nil || len(fw.latency) == 0 || len(sh.latency) == 0 || len(ka.latency) == 0 {
		return "Reading: some variants have no successful trials; see the table."
	}
	return fmt.Sprintf("Reading: with the same SIGHUP, vigil puts the new VIP up in %.1f ms against keepalived's %.1f ms (%.2f×); "+
		"left to its file watch it takes %.1f ms, the 300 ms debounce being most of it; "+
		"the unchanged instances logged %d state changes under vigil (%d trials) and %d under keepalived (%d trials)%s, "+
		"and %d of %d echo requests to VI_2's address went unanswered under vigil, %d of %d under keepalived.",
		median(sh.latency), median(ka.latency), median(sh.latency)/median(ka.latency), median(fw.latency),
		sum(fw.nUnch)+sum(sh.nUnch), len(fw.latency)+len(sh.latency), sum(ka.nUnch), len(ka.latency),
		r.kaNote(ka), sum(fw.lost)+sum(sh.lost), fw.lostOf+sh.lostOf, sum(ka.lost), ka.lostOf) + r.noSkipNote()
}

// noSkipNote sums up the trials without vrrp_skip_check_adv_addr.
func (r *report) noSkipNote() string {
	var parts []string
	for _, v := range r.variants {
		c := r.cells[v.name+"/false"]
		if c == nil || len(c.latency) == 0 {
			continue
		}
		toMaster := 0
		for k, n := range c.changed {
			if strings.HasPrefix(k, "n2 ") && strings.HasSuffix(k, "MASTER") {
				toMaster += n
			}
		}
		for k, n := range c.unchanged {
			if strings.HasPrefix(k, "n2 ") && strings.HasSuffix(k, "MASTER") {
				toMaster += n
			}
		}
		both := ""
		if c.vipsBad > 0 && !strings.Contains(kinds(c.problems), "n1 lacks") {
			both = " (n1 kept it too: two masters)"
		}
		parts = append(parts, fmt.Sprintf("with %s the backup n2 entered MASTER %d times and held an address of n1's after %d of %d trials%s",
			v.impl, toMaster, c.vipsBad, len(c.latency), both))
	}
	if len(parts) == 0 {
		return ""
	}
	return " Without vrrp_skip_check_adv_addr, " + strings.Join(parts, "; ") + "."
}

func (r *report) kaNote(ka *cell) string {
	if sum(ka.nUnch) == 0 {
		return ""
	}
	return " (see the table for which)"
}

// flagsLine repeats the command line's flags other than -out.
func (r *report) flagsLine() string {
	var out []string
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-out" || a == "--out" {
			i++ // its value
			continue
		}
		if strings.HasPrefix(a, "-out=") || strings.HasPrefix(a, "--out=") {
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return ""
	}
	return " " + strings.Join(out, " ")
}

// writeBlock puts block between its markers in path, or at the end when they are absent;
// the rest of the file stays as it is.
func writeBlock(path, block string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	i := strings.Index(s, beginMarker)
	j := strings.Index(s, endMarker)
	const notesEnd = "<!-- end of notes -->" // bench/vrrpbench keeps only what is inside its notes block
	if i >= 0 && j > i {
		rest := s[j+len(endMarker):]
		rest = strings.TrimPrefix(rest, "\n")
		s = s[:i] + block + rest
	} else if t := strings.TrimRight(s, "\n"); strings.HasSuffix(t, notesEnd) {
		// The file ends with vrrpbench's notes block: the end of the file is just inside it,
		// where a regenerated file keeps the block.
		s = strings.TrimRight(t[:len(t)-len(notesEnd)], "\n") + "\n\n" + block + notesEnd + "\n"
	} else {
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		if s != "" {
			s += "\n"
		}
		s += block
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
