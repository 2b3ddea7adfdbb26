package main

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/daemon"
	"github.com/vigil-ha/vigil/bench/internal/many"
)

// Failover trials: n1 (priority 150, state MASTER) and n2 (priority 100) run the same
// implementation with one VRRPv3 instance; n3 pings the VIP every 2 ms. The master's process
// group is killed with SIGKILL, then n1 is unplugged from the bridge (a crashed process leaves
// its VIP behind and would keep answering the pings; a dead host does not).

const (
	foVRID     = 51
	foPrioHigh = 150
	foPrioLow  = 100
)

var foVIP = netip.MustParseAddr("192.0.2.100")

func failoverConf(prio int, state string, advert time.Duration) string {
	return fmt.Sprintf(`vrrp_instance VI_BENCH {
    state %s
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %s
    version 3
    virtual_ipaddress {
        %s/24
    }
}
`, state, foVRID, prio, seconds(advert), foVIP)
}

// seconds writes d as keepalived.conf wants it.
func seconds(d time.Duration) string { return many.Seconds(d) }

// masterDownInterval is RFC 5798's 3 x Master_Adver_Interval + Skew_Time for a backup of
// priority prio (v3: Skew_Time = (256 - prio) x Master_Adver_Interval / 256).
func masterDownInterval(advert time.Duration, prio int) time.Duration {
	return 3*advert + time.Duration(256-prio)*advert/256
}

type foResult struct {
	detect     time.Duration // first backup advert - last master advert - Master_Down_Interval
	gap        time.Duration // first backup advert - last master advert
	garp       time.Duration // first GARP for the VIP - first backup advert
	reply      time.Duration // first echo reply at the client (ping -D) - first backup advert
	bridgeRepl time.Duration // first echo reply seen on the bridge - first backup advert
}

