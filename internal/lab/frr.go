package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// FRR runs FRRouting's zebra and some of its protocol daemons (Debian's frr package) in a
// node: vrrpd, a third VRRP implementation for interop tests, or bgpd (with bfdd), the router
// that the BGP tests and benchmarks announce to.
//
// vrrpd sends its adverts from the virtual MAC and needs a macvlan with the virtual router MAC
// per VRID and family, which the operator creates (AddFRRVMAC); it keeps the backup's macvlan
// in protodown and leaves the addresses on it alone, so a node running FRR carries the virtual
// addresses whatever its state: ask State, not `ip addr`.
type FRR struct {
	nd      *Node
	dir     string
	zebra   *Proc
	daemons []frrDaemon // in the order they started
}

type frrDaemon struct {
	name string
	proc *Proc
}

// FRRDaemon is one of FRR's protocol daemons for StartFRRDaemons: its name ("vrrpd",
// "bgpd", "bfdd") and the text of its configuration file.
type FRRDaemon struct {
	Name string
	Conf string
}

// FRRBinaries are where Debian's frr package installs the daemons.
var FRRBinaries = []string{"/usr/lib/frr/zebra", "/usr/lib/frr/vrrpd"}

// frrDir holds FRR's daemons (Debian's frr package).
const frrDir = "/usr/lib/frr"

// FRRAvailable says why FRR's zebra and vrrpd cannot run here, or nil when they can.
func FRRAvailable() error { return FRRDaemonsAvailable("vrrpd") }

// FRRDaemonsAvailable says why zebra and the named daemons ("bgpd", "bfdd") cannot run
// here, or nil when they can.
func FRRDaemonsAvailable(names ...string) error {
	bins := []string{FRRBinaries[0]}
	for _, n := range names {
		bins = append(bins, filepath.Join(frrDir, n))
	}
	for _, b := range bins {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("FRR is not installed (Debian package frr): %w", err)
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		return fmt.Errorf("FRR's vtysh is not installed (Debian package frr): %w", err)
	}
	return nil
}

// AddFRRVMAC creates what vrrpd needs for vrid in the node: a macvlan NAME on eth0 with the
// virtual router MAC (00:00:5e:00:01:VRID, or :02: for IPv6) carrying the virtual addresses,
// up. FRR's documentation asks for bridge mode.
func (nd *Node) AddFRRVMAC(ctx context.Context, name string, vrid int, v6 bool, addrs ...netip.Prefix) error {
	fam := 1
	if v6 {
		fam = 2
	}
	mac := net.HardwareAddr{0, 0, 0x5e, 0, byte(fam), byte(vrid)}
	steps := [][]string{
		{"link", "add", name, "link", nd.Iface, "type", "macvlan", "mode", "bridge"},
		{"link", "set", name, "address", mac.String()},
	}
	for _, a := range addrs {
		s := []string{"addr", "add", a.String(), "dev", name}
		if a.Addr().Is6() {
			s = append(s, "nodad")
		}
		steps = append(steps, s)
	}
	steps = append(steps, []string{"link", "set", name, "up"})
	for _, s := range steps {
		if err := nd.lab.ip(ctx, nd.NS, s...); err != nil {
			return err
		}
	}
	return nil
}

// StartFRR writes conf (vrrpd's configuration: interface blocks with vrrp lines) and runs
// zebra and vrrpd in the node, as StartFRRDaemons does. Stop them with Stop.
func (nd *Node) StartFRR(ctx context.Context, conf string) (*FRR, error) {
	return nd.StartFRRDaemons(ctx, FRRDaemon{Name: "vrrpd", Conf: conf})
}

// StartFRRDaemons writes each daemon's configuration and runs zebra, then the daemons in the
// order given (bfdd before bgpd, whose neighbors' bfd lines it serves), in the foreground,
// with their pid files, vty sockets, zebra socket and bfdd's control socket in a directory
// of their own (the daemons drop to the frr user, who must reach it), so that nothing of the
// machine's own FRR is touched. Each start waits for the daemon's vty socket, so vtysh
// queries work when it returns. Stop them with Stop.
//
// FRR 8.4's bgpd refuses eBGP routes without a policy unless bgpd.conf says
// `no bgp ebgp-requires-policy`, and announces a network statement only when the kernel has a
// route to it unless it says `no bgp network import-check`.
func (nd *Node) StartFRRDaemons(ctx context.Context, daemons ...FRRDaemon) (*FRR, error) {
	names := make([]string, len(daemons))
	for i, d := range daemons {
		names[i] = d.Name
	}
	if err := FRRDaemonsAvailable(names...); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vigil-frr-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	f := &FRR{nd: nd, dir: dir}
	confs := append([]FRRDaemon{{Name: "zebra"}}, daemons...)
	for _, d := range confs {
		if err := os.WriteFile(filepath.Join(dir, d.Name+".conf"), []byte(d.Conf), 0o644); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	args := func(d string) []string {
		a := []string{"-i", filepath.Join(dir, d+".pid"), "--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"),
			"-f", filepath.Join(dir, d+".conf"), "--log", "stdout", "--log-level", "info"}
		if d == "bfdd" {
			// Its default is in /var/run/frr, the machine's own bfdd's.
			a = append(a, "--bfdctl", filepath.Join(dir, "bfdd.sock"))
		}
		return a
	}
	if f.zebra, err = nd.Start(FRRBinaries[0], args("zebra")...); err != nil {
		f.Stop()
		return nil, err
	}
	// The daemons would retry, but a first connection that fails costs seconds.
	if err := f.waitFile(ctx, "zserv.api", f.zebra); err != nil {
		f.Stop()
		return nil, err
	}
	for _, d := range daemons {
		p, err := nd.Start(filepath.Join(frrDir, d.Name), args(d.Name)...)
		if err != nil {
			f.Stop()
			return nil, err
		}
		f.daemons = append(f.daemons, frrDaemon{name: d.Name, proc: p})
		if err := f.waitFile(ctx, d.Name+".vty", p); err != nil {
			f.Stop()
			return nil, err
		}
	}
	return f, nil
}

