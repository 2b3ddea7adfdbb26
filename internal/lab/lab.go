// Package lab builds throwaway networks of network namespaces for tests, the demo and the
// benchmarks: a bridge in a "switch" namespace and nodes attached to it by veth pairs (New),
// or a client and nodes each on a link of its own to a router namespace (NewRouted). It
// drives iproute2, the same tool an operator would use to inspect what it built, and runs
// FRR's daemons in a node (StartFRRDaemons) for VRRP interop and as a BGP router.
//
// Only documentation prefixes are used (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and
// 2001:db8::/32), and every namespace carries the lab's unique name so parallel test
// packages cannot collide.
package lab

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Lab is a bridge and the nodes plugged into it, or a router with a client and the nodes
// each on a link of its own (NewRouted).
type Lab struct {
	Name   string
	Switch string // namespace holding the bridge; in a routed lab, the router's
	Nodes  []*Node
	Router *Node // a routed lab's router, nil in a bridged one
	Client *Node // a routed lab's client, nil in a bridged one
	dir    string

	mu    sync.Mutex
	procs []*Proc
}

// Node is one namespace with an eth0 on the lab's bridge, or on its link to the router.
type Node struct {
	lab   *Lab
	Name  string
	NS    string
	Iface string
	Addr4 netip.Prefix
	Addr6 netip.Prefix
	// Gateway4 and Gateway6 are the router's addresses on the node's link, its default
	// routes; invalid in a bridged lab.
	Gateway4, Gateway6 netip.Addr
	// VIPIface is the interface for the node's virtual addresses in a routed lab, "" in a
	// bridged one.
	VIPIface string
}

// Proc is a process started in a node.
type Proc struct {
	Cmd  *exec.Cmd
	Log  string // file holding its stdout and stderr
	done chan struct{}
	err  error
}

// Available says why labs cannot be built here, or nil when they can.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("iproute2's ip command is not installed")
	}
	return nil
}

