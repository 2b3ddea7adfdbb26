// Command lvsbench measures vigil's load balancer beside keepalived 2.2.7's in one run, in a
// kernel with IPVS (internal/lab/vm boots one: this machine's may have none), and writes the
// results into BENCHMARKS.md:
//
//	go run ./bench/lvsbench -out BENCHMARKS.md
//
// Measured: a real server's failure until its removal from the kernel's IPVS table, with
// delay_loop 1 and TCP_CHECK retry 1. vigil and keepalived each direct one virtual server of
// two real servers from a namespace of their own inside the VM, at the same time, on the same
// configuration file; the trials alternate between them. A trial waits a random part of a
// second (so that the kill falls anywhere in the check interval), kills the HTTP server of
// one real server (connections are refused from then on), and polls the director's IPVS
// table through core/ipvs every 10 ms until the server is gone; then the server is started
// again and the trial waits until it is back. Nothing leaves the VM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/core/ipvs"
	"github.com/vigil-ha/vigil/internal/lab/vm"
)

type options struct {
	out, keepalived, work, listen, logs, count string
	n, servers                                 int
	window                                     time.Duration
	guest, http, httpCPU, perf                 bool
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "", "write the results into the lvsbench block of this file (BENCHMARKS.md); empty: stdout only")
	flag.StringVar(&o.keepalived, "keepalived", "/usr/sbin/keepalived", "the keepalived binary run beside vigil")
	flag.IntVar(&o.n, "n", 10, "failures per implementation")
	flag.IntVar(&o.servers, "cpu", 1000, "the CPU case with 10 virtual servers x 100 real servers (1000; 0: skip it)")
	flag.BoolVar(&o.httpCPU, "cpu-http", true, "the CPU case again with HTTP_GET (false: TCP_CHECK only)")
	flag.BoolVar(&o.perf, "perf", false, "after each CPU window, profile the VM with perf (perf record -a) and report where the daemons' CPU goes")
	flag.DurationVar(&o.window, "window", 30*time.Second, "the CPU case's measurement window")
	flag.StringVar(&o.logs, "logs", "", "copy the daemons' logs of the CPU and reload case (and -perf's reports) into this directory")
	flag.BoolVar(&o.guest, "guest", false, "internal: the part inside the VM")
	flag.StringVar(&o.work, "work", "", "internal: the work directory shared with the VM")
	flag.StringVar(&o.listen, "listen", "", "internal: accept TCP connections on these addresses until killed")
	flag.BoolVar(&o.http, "http", false, "internal: with -listen, answer HTTP")
	flag.StringVar(&o.count, "count", "", "internal: with -listen, where to write how many connections it accepted")
	flag.Parse()
	var err error
	switch {
	case o.listen != "":
		err = harness.Backend(strings.Split(o.listen, ","), o.http, o.count)
	case o.guest:
		err = guest(o)
	default:
		err = host(o)
	}
	if err != nil {
		harness.Fatalf("lvsbench", "%v", err)
	}
}

// result is what the guest hands back through the shared work directory.
type result struct {
	Kernel  string
	Removal map[string][]time.Duration // implementation → failure-to-removal of each trial
	CPU     map[string]cpuResult       // implementation → the CPU case (none when skipped)
	HTTP    map[string]cpuResult       // implementation → the CPU case with HTTP_GET
}

