// Command checkcpu measures the CPU time of vigil's check path with many real-server checks,
// on this machine: no VM and no IPVS needed (the load balancer says IPVS is off and the
// checks run all the same). It is lvsbench's CPU case (10 virtual servers × 100 real servers,
// all `TCP_CHECK { connect_timeout 1 }`, delay_loop 1) without the kernel part, so that a
// change to the scheduler, the check process, the plugin host, the SDK or the tcp plugin can
// be measured in a minute:
//
//	go run ./bench/checkcpu                      # as root; builds vigil and its tcp and http plugins
//	go run ./bench/checkcpu -bin DIR             # with vigil and the plugins already built in DIR
//	go run ./bench/checkcpu -perf DIR            # and a perf profile of each of its processes
//	go run ./bench/checkcpu -http                # HTTP_GET through the http plugin instead
//
// The real servers are 198.51.100.11 ... on the loopback of a network namespace that it
// creates (cc-PID), where one listener process accepts on ports 8000 ... and closes each
// connection, and vigil runs there too. After -settle, the utime+stime of each of vigil's
// processes is read from /proc over -window; with -perf, a second window follows in which
// perf records each of vigil's processes (the first window is not disturbed by it).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/bench/internal/proc"
)

type options struct {
	bin, perf, listen, count, keepalived string
	vs, rs                               int
	window, settle                       time.Duration
	runs                                 int
	http                                 bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "directory with vigil, vigil-check-tcp and vigil-check-http already built (empty: build them)")
	flag.StringVar(&o.perf, "perf", "", "also record a perf profile of each of vigil's processes into this directory")
	flag.StringVar(&o.keepalived, "keepalived", "", "also measure this keepalived binary on the same file (its checker without IPVS)")
	flag.IntVar(&o.vs, "vs", 10, "virtual servers")
	flag.IntVar(&o.rs, "rs", 100, "real servers per virtual server")
	flag.DurationVar(&o.window, "window", 30*time.Second, "measurement window")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "wait after the start before measuring")
	flag.IntVar(&o.runs, "runs", 1, "measurement windows, one after the other (the figures of each are printed)")
	flag.BoolVar(&o.http, "http", false, "HTTP_GET { url { path / status_code 200 } } instead of TCP_CHECK, against a fixed-reply HTTP listener (the http plugin)")
	flag.StringVar(&o.listen, "listen", "", "internal: accept TCP connections on these addresses until killed")
	flag.StringVar(&o.count, "count", "", "internal: with -listen, where to write how many connections it accepted")
	flag.Parse()
	var err error
	if o.listen != "" {
		err = harness.Backend(strings.Split(o.listen, ","), o.http, o.count)
	} else {
		err = run(o)
	}
	if err != nil {
		harness.Fatalf("checkcpu", "%v", err)
	}
}

// conf is lvsbench's file (harness.LVSConf): vs virtual servers of rs real servers, one
// port per virtual server. pluginDir, when set, is vigil's plugin_dir.
func conf(vs, rs int, pluginDir string, http bool) string {
	checker := harness.TCPCheck
	if http {
		checker = harness.HTTPCheck
	}
	return harness.LVSConf(vs, rs, 0, checker, pluginDir)
}

