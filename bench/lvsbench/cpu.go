package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/bench/internal/proc"
	"github.com/vigil-ha/vigil/core/ipvs"
	"github.com/vigil-ha/vigil/core/loglimit"
)

// The CPU case: vsCount virtual servers × rsPer real servers, every one with a TCP_CHECK (or,
// in the second case, an HTTP_GET) each second, all served by one listener process in the
// backends' namespace (rsPer addresses, one port per virtual server), which counts the
// connections: the probes. One implementation runs at a time.
const (
	vsCount = 10
	rsPer   = 100
)

// cpuResult is one implementation's CPU over the window.
type cpuResult struct {
	Window  time.Duration
	Total   time.Duration // the daemon's whole process tree (vigil: core, check, plugins)
	Plugins time.Duration // vigil's check plugins alone (0 for keepalived)
	Procs   int
	Gone    int           // processes of the tree that ended during the window
	Settle  time.Duration // from start until all real servers were in the table
	// Checking is from start until the checks run: vigil programs IPVS before its checks
	// are configured on their plugin, and says "checks started" once they are; keepalived
	// starts its checkers with its table (0: not waited for).
	Checking time.Duration
	// Reload is each reload's time from SIGHUP until the real server it adds is in the table.
	Reload []time.Duration
	// Machine is the whole VM's busy CPU over the window (proc.MachineTicks): the daemon, the
	// backends' listener and the kernel's packet processing, whoever it was charged to.
	Machine time.Duration
	// Probes is how many connections the backends accepted over the window: the probes
	// made, which a daemon whose timers lag makes fewer of.
	Probes int64
	// Perf is where the daemon's CPU went, with -perf (nil without, or when perf failed).
	Perf *kernelShare `json:",omitempty"`
	// FalseDowns counts the real servers the daemon took for down over the whole run (start,
	// window, reloads): every backend answers all the time, so each one is a false down.
	FalseDowns int
}

// falseDowns counts the downs in a daemon's log: vigil's checks that changed to down,
// keepalived's "Removing service" (what it logs when a checker takes a real server out; its
// stop logs "Shutting down service" instead).
//
// vigil limits a flapping check's "check changed" lines (core/loglimit's transition policy:
// a few lines per check and period, then one summary per period), so its written up=false
// lines undercount. A summary is the last line left out with suppressed=N added: the N
// lines left out, that one included. A check's logged changes alternate (its first state is
// not logged, each change after it flips it), so N lines that end with up=false hold
// ceil(N/2) downs, and N that end with up=true floor(N/2). (A check that a reload restarts
// starts again from a first state that is not logged, which can break the alternation once;
// lvsbench's reloads only add real servers and keep the others' checks running.)
func falseDowns(impl string, log []byte) int {
	n := 0
	for _, l := range strings.Split(string(log), "\n") {
		switch {
		case impl == "vigil":
			n += vigilDowns(l)
		case strings.Contains(l, "Removing service"):
			n++
		}
	}
	return n
}

// vigilDowns is how many downs one line of vigil's log stands for: 0 unless it is a
// "check changed" line; 1 for a line of a down, and for a summary the downs among the lines
// it stands for (see falseDowns).
func vigilDowns(line string) int {
	_, rest, ok := strings.Cut(line, "check changed: ")
	if !ok {
		return 0
	}
	f := fields(rest)
	var down bool
	switch f["up"] {
	case "false":
		down = true
	case "true":
	default:
		return 0
	}
	sup, summary := f[loglimit.SuppressedKey]
	if !summary {
		if down {
			return 1
		}
		return 0
	}
	k, err := strconv.Atoi(sup)
	if err != nil || k < 1 {
		return 0
	}
	if down {
		return (k + 1) / 2
	}
	return k / 2
}

// fields reads the key=value fields of a text log line, in any order: core re-logs a
// child's JSON line with its fields in no set order (go-plugin reads them into a map). A
// value with spaces or quotes is quoted, Go style (hclog); the plugin's detail may hold
// anything, "up=false" included, and is not mistaken for a field.
func fields(s string) map[string]string {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ")
		key, rest, ok := strings.Cut(s, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \"") {
			return out
		}
		var val string
		if strings.HasPrefix(rest, "\"") {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return out
			}
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			val, rest, _ = strings.Cut(rest, " ")
		}
		out[key] = val
		s = rest
	}
}