func (b *bench) failoverTrial(ctx context.Context, im *daemon.Impl, advert time.Duration) (res foResult, err error) {
	n1, n2, n3 := b.lab.Nodes[0], b.lab.Nodes[1], b.lab.Nodes[2]
	defer b.resetFailover(ctx)

	d1, err := im.Start(ctx, n1, b.work, "fo", failoverConf(foPrioHigh, "MASTER", advert))
	if err != nil {
		return res, err
	}
	defer d1.Stop()
	if err := waitFor(10*time.Second, func() bool { ok, _ := n1.HasAddr(ctx, foVIP); return ok }); err != nil {
		return res, fmt.Errorf("n1 never took the VIP: %w\n%s", err, daemon.Tail(d1.Proc.Output(), 2000))
	}
	d2, err := im.Start(ctx, n2, b.work, "fo", failoverConf(foPrioLow, "BACKUP", advert))
	if err != nil {
		return res, err
	}
	defer d2.Stop()
	time.Sleep(10*advert + 300*time.Millisecond) // n2 settles as backup
	if ok, _ := n2.HasAddr(ctx, foVIP); ok {
		return res, fmt.Errorf("n2 holds the VIP while n1 is master")
	}

	ping, err := n3.Start("ping", "-n", "-D", "-i", "0.002", foVIP.String())
	if err != nil {
		return res, err
	}
	defer ping.Kill()
	time.Sleep(400 * time.Millisecond) // n3 resolves the VIP to n1 and gets replies

	start := time.Now()
	b.cap.reset()
	time.Sleep(5 * advert) // a few master adverts in the capture
	if err := d1.Kill9(); err != nil {
		return res, fmt.Errorf("kill -9 master: %w", err)
	}
	killed := time.Now()
	if err := n1.Cut(ctx, true); err != nil {
		return res, err
	}
	cut := time.Now() // n1's kernel answers pings until here
	// Watch the capture, not `ip addr` (forking ip every few ms would load the 2 shared cores
	// during the very interval being measured).
	a2 := n2.Addr4.Addr()
	if err := waitFor(5*time.Second, func() bool { return b.cap.hasAdvertFrom(a2, foVRID, killed) }); err != nil {
		return res, fmt.Errorf("n2 never advertised: %w\n%s", err, daemon.Tail(d2.Proc.Output(), 2000))
	}
	time.Sleep(200 * time.Millisecond) // the client's first replies from the new master
	if ok, _ := n2.HasAddr(ctx, foVIP); !ok {
		return res, fmt.Errorf("n2 advertises but does not hold the VIP\n%s", daemon.Tail(d2.Proc.Output(), 2000))
	}
	_ = ping.Signal(syscall.SIGINT) // ping flushes its output on SIGINT
	if err := ping.Wait(3 * time.Second); err != nil && !ping.Exited() {
		return res, err
	}

	evs := b.cap.since(start)
	a1 := n1.Addr4.Addr()
	var lastMaster, firstBackup, firstGARP, firstBridgeReply time.Time
	for _, e := range evs {
		if e.Kind == evAdvert && e.VRID == foVRID && e.Src == a1 {
			lastMaster = e.T
		}
	}
	if lastMaster.IsZero() {
		return res, fmt.Errorf("no advert from the master captured")
	}
	if lastMaster.After(killed) {
		return res, fmt.Errorf("master advert captured %s after the kill", lastMaster.Sub(killed))
	}
	for _, e := range evs {
		if e.Kind == evAdvert && e.VRID == foVRID && e.Src == a2 && e.Prio > 0 {
			if e.T.Before(lastMaster) {
				return res, fmt.Errorf("the backup advertised while the master was alive")
			}
			if firstBackup.IsZero() {
				firstBackup = e.T
			}
		}
	}
	if firstBackup.IsZero() {
		return res, fmt.Errorf("no advert from the new master captured")
	}
	for _, e := range evs {
		if e.T.Before(cut) {
			continue
		}
		if e.Kind == evGARP && e.Src == foVIP && firstGARP.IsZero() {
			firstGARP = e.T
		}
		if e.Kind == evEchoReply && e.Src == foVIP && firstBridgeReply.IsZero() {
			firstBridgeReply = e.T
		}
	}
	clientReply, err := firstPingReply(ping.Output(), firstBackup)
	if err != nil {
		return res, err
	}
	res.gap = firstBackup.Sub(lastMaster)
	res.detect = res.gap - masterDownInterval(advert, foPrioLow)
	res.reply = clientReply.Sub(firstBackup)
	if !firstGARP.IsZero() {
		res.garp = firstGARP.Sub(firstBackup)
	} else {
		res.garp = -1
	}
	if !firstBridgeReply.IsZero() {
		res.bridgeRepl = firstBridgeReply.Sub(firstBackup)
	} else {
		res.bridgeRepl = -1
	}
	return res, nil
}

// firstPingReply finds the first "[secs.usecs] 64 bytes from ..." line after t.
func firstPingReply(out string, after time.Time) (time.Time, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	replies := 0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "[") || !strings.Contains(line, "bytes from") {
			continue
		}
		replies++
		end := strings.IndexByte(line, ']')
		sec, usec, ok := strings.Cut(line[1:end], ".")
		if !ok {
			continue
		}
		s, err1 := strconv.ParseInt(sec, 10, 64)
		u, err2 := strconv.ParseInt(usec, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		t := time.Unix(s, u*1000)
		if t.After(after) {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("no echo reply after the takeover (%d replies in all):\n%s", replies, daemon.Tail(out, 1000))
}

// resetFailover puts the lab back: n1 plugged in, no VIP anywhere, no neighbour entry on n3.
func (b *bench) resetFailover(ctx context.Context) {
	n1, n2, n3 := b.lab.Nodes[0], b.lab.Nodes[1], b.lab.Nodes[2]
	_ = n1.Cut(ctx, false)
	for _, nd := range []string{n1.NS, n2.NS} {
		_ = runQuiet(ctx, "ip", "-n", nd, "addr", "del", foVIP.String()+"/24", "dev", "eth0")
	}
	_ = runQuiet(ctx, "ip", "-n", n3.NS, "neigh", "flush", "dev", "eth0")
}

func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runQuiet(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	return cmd.Run()
}
