package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/daemon"
	"github.com/vigil-ha/vigil/bench/internal/many"
)

// Load on the host: a backup whose CPUs are saturated, and both nodes of 255 fast instances
// started at once (the flap storm of issue 14).

const (
	busyAdvert = 100 * time.Millisecond
	busyWindow = 30 * time.Second
	// The simultaneous start, as vrrpbench's metric 5 measures it.
	stormInstances = 255
	stormAdvert    = 10 * time.Millisecond
	stormWarm      = 4 * time.Second
	stormWindow    = 20 * time.Second
)

func init() {
	scenarios.add(
		&Scenario{
			Name: "backup-busy",
			Doc: fmt.Sprintf(`n1 (priority 150) and n2 (100), advert_int 0.1; for %s n2's namespace runs two busy
				loops per CPU and one memory hog per CPU (a stress --vm worker: map, dirty every page,
				unmap, again), then they stop. Namespaces share the machine's CPUs: the load reaches n1's
				daemon and the client as much as n2's. Must hold: no transition on either node during
				the load (keepalived's "timer expired" false failovers on busy hosts are a known
				complaint), one master. Where vigil's backup takes over and keepalived's does not, the
				wait figure says why: vigil's VRRP processes, several threads each, wait far longer for
				a CPU than keepalived's single-threaded one, and a master whose adverts are late by a
				Master_Down_Interval loses its backup. The remedy, for vigil as for keepalived, is
				global_defs' vrrp_priority or vrrp_rt_priority, which vigil applies to every thread of
				its vrrp process (docs/operations.md, Process priorities): with vrrp_rt_priority 50 the wait fell
				from 55 to 1.4 ms per second (keepalived's from 22.9 to 0.37).`, busyWindow),
			Method: `**Busy host** (backup-busy). This program, re-executed in n2's namespace, is the load:
				-faults-burn cpu spins one thread; -faults-burn mem is a stress --vm worker (mmap of
				anonymous memory, one byte written per page, munmap, again), each of an eighth of
				MemAvailable divided among the hogs, at most 256 MiB. Network namespaces do not
				isolate CPUs: the burners compete with every process of the machine, n1's daemon and
				the client too, and with whatever else the machine runs. Machine idle: the idle share
				of /proc/stat's CPU time over the window. Wait for a CPU: the run-queue wait of the
				threads of both nodes' VRRP processes (vigil's vrrp child, keepalived's VRRP child;
				/proc/PID/task/TID/schedstat, second field) over the window, per second. Transitions: the notify lines of both nodes during the load.`,
			Nodes: 2,
			Run:   runBusy,
		},
		&Scenario{
			Name: "storm-start",
			Doc: fmt.Sprintf(`Both nodes started at once with %d instances at advert_int %s (VRIDs 1-255, /32 VIPs
				from 198.51.100.0/24 and 203.0.113.0/24, no notify script), as after a power cut: the
				flap storm of issue 14, measured by bench/internal/many as vrrpbench's metric 5 does.
				Reported: the backup's transitions to MASTER per second after a %s warm-up (from the
				daemons' logs), over %s; must hold: every VIP on n1 and none on n2 at the end.`,
				stormInstances, many.Seconds(stormAdvert), stormWarm, stormWindow),
			Method: `**Simultaneous start** (storm-start). bench/internal/many, the code of vrrpbench's
				metric 5: n1 (priority 150, state MASTER) and n2 (100, BACKUP) with 255 VRRPv3 instances,
				both daemons started one right after the other. After the warm-up, the backup's
				transitions to MASTER are counted from the daemons' logs (vigil's vrrp child's
				to=MASTER lines, keepalived's Entering MASTER STATE) once a second over the window, and
				the CPU time of both daemons' process trees (utime + stime). No notify script: 255
				instances flapping would fork it thousands of times and change the load being measured.`,
			Nodes: 2,
			KeepalivedBreaks: `at this rate its backup keeps taking over instances (hundreds of times a
				second after the warm-up, vrrpbench's metric 5 and the row here), so when the window
				ends some VIPs are on both nodes (2026-12-07: 43 of 255 on n2).`,
			Run: runStorm,
		},
	)
}

