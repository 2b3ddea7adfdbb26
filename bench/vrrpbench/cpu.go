package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/daemon"
	"github.com/vigil-ha/vigil/bench/internal/many"
	"github.com/vigil-ha/vigil/bench/internal/proc"
)

// Steady-state load: n1 (priority 150) masters and n2 (priority 100) backs up N VRRPv3
// instances with 10 ms adverts (many's configuration).

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

func (b *bench) cpuRun(ctx context.Context, im *daemon.Impl, n int, advert, warm, window time.Duration) (res cpuResult, err error) {
	n1, n2 := b.lab.Nodes[0], b.lab.Nodes[1]
	defer many.Reset(ctx, n, n1, n2)

	d1, err := im.Start(ctx, n1, b.work, "cpu", many.Conf(n, foPrioHigh, "MASTER", advert))
	if err != nil {
		return res, err
	}
	defer d1.Stop()
	if err := waitFor(30*time.Second, func() bool { return many.CountVIPs(ctx, n1) == n }); err != nil {
		return res, fmt.Errorf("n1 holds %d of %d VIPs: %w\n%s", many.CountVIPs(ctx, n1), n, err, daemon.Tail(d1.Proc.Output(), 2000))
	}
	d2, err := im.Start(ctx, n2, b.work, "cpu", many.Conf(n, foPrioLow, "BACKUP", advert))
	if err != nil {
		return res, err
	}
	defer d2.Stop()
	// Past both GARP bursts (garp_master_delay 5 s) and the backup's start-up.
	time.Sleep(warm)
	if d1.Proc.Exited() || d2.Proc.Exited() {
		return res, fmt.Errorf("a daemon exited during warm-up:\n%s\n%s", daemon.Tail(d1.Proc.Output(), 1500), daemon.Tail(d2.Proc.Output(), 1500))
	}

	p1, p2 := processTree(d1.PID()), processTree(d2.PID())
	to1, to2 := d1.Takeovers(), d2.Takeovers()
	t1a, err1 := proc.SumTicks(p1)
	t2a, err2 := proc.SumTicks(p2)
	tx1a, tx2a := many.TxFrames(ctx, n1), many.TxFrames(ctx, n2)
	dr1a, dr2a := many.RawDrops(ctx, n1), many.RawDrops(ctx, n2)
	begin := time.Now()
	if err := joinErr(err1, err2); err != nil {
		return res, err
	}
	time.Sleep(window)
	t1b, err1 := proc.SumTicks(p1)
	t2b, err2 := proc.SumTicks(p2)
	elapsed := time.Since(begin)
	tx1b, tx2b := many.TxFrames(ctx, n1), many.TxFrames(ctx, n2)
	dr1b, dr2b := many.RawDrops(ctx, n1), many.RawDrops(ctx, n2)
	if err := joinErr(err1, err2); err != nil {
		return res, fmt.Errorf("a process went away during the window: %w", err)
	}
	if q1, q2 := processTree(d1.PID()), processTree(d2.PID()); len(q1) != len(p1) || len(q2) != len(p2) {
		return res, fmt.Errorf("process set changed during the window (%v -> %v, %v -> %v)", p1, q1, p2, q2)
	}
	hz := float64(time.Second / proc.Tick())
	load := func(d *daemon.Daemon, pids []int, t0, t1 uint64, tx0, tx1 uint64, to0 int) nodeLoad {
		l := nodeLoad{
			cpuPct:    float64(t1-t0) / hz / elapsed.Seconds() * 100,
			procs:     len(pids),
			threads:   proc.Threads(pids),
			txPerSec:  float64(tx1-tx0) / elapsed.Seconds(),
			takeovers: d.Takeovers() - to0,
		}
		l.rssKB, _ = proc.MemKB(pids, "status", "VmRSS")
		l.pssKB, _ = proc.MemKB(pids, "smaps_rollup", "Pss")
		return l
	}
	res.master = load(d1, p1, t1a, t1b, tx1a, tx1b, to1)
	res.backup = load(d2, p2, t2a, t2b, tx2a, tx2b, to2)
	res.master.rawDrops, res.backup.rawDrops = dr1b-dr1a, dr2b-dr2a
	res.masterVIPs, res.backupVIPs = many.CountVIPs(ctx, n1), many.CountVIPs(ctx, n2)
	return res, nil
}

func joinErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
