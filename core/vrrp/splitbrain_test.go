package vrrp_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// The end of a split brain (issue 14, defect 10): the master is frozen with SIGSTOP, the backup
// takes over and announces the address, so the client's neighbour entry moves to the backup's
// MAC; the master is thawed, hears the other master's lower priority adverts and must announce
// the address again (garp_lower_prio_repeat), or the client keeps sending to the node that
// just gave the address up. vigil on both nodes, and keepalived 2.2.7 on both as the reference.

// pcapCapture records the lab's bridge into a pcap file until stop.
type pcapCapture struct {
	cmd  *exec.Cmd
	file string
	done <-chan struct{}
}

func (l *testLab) startPcap(filter string) *pcapCapture {
	l.t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		l.t.Skip("tshark is not installed: the test reads the wire")
	}
	c := &pcapCapture{file: filepath.Join(l.dir, "bridge.pcap")}
	c.cmd = exec.Command("ip", "netns", "exec", l.Switch, "tshark", "-q", "-i", "br0", "-w", c.file, "-f", filter)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.done, _ = startTshark(l.t, c.cmd, func() { _ = c.cmd.Process.Kill() })
	l.t.Cleanup(func() { c.stop() })
	return c
}

// stop ends the capture (SIGINT: tshark closes the file properly) and waits for it. Frames
// that arrived just before may be missing: give it a moment after the last one that matters.
func (c *pcapCapture) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// mac is the hardware address of node i's eth0.
func (l *testLab) mac(i int) string {
	l.t.Helper()
	out, err := l.Nodes[i].Exec(l.ctx, "cat", "/sys/class/net/eth0/address")
	if err != nil {
		l.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// neighMAC is the link-layer address node i's neighbour table holds for addr ("" if none).
func (l *testLab) neighMAC(i int, addr netip.Addr) string {
	l.t.Helper()
	out, err := l.Nodes[i].Exec(l.ctx, "ip", "neigh", "show", addr.String(), "dev", "eth0")
	if err != nil {
		l.t.Fatal(err)
	}
	f := strings.Fields(out)
	for j := range f {
		if f[j] == "lladdr" && j+1 < len(f) {
			return f[j+1]
		}
	}
	return ""
}

// waitNeigh waits until node i's neighbour entry for addr has mac; it returns how long it took.
func (l *testLab) waitNeigh(i int, addr netip.Addr, mac string, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < timeout {
		if l.neighMAC(i, addr) == mac {
			return time.Since(start), true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return timeout, false
}

// freeze stops (or continues) a daemon's whole process group: core and its children, or
// keepalived's parent and VRRP child.
func freeze(t *testing.T, p *lab.Proc, stop bool) {
	t.Helper()
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	if err := syscall.Kill(-p.Cmd.Process.Pid, sig); err != nil {
		t.Fatal(err)
	}
}

// announcement is one gratuitous ARP or unsolicited NA for the VIP seen on the bridge.
type announcement struct {
	at  time.Time
	mac string
}

func readAnnouncements(t *testing.T, file string, vip netip.Addr) []announcement {
	t.Helper()
	filter := "arp.isgratuitous && arp.src.proto_ipv4 == " + vip.String()
	if vip.Is6() {
		filter = "icmpv6.type == 136 && icmpv6.nd.na.target_address == " + vip.String() + " && icmpv6.nd.na.flag.o == 1"
	}
	out := tsharkRead(t, file, "-Y", filter, "-T", "fields", "-E", "separator=|", "-e", "frame.time_epoch", "-e", "eth.src")
	var as []announcement
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 2 {
			continue
		}
		sec, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		as = append(as, announcement{at: time.Unix(0, int64(sec*1e9)), mac: f[1]})
	}
	return as
}

// garpLowerPrioRepeat is keepalived 2.2.7's default garp_lower_prio_repeat (its
// vrrp_garp_master_repeat); the second round follows 5 s later.
const garpLowerPrioRepeat = 5

func TestGarpAfterSplitBrain(t *testing.T) {
	for _, impl := range []string{"vigil", "keepalived"} {
		for _, v6 := range []bool{false, true} {
			name := impl + "/IPv4"
			if v6 {
				name = impl + "/IPv6"
			}
			t.Run(name, func(t *testing.T) { splitBrainGarp(t, impl, v6) })
		}
	}
}

func splitBrainGarp(t *testing.T, impl string, v6 bool) {
	if impl == "keepalived" {
		if _, err := exec.LookPath("keepalived"); err != nil {
			t.Skip("keepalived is not installed")
		}
	}
	l := newLab(t, 3) // n1 master, n2 backup, n3 the client
	vip, prefix := vip4, "192.0.2.100/24"
	if v6 {
		vip, prefix = netip.MustParseAddr("2001:db8::100"), "2001:db8::100/64"
	}
	// garp_master_delay 0: no second takeover burst that could still be due when the master
	// is frozen and go out at the thaw. The lower priority settings keep their defaults,
	// global vrrp_garp_master_repeat and vrrp_garp_master_delay (5, 5 s).
	noDelay := "    garp_master_delay 0\n"
	a := inst{vrid: 83, prio: 150, advert: "0.1", version: 3, vip: prefix, extra: noDelay}
	b := inst{vrid: 83, prio: 100, advert: "0.1", version: 3, vip: prefix, extra: noDelay}
	start := func(i int, in inst) *lab.Proc {
		if impl == "keepalived" {
			path := filepath.Join(l.dir, fmt.Sprintf("ka-%s.conf", l.Nodes[i].Name))
			if err := os.WriteFile(path, []byte(in.conf()), 0o644); err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(path, ".conf")
			p, err := l.Nodes[i].Start("keepalived", "-n", "-l", "-D", "-P", "-G", "-f", path, "-p", base+".pid", "-r", base+"-vrrp.pid")
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		return l.start(i, in.conf())
	}
	pc := l.startPcap("arp or icmp6 or ip proto 112 or ip6 proto 112")
	p1 := start(0, a)
	l.waitHolder(vip, "n1", 15*time.Second)
	start(1, b)
	l.stable(vip, "n1", time.Second)
	mac1, mac2 := l.mac(0), l.mac(1)

	// The client learns the VIP's address: n1's MAC.
	ping := []string{"ping", "-c", "1", "-W", "2", vip.String()}
	if v6 {
		ping[0] = "ping6"
	}
	if out, err := l.Nodes[2].Exec(l.ctx, ping[0], ping[1:]...); err != nil {
		t.Fatalf("client cannot reach the VIP: %v\n%s", err, out)
	}
	if got := l.neighMAC(2, vip); got != mac1 {
		t.Fatalf("client's neighbour entry for %s: %q, want n1's %s", vip, got, mac1)
	}

	// Freeze the master: n2 takes over and its announcements move the client to its MAC.
	freeze(t, p1, true)
	frozen := time.Now()
	if took, ok := l.waitNeigh(2, vip, mac2, 10*time.Second); !ok {
		freeze(t, p1, false)
		t.Fatalf("the client did not follow n2's takeover within %s (entry %q)", took, l.neighMAC(2, vip))
	}
	if d := 5*time.Second - time.Since(frozen); d > 0 {
		time.Sleep(d)
	}
	linesBefore := strings.Count(p1.Output(), "master heard a lower priority")
	// Thaw. The client sends nothing from now on: only an announcement can move its entry
	// back to n1, not a new resolution.
	freeze(t, p1, false)
	thawed := time.Now()
	took, ok := l.waitNeigh(2, vip, mac1, 15*time.Second)
	// The second round comes garp_lower_prio_delay (5 s) after the first.
	time.Sleep(6500 * time.Millisecond)
	l.waitHolder(vip, "n1", 5*time.Second)
	pc.stop()

	as := readAnnouncements(t, pc.file, vip)
	var after []string
	var first time.Time
	fromN1 := 0
	for _, an := range as {
		// n1 sends nothing while frozen: whatever it sent since the freeze came after the
		// thaw (the thaw's own timestamp may be read after its first packets).
		if an.at.Before(frozen) {
			continue
		}
		after = append(after, fmt.Sprintf("+%s %s", an.at.Sub(thawed).Round(time.Millisecond), an.mac))
		if an.mac == mac1 {
			fromN1++
			if first.IsZero() {
				first = an.at
			}
		}
	}
	kind := "gratuitous ARPs"
	if v6 {
		kind = "unsolicited NAs"
	}
	if len(after) > 12 {
		after = append(after[:12:12], fmt.Sprintf("... %d in all", len(after)))
	}
	t.Logf("%s: after the thaw the client's entry had n1's MAC after %s (found %v); %d %s for %s from n1 (first +%s); after the thaw: %v",
		impl, took.Round(time.Millisecond), ok, fromN1, kind, vip, first.Sub(thawed).Round(time.Millisecond), after)
	if os.Getenv("VIGIL_SPLITBRAIN_LOG") != "" {
		t.Logf("n1:\n%s", p1.Output())
	}
	if !ok {
		t.Errorf("the client's neighbour entry for %s still has %q %s after the split brain ended, want n1's %s", vip, l.neighMAC(2, vip), took, mac1)
	}
	// keepalived's defaults: 5 at once and 5 after 5 s (vrrp_garp_master_repeat/_delay).
	if fromN1 < 2*garpLowerPrioRepeat {
		t.Errorf("%d %s from n1 after the thaw, want at least 10 (5 at once, 5 after 5 s)", fromN1, kind)
	}
	if impl == "vigil" {
		lines := strings.Count(p1.Output(), "master heard a lower priority") - linesBefore
		t.Logf("vigil on n1 logged %d \"master heard a lower priority\" lines after the thaw", lines)
		if lines > 2 {
			t.Errorf("vigil on n1 logged \"master heard a lower priority\" %d times for one split brain, want it once", lines)
		}
	}
}

// TestGarpAfterPartitionHeal: the other way a split brain ends. Multicast is cut between the
// nodes (their links stay up) and n2 takes over; when it comes back, the master's adverts (every
// 0.1 s) reach n2 long before n2's own (every 2 s) reach n1, so n2 steps down without n1 ever
// hearing a lower priority advert. With higher_prio_send_advert n2 sends one advert before it
// steps down and n1 announces the address again; without it (the default, in keepalived too)
// nobody does and the client stays on n2's MAC: recorded, not asserted.
func TestGarpAfterPartitionHeal(t *testing.T) {
	for _, impl := range []string{"vigil", "keepalived"} {
		for _, send := range []bool{true, false} {
			name := impl + "/default"
			if send {
				name = impl + "/higher_prio_send_advert"
			}
			t.Run(name, func(t *testing.T) { partitionHealGarp(t, impl, send) })
		}
	}
}

func partitionHealGarp(t *testing.T, impl string, send bool) {
	if impl == "keepalived" {
		if _, err := exec.LookPath("keepalived"); err != nil {
			t.Skip("keepalived is not installed")
		}
	}
	il := &ilab{testLab: newLab(t, 3)}
	l := il.testLab
	extra := "    garp_master_delay 0\n"
	if send {
		extra += "    higher_prio_send_advert\n"
	}
	a := inst{vrid: 84, prio: 150, advert: "0.1", version: 3, vip: "192.0.2.100/24", extra: extra}
	b := inst{vrid: 84, prio: 100, advert: "2", version: 3, vip: "192.0.2.100/24", extra: extra}
	start := func(i int, in inst) {
		if impl == "keepalived" {
			path := filepath.Join(l.dir, fmt.Sprintf("ka-%s.conf", l.Nodes[i].Name))
			if err := os.WriteFile(path, []byte(in.conf()), 0o644); err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(path, ".conf")
			if _, err := l.Nodes[i].Start("keepalived", "-n", "-l", "-D", "-P", "-G", "-f", path, "-p", base+".pid", "-r", base+"-vrrp.pid"); err != nil {
				t.Fatal(err)
			}
			return
		}
		l.start(i, in.conf())
	}
	pc := l.startPcap("arp or ip proto 112")
	start(0, a)
	l.waitHolder(vip4, "n1", 15*time.Second)
	start(1, b)
	l.stable(vip4, "n1", time.Second)
	mac1, mac2 := l.mac(0), l.mac(1)
	if out, err := l.Nodes[2].Exec(l.ctx, "ping", "-c", "1", "-W", "2", vip4.String()); err != nil {
		t.Fatalf("client cannot reach the VIP: %v\n%s", err, out)
	}

	// The partition: no advert crosses between n1 and n2; the client still hears both.
	il.multicastTo(0, false)
	il.multicastTo(1, false)
	if _, ok := l.waitNeigh(2, vip4, mac2, 10*time.Second); !ok {
		t.Fatalf("the client did not follow n2's takeover (entry %q)", l.neighMAC(2, vip4))
	}
	time.Sleep(time.Second)
	// The heal starts with the first direction: n2's advert may reach n1 at once, and n1
	// announce itself, before the second command has run (seconds on a busy machine).
	healed := time.Now()
	il.multicastTo(0, true)
	il.multicastTo(1, true)
	took, ok := l.waitNeigh(2, vip4, mac1, 8*time.Second)
	l.waitHolder(vip4, "n1", 5*time.Second)
	time.Sleep(time.Second) // let the capture write out what it has read
	pc.stop()

	var fromN1, fromN2 int
	for _, an := range readAnnouncements(t, pc.file, vip4) {
		if an.at.After(healed) && an.mac == mac1 {
			fromN1++
		}
	}
	// Did n1 hear n2 at all after the heal? n2's adverts on the wire, after the heal.
	out := tsharkRead(t, pc.file, "-Y", "vrrp && ip.src == "+l.Nodes[1].Addr4.Addr().String(), "-T", "fields", "-e", "frame.time_epoch", "-e", "vrrp.prio")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if sec, err := strconv.ParseFloat(f[0], 64); err == nil && time.Unix(0, int64(sec*1e9)).After(healed) {
			fromN2++
		}
	}
	t.Logf("%s, higher_prio_send_advert %v: after the heal n2 sent %d advert(s), n1 %d gratuitous ARPs; the client's entry had n1's MAC: %v (after %s)",
		impl, send, fromN2, fromN1, ok, took.Round(time.Millisecond))
	if send && !ok {
		t.Errorf("with higher_prio_send_advert the client's entry still has %q %s after the heal, want n1's %s", l.neighMAC(2, vip4), took, mac1)
	}
	if send && fromN1 < garpLowerPrioRepeat {
		t.Errorf("with higher_prio_send_advert n1 sent %d gratuitous ARPs after the heal, want at least %d", fromN1, garpLowerPrioRepeat)
	}
}