func sh(args ...string) error {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func run(o options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates a network namespace")
	}
	if o.rs < 1 || o.rs > 200 || o.vs < 1 || o.vs > 100 {
		return errors.New("-rs must be 1..200 and -vs 1..100")
	}
	work, err := os.MkdirTemp("", "checkcpu-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := o.bin
	if bin == "" {
		root, err := harness.ModuleRoot("checkcpu")
		if err != nil {
			return err
		}
		bin = filepath.Join(work, "bin")
		harness.Logf("building vigil and its tcp and http plugins into %s", bin)
		cmd := exec.Command("go", "build", "-o", bin+"/", "./cmd/vigil", "./plugins/vigil-check-tcp", "./plugins/vigil-check-http")
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %w\n%s", err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ns := fmt.Sprintf("cc-%d", os.Getpid())
	if err := sh("ip", "netns", "add", ns); err != nil {
		return err
	}
	defer sh("ip", "netns", "del", ns)
	var batch strings.Builder
	batch.WriteString("link set lo up\naddr add 192.0.2.100/32 dev lo\n")
	for j := range o.rs {
		fmt.Fprintf(&batch, "addr add 198.51.100.%d/32 dev lo\n", 11+j)
	}
	cmd := exec.Command("ip", "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip -batch: %w: %s", err, out)
	}
	var ports []string
	for i := range o.vs {
		ports = append(ports, fmt.Sprintf(":%d", 8000+i))
	}
	count := filepath.Join(work, "accepted")
	lis := exec.Command("ip", "netns", "exec", ns, self, "-listen", strings.Join(ports, ","), "-count", count, fmt.Sprintf("-http=%v", o.http))
	lis.Stderr = os.Stderr
	lis.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := lis.Start(); err != nil {
		return err
	}
	defer func() { _ = lis.Process.Kill(); _ = lis.Wait() }()
	cf := filepath.Join(work, "vigil.conf")
	if err := os.WriteFile(cf, []byte(conf(o.vs, o.rs, bin, o.http)), 0o644); err != nil {
		return err
	}
	argv := []string{filepath.Join(bin, "vigil"), "-f", cf, "-p", filepath.Join(work, "vigil.pid"),
		"--control", filepath.Join(work, "vigil.sock"), "--watch", "0"}
	if err := measure(o, ns, work, count, "vigil", argv); err != nil {
		return err
	}
	if o.keepalived != "" {
		cf := filepath.Join(work, "keepalived.conf")
		if err := os.WriteFile(cf, []byte(conf(o.vs, o.rs, "", o.http)), 0o644); err != nil {
			return err
		}
		argv := []string{o.keepalived, "-n", "-l", "-C", "-f", cf, "-p", filepath.Join(work, "keepalived.pid"),
			"-r", filepath.Join(work, "vrrp.pid"), "-c", filepath.Join(work, "checkers.pid"), "-b", filepath.Join(work, "bfd.pid")}
		if err := measure(o, ns, work, count, "keepalived", argv); err != nil {
			return err
		}
	}
	return nil
}

// measure runs argv in ns and prints each of its processes' CPU over the window.
func measure(o options, ns, work, count, name string, argv []string) error {
	logf := filepath.Join(work, name+".log")
	log, err := os.Create(logf)
	if err != nil {
		return err
	}
	defer log.Close()
	d := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	d.Stdout, d.Stderr = log, log
	d.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = d.Wait(); close(exited) }()
	defer func() {
		_ = syscall.Kill(-d.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-d.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}()
	harness.Logf("%s: %d real servers, settling for %s", name, o.vs*o.rs, o.settle)
	select {
	case <-exited:
		b, _ := os.ReadFile(logf)
		return fmt.Errorf("%s exited; its log:\n%s", name, harness.Tail(b))
	case <-time.After(o.settle):
	}
	root := d.Process.Pid
	for k := range o.runs {
		before := proc.TicksOf(proc.PIDs(proc.Tree(root)))
		n0 := harness.Accepted(count)
		t0 := time.Now()
		time.Sleep(o.window)
		pids := proc.PIDs(proc.Tree(root))
		after := proc.TicksOf(pids)
		window := time.Since(t0)
		probes := harness.Accepted(count) - n0
		var total time.Duration
		rows := map[string]time.Duration{}
		for _, p := range pids {
			dt := time.Duration(after[p]-min(before[p], after[p])) * proc.Tick()
			total += dt
			rows[role(proc.Cmdline(p))] += dt
		}
		keys := make([]string, 0, len(rows))
		for k := range rows {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d ms", k, rows[k].Milliseconds()))
		}
		gone := 0
		for p := range before {
			if _, ok := after[p]; !ok {
				gone++
			}
		}
		per := "-"
		if probes > 0 {
			per = fmt.Sprintf("%.1f", float64(total.Microseconds())/float64(probes))
		}
		fmt.Printf("checkcpu: %s run %d: %d real servers: %d ms CPU over %s (%.1f %% of one CPU): %s; %d connections accepted (%s µs of CPU each); %d processes ended in the window\n",
			name, k+1, o.vs*o.rs, total.Milliseconds(), window.Round(time.Second), 100*total.Seconds()/window.Seconds(), strings.Join(parts, ", "), probes, per, gone)
	}
	if o.perf != "" {
		return record(o, root, name)
	}
	return nil
}

// record runs perf over one more window on each process of the tree.
func record(o options, root int, name string) error {
	if err := os.MkdirAll(o.perf, 0o755); err != nil {
		return err
	}
	var cmds []*exec.Cmd
	for _, p := range proc.PIDs(proc.Tree(root)) {
		r := role(proc.Cmdline(p))
		out := filepath.Join(o.perf, fmt.Sprintf("%s-%s.data", name, strings.ReplaceAll(r, "/", "_")))
		c := exec.Command("perf", "record", "-F", "997", "-g", "-p", fmt.Sprint(p), "-o", out, "--", "sleep", fmt.Sprint(int(o.window.Seconds())))
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		if err := c.Start(); err != nil {
			return fmt.Errorf("perf: %w", err)
		}
		cmds = append(cmds, c)
		harness.Logf("perf: recording %s (pid %d) into %s", r, p, out)
	}
	for _, c := range cmds {
		_ = c.Wait()
	}
	return nil
}

// role names a process of the tree by what it runs.
func role(argv []string) string {
	if len(argv) == 0 {
		return "?"
	}
	base := filepath.Base(argv[0])
	for i, a := range argv {
		if (a == "--role" || a == "-role") && i+1 < len(argv) {
			return argv[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--role="); ok {
			return v
		}
	}
	switch base {
	case "vigil":
		return "core"
	case "ip":
		return "ip"
	}
	return base
}
