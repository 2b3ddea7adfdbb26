package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/proc"
)

// Simultaneous start: the steady-state configuration (n1 priority 150 MASTER, n2 priority 100
// BACKUP, N instances with 10 ms adverts), but both daemons are started at once, as after a
// power cut or a cluster-wide deploy. Start-up is the most expensive moment (every instance
// adds its VIPs, sends its GARP bursts, logs and notifies), and on an overloaded machine a
// backup that misses its master's adverts for a Master_Down_Interval takes over, which costs
// more CPU, which delays more adverts: a flap storm. The run counts the backup's transitions
// to MASTER per second after a warm-up, and the CPU both nodes burn meanwhile.

type stormResult struct {
	backupPerSec  float64 // backup transitions to MASTER per second during the window
	masterPerSec  float64 // the same for the master (taking back what it lost)
	startup       int     // backup transitions to MASTER before the window
	master        nodeLoad
	backup        nodeLoad
	masterVIPs    int
	backupVIPs    int
	quietSeconds  int // whole seconds at the end of the window without a backup takeover
	windowSeconds int
}

func (b *bench) stormRun(ctx context.Context, im *impl, n int, advert, warm, window time.Duration) (res stormResult, err error) {
	n1, n2 := b.lab.Nodes[0], b.lab.Nodes[1]
	defer b.resetMany(ctx, n)

	c1, c2 := manyConf(n, foPrioHigh, "MASTER", advert), manyConf(n, foPrioLow, "BACKUP", advert)
	d1, err := im.start(ctx, n1, b.work, "storm", c1)
	if err != nil {
		return res, err
	}
	defer d1.stop()
	d2, err := im.start(ctx, n2, b.work, "storm", c2)
	if err != nil {
		return res, err
	}
	defer d2.stop()
	time.Sleep(warm)
	if d1.proc.Exited() || d2.proc.Exited() {
		return res, fmt.Errorf("a daemon exited during warm-up:\n%s\n%s", tail(d1.proc.Output(), 1500), tail(d2.proc.Output(), 1500))
	}
	p1, p2 := processTree(d1.pid()), processTree(d2.pid())
	to1, to2 := d1.takeovers(), d2.takeovers()
	res.startup = to2
	t1a, err1 := cpuTicks(p1)
	t2a, err2 := cpuTicks(p2)
	if err := joinErr(err1, err2); err != nil {
		return res, err
	}
	tx1a, dr2a := txFrames(ctx, n1), rawDrops(ctx, n2)
	begin := time.Now()
	// One sample per second, to see whether the storm ends within the window.
	secs := int(window / time.Second)
	if secs < 1 {
		secs = 1
	}
	last, quiet := to2, 0
	for i := 0; i < secs; i++ {
		time.Sleep(time.Until(begin.Add(time.Duration(i+1) * time.Second)))
		now := d2.takeovers()
		if now == last {
			quiet++
		} else {
			quiet = 0
		}
		last = now
	}
	t1b, err1 := cpuTicks(p1)
	t2b, err2 := cpuTicks(p2)
	elapsed := time.Since(begin)
	tx1b, dr2b := txFrames(ctx, n1), rawDrops(ctx, n2)
	if err := joinErr(err1, err2); err != nil {
		return res, fmt.Errorf("a process went away during the window: %w", err)
	}
	hz := float64(time.Second / proc.Tick())
	load := func(d *daemon, pids []int, t0, t1 uint64, to0 int) nodeLoad {
		l := nodeLoad{
			cpuPct:    float64(t1-t0) / hz / elapsed.Seconds() * 100,
			procs:     len(pids),
			threads:   proc.Threads(pids),
			takeovers: d.takeovers() - to0,
		}
		l.rssKB, _ = proc.MemKB(pids, "status", "VmRSS")
		return l
	}
	res.master = load(d1, p1, t1a, t1b, to1)
	res.backup = load(d2, p2, t2a, t2b, to2)
	res.master.txPerSec = float64(tx1b-tx1a) / elapsed.Seconds()
	res.backup.rawDrops = dr2b - dr2a
	res.backupPerSec = float64(res.backup.takeovers) / elapsed.Seconds()
	res.masterPerSec = float64(res.master.takeovers) / elapsed.Seconds()
	res.masterVIPs, res.backupVIPs = countVIPs(ctx, n1), countVIPs(ctx, n2)
	res.quietSeconds, res.windowSeconds = quiet, secs
	return res, nil
}
