package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/core/supervisor"
	"github.com/vigil-ha/vigil/internal/lab"
)

// variant is one way of applying the edited file.
type variant struct {
	name   string
	impl   string // "vigil" or "keepalived"
	sighup bool   // SIGHUP to the daemon's main process right after the rename
}

// daemon is vigil or keepalived running on one lab node with its configuration at conf.
type daemon struct {
	impl string
	node *lab.Node
	proc *lab.Proc
	conf string // the file that trials rewrite
	sock string // vigil's control socket
}

func (b *bench) startDaemon(impl string, nd *lab.Node, dir, text string) (*daemon, error) {
	conf := filepath.Join(dir, nd.Name+".conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	d := &daemon{impl: impl, node: nd, conf: conf}
	var args []string
	bin := b.vigil
	if impl == "vigil" {
		d.sock = filepath.Join(dir, nd.Name+".sock")
		args = []string{"-f", conf, "-p", filepath.Join(dir, nd.Name+".pid"), "--control", d.sock}
	} else {
		bin = b.keepalived
		// -n foreground, -l log to the console (the proc's log file), -D detailed, -P VRRP
		// only, -G no syslog; own pid files so that the namespaces' daemons do not collide.
		args = []string{"-n", "-l", "-D", "-P", "-G", "-f", conf,
			"-p", filepath.Join(dir, nd.Name+"-ka.pid"), "-r", filepath.Join(dir, nd.Name+"-vrrp.pid"),
			"-c", filepath.Join(dir, nd.Name+"-chk.pid"), "-b", filepath.Join(dir, nd.Name+"-bfd.pid")}
	}
	p, err := nd.Start(bin, args...)
	if err != nil {
		return nil, err
	}
	d.proc = p
	return d, nil
}

// rewrite replaces the configuration as editors do (a temporary file renamed over it) and
// returns the time right after the rename.
func (d *daemon) rewrite(text string) (time.Time, error) {
	tmp := d.conf + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return time.Time{}, err
	}
	if err := os.Rename(tmp, d.conf); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// stop sends SIGTERM (both implementations then remove their VIPs), then kills what is left
// of the process group.
func (d *daemon) stop() {
	if !d.proc.Exited() {
		_ = d.proc.Signal(syscall.SIGTERM)
		_ = d.proc.Wait(3 * time.Second)
	}
	d.proc.Kill()
}

// transition is one state change a daemon logged: instance and the state it entered.
type transition struct{ node, inst, to string }

var (
	vigilChange = regexp.MustCompile(`state change: instance=(\S+) from=(\S+) to=(\S+)`)
	kaChange    = regexp.MustCompile(`\((\S+)\) Entering (\S+) STATE`)
)

func (d *daemon) transitions() []transition {
	out := d.proc.Output()
	var ts []transition
	if d.impl == "vigil" {
		for _, m := range vigilChange.FindAllStringSubmatch(out, -1) {
			ts = append(ts, transition{d.node.Name, m[1], m[3]})
		}
	} else {
		for _, m := range kaChange.FindAllStringSubmatch(out, -1) {
			ts = append(ts, transition{d.node.Name, m[1], m[2]})
		}
	}
	return ts
}

// reloads counts the reloads the daemon logged.
func (d *daemon) reloads() int {
	if d.impl == "vigil" {
		return strings.Count(d.proc.Output(), "reloaded: role=core trigger=")
	}
	return strings.Count(d.proc.Output(), "Reloading")
}

func (b *bench) status(d *daemon) (supervisor.Status, error) {
	var st supervisor.Status
	out, err := exec.Command(b.vigil, "status", "--json", "--control", d.sock).Output()
	if err != nil {
		return st, err
	}
	err = json.Unmarshal(out, &st)
	return st, err
}

// conf is a node's configuration: instances VI_1..VI_n (VRIDs 51..), VI_i holding
// 192.0.2.(100+i)/24, VI_1 also the extra addresses.
func conf(o options, prio int, state string, skipCheck bool, extra []netip.Addr) string {
	var b strings.Builder
	if skipCheck {
		b.WriteString("global_defs {\n    vrrp_skip_check_adv_addr\n}\n")
	}
	for i := 1; i <= o.instances; i++ {
		fmt.Fprintf(&b, `vrrp_instance VI_%d {
    state %s
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %s
    version 3
    virtual_ipaddress {
        %s/24
`, i, state, 50+i, prio, seconds(o.advert), baseVIP(i))
		if i == 1 {
			for _, a := range extra {
				fmt.Fprintf(&b, "        %s/24\n", a)
			}
		}
		b.WriteString("    }\n}\n")
	}
	return b.String()
}

func baseVIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}) }

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// configTest asks an implementation whether it accepts text.
func (b *bench) configTest(ctx context.Context, impl, text string) error {
	p := filepath.Join(b.work, "check.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		return err
	}
	bin := b.vigil
	if impl == "keepalived" {
		bin = b.keepalived
	}
	if out, err := exec.CommandContext(ctx, bin, "-t", "-f", p).CombinedOutput(); err != nil {
		return fmt.Errorf("%s -t -f %s: %w\n%s", impl, p, err, out)
	}
	return nil
}
