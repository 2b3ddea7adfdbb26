package main

// The load-balancer demo (make demo-lvs). This machine's kernel may have no IPVS, so the
// demo boots one (internal/lab/vm: Debian's kernel under qemu, the host's root over 9p) and runs
// itself inside it with -lvs-guest: a director running vigil on configs/keepalived-lvs.conf,
// three HTTP backends and a client, each in a network namespace of its own. The backends and
// the client are this same binary again (-lvs-backend, -lvs-client) run with ip netns exec,
// so killing a backend is killing a process.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/vm"
)

const (
	lvsVIP     = "192.0.2.100"
	lvsService = "TCP  " + lvsVIP + ":80"
	lvsReqs    = 30
)

// lvsFlags are the load-balancer demo's flags; the hidden ones are how the demo runs its
// parts inside the VM.
type lvsFlags struct {
	on, guest bool
	config    string
	backend   string // -lvs-backend NAME: serve NAME on :8080 until killed
	client    string // -lvs-client URL: lvsReqs requests, the spread as JSON
}

func (f *lvsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "lvs", false, "the load-balancer story instead: vigil as an IPVS director of three HTTP backends, one killed (boots a VM: root, qemu)")
	fs.StringVar(&f.config, "lvs-config", "configs/keepalived-lvs.conf", "with -lvs: the configuration the director runs")
	fs.BoolVar(&f.guest, "lvs-guest", false, "internal: the demo's part inside the VM")
	fs.StringVar(&f.backend, "lvs-backend", "", "internal: an HTTP backend answering its name")
	fs.StringVar(&f.client, "lvs-client", "", "internal: the client's requests")
}

// lvsMain runs the part the flags ask for and returns the exit code.
func lvsMain(f *lvsFlags, bin string) int {
	var err error
	switch {
	case f.backend != "":
		err = lvsBackend(f.backend)
	case f.client != "":
		err = lvsClient(f.client)
	case f.guest:
		err = lvsGuest(bin, f.config)
	default:
		err = lvsHost(bin, f.config)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vigil-demo: %v\n", err)
		return 1
	}
	return 0
}

// lvsHost boots the VM and runs the demo in it.
func lvsHost(bin, conf string) error {
	if err := vm.Available(); err != nil {
		return fmt.Errorf("the load-balancer demo needs a VM (this kernel may lack IPVS): %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	if conf, err = filepath.Abs(conf); err != nil {
		return err
	}
	for _, p := range []string{bin, filepath.Join(filepath.Dir(bin), "vigil-check-tcp"), conf} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s not found: run make build first", p)
		}
	}
	step("booting a VM with IPVS (qemu, no KVM needed: about a minute on two cores)")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := vm.Run(ctx, vm.Config{
		Modules: []string{"ip_vs", "ip_vs_rr", "veth", "bridge"},
		Console: os.Stdout,
	}, []string{self, "-lvs-guest", "-vigil", bin, "-lvs-config", conf}, os.Environ())
	if err != nil {
		return err
	}
	step("the VM is off: booted in %s, %s in all", res.Boot.Round(time.Second), res.Elapsed.Round(time.Second))
	if res.ExitCode != 0 {
		return fmt.Errorf("the demo failed inside the VM (exit status %d)", res.ExitCode)
	}
	return nil
}

// lvsBackend answers every request with name until it is killed.
func lvsBackend(name string) error {
	return http.ListenAndServe(":8080", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, name)
	}))
}

// lvsClient makes lvsReqs requests to url, a new connection each, and prints the answers
// counted by body, with the failures under "failed".
func lvsClient(url string) error {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	got := map[string]int{}
	for range lvsReqs {
		resp, err := hc.Get(url)
		if err != nil {
			got["failed"]++
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			got["failed"]++
			continue
		}
		got[string(b)]++
	}
	return json.NewEncoder(os.Stdout).Encode(got)
}

// lvsLab is the demo's namespaces and processes inside the VM.
type lvsLab struct {
	self, vigil, conf, dir string
	nss                    []string
	client, director       string
	backends               map[string]*exec.Cmd
	vigilCmd               *exec.Cmd
}

