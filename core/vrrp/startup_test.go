package vrrp_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// Startup timing on the wire (issue 14, defect 7): a node restarted into a running pair must not
// claim the address, not even for one advert, however it is configured; the address owner
// (priority 255) takes over at once. Each scenario runs with vigil as the restarted node and,
// as the reference, with keepalived 2.2.7 on the same configuration; vigil at priority 150
// is the running master on n1.

// startNode runs impl ("vigil" or "keepalived") on node i.
func (l *ilab) startNode(impl string, i int, conf string) *lab.Proc {
	l.t.Helper()
	if impl == "keepalived" {
		return l.startKA(i, conf).Proc
	}
	return l.startVigil(i, conf)
}

// waitLogged waits until p's output holds marker n times.
func waitLogged(t *testing.T, p *lab.Proc, marker string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(p.Output(), marker) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged %d times within %s:\n%s", marker, n, timeout, p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startedBackup is what impl logs when its instance has started as a backup.
func startedBackup(impl string) string {
	if impl == "keepalived" {
		return "Entering BACKUP STATE"
	}
	return "from=INIT to=BACKUP"
}

// multicastTo lets the bridge flood multicast (the adverts) to node i, or stops it. The node's
// link stays up: it simply hears no advert, as when one is lost.
func (l *ilab) multicastTo(i int, on bool) {
	l.t.Helper()
	v := "off"
	if on {
		v = "on"
	}
	port := "p" + strings.TrimPrefix(l.Nodes[i].Name, "n")
	if out, err := exec.CommandContext(l.ctx, "bridge", "-n", l.Switch, "link", "set", "dev", port, "mcast_flood", v).CombinedOutput(); err != nil {
		l.t.Fatalf("bridge link set dev %s mcast_flood %s: %v\n%s", port, v, err, out)
	}
}

// TestRestartStateMasterIntoRunningPair: n2 (priority 100, "state MASTER") is restarted beside
// the running master n1 (150), and the master's first advert after n2's instance started is
// lost to n2. RFC 5798 6.4.1 makes n2 a backup for Master_Down_Interval, so the master's next
// advert keeps it one; a node that waits one interval instead (vigil before this fix) sends an
// advert of its own and takes the address until it hears the master again. The capture on the
// bridge must show no advert at all from n2: a backup sends none.
func TestRestartStateMasterIntoRunningPair(t *testing.T) {
	for _, impl := range []string{"vigil", "keepalived"} {
		t.Run(impl, func(t *testing.T) {
			l := newInteropLab(t, 2)
			l.startCapture()
			if l.capt == nil {
				t.Skip("tshark is not installed: the test reads the wire")
			}
			a := inst{vrid: 81, prio: 150, vip: "192.0.2.100/24"}
			b := inst{vrid: 81, prio: 100, state: "MASTER", vip: "192.0.2.100/24"}
			master, restarted := l.Nodes[0].Addr4.Addr(), l.Nodes[1].Addr4.Addr()
			l.startVigil(0, a.conf())
			l.waitHolder(vip4, "n1", 10*time.Second)

			p := l.startNode(impl, 1, b.conf())
			waitLogged(t, p, startedBackup(impl), 1, 10*time.Second)
			l.stable(vip4, "n1", 2*time.Second)
			if err := p.Signal(15); err != nil {
				t.Fatal(err)
			}
			if err := p.Wait(10 * time.Second); err != nil {
				t.Fatalf("%s on n2 did not stop on SIGTERM: %v", impl, err)
			}

			// The restart, with the master's adverts kept from n2 until one has been lost. The
			// master's adverts must reach n2 again before its Master_Down_Interval (3.61 s) from
			// its start runs out; a machine too slow to let them through in time proves nothing
			// (n2 rightly takes over), so such a try is stopped and made again.
			var start, up, lost, healed time.Time
			for try := 1; ; try++ {
				l.multicastTo(1, false)
				start = time.Now()
				p = l.startNode(impl, 1, b.conf())
				waitLogged(t, p, startedBackup(impl), 1, 10*time.Second)
				up = time.Now()
				ps := l.packetsUntil(func(ps []pkt) bool { return !firstFrom(ps, master, up, 150).IsZero() })
				lost = firstFrom(ps, master, up, 150)
				if lost.IsZero() {
					t.Fatalf("no advert from the master on the wire after n2 started")
				}
				l.multicastTo(1, true)
				healed = time.Now()
				gap := healed.Sub(lost)
				if gap <= 1800*time.Millisecond {
					break
				}
				if try == 3 {
					t.Skipf("in 3 tries the master's adverts reached n2 again only %s after the lost one: the machine is too slow for this test", gap)
				}
				t.Logf("try %d: adverts reached n2 again only %s after the lost one (machine overloaded?); trying again", try, gap)
				if err := p.Signal(15); err != nil {
					t.Fatal(err)
				}
				if err := p.Wait(10 * time.Second); err != nil {
					t.Fatalf("%s on n2 did not stop on SIGTERM: %v", impl, err)
				}
				l.waitHolder(vip4, "n1", 10*time.Second)
			}

			// Twice Master_Down_Interval: n2 stays a backup throughout.
			l.stable(vip4, "n1", 2*mdi(time.Second, b.prio))
			ps := l.packets()
			var fromN2 []string
			for _, pk := range ps {
				if pk.src == restarted && !pk.at.Before(start) {
					fromN2 = append(fromN2, fmt.Sprintf("+%s prio %d", pk.at.Sub(start).Round(time.Millisecond), pk.prio))
				}
			}
			if len(fromN2) > 0 {
				t.Errorf("%s on n2 sent %d advert(s) while n1 was master (times after the restart): %v", impl, len(fromN2), fromN2)
			}
			t.Logf("%s restarted with state MASTER: instance up at +%s, master's advert lost at +%s, adverts through again at +%s; adverts from n2: %d",
				impl, up.Sub(start).Round(time.Millisecond), lost.Sub(start).Round(time.Millisecond),
				healed.Sub(start).Round(time.Millisecond), len(fromN2))
			l.checkClean()
		})
	}
}

// TestRestartOwnerTakesOver: the address owner (priority 255) restarted beside a running master
// takes over at once (RFC 5798 6.4.1), vigil as keepalived 2.2.7: its first advert after the
// restart carries 255 and comes without a Master_Down_Interval of waiting, and the old master
// steps down.
func TestRestartOwnerTakesOver(t *testing.T) {
	for _, impl := range []string{"vigil", "keepalived"} {
		t.Run(impl, func(t *testing.T) {
			l := newInteropLab(t, 2)
			l.startCapture()
			if l.capt == nil {
				t.Skip("tshark is not installed: the test reads the wire")
			}
			a := inst{vrid: 82, prio: 150, vip: "192.0.2.100/24"}
			b := inst{vrid: 82, prio: 255, state: "MASTER", vip: "192.0.2.100/24"}
			master, owner := l.Nodes[0].Addr4.Addr(), l.Nodes[1].Addr4.Addr()
			l.startVigil(0, a.conf())
			l.waitHolder(vip4, "n1", 10*time.Second)

			p := l.startNode(impl, 1, b.conf())
			l.waitHolder(vip4, "n2", 10*time.Second)
			if err := p.Signal(15); err != nil {
				t.Fatal(err)
			}
			if err := p.Wait(10 * time.Second); err != nil {
				t.Fatalf("%s on n2 did not stop on SIGTERM: %v", impl, err)
			}
			l.waitHolder(vip4, "n1", 10*time.Second)

			start := time.Now()
			l.startNode(impl, 1, b.conf())
			took := l.waitHolder(vip4, "n2", 10*time.Second)
			ps := l.packetsUntil(func(ps []pkt) bool { return !firstFrom(ps, owner, start, -1).IsZero() })
			var first pkt
			for _, pk := range ps {
				if pk.src == owner && pk.at.After(start) {
					first = pk
					break
				}
			}
			if first.at.IsZero() {
				t.Fatal("no advert from the owner on the wire after its restart")
			}
			if first.prio != 255 {
				t.Errorf("the owner's first advert after its restart carries priority %d, want 255", first.prio)
			}
			// The old master hears 255 and steps down: no advert from it for 2 s.
			l.stable(vip4, "n2", 2*time.Second)
			ps = l.packets()
			after := firstFrom(ps, master, first.at.Add(time.Second), -1)
			if !after.IsZero() {
				t.Errorf("n1 still advertises %s after the owner's first advert", after.Sub(first.at))
			}
			// A failure bound only: a backup would wait Master_Down_Interval (3.01 s at 255
			// without "state MASTER", 3.61 s at 100); the owner goes at once.
			t.Logf("%s owner restarted: first advert (priority %d) +%s after the start, holds the VIP after %s by ip addr",
				impl, first.prio, first.at.Sub(start).Round(time.Millisecond), took.Round(time.Millisecond))
			l.checkClean()
		})
	}
}