func runBusy(ctx context.Context, e *Env) (*Result, error) {
	if err := e.StartCluster(ctx, Conf{Advert: busyAdvert}); err != nil {
		return nil, err
	}
	hogs := runtime.NumCPU()
	size, err := hogBytes(hogs)
	if err != nil {
		return nil, err
	}
	// The processes that send and receive adverts and run the timers: vigil's vrrp child,
	// keepalived's VRRP child, on both nodes.
	var pids []int
	for _, d := range e.Daemons {
		if c, ok := d.Children()["vrrp"]; ok {
			pids = append(pids, c)
		}
	}
	fault := time.Now()
	b, err := startBurners(e.Nodes[1], 2*runtime.NumCPU(), hogs, size)
	if err != nil {
		return nil, err
	}
	e.Defer(b.stop)
	load, err := measureBusy(ctx, pids, func(ctx context.Context) error { return sleepCtx(ctx, busyWindow) })
	if err != nil {
		return nil, err
	}
	still := b.running()
	b.stop()
	calm := time.Now()
	r, err := e.Measure(ctx, fault, 0, 0)
	if err != nil {
		return r, err
	}
	r.Moved = len(transitionsBefore(e.Transitions(0, fault), calm)) + len(transitionsBefore(e.Transitions(1, fault), calm))
	r.Note("n2 took over %d times during the load", countState(e.Transitions(1, fault), calm, "MASTER"))
	r.Note("load: %d busy loops and %d hogs of %d MiB; machine idle %.1f %%; the VRRP processes of both nodes waited %s per second for a CPU",
		2*runtime.NumCPU(), hogs, size>>20, load.idlePct, load.runqPerSec.Round(time.Microsecond))
	r.Check(still == 2*runtime.NumCPU()+hogs, "only %d of %d burners ran to the end", still, 2*runtime.NumCPU()+hogs)
	return r, nil
}

func runStorm(ctx context.Context, e *Env) (*Result, error) {
	n1, n2 := e.Nodes[0], e.Nodes[1]
	c1 := many.Conf(stormInstances, many.PrioMaster, "MASTER", stormAdvert)
	c2 := many.Conf(stormInstances, many.PrioBackup, "BACKUP", stormAdvert)
	// The two starts as close together as two process starts can be.
	d1, err := e.Start(ctx, 0, c1)
	if err != nil {
		return nil, err
	}
	d2, err := e.Start(ctx, 1, c2)
	if err != nil {
		return nil, err
	}
	s, err := many.Storm(ctx, d1, d2, n1, n2, stormWarm, stormWindow)
	if err != nil {
		return nil, err
	}
	// Masters: the nodes holding any of the VIPs.
	r := &Result{Masters: min(s.MasterVIPs, 1) + min(s.BackupVIPs, 1), Converge: NotMeasured, Outage: NotMeasured, Lost: -1, Moved: -1}
	r.Note("backup took over %.1f times/s after the warm-up (%d during it; last %d of %d s quiet), master %.1f/s",
		s.BackupPerSec, s.Startup, s.QuietSeconds, s.WindowSeconds, s.MasterPerSec)
	r.Note("CPU master %.1f %%, backup %.1f %% of one core; master sent %.0f frames/s (expected %d)",
		s.Master.CPUPct, s.Backup.CPUPct, s.MasterTxPerSec, stormInstances*int(time.Second/stormAdvert))
	r.Note("VIPs at the end: n1 %d, n2 %d", s.MasterVIPs, s.BackupVIPs)
	r.Check(s.MasterVIPs == stormInstances && s.BackupVIPs == 0, "VIPs at the end: n1 %d, n2 %d (want %d and 0)", s.MasterVIPs, s.BackupVIPs, stormInstances)
	return r, nil
}

// many.Storm watches the suite's daemons as they are.
var _ many.Daemon = (*daemon.Daemon)(nil)