// New builds a lab of n nodes. name should be unique per test; the process id is added so
// concurrent runs do not collide. dir receives process logs.
func New(ctx context.Context, name string, n int, dir string) (*Lab, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	base := fmt.Sprintf("vg-%s-%d", name, os.Getpid())
	l := &Lab{Name: base, Switch: base + "-sw", dir: dir}
	if err := l.build(ctx, n); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) build(ctx context.Context, n int) error {
	if err := run(ctx, "ip", "netns", "add", l.Switch); err != nil {
		return err
	}
	for _, c := range [][]string{
		{"link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"link", "set", "br0", "up"},
		{"link", "set", "lo", "up"},
	} {
		if err := l.ip(ctx, l.Switch, c...); err != nil {
			return err
		}
	}
	for range n {
		if _, err := l.AddNode(ctx); err != nil {
			return err
		}
	}
	return nil
}

// AddNode plugs one more node into the bridge: namespace NAME-nI, eth0 with 192.0.2.(10+I)/24
// and 2001:db8::(10+I)/64.
func (l *Lab) AddNode(ctx context.Context) (*Node, error) {
	if l.Router != nil {
		return nil, fmt.Errorf("lab %s: AddNode plugs into a bridge, and a routed lab has none: make it with NewRouted and the nodes it needs", l.Name)
	}
	i := len(l.Nodes) + 1
	nd := &Node{
		lab:   l,
		Name:  fmt.Sprintf("n%d", i),
		NS:    fmt.Sprintf("%s-n%d", l.Name, i),
		Iface: "eth0",
		Addr4: netip.MustParsePrefix(fmt.Sprintf("192.0.2.%d/24", 10+i)),
		Addr6: netip.MustParsePrefix(fmt.Sprintf("2001:db8::%x/64", 0x10+i)),
	}
	l.Nodes = append(l.Nodes, nd)
	if err := run(ctx, "ip", "netns", "add", nd.NS); err != nil {
		return nil, err
	}
	// No duplicate address detection in the lab: it holds IPv6 addresses (the link-local one
	// that VRRPv3 sends from, and the VIPs) "tentative" for a second after they appear.
	for _, kv := range []string{"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"} {
		if err := run(ctx, "ip", "netns", "exec", nd.NS, "sysctl", "-qw", kv); err != nil {
			return nil, err
		}
	}
	peer := fmt.Sprintf("p%d", i)
	steps := [][]string{
		{"-n", nd.NS, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", l.Switch},
		{"-n", nd.NS, "link", "set", "lo", "up"},
		{"-n", nd.NS, "addr", "add", nd.Addr4.String(), "dev", "eth0"},
		{"-n", nd.NS, "addr", "add", nd.Addr6.String(), "dev", "eth0", "nodad"},
		{"-n", nd.NS, "link", "set", "eth0", "up"},
		{"-n", l.Switch, "link", "set", peer, "master", "br0"},
		{"-n", l.Switch, "link", "set", peer, "up"},
	}
	for _, s := range steps {
		if err := run(ctx, "ip", s...); err != nil {
			return nil, err
		}
	}
	return nd, nil
}

func (l *Lab) ip(ctx context.Context, ns string, args ...string) error {
	return run(ctx, "ip", append([]string{"-n", ns}, args...)...)
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Close stops every process the lab started (by PID, whole process group) and deletes the
// namespaces. It is safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	procs := l.procs
	l.procs = nil
	l.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	var errs []error
	nodes := l.Nodes
	if l.Client != nil {
		nodes = append([]*Node{l.Client}, nodes...)
	}
	for _, nd := range nodes {
		if err := run(context.Background(), "ip", "netns", "del", nd.NS); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	if err := run(context.Background(), "ip", "netns", "del", l.Switch); err != nil && !strings.Contains(err.Error(), "No such file") {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Start runs a command inside the node, its output going to a log file in the lab's dir.
// The process gets its own process group, so Kill reaches whatever it spawned.
func (nd *Node) Start(name string, args ...string) (*Proc, error) {
	logPath := filepath.Join(nd.lab.dir, fmt.Sprintf("%s-%s-%d.log", nd.Name, filepath.Base(name), time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", nd.NS, name}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &Proc{Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	nd.lab.mu.Lock()
	nd.lab.procs = append(nd.lab.procs, p)
	nd.lab.mu.Unlock()
	return p, nil
}

// Signal sends sig to the process (ip netns exec execs into the command, so the PID is its).
func (p *Proc) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Wait waits for the process to exit, at most d.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("pid %d still running after %s", p.Cmd.Process.Pid, d)
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill ends the process group at once and waits for it.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	_ = p.Wait(5 * time.Second)
}

// Output returns what the process has logged so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// Exec runs a command in the node and returns its combined output.
func (nd *Node) Exec(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", nd.NS, name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), nd.NS, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// HasAddr reports whether the node's interfaces carry addr (as `ip addr` shows it).
func (nd *Node) HasAddr(ctx context.Context, addr netip.Addr) (bool, error) {
	out, err := exec.CommandContext(ctx, "ip", "-n", nd.NS, "-o", "addr", "show").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("ip addr in %s: %w", nd.NS, err)
	}
	for _, f := range strings.Fields(string(out)) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr() == addr {
			return true, nil
		}
	}
	return false, nil
}

// SetLink takes the node's eth0 (or the named interface) down or up.
func (nd *Node) SetLink(ctx context.Context, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return run(ctx, "ip", "-n", nd.NS, "link", "set", nd.Iface, state)
}

// Cut detaches the node from the bridge (its link stays up): a partition, not a link fault.
func (nd *Node) Cut(ctx context.Context, cut bool) error {
	i := strings.TrimPrefix(nd.Name, "n")
	state := "up"
	if cut {
		state = "down"
	}
	return run(ctx, "ip", "-n", nd.lab.Switch, "link", "set", "p"+i, state)
}

// Isolate takes the node's port out of the bridge, or puts it back: a partition in which
// both ends of the veth pair keep their carrier, so that nothing on the node sees a link
// fault (Cut takes the port down, and a veth whose peer is down loses its carrier).
func (nd *Node) Isolate(ctx context.Context, isolate bool) error {
	port := "p" + strings.TrimPrefix(nd.Name, "n")
	if isolate {
		return run(ctx, "ip", "-n", nd.lab.Switch, "link", "set", port, "nomaster")
	}
	return run(ctx, "ip", "-n", nd.lab.Switch, "link", "set", port, "master", "br0")
}

// BuildVigil builds the vigil binary into dir, for tests that run real daemons.
func BuildVigil(dir string) (string, error) { return BuildCommand(dir, "vigil") }

// BuildCommand builds the command cmd/NAME of this module (vigil, vigil-bgp) into dir, as
// make build does (a static binary), and returns its path.
func BuildCommand(dir, name string) (string, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, "github.com/vigil-ha/vigil/cmd/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build: a static binary
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", name, err, out)
	}
	return bin, nil
}

// TestMain is a test package's TestMain for namespace tests: when labs can be built here it
// builds vigil into a temporary directory and stores its path in bin, then runs the tests.
// Without root the tests run anyway and skip themselves with the reason.
func TestMain(m *testing.M, bin *string) int {
	if Available() == nil && !listingOrFuzzing() {
		dir, err := os.MkdirTemp("", "vigil-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		// Children that drop to an unprivileged user re-execute the binary too.
		if err := os.Chmod(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if *bin, err = BuildVigil(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// listingOrFuzzing reports whether the test binary runs to list its tests or to fuzz (make
// fuzz runs no test beside the target): then no test needs the binary, and each fuzz worker
// runs TestMain again, where building vigil would cost each about a minute.
func listingOrFuzzing() bool {
	flag.Parse()
	for _, name := range []string{"test.fuzz", "test.list", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}
