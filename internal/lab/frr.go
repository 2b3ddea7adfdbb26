package lab

import (
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

// FRR runs FRRouting's zebra and vrrpd (Debian's frr package) in a node: a third VRRP
// implementation for interop tests, one that sends its adverts from the virtual MAC.
// vrrpd needs a macvlan with the virtual router MAC per VRID and family, which the operator
// creates (AddFRRVMAC); it keeps the backup's macvlan in protodown and leaves the addresses
// on it alone, so a node running FRR carries the virtual addresses whatever its state: ask
// State, not `ip addr`.
type FRR struct {
	nd    *Node
	dir   string
	zebra *Proc
	vrrpd *Proc
}

// FRRBinaries are where Debian's frr package installs the daemons.
var FRRBinaries = []string{"/usr/lib/frr/zebra", "/usr/lib/frr/vrrpd"}

// FRRAvailable says why FRR cannot run here, or nil when it can.
func FRRAvailable() error {
	for _, b := range FRRBinaries {
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
// zebra and vrrpd in the node, in the foreground, with their pid files, vty sockets and zebra
// socket in a directory of their own (the daemons drop to the frr user, who must reach it),
// so that nothing of the machine's own FRR is touched. Stop them with Stop.
func (nd *Node) StartFRR(ctx context.Context, conf string) (*FRR, error) {
	if err := FRRAvailable(); err != nil {
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
	for name, text := range map[string]string{"zebra.conf": "", "vrrpd.conf": conf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	common := func(d string) []string {
		return []string{"-i", filepath.Join(dir, d+".pid"), "--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"),
			"-f", filepath.Join(dir, d+".conf"), "--log", "stdout", "--log-level", "info"}
	}
	if f.zebra, err = nd.Start(FRRBinaries[0], common("zebra")...); err != nil {
		f.Stop()
		return nil, err
	}
	// vrrpd would retry, but a first connection that fails costs seconds.
	if err := f.waitFile(ctx, "zserv.api", f.zebra); err != nil {
		f.Stop()
		return nil, err
	}
	if f.vrrpd, err = nd.Start(FRRBinaries[1], common("vrrpd")...); err != nil {
		f.Stop()
		return nil, err
	}
	if err := f.waitFile(ctx, "vrrpd.vty", f.vrrpd); err != nil {
		f.Stop()
		return nil, err
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
	out, err := exec.CommandContext(ctx, "vtysh", "--vty_socket", f.dir, "-c", "show vrrp json").Output()
	if err != nil {
		return nil, fmt.Errorf("vtysh show vrrp: %w", err)
	}
	var vrs []frrVR
	if err := json.Unmarshal(out, &vrs); err != nil {
		return nil, fmt.Errorf("vtysh show vrrp: %w: %s", err, out)
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

// Output is what vrrpd has logged so far.
func (f *FRR) Output() string {
	if f.vrrpd == nil {
		return ""
	}
	return f.vrrpd.Output()
}

// Stop ends vrrpd, then zebra (SIGTERM, then SIGKILL after 5 s), and removes their
// directory and what a killed daemon leaves in /var/tmp/frr (its crash log directory,
// named after its PID). It is safe to call more than once.
func (f *FRR) Stop() error {
	var errs []error
	for _, p := range []*Proc{f.vrrpd, f.zebra} {
		if p == nil || p.Exited() {
			continue
		}
		_ = p.Signal(syscall.SIGTERM)
		if err := p.Wait(5 * time.Second); err != nil && !p.Exited() {
			errs = append(errs, err)
			p.Kill()
		}
	}
	for _, p := range []*Proc{f.vrrpd, f.zebra} {
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
