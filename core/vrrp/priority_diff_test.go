package vrrp_test

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/internal/lab"
)

// The differential priority test: keepalived 2.2.7 and vigil run one after the other on the
// same configuration file, on one node alone on the lab's link, and the priority each
// advertises for each instance is read off the wire (tshark on the bridge). Every instance
// is one case (its VRID is the case's number), so that each daemon starts once for all the
// cases. keepalived is the judge; each case also names what keepalived.conf(5) says it
// should be, so that a lab mistake that makes both sides wrong the same way shows too.

// fault is the verdict of an instance in FAULT: it sends no advert, or priority 0 to resign.
const fault = -1

// diffCase is one instance of the differential test.
type diffCase struct {
	name string
	kind string // "script", "file" or "iface"
	prio int    // configured priority; 0 means 100
	// block is what the vrrp_script or track_file block says about weight ("weight 20
	// reverse"), line what the track_* line says after the tracked name.
	block, line string
	up          bool   // script: it succeeds (/bin/true) or fails (/bin/false)
	value       int    // file: the number in the file
	iface       string // iface: the interface tracked ("uplink" is up, "downlink" down)
	want        int    // keepalived.conf(5)'s reading: the priority advertised, or fault
}

func diffCases() []diffCase {
	var cs []diffCase
	// The twelve script cases: weight +20/-20/0, reverse or not, script up or down, all
	// given in the vrrp_script block.
	for _, w := range []int{20, -20, 0} {
		for _, rev := range []bool{false, true} {
			for _, up := range []bool{true, false} {
				block := fmt.Sprintf("weight %d", w)
				if rev {
					block += " reverse"
				}
				c := diffCase{kind: "script", block: block, up: up, want: 100}
				c.name = fmt.Sprintf("script %s, %s", block, map[bool]string{true: "up", false: "down"}[up])
				adjusted := w > 0 && up || w < 0 && !up // the weight applies
				switch {
				case w == 0 && up == rev:
					c.want = fault
				case adjusted && rev:
					c.want = 100 - w
				case adjusted:
					c.want = 100 + w
				}
				cs = append(cs, c)
			}
		}
	}
	cs = append(cs,
		// Weight and direction on the track_script line.
		diffCase{name: "line weight 20 reverse, up", kind: "script", line: "weight 20 reverse", up: true, want: 80},
		diffCase{name: "line weight -20 reverse, down", kind: "script", line: "weight -20 reverse", up: false, want: 120},
		diffCase{name: "line weight 0 reverse, up", kind: "script", line: "weight 0 reverse", up: true, want: fault},
		diffCase{name: "line weight 0 reverse, down", kind: "script", line: "weight 0 reverse", up: false, want: 100},
		// A line with a weight and no direction keeps the block's reverse.
		diffCase{name: "block weight 10 reverse, line weight 20, up", kind: "script", block: "weight 10 reverse", line: "weight 20", up: true, want: 80},
		diffCase{name: "block weight -10 reverse, line weight -20, down", kind: "script", block: "weight -10 reverse", line: "weight -20", up: false, want: 120},
		diffCase{name: "block weight 10 reverse, line weight 20 noreverse, up", kind: "script", block: "weight 10 reverse", line: "weight 20 noreverse", up: true, want: 120},
		diffCase{name: "block weight 0 reverse, line weight 0 noreverse, up", kind: "script", block: "weight 0 reverse", line: "weight 0 noreverse", up: true, want: 100},
		diffCase{name: "block weight 20, line weight 20 reverse, up", kind: "script", block: "weight 20", line: "weight 20 reverse", up: true, want: 80},
		// track_file: value times weight, reverse turns it around; weight 0 faults on a
		// non-zero value (reverse: on zero).
		diffCase{name: "file weight 10, value 3", kind: "file", block: "weight 10", value: 3, want: 130},
		diffCase{name: "file weight 10 reverse, value 3", kind: "file", block: "weight 10 reverse", value: 3, want: 70},
		diffCase{name: "file weight -10 reverse, value 2", kind: "file", block: "weight -10 reverse", value: 2, want: 120},
		diffCase{name: "file weight 0, value 1", kind: "file", block: "weight 0", value: 1, want: fault},
		diffCase{name: "file weight 0 reverse, value 0", kind: "file", block: "weight 0 reverse", value: 0, want: fault},
		diffCase{name: "file weight 0 reverse, value 1", kind: "file", block: "weight 0 reverse", value: 1, want: 100},
		diffCase{name: "file line weight 5 reverse, value 2", kind: "file", block: "weight 1", line: "weight 5 reverse", value: 2, want: 90},
		diffCase{name: "file block weight 10 reverse, line weight 5, value 2", kind: "file", block: "weight 10 reverse", line: "weight 5", value: 2, want: 90},
		diffCase{name: "file block weight 10 reverse, line weight 5 noreverse, value 2", kind: "file", block: "weight 10 reverse", line: "weight 5 noreverse", value: 2, want: 110},
		// track_interface: the line alone gives weight and direction.
		diffCase{name: "iface up, weight 20", kind: "iface", iface: "uplink", line: "weight 20", want: 120},
		diffCase{name: "iface up, weight 20 reverse", kind: "iface", iface: "uplink", line: "weight 20 reverse", want: 80},
		diffCase{name: "iface down, weight -20", kind: "iface", iface: "downlink", line: "weight -20", want: 80},
		diffCase{name: "iface down, weight -20 reverse", kind: "iface", iface: "downlink", line: "weight -20 reverse", want: 120},
		diffCase{name: "iface down, weight 0", kind: "iface", iface: "downlink", line: "weight 0", want: fault},
		diffCase{name: "iface up, weight 0 reverse", kind: "iface", iface: "uplink", line: "weight 0 reverse", want: fault},
		// The address owner keeps 255 whatever the weights, but a weight-0 failure is a FAULT.
		diffCase{name: "owner, script weight 0, down", kind: "script", prio: 255, block: "weight 0", up: false, want: fault},
		diffCase{name: "owner, script weight -20, down", kind: "script", prio: 255, block: "weight -20", up: false, want: 255},
		diffCase{name: "owner, script weight 20 reverse, up", kind: "script", prio: 255, block: "weight 20 reverse", up: true, want: 255},
		diffCase{name: "owner, script weight 0 reverse, up", kind: "script", prio: 255, block: "weight 0 reverse", up: true, want: fault},
		// keepalived drops an owner's weighted trackers ("ignoring ... due to address_owner"),
		// but makes a track_file's default weight 1 a weight 0.
		diffCase{name: "owner, file default weight, value 1", kind: "file", prio: 255, value: 1, want: fault},
		diffCase{name: "owner, file weight 10, value -30", kind: "file", prio: 255, block: "weight 10", value: -30, want: 255},
		diffCase{name: "owner, iface down, weight -20", kind: "iface", prio: 255, iface: "downlink", line: "weight -20", want: 255},
		diffCase{name: "owner, iface down, weight 0", kind: "iface", prio: 255, iface: "downlink", line: "weight 0", want: fault},
	)
	return cs
}

