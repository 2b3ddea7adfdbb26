package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/harness"
)

type report struct {
	o         options
	env       harness.Machine
	rows      []row
	duration  time.Duration
	leftovers string
	prior     *priorReport // -update: the report this run's rows go into
}

func dur(d time.Duration) string {
	switch {
	case d < 0:
		return "never"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func count(n int) string {
	if n < 0 {
		return "–"
	}
	return fmt.Sprint(n)
}

// What a row's notes begin with when it breaks an invariant or failed to run; a report read
// back (-update) counts such rows by them.
const (
	markBroken = "**BROKEN: "
	markFailed = "**run failed**"
)

func (r row) cells() []string {
	res := r.res
	if res.Err != nil {
		return []string{"–", "–", "–", "–", "–", markFailed + ": " + oneLine(res.Err.Error())}
	}
	notes := append([]string(nil), res.Notes...)
	if b := res.Broken(); len(b) > 0 {
		notes = append([]string{markBroken + strings.Join(b, "; ") + "**"}, notes...)
	}
	span := func(d time.Duration) string {
		if d == NotMeasured {
			return "–"
		}
		return dur(d)
	}
	return []string{count(res.Masters), span(res.Converge), span(res.Outage), count(res.Lost), count(res.Moved), strings.Join(notes, "; ")}
}

func (r row) summary() string {
	c := r.cells()
	return fmt.Sprintf("masters %s, converge %s, outage %s, lost %s, moved %s (%s) [%s]", c[0], c[1], c[2], c[3], c[4], c[5], r.took.Round(time.Second))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return strings.ReplaceAll(s, "|", "\\|")
}

const tableHead = "| scenario | implementation | masters after convergence | time to converge | client-visible outage | acknowledged writes lost | transitions on nodes that should not have moved | notes |\n" +
	"|---|---|---:|---:|---:|---:|---:|---|\n"

// line is rw as a line of the results table.
func (rw row) line() string {
	c := rw.cells()
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s |", rw.sc.Name, rw.impl, c[0], c[1], c[2], c[3], c[4], strings.ReplaceAll(c[5], "|", "\\|"))
}

// table is this run's rows.
func (r *report) table() string {
	var b strings.Builder
	b.WriteString(tableHead)
	for _, rw := range r.rows {
		b.WriteString(rw.line() + "\n")
	}
	return b.String()
}

// merged returns the lines of the results table, by scenario and implementation in the
// suite's order: this run's rows, and with -update the prior report's rows of the others.
// It also returns the scenarios that have rows.
func (r *report) merged() ([]string, []*Scenario) {
	mine := map[rowKey]string{}
	for _, rw := range r.rows {
		mine[rowKey{rw.sc.Name, rw.impl}] = rw.line()
	}
	var lines []string
	var present []*Scenario
	for _, sc := range scenarios.list {
		has := false
		for _, impl := range sc.impls() {
			k := rowKey{sc.Name, impl}
			l, ok := mine[k]
			if !ok && r.prior != nil {
				l, ok = r.prior.rows[k]
			}
			if ok {
				lines = append(lines, l)
				has = true
			}
		}
		if has {
			present = append(present, sc)
		}
	}
	return lines, present
}

func (r *report) markdown() string {
	var b strings.Builder
	e := r.env
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Reliability: faults injected into vigil and keepalived\n\n")
	w("This file is written by `bench/faults` (`make faults`); do not edit it by hand. Each scenario injects\n")
	w("one fault into a cluster of VRRP nodes in network namespaces while a client sends a request every\n")
	w("10 ms through the VIP to a real service, and reports the figures below, vigil beside keepalived in\n")
	w("the same run, each on a lab of its own, with the same keepalived.conf.\n\n")
	w("## How to run\n\n")
	w("```sh\n# as root, from the repository root; needs iproute2, keepalived, nftables and mariadb-server (.ci/deps.sh)\n")
	w("go run ./bench/faults -out RELIABILITY.md    # make faults: every scenario\n")
	w("go run ./bench/faults -short -impl vigil     # part of make test: the scenarios that take seconds, on vigil\n")
	w("go run ./bench/faults -run '^soak$' -update RELIABILITY.md   # one scenario's rows into this file\n```\n\n")
	w("`-run REGEXP` picks scenarios by name, `-impl vigil` one implementation, `-keep` keeps the work\n")
	w("directory (configurations, daemon logs, the client's records, the notify file). It exits 1 when a row breaks an invariant (masters after\n")
	w("convergence other than 1, an acknowledged write lost, a transition on a node that should not have\n")
	w("moved, a scenario's own must-hold check) or fails to run, and says which. Timing figures are\n")
	w("reported, not asserted, except where a bound is what the scenario is about (partition-heal's split\n")
	w("brain, master-demote's outage; their descriptions give the bound).\n\n")

	lines, present := r.merged()
	thisRun := func() {
		w("- command: `go run ./bench/faults %s`\n", strings.Join(os.Args[1:], " "))
		w("- date: %s (run took %s)\n", e.Date.UTC().Format("2006-01-02 15:04 MST"), r.duration.Round(time.Second))
		w("- machine: nproc %s, kernel %s, CPU %s; load average %s before, %s after\n", e.NProc, e.Kernel, e.CPU, e.LoadBefore, e.LoadAfter)
		w("- vigil %s (built with %s), %s\n", e.VigilRev, e.GoVersion, e.Keepalived)
		if r.leftovers != "" {
			w("- **left behind after the run**: %s\n", r.leftovers)
		} else {
			w("- left behind after the run: nothing (lab namespaces and processes checked)\n")
		}
	}
	var broken int
	for _, l := range lines {
		if strings.Contains(l, markBroken) || strings.Contains(l, markFailed) {
			broken++
		}
	}
	if r.prior == nil {
		w("## Last run\n\n")
		thisRun()
	} else {
		// Each run says which rows it measured; a row is the latest run's that lists it.
		w("## Runs\n\n")
		w("The rows come from more than one run (`-update`); each run below lists the rows it measured.\n\n")
		var mine []string
		for _, rw := range r.rows {
			mine = append(mine, rw.sc.Name+"/"+rw.impl)
		}
		for _, pr := range r.prior.runs {
			if pr.rows != "" && pr.coveredBy(mine) {
				continue // every row it measured was measured again
			}
			w("%s\n", strings.TrimRight(pr.text, "\n"))
			if pr.rows == "" {
				w("- rows: every row not listed by a later run\n")
			}
			w("\n")
		}
		w("### %s\n\n", e.Date.UTC().Format("2006-01-02 15:04 MST"))
		thisRun()
		w("- rows: %s\n", strings.Join(mine, ", "))
	}
	w("- rows breaking an invariant: %d of %d\n\n", broken, len(lines))
	w("## Results\n\n")
	b.WriteString(tableHead)
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	w("\n## Scenarios\n\n")
	for _, sc := range present {
		short := ""
		if sc.Short {
			short = " (short: part of `make test`)"
		}
		known := ""
		if sc.KeepalivedBreaks != "" {
			known = " keepalived 2.2.7 is known to break it (its rows do not fail the run): " + strings.Join(strings.Fields(sc.KeepalivedBreaks), " ")
		}
		w("- **%s**%s: %s%s\n", sc.Name, short, strings.Join(strings.Fields(sc.Doc), " "), known)
	}
	w("\n## Method\n\n")
	w("**Lab.** `internal/lab`: a bridge in a switch namespace, VRRP nodes n1, n2, n3 (192.0.2.11-13) and a client\n")
	w("node after them, each on a veth pair; a fresh lab for every row. Every VRRP node runs the implementation\n")
	w("under test on the same keepalived.conf (one VRRPv3 instance VI_1, VRID 51, VIP 192.0.2.100/24 on eth0,\n")
	w("advert_int 1 s unless the scenario says otherwise; priorities 150, 100, 50; n1 `state MASTER`, the\n")
	w("others `state BACKUP`), vigil as `vigil -f CONF -p PIDFILE -control SOCKET`, keepalived as\n")
	w("`keepalived -n -l -G -P -f CONF` with pid files of its own, each in a process group of its own.\n\n")
	w("**Faults.** How each scenario injects its fault is in the list above. A signal to a daemon goes to\n")
	w("its whole process group (vigil's core and its check and vrrp children; keepalived's parent and its\n")
	w("VRRP child). A killed master's node is also taken off the bridge: the daemon dies without removing\n")
	w("its VIP, and the node's kernel would keep answering for it; a dead host does not.\n\n")
	w("**Service and client.** Every VRRP node runs a TCP service on port 8080 that answers each connection\n")
	w("with its node's name (this program re-executed in the node's namespace). The client (the same, in the\n")
	w("client node's namespace) opens a new connection to VIP:8080 every 10 ms, each in parallel with a\n")
	w("deadline of 1 s for connect and answer, and records the time it was sent and which node answered, or\n")
	w("that it failed (refused, unreachable, timeout).\n\n")
	w("**Masters after convergence**: the number of VRRP nodes whose interfaces hold the VIP (`ip addr`)\n")
	w("after the scenario's convergence wait (at most 10 s plus ten Master_Down_Intervals, until one node\n")
	w("holds it and answered the client's last 50 requests, at least) and a hold of three advert intervals\n")
	w("plus a second. A node the scenario took off the bridge (a cut link, a dead host) is not counted: its\n")
	w("addresses are invisible to the network. Must be 1.\n\n")
	w("**Time to converge**: from the fault to the sending of the first request of the client's final\n")
	w("unbroken run of answers from the node that holds the VIP at the end (no failure and no other node\n")
	w("after it). \"never\" when the cluster did not converge within the wait.\n\n")
	w("**Client-visible outage**: the longest run of consecutive failed requests (by the time they were sent)\n")
	w("since the cluster settled: from the sending of the first failed request of the run to the sending\n")
	w("of the next answered one. Requests are 10 ms apart, so one failed request is a 10 ms outage.\n\n")
	w("**Comparing outages after a master fails.** A backup takes over one Master_Down_Interval after the\n")
	w("last advert it heard, and that advert left the master anywhere within the advert interval before the\n")
	w("fault: any outage from Master_Down_Interval minus advert_int to Master_Down_Interval is the same\n")
	w("behaviour (advert_int 1 s, backup priority 100: 2.61 to 3.61 s). Where vigil's and keepalived's rows\n")
	w("differ within that window, the difference is the moment of the fault, not the implementation.\n\n")
	w("**Acknowledged writes lost** (MySQL scenarios): MariaDB master-master on n1 and n2 (`internal/lab/mariadb`,\n")
	w("semi-synchronous replication AFTER_SYNC); a writer in the client's namespace inserts a numbered row\n")
	w("through the VIP every 10 ms (one connection, 1 s deadline per insert, a failed insert is not retried).\n")
	w("After convergence the writer stops, and the count is the rows whose insert was acknowledged but that\n")
	w("are missing on the final master's server, after waiting up to 30 s for its replication to apply them.\n")
	w("Must be 0. \"–\" where the scenario has no writer.\n\n")
	w("**Transitions on nodes that should not have moved**: every vrrp_instance has `notify \"SCRIPT NODE\"`;\n")
	w("both implementations run the script on each state change, and it appends the node, instance, state\n")
	w("and time to a file. The figure is the number of lines from the fault to the end of the measurement of\n")
	w("the nodes that the scenario names as bystanders (usually n3, whose priority is below the backup's).\n")
	w("Must be 0.\n\n")
	w("**Notes**: the client's answers by node and failures by reason over the measured window, and the\n")
	w("scenario's own figures.\n")
	// Scenarios that measure figures of their own say how.
	seen := map[string]bool{}
	for _, sc := range present {
		if sc.Method == "" || seen[sc.Method] {
			continue
		}
		seen[sc.Method] = true
		w("\n%s\n", strings.Join(strings.Fields(sc.Method), " "))
	}
	return b.String()
}

// rowKey names a row of the results table.
type rowKey struct{ scenario, impl string }

// priorReport is what -update keeps of the report it updates: its rows, and the runs that
// measured them.
type priorReport struct {
	rows map[rowKey]string
	runs []priorRun
}

// priorRun is one run's block of a report: its bullets as written, and the rows it lists
// ("scenario/impl, ..."); "" for a report's only run, which measured every row no later run
// lists.
type priorRun struct {
	text string
	rows string
}

// coveredBy reports whether every row the run lists is among rows.
func (p priorRun) coveredBy(rows []string) bool {
	for _, r := range strings.Split(p.rows, ", ") {
		if !slices.Contains(rows, r) {
			return false
		}
	}
	return true
}

// readPrior reads a report this program wrote, for -update.
func readPrior(path string) (*priorReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-update: %w", err)
	}
	sections := map[string]string{}
	for _, sec := range strings.Split("\n"+string(b), "\n## ")[1:] {
		title, body, _ := strings.Cut(sec, "\n")
		sections[title] = body
	}
	p := &priorReport{rows: map[rowKey]string{}}
	switch {
	case sections["Last run"] != "":
		p.runs = []priorRun{{text: "### " + firstDate(sections["Last run"]) + "\n\n" + strings.TrimSpace(stripBroken(sections["Last run"])) + "\n"}}
	case sections["Runs"] != "":
		for _, blk := range strings.Split(sections["Runs"], "\n### ")[1:] {
			blk = "### " + strings.TrimSpace(stripBroken(blk)) + "\n"
			var rows string
			for _, l := range strings.Split(blk, "\n") {
				if r, ok := strings.CutPrefix(l, "- rows: "); ok {
					rows = r
				}
			}
			if rows == "every row not listed by a later run" {
				rows = ""
				blk = strings.Replace(blk, "- rows: every row not listed by a later run\n", "", 1)
			}
			p.runs = append(p.runs, priorRun{text: blk, rows: rows})
		}
	default:
		return nil, fmt.Errorf("-update: %s has neither a Last run nor a Runs section: not a report of this program", path)
	}
	for _, l := range strings.Split(sections["Results"], "\n") {
		f := strings.SplitN(l, " | ", 3)
		if len(f) < 3 || !strings.HasPrefix(l, "| ") || strings.HasPrefix(l, "| scenario |") {
			continue
		}
		p.rows[rowKey{strings.TrimPrefix(f[0], "| "), f[1]}] = l
	}
	if len(p.rows) == 0 {
		return nil, fmt.Errorf("-update: %s has no result rows", path)
	}
	return p, nil
}

// stripBroken drops a run block's count of broken rows: the report counts them once, over
// all rows.
func stripBroken(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "- rows breaking an invariant:") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// firstDate is the date of a Last run block ("- date: 2026-12-07 00:29 UTC (run took ...)").
func firstDate(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if d, ok := strings.CutPrefix(l, "- date: "); ok {
			d, _, _ = strings.Cut(d, " (")
			return d
		}
	}
	return "an earlier run"
}
