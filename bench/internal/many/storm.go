package many

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/proc"
	"github.com/vigil-ha/vigil/internal/lab"
)

// Simultaneous start: the steady-state configuration (n1 MASTER, n2 BACKUP, N instances with
// short adverts), but both daemons are started at once, as after a power cut or a
// cluster-wide deploy. Start-up is the most expensive moment (every instance adds its VIPs,
// sends its GARP bursts, logs and notifies), and on an overloaded machine a backup that
// misses its master's adverts for a Master_Down_Interval takes over, which costs more CPU,
// which delays more adverts: a flap storm. Storm counts the backup's transitions to MASTER
// per second after a warm-up, and the CPU both nodes burn meanwhile.

// Daemon is a running VRRP daemon, as Storm watches it.
type Daemon interface {
	PID() int       // the daemon's first process (its children are found from it)
	Takeovers() int // its transitions to MASTER so far, over all instances
	Exited() bool
	Output() string // its log, for errors
}

// Load is what one node's daemon did during the window.
type Load struct {
	CPUPct    float64 // % of one core
	RSSKB     uint64  // VmRSS of its processes at the end
	Procs     int
	Threads   int
	Takeovers int // transitions to MASTER during the window
}

// StormResult is one simultaneous start.
type StormResult struct {
	BackupPerSec   float64 // backup transitions to MASTER per second during the window
	MasterPerSec   float64 // the same for the master (taking back what it lost)
	Startup        int     // backup transitions to MASTER before the window
	Master, Backup Load
	MasterTxPerSec float64 // frames the master's eth0 sent per second (expected: instances / advert_int)
	BackupRawDrops uint64  // datagrams the backup's raw sockets dropped during the window
	MasterVIPs     int     // VIPs on each node after the window
	BackupVIPs     int
	QuietSeconds   int // whole seconds at the end of the window without a backup takeover
	WindowSeconds  int
}

// Storm watches master (on n1) and backup (on n2), both just started at once: it waits warm,
// then measures a window of whole seconds.
func Storm(ctx context.Context, master, backup Daemon, n1, n2 *lab.Node, warm, window time.Duration) (res StormResult, err error) {
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(warm):
	}
	if master.Exited() || backup.Exited() {
		return res, fmt.Errorf("a daemon exited during warm-up:\n%s\n%s", tail(master.Output(), 1500), tail(backup.Output(), 1500))
	}
	p1, p2 := proc.PIDs(proc.Tree(master.PID())), proc.PIDs(proc.Tree(backup.PID()))
	to1, to2 := master.Takeovers(), backup.Takeovers()
	res.Startup = to2
	t1a, err1 := proc.SumTicks(p1)
	t2a, err2 := proc.SumTicks(p2)
	if err := joinErr(err1, err2); err != nil {
		return res, err
	}
	tx1a, dr2a := TxFrames(ctx, n1), RawDrops(ctx, n2)
	begin := time.Now()
	// One sample per second, to see whether the storm ends within the window.
	secs := max(int(window/time.Second), 1)
	last, quiet := to2, 0
	for i := 0; i < secs; i++ {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Until(begin.Add(time.Duration(i+1) * time.Second))):
		}
		now := backup.Takeovers()
		if now == last {
			quiet++
		} else {
			quiet = 0
		}
		last = now
	}
	t1b, err1 := proc.SumTicks(p1)
	t2b, err2 := proc.SumTicks(p2)
	elapsed := time.Since(begin)
	tx1b, dr2b := TxFrames(ctx, n1), RawDrops(ctx, n2)
	if err := joinErr(err1, err2); err != nil {
		return res, fmt.Errorf("a process went away during the window: %w", err)
	}
	hz := float64(time.Second / proc.Tick())
	load := func(d Daemon, pids []int, t0, t1 uint64, to0 int) Load {
		l := Load{
			CPUPct:    float64(t1-t0) / hz / elapsed.Seconds() * 100,
			Procs:     len(pids),
			Threads:   proc.Threads(pids),
			Takeovers: d.Takeovers() - to0,
		}
		l.RSSKB, _ = proc.MemKB(pids, "status", "VmRSS")
		return l
	}
	res.Master = load(master, p1, t1a, t1b, to1)
	res.Backup = load(backup, p2, t2a, t2b, to2)
	res.MasterTxPerSec = float64(tx1b-tx1a) / elapsed.Seconds()
	res.BackupRawDrops = dr2b - dr2a
	res.BackupPerSec = float64(res.Backup.Takeovers) / elapsed.Seconds()
	res.MasterPerSec = float64(res.Master.Takeovers) / elapsed.Seconds()
	res.MasterVIPs, res.BackupVIPs = CountVIPs(ctx, n1), CountVIPs(ctx, n2)
	res.QuietSeconds, res.WindowSeconds = quiet, secs
	return res, nil
}

func joinErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