// reloads is how many reloads the reload case makes, each adding one real server.
const reloads = 3

// The checkers of the two CPU cases, as both implementations read them.
const (
	tcpCheck  = harness.TCPCheck
	httpCheck = harness.HTTPCheck
)

// bigConf is the CPU case's file, with extra real servers in the first virtual server.
func bigConf(extra int, checker string) string {
	return harness.LVSConf(vsCount, rsPer, extra, checker, "")
}

// measureCPU runs impl (name) alone on bigConf with checker and measures its CPU over window
// once all real servers are in the table; with the TCP_CHECK, the reload case follows.
func measureCPU(self, work, impl, name, checker string, window time.Duration, perf bool) (r cpuResult, err error) {
	useHTTP := checker == httpCheck
	tag := "cpu-" + name
	if useHTTP {
		tag = "http-" + name
	}
	s := &stack{impl: impl, name: name, dir: tag + "-d", backend: tag + "-b", self: self}
	defer func() {
		s.close()
		// For -logs: the log goes where the host can read it.
		if b, err := os.ReadFile(filepath.Join("/tmp", tag, "log")); err == nil {
			_ = os.WriteFile(filepath.Join(work, tag+".log"), b, 0o644)
			r.FalseDowns = falseDowns(impl, b)
		}
	}()
	d, b := s.dir, s.backend
	for _, c := range [][]string{
		{"ip", "netns", "add", d}, {"ip", "netns", "add", b},
		{"ip", "-n", d, "link", "set", "lo", "up"}, {"ip", "-n", b, "link", "set", "lo", "up"},
		{"ip", "-n", d, "addr", "add", "192.0.2.100/32", "dev", "lo"},
		{"ip", "-n", d, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b},
		{"ip", "-n", d, "addr", "add", "198.51.100.1/24", "dev", "eth0"},
		{"ip", "-n", d, "link", "set", "eth0", "up"},
		{"ip", "-n", b, "link", "set", "eth0", "up"},
	} {
		if err := sh(c...); err != nil {
			return r, err
		}
	}
	var batch strings.Builder
	for j := range rsPer + reloads {
		fmt.Fprintf(&batch, "addr add 198.51.100.%d/24 dev eth0\n", 11+j)
	}
	cmd := exec.Command("ip", "-n", b, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return r, fmt.Errorf("ip -batch: %w: %s", err, out)
	}
	var ports []string
	for i := range vsCount {
		ports = append(ports, fmt.Sprintf(":%d", 8000+i))
	}
	dir := filepath.Join("/tmp", tag)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	count := filepath.Join(dir, "accepted")
	if s.victim, err = s.serveCounting(strings.Join(ports, ","), useHTTP, count); err != nil {
		return r, err
	}
	if s.ipvs, err = openIn(d); err != nil {
		return r, err
	}
	cf := filepath.Join(dir, "lvs.conf")
	if err := os.WriteFile(cf, []byte(bigConf(0, checker)), 0o644); err != nil {
		return r, err
	}
	if err := s.startDaemon(work, dir, cf); err != nil {
		return r, err
	}
	start := time.Now()
	for {
		t, _, err := s.ipvs.Read()
		n := 0
		if err == nil {
			for i := range vsCount {
				n += len(t[ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.100"), uint16(80+i)))].Dests)
			}
		}
		if n == vsCount*rsPer {
			break
		}
		if time.Since(start) > 5*time.Minute {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			return r, fmt.Errorf("%s: %d of %d real servers in the table after 5 minutes; log:\n%s", name, n, vsCount*rsPer, harness.Tail(b))
		}
		time.Sleep(time.Second)
	}
	r.Settle = time.Since(start)
	if name == "vigil" {
		// The window measures checking, not the start: wait for the checks to run.
		for {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			if strings.Contains(string(b), "checks started") {
				break
			}
			if time.Since(start) > 5*time.Minute {
				return r, fmt.Errorf("%s: the checks did not start within 5 minutes; log:\n%s", name, harness.Tail(b))
			}
			time.Sleep(100 * time.Millisecond)
		}
		r.Checking = time.Since(start)
	}
	time.Sleep(5 * time.Second) // the first round of checks past
	root := s.daemon.Process.Pid
	before := proc.TicksOf(proc.PIDs(proc.Tree(root)))
	m0, err := proc.MachineTicks()
	if err != nil {
		return r, err
	}
	n0 := harness.Accepted(count)
	t0 := time.Now()
	time.Sleep(window)
	pids := proc.PIDs(proc.Tree(root))
	after := proc.TicksOf(pids)
	m1, err := proc.MachineTicks()
	if err != nil {
		return r, err
	}
	r.Machine = time.Duration(m1-min(m0, m1)) * proc.Tick()
	r.Window = time.Since(t0)
	// The count is written every 100 ms: wait for the one that covers the window's end.
	time.Sleep(200 * time.Millisecond)
	r.Probes = harness.Accepted(count) - n0
	r.Procs = len(pids)
	// A process started in the window counts from zero; one that ended in it takes its
	// time with it (Gone says how many did).
	for _, p := range pids {
		dt := time.Duration(after[p]-min(before[p], after[p])) * proc.Tick()
		r.Total += dt
		argv := proc.Cmdline(p)
		if len(argv) > 0 && strings.HasPrefix(filepath.Base(argv[0]), "vigil-check-") {
			r.Plugins += dt
		}
		fmt.Printf("lvsbench: %s: pid %d %q: %s\n", name, p, argv, dt)
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			r.Gone++
		}
	}
	if perf {
		k, err := profile(work, tag, daemonComms(name))
		if err != nil {
			// The figures of the window stand without it; the report says it is missing.
			fmt.Printf("lvsbench: %s: no profile: %v\n", name, err)
		} else {
			r.Perf = &k
		}
	}
	fmt.Printf("lvsbench: %s with %d real servers (%s): %s CPU over %s (%d processes), plugins %s; %d probes\n", name, vsCount*rsPer, strings.Fields(checker)[0], r.Total, r.Window.Round(time.Second), r.Procs, r.Plugins, r.Probes)
	if useHTTP {
		return r, nil
	}
	// The reload case: each reload adds one real server to the first virtual server.
	key := ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.100:80"))
	for k := 1; k <= reloads; k++ {
		if err := os.WriteFile(cf, []byte(bigConf(k, checker)), 0o644); err != nil {
			return r, err
		}
		want := ipvs.DestKey{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + rsPer + k)}), Port: 8000}
		t0 := time.Now()
		if err := syscall.Kill(root, syscall.SIGHUP); err != nil {
			return r, err
		}
		for {
			t, _, err := s.ipvs.Read()
			if _, ok := t[key].Dests[want]; err == nil && ok {
				break
			}
			if time.Since(t0) > 2*time.Minute {
				// A result, not a failure of the run: the report says it did not converge.
				b, _ := os.ReadFile(filepath.Join(dir, "log"))
				fmt.Printf("lvsbench: %s: reload %d: %v not in the table after 2 minutes; log:\n%s\n", name, k, want, harness.Tail(b))
				r.Reload = append(r.Reload, -1)
				return r, nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		d := time.Since(t0)
		r.Reload = append(r.Reload, d)
		fmt.Printf("lvsbench: %s: reload %d added a real server to %d in %s\n", name, k, vsCount*rsPer+k-1, d.Round(time.Millisecond))
		time.Sleep(3 * time.Second)
	}
	return r, nil
}

// startDaemon runs the implementation in the director's namespace, logging into dir/log.
func (s *stack) startDaemon(work, dir, cf string) error {
	var argv []string
	if s.name == "vigil" {
		argv = []string{filepath.Join(work, "bin", "vigil"), "-f", cf, "-p", filepath.Join(dir, "vigil.pid"),
			"--control", filepath.Join(dir, "vigil.sock"), "--watch", "0"}
	} else {
		argv = []string{s.impl, "-n", "-l", "-C", "-f", cf, "-p", filepath.Join(dir, "keepalived.pid"),
			"-r", filepath.Join(dir, "vrrp.pid"), "-c", filepath.Join(dir, "checkers.pid"), "-b", filepath.Join(dir, "bfd.pid")}
	}
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return err
	}
	s.daemon = exec.Command("ip", append([]string{"netns", "exec", s.dir}, argv...)...)
	s.daemon.Stdout, s.daemon.Stderr = log, log
	s.daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return s.daemon.Start()
}