func (f *FRR) waitFile(ctx context.Context, name string, p *Proc) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(f.dir, name)); err == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s exited: %s", filepath.Base(p.Cmd.Args[4]), p.Output())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("FRR: no %s after 15 s", name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// frrVR is the part of `show vrrp json` that State reads.
type frrVR struct {
	VRID int `json:"vrid"`
	V4   struct {
		Status string `json:"status"`
	} `json:"v4"`
	V6 struct {
		Status string `json:"status"`
	} `json:"v6"`
}

// States returns vrrpd's state of each virtual router of the family ("Initialize",
// "Backup", "Master"), by VRID, as vtysh's `show vrrp json` tells it.
func (f *FRR) States(ctx context.Context, v6 bool) (map[int]string, error) {
	var vrs []frrVR
	if err := f.vtyshJSON(ctx, "show vrrp json", &vrs); err != nil {
		return nil, err
	}
	states := map[int]string{}
	for _, vr := range vrs {
		states[vr.VRID] = vr.V4.Status
		if v6 {
			states[vr.VRID] = vr.V6.Status
		}
	}
	return states, nil
}

// vtyshJSON runs one of vtysh's show commands ending in json and decodes what it prints
// into v.
func (f *FRR) vtyshJSON(ctx context.Context, cmd string, v any) error {
	out, err := exec.CommandContext(ctx, "vtysh", "--vty_socket", f.dir, "-c", cmd).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("vtysh %q on %s: %w: %s", cmd, f.nd.Name, err, bytes.TrimSpace(ee.Stderr))
		}
		return fmt.Errorf("vtysh %q on %s: %w", cmd, f.nd.Name, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("vtysh %q on %s: %w: %s", cmd, f.nd.Name, err, out)
	}
	return nil
}

// Output is what the protocol daemons have logged so far: with one daemon, its log; with
// several, each log after a line naming its daemon.
func (f *FRR) Output() string {
	if len(f.daemons) == 1 {
		return f.daemons[0].proc.Output()
	}
	var b strings.Builder
	for _, d := range f.daemons {
		fmt.Fprintf(&b, "--- %s\n%s", d.name, d.proc.Output())
	}
	return b.String()
}

// Log is what the named daemon ("zebra", "bgpd", ...) has logged so far, "" when it does
// not run.
func (f *FRR) Log(name string) string {
	if name == "zebra" && f.zebra != nil {
		return f.zebra.Output()
	}
	for _, d := range f.daemons {
		if d.name == name {
			return d.proc.Output()
		}
	}
	return ""
}

// procs returns the daemons in the order to stop them: the protocol daemons last started
// first, zebra last.
func (f *FRR) procs() []*Proc {
	var ps []*Proc
	for i := len(f.daemons) - 1; i >= 0; i-- {
		ps = append(ps, f.daemons[i].proc)
	}
	return append(ps, f.zebra)
}

// Stop ends the protocol daemons, then zebra (SIGTERM, then SIGKILL after 5 s), and removes
// their directory and what a killed daemon leaves in /var/tmp/frr (its crash log directory,
// named after its PID). It is safe to call more than once.
func (f *FRR) Stop() error {
	var errs []error
	procs := f.procs()
	for _, p := range procs {
		if p == nil || p.Exited() {
			continue
		}
		_ = p.Signal(syscall.SIGTERM)
		if err := p.Wait(5 * time.Second); err != nil && !p.Exited() {
			errs = append(errs, err)
			p.Kill()
		}
	}
	for _, p := range procs {
		if p != nil {
			name := filepath.Base(p.Cmd.Args[4])
			_ = os.RemoveAll(filepath.Join("/var/tmp/frr", fmt.Sprintf("%s.%d", name, p.Cmd.Process.Pid)))
		}
	}
	if f.dir != "" {
		errs = append(errs, os.RemoveAll(f.dir))
	}
	return errors.Join(errs...)
}

// Dir is where the daemons' configuration, pid files and sockets are.
func (f *FRR) Dir() string { return f.dir }

// String names the node FRR runs in, for messages.
func (f *FRR) String() string {
	return "FRR on " + f.nd.Name + " (" + strings.TrimSuffix(f.dir, "/") + ")"
}