// diffConfig is the one file both daemons run: a definition block and an instance per case,
// instance i with VRID i+1. Track files are written next to it.
func diffConfig(t *testing.T, dir string, cs []diffCase) string {
	t.Helper()
	var defs, insts strings.Builder
	for i, c := range cs {
		id := i + 1
		prio := c.prio
		if prio == 0 {
			prio = 100
		}
		var track string
		switch c.kind {
		case "script":
			cmd := "/bin/false"
			if c.up {
				cmd = "/bin/true"
			}
			fmt.Fprintf(&defs, "vrrp_script s%d {\n    script %s\n    interval 1\n    %s\n}\n", id, cmd, c.block)
			track = fmt.Sprintf("    track_script {\n        s%d %s\n    }\n", id, c.line)
		case "file":
			file := filepath.Join(dir, fmt.Sprintf("f%d", id))
			if err := os.WriteFile(file, []byte(strconv.Itoa(c.value)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&defs, "track_file f%d {\n    file %s\n    %s\n}\n", id, file, c.block)
			track = fmt.Sprintf("    track_file {\n        f%d %s\n    }\n", id, c.line)
		case "iface":
			track = fmt.Sprintf("    track_interface {\n        %s %s\n    }\n", c.iface, c.line)
		}
		// The owner starts as MASTER: keepalived requires state to match being the owner.
		state := "BACKUP"
		if prio == 255 {
			state = "MASTER"
		}
		fmt.Fprintf(&insts, "vrrp_instance VI_%d {\n    state %s\n    interface eth0\n    virtual_router_id %d\n    priority %d\n    advert_int 1\n    version 3\n%s    virtual_ipaddress {\n        192.0.2.%d/24\n    }\n}\n",
			id, state, id, prio, track, 100+id)
	}
	// Scripts under keepalived's script security, as root: its -t refuses scripts run without.
	return "global_defs {\n    enable_script_security\n    script_user root\n}\n" + defs.String() + insts.String()
}

// verdict prints a priority or FAULT.
func verdict(p int) string {
	if p == fault {
		return "FAULT"
	}
	return strconv.Itoa(p)
}

// TestPriorityDifferential: for every case, vigil advertises what keepalived 2.2.7 advertises
// on the same file (and what keepalived.conf(5) says), with vrrp_scripts run through the
// vigil-check-exec plugin (as installed) and by the check process itself (without plugins).
func TestPriorityDifferential(t *testing.T) {
	l := newInteropLab(t, 1)
	nd := l.Nodes[0]
	l.addUplinks() // "uplink", up
	for _, c := range [][]string{
		{"ip", "link", "add", "downlink", "type", "veth", "peer", "name", "downlink-peer"}, // left down
	} {
		if _, err := nd.Exec(l.ctx, c[0], c[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	// keepalived -t reports the weights it ignores for the address owner as errors; the
	// daemon runs without them, and that is what the owner cases compare.
	l.kaTolerate = regexp.MustCompile(`^(\(.*\) )?\(VI_\d+\) ignoring .*due to address[_ ]owner`)
	withExec := vigilWithExecPlugin(t)
	cs := diffCases()
	conf := diffConfig(t, l.dir, cs)
	l.startCapture()
	if l.capt == nil {
		t.Skip("the differential test reads priorities off the wire with tshark")
	}

	type run struct {
		name  string
		start func(path string) *lab.Proc
		check func(out string) // what the run's log must show about how scripts ran
	}
	var path string // keepalived's run writes the file; vigil's runs read that same file
	runs := []run{
		{name: "keepalived", start: func(string) *lab.Proc {
			r := l.startKA(0, conf)
			path = r.conf
			return r.Proc
		}},
		{name: "vigil+exec", start: func(p string) *lab.Proc { return l.startVigilOn(0, withExec, p) },
			check: func(out string) {
				if strings.Contains(out, "is not installed: the check process runs this vrrp_script itself") {
					t.Errorf("vigil+exec ran its scripts without the exec plugin:\n%s", out)
				}
			}},
		{name: "vigil", start: func(p string) *lab.Proc { return l.startVigilOn(0, vigilBin, p) },
			check: func(out string) {
				if !strings.Contains(out, "is not installed: the check process runs this vrrp_script itself") {
					t.Errorf("vigil without plugins did not run its scripts itself:\n%s", out)
				}
			}},
	}
	got := make([]map[int]int, len(runs))
	for i, r := range runs {
		// What the daemon before sent, to its priority-0 adverts as it resigned, came before
		// it exited: from here on the capture holds this run's adverts only.
		from := time.Now()
		p := r.start(path)
		got[i] = l.settledPriorities(nd.Addr4.Addr(), from, len(cs))
		l.stopTERM(p)
		if err := p.Wait(30 * time.Second); err != nil {
			t.Fatalf("%s did not stop: %v", r.name, err)
		}
		if r.check != nil {
			r.check(p.Output())
		}
	}

	var table strings.Builder
	fmt.Fprintf(&table, "%-67s %6s %10s %10s %6s\n", "case (VRID: instance)", "doc", "keepalived", "vigil+exec", "vigil")
	for i, c := range cs {
		id := i + 1
		ka := got[0][id]
		fmt.Fprintf(&table, "%2d %-64s %6s %10s %10s %6s\n", id, c.name, verdict(c.want), verdict(ka), verdict(got[1][id]), verdict(got[2][id]))
		if ka != c.want {
			t.Errorf("VRID %d (%s): keepalived advertises %s; keepalived.conf(5) reads %s: the case is wrong", id, c.name, verdict(ka), verdict(c.want))
		}
		for j := 1; j < len(runs); j++ {
			if v := got[j][id]; v != ka {
				t.Errorf("VRID %d (%s): %s advertises %s, keepalived %s", id, c.name, runs[j].name, verdict(v), verdict(ka))
			}
		}
	}
	t.Logf("priority advertised per case (FAULT: no advert, or priority 0):\n%s", table.String())
}

// settledPriorities waits until the instances on src have settled, and returns each VRID's
// verdict: the priority of its last advert, or fault for none (or priority 0). Settled means:
// the daemon has run long enough for an instance alone on the link to become master
// (settle, several times keepalived's Master_Down_Interval of 3.6 s at advert_int 1), and
// every VRID heard advertises its last three adverts at one priority. The deadline is only a
// bound for a daemon that never settles.
func (l *ilab) settledPriorities(src netip.Addr, from time.Time, n int) map[int]int {
	l.t.Helper()
	const settle = 10 * time.Second
	deadline := from.Add(2 * time.Minute)
	for {
		byVRID := map[int][]int{}
		for _, p := range l.readPackets() {
			if p.at.Before(from) || p.src != src {
				continue
			}
			byVRID[p.vrid] = append(byVRID[p.vrid], p.prio)
		}
		settled := time.Since(from) >= settle
		for _, ps := range byVRID {
			last := len(ps) - 1
			resigned := ps[last] == 0 // FAULT: it sends nothing after this
			if !resigned && (len(ps) < 3 || ps[last] != ps[last-1] || ps[last-1] != ps[last-2]) {
				settled = false
			}
		}
		if settled {
			out := map[int]int{}
			for id := 1; id <= n; id++ {
				out[id] = fault
				if ps := byVRID[id]; len(ps) > 0 && ps[len(ps)-1] != 0 {
					out[id] = ps[len(ps)-1]
				}
			}
			return out
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("the adverts did not settle: %v", byVRID)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// startVigilOn runs vigil binary bin on node i with the configuration file path (the one
// keepalived ran), with the pid file and control socket of node i.
func (l *ilab) startVigilOn(i int, bin, path string) *lab.Proc {
	l.t.Helper()
	if out, err := exec.Command(bin, "-t", "-f", path).CombinedOutput(); err != nil {
		l.t.Fatalf("vigil -t rejects %s: %v\n%s", path, err, out)
	}
	p, err := l.Nodes[i].Start(bin, "-f", path, "-D", "-p", l.pidFile(i), "--control", l.socket(i))
	if err != nil {
		l.t.Fatal(err)
	}
	l.mu.Lock()
	l.vg = append(l.vg, p)
	l.mu.Unlock()
	return p
}

// vigilWithExecPlugin returns a copy of the test's vigil binary in a directory that also holds
// vigil-check-exec, as an installation has it: vigil finds its plugins next to its own
// executable when the default plugin directory does not exist.
func vigilWithExecPlugin(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(plugin.DefaultDir); err == nil {
		t.Skipf("%s exists: vigil would take its plugins from there, not from the test's build", plugin.DefaultDir)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "vigil-check-exec"), "github.com/vigil-ha/vigil/plugins/vigil-check-exec")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building vigil-check-exec: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "vigil")
	src, err := os.Open(vigilBin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}
