package main

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/proc"
	"github.com/vigil-ha/vigil/core/lab"
)

// Steady-state load: n1 (priority 150) masters and n2 (priority 100) backs up N VRRPv3
// instances with 10 ms adverts, VRIDs 1..N, one /32 VIP each from 198.51.100.0/24 and
// 203.0.113.0/24 (not on-link; nobody needs to reach them).

func manyVIP(vrid int) netip.Addr {
	if vrid <= 254 {
		return netip.AddrFrom4([4]byte{198, 51, 100, byte(vrid)})
	}
	return netip.AddrFrom4([4]byte{203, 0, 113, byte(vrid - 254)})
}

func manyConf(n, prio int, state string, advert time.Duration) string {
	var b strings.Builder
	for v := 1; v <= n; v++ {
		fmt.Fprintf(&b, `vrrp_instance VI_%d {
    state %s
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %s
    version 3
    virtual_ipaddress {
        %s/32
    }
}
`, v, state, v, prio, seconds(advert), manyVIP(v))
	}
	return b.String()
}

type nodeLoad struct {
	cpuPct    float64 // % of one core
	rssKB     uint64
	pssKB     uint64
	procs     int
	threads   int
	txPerSec  float64 // frames the node's eth0 sent per second
	takeovers int     // transitions to MASTER logged during the window
	rawDrops  uint64  // datagrams the node's raw sockets dropped during the window (/proc/net/raw)
}

type cpuResult struct {
	master, backup nodeLoad
	masterVIPs     int
	backupVIPs     int
}

func (b *bench) cpuRun(ctx context.Context, im *impl, n int, advert, warm, window time.Duration) (res cpuResult, err error) {
	n1, n2 := b.lab.Nodes[0], b.lab.Nodes[1]
	defer b.resetMany(ctx, n)

	d1, err := im.start(ctx, n1, b.work, "cpu", manyConf(n, foPrioHigh, "MASTER", advert))
	if err != nil {
		return res, err
	}
	defer d1.stop()
	if err := waitFor(30*time.Second, func() bool { return countVIPs(ctx, n1) == n }); err != nil {
		return res, fmt.Errorf("n1 holds %d of %d VIPs: %w\n%s", countVIPs(ctx, n1), n, err, tail(d1.proc.Output(), 2000))
	}
	d2, err := im.start(ctx, n2, b.work, "cpu", manyConf(n, foPrioLow, "BACKUP", advert))
	if err != nil {
		return res, err
	}
	defer d2.stop()
	// Past both GARP bursts (garp_master_delay 5 s) and the backup's start-up.
	time.Sleep(warm)
	if d1.proc.Exited() || d2.proc.Exited() {
		return res, fmt.Errorf("a daemon exited during warm-up:\n%s\n%s", tail(d1.proc.Output(), 1500), tail(d2.proc.Output(), 1500))
	}

	p1, p2 := processTree(d1.pid()), processTree(d2.pid())
	to1, to2 := d1.takeovers(), d2.takeovers()
	t1a, err1 := cpuTicks(p1)
	t2a, err2 := cpuTicks(p2)
	tx1a, tx2a := txFrames(ctx, n1), txFrames(ctx, n2)
	dr1a, dr2a := rawDrops(ctx, n1), rawDrops(ctx, n2)
	begin := time.Now()
	if err := joinErr(err1, err2); err != nil {
		return res, err
	}
	time.Sleep(window)
	t1b, err1 := cpuTicks(p1)
	t2b, err2 := cpuTicks(p2)
	elapsed := time.Since(begin)
	tx1b, tx2b := txFrames(ctx, n1), txFrames(ctx, n2)
	dr1b, dr2b := rawDrops(ctx, n1), rawDrops(ctx, n2)
	if err := joinErr(err1, err2); err != nil {
		return res, fmt.Errorf("a process went away during the window: %w", err)
	}
	if q1, q2 := processTree(d1.pid()), processTree(d2.pid()); len(q1) != len(p1) || len(q2) != len(p2) {
		return res, fmt.Errorf("process set changed during the window (%v -> %v, %v -> %v)", p1, q1, p2, q2)
	}
	hz := float64(time.Second / proc.Tick())
	load := func(d *daemon, pids []int, t0, t1 uint64, tx0, tx1 uint64, to0 int) nodeLoad {
		l := nodeLoad{
			cpuPct:    float64(t1-t0) / hz / elapsed.Seconds() * 100,
			procs:     len(pids),
			threads:   proc.Threads(pids),
			txPerSec:  float64(tx1-tx0) / elapsed.Seconds(),
			takeovers: d.takeovers() - to0,
		}
		l.rssKB, _ = proc.MemKB(pids, "status", "VmRSS")
		l.pssKB, _ = proc.MemKB(pids, "smaps_rollup", "Pss")
		return l
	}
	res.master = load(d1, p1, t1a, t1b, tx1a, tx1b, to1)
	res.backup = load(d2, p2, t2a, t2b, tx2a, tx2b, to2)
	res.master.rawDrops, res.backup.rawDrops = dr1b-dr1a, dr2b-dr2a
	res.masterVIPs, res.backupVIPs = countVIPs(ctx, n1), countVIPs(ctx, n2)
	return res, nil
}

func joinErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// countVIPs counts the node's addresses from the benchmark's VIP ranges.
func countVIPs(ctx context.Context, nd *lab.Node) int {
	out, err := exec.CommandContext(ctx, "ip", "-n", nd.NS, "-o", "-4", "addr", "show", "dev", "eth0").Output()
	if err != nil {
		return -1
	}
	return strings.Count(string(out), " 198.51.100.") + strings.Count(string(out), " 203.0.113.")
}

func txFrames(ctx context.Context, nd *lab.Node) uint64 {
	out, err := nd.Exec(ctx, "cat", "/sys/class/net/eth0/statistics/tx_packets")
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	return v
}

// resetMany removes every VIP a killed daemon left behind.
func (b *bench) resetMany(ctx context.Context, n int) {
	var cmds strings.Builder
	for v := 1; v <= n; v++ {
		fmt.Fprintf(&cmds, "addr del %s/32 dev eth0\n", manyVIP(v))
	}
	for _, nd := range b.lab.Nodes[:2] {
		cmd := exec.CommandContext(ctx, "ip", "-n", nd.NS, "-force", "-batch", "-")
		cmd.Stdin = strings.NewReader(cmds.String())
		_ = cmd.Run() // -force: carries on past addresses that are not there
	}
}

func runQuiet(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	return cmd.Run()
}

// rawDrops sums the drops column of the node's raw IPv4 sockets (the VRRP sockets; a socket
// that was closed and reopened in between would make this undercount).
func rawDrops(ctx context.Context, nd *lab.Node) uint64 {
	out, err := nd.Exec(ctx, "cat", "/proc/net/raw")
	if err != nil {
		return 0
	}
	var sum uint64
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 {
			continue
		}
		v, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
		sum += v
	}
	return sum
}
