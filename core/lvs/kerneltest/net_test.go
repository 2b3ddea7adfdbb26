package kerneltest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/supervisor"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lab/vm"
	"golang.org/x/sys/unix"
)

// binEnv carries the directory of the binaries built on the host into the guest, whose
// environment is the host's.
const binEnv = "VIGIL_KERNELTEST_BIN"

// TestMain builds vigil and the check plugins on the host (building under TCG is many times
// slower) into a directory beside the test binary, which the VM shares, then runs the host's
// tests and boots one VM for the TestVM ones.
func TestMain(m *testing.M) {
	if !vm.InGuest() && vm.SkipReason() == "" && vm.Available() == nil && wantsVM() {
		exe, err := os.Executable()
		if err == nil {
			dir := filepath.Join(filepath.Dir(exe), "kerneltest-bin")
			err = build(dir)
			os.Setenv(binEnv, dir)
		}
		if err != nil {
			fmt.Println("FAIL: building vigil:", err)
			os.Exit(1)
		}
	}
	vm.Main(m, "^TestVM", vm.Config{Modules: []string{
		"ip_vs", "ip_vs_rr", "ip_vs_wrr", "veth", "bridge",
	}})
}

// wantsVM: listing and fuzzing need no binaries (nor does a race build: SkipReason).
func wantsVM() bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.list") || strings.HasPrefix(a, "-test.fuzz") {
			return false
		}
	}
	return true
}

func build(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, err := lab.BuildVigil(dir); err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", dir+"/",
		"github.com/vigil-ha/vigil/plugins/vigil-check-http",
		"github.com/vigil-ha/vigil/plugins/vigil-check-tcp",
		"github.com/vigil-ha/vigil/plugins/vigil-notify-exec")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build plugins: %w\n%s", err, out)
	}
	return nil
}

// binDir is where the guest finds vigil and its plugins.
func binDir(t *testing.T) string {
	d := os.Getenv(binEnv)
	if d == "" {
		t.Fatal(binEnv + " is not set: TestMain builds vigil on the host")
	}
	return d
}

// netns is a network namespace the test made, deleted at cleanup.
type netns string

func newNS(t *testing.T, name string) netns {
	t.Helper()
	ns := netns(fmt.Sprintf("kt%d-%s", os.Getpid(), name))
	mustRun(t, "ip", "netns", "add", string(ns))
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", string(ns)).Run() })
	ns.ip(t, "link", "set", "lo", "up")
	return ns
}

func (ns netns) ip(t *testing.T, args ...string) {
	t.Helper()
	mustRun(t, "ip", append([]string{"-n", string(ns)}, args...)...)
}

// sysctl sets a sysctl inside the namespace only.
func (ns netns) sysctl(t *testing.T, kv ...string) {
	t.Helper()
	for _, s := range kv {
		mustRun(t, "ip", "netns", "exec", string(ns), "sysctl", "-qw", s)
	}
}