func (l *lvsLab) ns(name string) string {
	ns := fmt.Sprintf("vd%d-%s", os.Getpid(), name)
	l.nss = append(l.nss, ns)
	return ns
}

func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// sh runs each command, stopping at the first error.
func sh(cmds ...[]string) error {
	for _, c := range cmds {
		if _, err := runCmd(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// build makes the network: the client on 203.0.113.0/24 routes to the director (.1), which
// holds the VIP and is the gateway of the backends' bridge 198.51.100.0/24 (NAT: replies
// must come back through it).
func (l *lvsLab) build() error {
	l.client, l.director = l.ns("client"), l.ns("director")
	c, d := l.client, l.director
	for _, ns := range []string{c, d} {
		if err := sh([]string{"ip", "netns", "add", ns}, []string{"ip", "-n", ns, "link", "set", "lo", "up"}); err != nil {
			return err
		}
	}
	if err := sh(
		[]string{"ip", "netns", "exec", d, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		[]string{"ip", "-n", d, "link", "add", "br0", "type", "bridge"},
		[]string{"ip", "-n", d, "addr", "add", "198.51.100.1/24", "dev", "br0"},
		[]string{"ip", "-n", d, "link", "set", "br0", "up"},
		[]string{"ip", "-n", d, "addr", "add", lvsVIP + "/32", "dev", "lo"},
		[]string{"ip", "-n", d, "link", "add", "toc", "type", "veth", "peer", "name", "eth0", "netns", c},
		[]string{"ip", "-n", d, "addr", "add", "203.0.113.1/24", "dev", "toc"},
		[]string{"ip", "-n", d, "link", "set", "toc", "up"},
		[]string{"ip", "-n", c, "addr", "add", "203.0.113.2/24", "dev", "eth0"},
		[]string{"ip", "-n", c, "link", "set", "eth0", "up"},
		[]string{"ip", "-n", c, "route", "add", "default", "via", "203.0.113.1"},
	); err != nil {
		return err
	}
	l.backends = map[string]*exec.Cmd{}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("b%d", i)
		ns := l.ns(name)
		port := "p" + name
		if err := sh(
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", d, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"ip", "-n", d, "link", "set", port, "master", "br0"},
			[]string{"ip", "-n", d, "link", "set", port, "up"},
			[]string{"ip", "-n", ns, "addr", "add", fmt.Sprintf("198.51.100.%d/24", 10+i), "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", ns, "route", "add", "default", "via", "198.51.100.1"},
		); err != nil {
			return err
		}
		cmd := exec.Command("ip", "netns", "exec", ns, l.self, "-lvs-backend", name)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		l.backends[name] = cmd
		step("backend %s: an HTTP server on 198.51.100.%d:8080 in namespace %s (pid %d)", name, 10+i, ns, cmd.Process.Pid)
	}
	return nil
}

func (l *lvsLab) startVigil() error {
	log, err := os.Create(filepath.Join(l.dir, "vigil.log"))
	if err != nil {
		return err
	}
	l.vigilCmd = exec.Command("ip", "netns", "exec", l.director, l.vigil, "-f", l.conf,
		"-p", filepath.Join(l.dir, "vigil.pid"), "--control", l.sock(), "--watch", "0")
	l.vigilCmd.Stdout, l.vigilCmd.Stderr = log, log
	l.vigilCmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return l.vigilCmd.Start()
}

func (l *lvsLab) sock() string { return filepath.Join(l.dir, "vigil.sock") }

func (l *lvsLab) close() {
	if l.vigilCmd != nil && l.vigilCmd.Process != nil {
		_ = syscall.Kill(-l.vigilCmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { l.vigilCmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-l.vigilCmd.Process.Pid, syscall.SIGKILL)
		}
	}
	for _, b := range l.backends {
		if b.ProcessState == nil {
			_ = b.Process.Kill()
			_ = b.Wait()
		}
	}
	for _, ns := range l.nss {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

// dests are the destinations `ipvsadm -Ln` lists under the demo's service.
func (l *lvsLab) dests() ([]string, string) {
	out, _ := runCmd("ip", "netns", "exec", l.director, "ipvsadm", "-Ln")
	var res []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "FWM"):
			in = f[0]+"  "+f[1] == lvsService
		case in && len(f) >= 4 && f[0] == "->" && f[1] != "RemoteAddress:Port":
			res = append(res, f[1])
		}
	}
	return res, out
}

func (l *lvsLab) waitDests(want []string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		got, out := l.dests()
		if slices.Equal(got, want) {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("after %s the kernel's table is not %v:\n%s", limit, want, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *lvsLab) show() {
	_, out := l.dests()
	fmt.Printf("\n$ ipvsadm -Ln    (in the director's namespace)\n%s\n", out)
	st, err := runCmd(l.vigil, "status", "--control", l.sock())
	if err != nil {
		st = err.Error()
	}
	fmt.Printf("$ vigil status\n%s\n", st)
}

// spread runs the client and returns its counts.
func (l *lvsLab) spread() (map[string]int, error) {
	out, err := runCmd("ip", "netns", "exec", l.client, l.self, "-lvs-client", "http://"+lvsVIP+"/")
	if err != nil {
		return nil, err
	}
	got := map[string]int{}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		return nil, fmt.Errorf("the client said %q: %w", out, err)
	}
	return got, nil
}

func fmtSpread(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// lvsGuest is the demo proper, inside the VM.
func lvsGuest(bin, conf string) error {
	if !vm.InGuest() {
		return errors.New("-lvs-guest runs inside the demo's VM only")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vigil-demo-lvs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l := &lvsLab{self: self, vigil: bin, conf: conf, dir: dir}
	defer func() {
		step("cleaning up: stopping vigil (it removes its IPVS service) and the backends, deleting the namespaces")
		l.close()
	}()
	step("inside the VM (%s): building a client, a director and three backends, each in its own network namespace", kernelRelease())
	if err := l.build(); err != nil {
		return err
	}
	step("starting vigil on the director with %s", conf)
	if err := l.startVigil(); err != nil {
		return err
	}
	all := []string{"198.51.100.11:8080", "198.51.100.12:8080", "198.51.100.13:8080"}
	d, err := l.waitDests(all, 2*time.Minute)
	if err != nil {
		return l.withLog(err)
	}
	step("vigil's TCP checks passed and it programmed IPVS: three real servers behind %s:80 (%s after start)", lvsVIP, d.Round(time.Millisecond))
	l.show()

	var failed []string
	check := func(what string, got, want map[string]int) {
		if fmtSpread(got) != fmtSpread(want) {
			failed = append(failed, fmt.Sprintf("%s: got %s, want %s", what, fmtSpread(got), fmtSpread(want)))
		}
	}
	got, err := l.spread()
	if err != nil {
		return err
	}
	step("%d requests from the client to http://%s/, a new connection each (lb_algo rr): %s", lvsReqs, lvsVIP, fmtSpread(got))
	check("spread before the kill", got, map[string]int{"b1": 10, "b2": 10, "b3": 10})

	step("killing backend b2 (kill -9 of its HTTP server, pid %d)", l.backends["b2"].Process.Pid)
	if err := l.backends["b2"].Process.Kill(); err != nil {
		return err
	}
	_ = l.backends["b2"].Wait()
	d, err = l.waitDests([]string{all[0], all[2]}, time.Minute)
	if err != nil {
		return l.withLog(err)
	}
	step("vigil's TCP_CHECK failed and b2 left the IPVS table %s after the kill (delay_loop 1, retry 1)", d.Round(time.Millisecond))
	l.show()

	got, err = l.spread()
	if err != nil {
		return err
	}
	step("%d requests again: %s", lvsReqs, fmtSpread(got))
	check("spread after the removal (no request may fail)", got, map[string]int{"b1": 15, "b3": 15})

	if len(failed) > 0 {
		for _, f := range failed {
			step("FAILED: %s", f)
		}
		return l.withLog(errors.New("the demo did not show what it should"))
	}
	step("all held: an even spread over three backends, the killed one removed by vigil, and no failed request after its removal")
	return nil
}

func (l *lvsLab) withLog(err error) error {
	b, _ := os.ReadFile(filepath.Join(l.dir, "vigil.log"))
	return fmt.Errorf("%w\nvigil's log:\n%s", err, b)
}

func kernelRelease() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "?"
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return "Linux " + string(b)
}