func host(o options) error {
	if err := vm.Available(); err != nil {
		return fmt.Errorf("lvsbench needs a VM with IPVS: %w", err)
	}
	ka, err := exec.LookPath(o.keepalived)
	if err != nil {
		return fmt.Errorf("keepalived: %w", err)
	}
	root, err := harness.ModuleRoot("lvsbench")
	if err != nil {
		return err
	}
	m := harness.CollectMachine(root, ka)
	start := time.Now()
	work, err := os.MkdirTemp("", "lvsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "bin")
	// Built on the host: building under TCG is many times slower.
	harness.Logf("building vigil, vigil-check-tcp and vigil-check-http into %s", bin)
	cmd := exec.Command("go", "build", "-o", bin+"/", "./cmd/vigil", "./plugins/vigil-check-tcp", "./plugins/vigil-check-http")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	// go run's binary is under /tmp, which the guest covers with a tmpfs: run a copy
	// from the shared work directory.
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	self := filepath.Join(bin, "lvsbench")
	if err := copyFile(exe, self); err != nil {
		return err
	}
	harness.Logf("booting the VM (qemu TCG) and running %d failures per implementation in it", o.n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	res, err := vm.Run(ctx, vm.Config{
		Shares:  []string{work},
		Modules: []string{"ip_vs", "ip_vs_rr", "veth"},
		Console: os.Stderr,
	}, []string{self, "-guest", "-work", work, "-n", fmt.Sprint(o.n), "-keepalived", ka,
		"-cpu", fmt.Sprint(o.servers), "-cpu-http=" + fmt.Sprint(o.httpCPU), "-window", o.window.String(), "-perf=" + fmt.Sprint(o.perf)}, os.Environ())
	if err != nil {
		return err
	}
	if o.logs != "" {
		// The guest left them in the work directory, which goes with this run.
		if err := os.MkdirAll(o.logs, 0o755); err != nil {
			return err
		}
		for _, name := range []string{"vigil", "keepalived"} {
			for _, tag := range []string{"cpu-" + name, "http-" + name} {
				if b, err := os.ReadFile(filepath.Join(work, tag+".log")); err == nil {
					_ = os.WriteFile(filepath.Join(o.logs, tag+".log"), b, 0o644)
				}
			}
		}
		reports, _ := filepath.Glob(filepath.Join(work, "perf-*.txt"))
		for _, f := range reports {
			if b, err := os.ReadFile(f); err == nil {
				_ = os.WriteFile(filepath.Join(o.logs, filepath.Base(f)), b, 0o644)
			}
		}
		harness.Logf("the daemons' logs of the CPU and reload case are in %s", o.logs)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("the benchmark failed inside the VM (exit status %d)", res.ExitCode)
	}
	b, err := os.ReadFile(filepath.Join(work, "result.json"))
	if err != nil {
		return err
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	m.LoadAfter = harness.Loadavg()
	md := markdown(o, m, r, time.Since(start), res.Boot)
	fmt.Print(md)
	if o.out != "" {
		return harness.WriteBlock(o.out, "lvsbench", md)
	}
	return nil
}

const conf = `! lvsbench: one virtual server, two real servers, TCP_CHECK every second, retry 1
virtual_server 192.0.2.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 198.51.100.11 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
        }
    }
    real_server 198.51.100.12 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
        }
    }
}
`

var (
	victim = netip.MustParseAddr("198.51.100.11")
	svcKey = ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.100:80"))
)

// stack is one implementation's director and backends.
type stack struct {
	impl, name   string // the binary (vigil: the built one) and the report's name
	dir, backend string // namespaces
	daemon       *exec.Cmd
	victim       *exec.Cmd // the listener of 198.51.100.11:8080
	others       []*exec.Cmd
	ipvs         *ipvs.Client // opened inside dir
	self         string
}

func sh(args ...string) error {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *stack) build(work string) error {
	d, b := s.dir, s.backend
	for _, c := range [][]string{
		{"ip", "netns", "add", d}, {"ip", "netns", "add", b},
		{"ip", "-n", d, "link", "set", "lo", "up"}, {"ip", "-n", b, "link", "set", "lo", "up"},
		{"ip", "-n", d, "addr", "add", "192.0.2.100/32", "dev", "lo"},
		{"ip", "-n", d, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b},
		{"ip", "-n", d, "addr", "add", "198.51.100.1/24", "dev", "eth0"},
		{"ip", "-n", d, "link", "set", "eth0", "up"},
		{"ip", "-n", b, "addr", "add", "198.51.100.11/24", "dev", "eth0"},
		{"ip", "-n", b, "addr", "add", "198.51.100.12/24", "dev", "eth0"},
		{"ip", "-n", b, "link", "set", "eth0", "up"},
	} {
		if err := sh(c...); err != nil {
			return err
		}
	}
	var err error
	if s.victim, err = s.serve("198.51.100.11:8080"); err != nil {
		return err
	}
	other, err := s.serve("198.51.100.12:8080")
	if err != nil {
		return err
	}
	s.others = append(s.others, other)
	if s.ipvs, err = openIn(d); err != nil {
		return err
	}
	dir := filepath.Join("/tmp", s.impl)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cf := filepath.Join(dir, "lvs.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return err
	}
	return s.startDaemon(work, dir, cf)
}

func (s *stack) serve(addr string) (*exec.Cmd, error) { return s.serveCounting(addr, false, "") }

// serveCounting serves addr (a comma-separated list) from the backends' namespace: HTTP
// with useHTTP, else accept and close; with count, the connections are counted there.
func (s *stack) serveCounting(addr string, useHTTP bool, count string) (*exec.Cmd, error) {
	args := []string{"netns", "exec", s.backend, s.self, "-listen", addr, "-count", count}
	if useHTTP {
		args = append(args, "-http")
	}
	c := exec.Command("ip", args...)
	c.Stderr = os.Stderr
	return c, c.Start()
}

// hasVictim says whether 198.51.100.11:8080 is a destination of the service in the table.
func (s *stack) hasVictim() bool {
	t, _, err := s.ipvs.Read()
	if err != nil {
		return false
	}
	_, ok := t[svcKey].Dests[ipvs.DestKey{Addr: victim, Port: 8080}]
	return ok
}

func (s *stack) waitVictim(present bool, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for s.hasVictim() != present {
		if time.Since(start) > limit {
			b, _ := os.ReadFile(filepath.Join("/tmp", s.impl, "log"))
			return 0, fmt.Errorf("%s: 198.51.100.11:8080 in the table is not %v after %s; its log:\n%s", s.impl, present, limit, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start), nil
}

func (s *stack) close() {
	if s.daemon != nil && s.daemon.Process != nil {
		_ = syscall.Kill(-s.daemon.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.daemon.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.daemon.Process.Pid, syscall.SIGKILL)
		}
	}
	for _, c := range append([]*exec.Cmd{s.victim}, s.others...) {
		if c != nil && c.Process != nil && c.ProcessState == nil {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	if s.ipvs != nil {
		s.ipvs.Close()
	}
	_ = exec.Command("ip", "netns", "del", s.dir).Run()
	_ = exec.Command("ip", "netns", "del", s.backend).Run()
}

// openIn opens an IPVS client inside the namespace: its netlink sockets stay there.
func openIn(ns string) (*ipvs.Client, error) {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("setns %s: %w", ns, err)
	}
	c, err := ipvs.Open()
	// A thread that cannot go back stays locked: it dies with the goroutine.
	if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	return c, err
}

func guest(o options) error {
	if !vm.InGuest() {
		return fmt.Errorf("-guest runs inside lvsbench's VM only")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var stacks []*stack
	defer func() {
		for _, s := range stacks {
			s.close()
		}
	}()
	for _, impl := range []string{"vigil", o.keepalived} {
		name := "vigil"
		if impl != "vigil" {
			name = "keepalived"
		}
		s := &stack{impl: impl, name: name, dir: "lb-" + name + "-d", backend: "lb-" + name + "-b", self: self}
		stacks = append(stacks, s)
		if err := s.build(o.work); err != nil {
			return err
		}
	}
	for _, s := range stacks {
		if _, err := s.waitVictim(true, 2*time.Minute); err != nil {
			return err
		}
	}
	r := result{Kernel: kernel(), Removal: map[string][]time.Duration{}}
	for i := range o.n {
		order := slices.Clone(stacks)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, s := range order {
			time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
			if err := s.victim.Process.Kill(); err != nil {
				return err
			}
			_ = s.victim.Wait()
			d, err := s.waitVictim(false, time.Minute)
			if err != nil {
				return err
			}
			r.Removal[s.name] = append(r.Removal[s.name], d)
			fmt.Printf("lvsbench: trial %d, %s: removed %s after the kill\n", i+1, s.name, d.Round(time.Millisecond))
			if s.victim, err = s.serve("198.51.100.11:8080"); err != nil {
				return err
			}
			if _, err := s.waitVictim(true, time.Minute); err != nil {
				return err
			}
		}
	}
	for _, s := range stacks {
		s.close()
	}
	stacks = nil
	if o.servers > 0 {
		r.CPU, r.HTTP = map[string]cpuResult{}, map[string]cpuResult{}
		checkers := []string{tcpCheck}
		if o.httpCPU {
			checkers = append(checkers, httpCheck)
		}
		for _, checker := range checkers {
			for _, impl := range []string{"vigil", o.keepalived} {
				name := "vigil"
				if impl != "vigil" {
					name = "keepalived"
				}
				c, err := measureCPU(self, o.work, impl, name, checker, o.window, o.perf)
				if err != nil {
					return err
				}
				if checker == httpCheck {
					r.HTTP[name] = c
				} else {
					r.CPU[name] = c
				}
			}
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.work, "result.json"), b, 0o644)
}

func kernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}