func (ns netns) exec(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := ns.try(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (ns netns) try(name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", string(ns), name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), ns, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// do runs f on a thread that is inside the namespace: sockets made there stay in it.
func (ns netns) do(f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + string(ns))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	ferr := f()
	// A thread that cannot go back stays locked: it dies with the goroutine.
	if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	return ferr
}

// dial connects from inside the namespace.
func (ns netns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.do(func() error {
		var err error
		c, err = (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

func (ns netns) listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	if err := ns.do(func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return l
}

// httpClient makes a new connection from the namespace for each request.
func (ns netns) httpClient(tc *tls.Config) *http.Client {
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext:       ns.dial,
			TLSClientConfig:   tc,
		},
	}
}

// veth joins two namespaces: name in a, name in b.
func veth(t *testing.T, a netns, an string, b netns, bn string) {
	t.Helper()
	tmp := fmt.Sprintf("kt%d%s", os.Getpid()%100000, bn)
	if len(tmp) > 15 {
		tmp = tmp[:15]
	}
	a.ip(t, "link", "add", an, "type", "veth", "peer", "name", tmp, "netns", string(b))
	b.ip(t, "link", "set", tmp, "name", bn)
	a.ip(t, "link", "set", an, "up")
	b.ip(t, "link", "set", bn, "up")
}

// backend is a namespace of its own with HTTP servers that answer its name: on 8080 from
// the start, on other ports (plain or TLS) when the test asks; a port set failing answers
// 500, and a port can be closed and opened again.
type backend struct {
	name string
	ns   netns
	addr string // its address on the backends' network
	mu   sync.Mutex
	fail map[int]bool
	srvs map[int]*http.Server
	body map[int]string // the answer on a port, when not its name
}

func (b *backend) setFail(port int, fail bool) {
	b.mu.Lock()
	b.fail[port] = fail
	b.mu.Unlock()
}

// serve answers HTTP (TLS with cfg) on port until the test ends or stop.
func (b *backend) serve(t *testing.T, port int, cfg *tls.Config) {
	t.Helper()
	l := b.ns.listen(t, fmt.Sprintf(":%d", port))
	if cfg != nil {
		l = tls.NewListener(l, cfg)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		fail := b.fail[port]
		b.mu.Unlock()
		if fail {
			http.Error(w, "failing", http.StatusInternalServerError)
			return
		}
		body := b.name
		if s, ok := b.body[port]; ok {
			body = s
		}
		io.WriteString(w, body)
	}), ErrorLog: log.New(io.Discard, "", 0)}
	b.mu.Lock()
	b.srvs[port] = srv
	b.mu.Unlock()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// stop closes the server on port and its connections: connecting is refused.
func (b *backend) stop(port int) {
	b.mu.Lock()
	srv := b.srvs[port]
	delete(b.srvs, port)
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// echo copies back what each connection on port sends, until the test ends.
func (b *backend) echo(t *testing.T, port int) {
	t.Helper()
	l := b.ns.listen(t, fmt.Sprintf(":%d", port))
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
}

// topo is a client, a director and three backends. The client reaches the director over
// 203.0.113.0/24 (its default route) and also sits on the backends' bridge (for DR replies,
// which come straight from the backends); the director's bridge br0 holds the backends'
// network 198.51.100.0/24, where the director is .1 and the backends' default gateway.
type topo struct {
	client, dir netns
	backends    []*backend
}

const (
	vipNAT = "192.0.2.100"
	vipDR  = "192.0.2.200"
)

func newTopo(t *testing.T, tag string) *topo {
	t.Helper()
	tp := &topo{client: newNS(t, tag+"c"), dir: newNS(t, tag+"d")}
	d, c := tp.dir, tp.client
	d.sysctl(t, "net.ipv4.ip_forward=1")
	d.ip(t, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	d.ip(t, "addr", "add", "198.51.100.1/24", "dev", "br0")
	d.ip(t, "link", "set", "br0", "up")
	// The VIPs are the director's own: IPVS takes their packets on input.
	d.ip(t, "addr", "add", vipNAT+"/32", "dev", "lo")
	d.ip(t, "addr", "add", vipDR+"/32", "dev", "lo")
	veth(t, d, "toc", c, "eth0")
	d.ip(t, "addr", "add", "203.0.113.1/24", "dev", "toc")
	c.ip(t, "addr", "add", "203.0.113.2/24", "dev", "eth0")
	c.ip(t, "route", "add", "default", "via", "203.0.113.1")
	veth(t, d, "pc", c, "eth1")
	d.ip(t, "link", "set", "pc", "master", "br0")
	c.ip(t, "addr", "add", "198.51.100.2/24", "dev", "eth1")
	c.ip(t, "route", "add", vipDR+"/32", "via", "198.51.100.1", "dev", "eth1")
	for i := 1; i <= 3; i++ {
		b := &backend{name: fmt.Sprintf("b%d", i), ns: newNS(t, fmt.Sprintf("%sb%d", tag, i)), addr: fmt.Sprintf("198.51.100.%d", 10+i),
			fail: map[int]bool{}, srvs: map[int]*http.Server{}, body: map[int]string{}}
		port := fmt.Sprintf("p%d", i)
		veth(t, d, port, b.ns, "eth0")
		d.ip(t, "link", "set", port, "master", "br0")
		b.ns.ip(t, "addr", "add", b.addr+"/24", "dev", "eth0")
		b.ns.ip(t, "route", "add", "default", "via", "198.51.100.1")
		// DR: the VIP on loopback, never answered for nor announced on eth0 (these
		// sysctls are the backend namespace's own).
		b.ns.ip(t, "addr", "add", vipDR+"/32", "dev", "lo")
		b.ns.sysctl(t, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
			"net.ipv4.conf.eth0.arp_ignore=1", "net.ipv4.conf.eth0.arp_announce=2")
		b.serve(t, 8080, nil)
		tp.backends = append(tp.backends, b)
	}
	return tp
}

// director is a vigil running in a namespace.
type director struct {
	ns   netns
	dir  string
	conf string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// rewrite writes the configuration vigil reads (with plugin_dir set to the built plugins).
func (d *director) rewrite(t *testing.T, conf string) {
	t.Helper()
	if err := os.WriteFile(d.conf, []byte("global_defs {\n    plugin_dir "+binDir(t)+"\n}\n"+conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (d *director) sock() string { return filepath.Join(d.dir, "vigil.sock") }

// startVigil runs vigil on conf (plugin_dir set to the built plugins) in ns, as its own
// process group, with its own pid file and control socket.
func startVigil(t *testing.T, ns netns, conf string, args ...string) *director {
	t.Helper()
	dir := t.TempDir()
	d := &director{ns: ns, dir: dir, conf: filepath.Join(dir, "vigil.conf")}
	d.rewrite(t, conf)
	return startVigilFile(t, ns, d.conf, args...)
}

// startVigilFile runs vigil on the file as it is.
func startVigilFile(t *testing.T, ns netns, conf string, args ...string) *director {
	t.Helper()
	bin := binDir(t)
	d := &director{ns: ns, dir: t.TempDir(), conf: conf, done: make(chan struct{})}
	d.log = filepath.Join(d.dir, "vigil.log")
	f, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command("ip", append([]string{"netns", "exec", string(ns), filepath.Join(bin, "vigil"),
		"-f", d.conf, "-p", filepath.Join(d.dir, "vigil.pid"), "--control", d.sock(), "--watch", "0"}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = f, f
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); f.Close(); close(d.done) }()
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			b, _ := os.ReadFile(d.log)
			t.Logf("vigil's log in %s:\n%s", ns, b)
		}
	})
	return d
}

func (d *director) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// kill ends vigil's whole process group at once.
func (d *director) kill() {
	select {
	case <-d.done:
		return
	default:
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
}

func (d *director) status() (*supervisor.LVSStatus, error) {
	out, err := exec.Command(filepath.Join(os.Getenv(binEnv), "vigil"), "status", "--json", "--control", d.sock()).Output()
	if err != nil {
		return nil, err
	}
	var st supervisor.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, err
	}
	if st.LVS == nil {
		return nil, fmt.Errorf("no load balancer in the status")
	}
	return st.LVS, nil
}

// ipvsadm is `ipvsadm -Ln` in the director's namespace.
func (d *director) ipvsadm(t *testing.T, args ...string) string {
	t.Helper()
	return d.ns.exec(t, "ipvsadm", append([]string{"-Ln"}, args...)...)
}

// waitFor polls cond until it holds; the deadline only bounds a failure. It is three times
// the d a test names: the tests run in a VM without KVM (TCG), and with two busy loops and
// other tests beside it on a 2-core host one step of a director once took longer than 45 s
// (TestVMFailover's sync daemon case, 2026-12-08); a failure costs the wait, a pass nothing.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	d *= 3
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not after %v", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dests are the destinations ipvsadm -Ln lists under the service, as "ADDR:PORT METHOD WEIGHT".
func dests(out, service string) []string {
	var res []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "FWM" || f[0] == "SCTP"):
			in = f[0]+" "+f[1] == service
		case in && len(f) >= 4 && f[0] == "->" && f[1] != "RemoteAddress:Port":
			res = append(res, f[1]+" "+f[2]+" "+f[3])
		}
	}
	return res
}

// spread makes n requests through url from the client, a new connection each, and counts
// the answers by body; any failed request fails the test.
func spread(t *testing.T, c netns, url string, n int) map[string]int {
	t.Helper()
	return spreadWith(t, c, url, n, nil)
}

func spreadWith(t *testing.T, c netns, url string, n int, tc *tls.Config) map[string]int {
	t.Helper()
	hc := c.httpClient(tc)
	got := map[string]int{}
	for i := range n {
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("request %d of %d to %s: %v", i+1, n, url, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d of %d to %s: %d %q %v", i+1, n, url, resp.StatusCode, b, err)
		}
		got[string(b)]++
	}
	return got
}
