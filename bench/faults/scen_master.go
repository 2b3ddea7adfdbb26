package main

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/proc"
)

// The master's faults: its daemon killed, its link cut, its daemon frozen. n1 (priority 150)
// is master, n2 (100) takes over, n3 (50) must not move.

func init() {
	scenarios.add(
		&Scenario{
			Name: "master-kill9",
			Doc: `The master's whole daemon (its process group) gets SIGKILL, then its node is taken off the
				bridge: a crashed daemon leaves its VIP on the node, which would keep answering; a dead
				host does not. n2 must take over; n3 must not move.`,
			Short: true,
			Run:   runKill9,
		},
		&Scenario{
			Name: "master-kill9-mysql",
			Doc: `master-kill9 with a MariaDB master-master pair on n1 and n2 and a writer inserting through
				the VIP every 10 ms: no acknowledged insert may be missing on n2 afterwards.`,
			Run: runKill9MySQL,
		},
		&Scenario{
			Name: "master-link-cut",
			Doc: `The master's bridge port goes down (its eth0 loses the carrier) until the cluster has
				converged on n2, then comes back: n2 takes over, then n1 takes the VIP back (it has the
				higher priority and preempts); exactly one master after the cut and after the heal; n3
				must not move. The notes give the figures after the heal.`,
			Short: true,
			Run:   runLinkCut,
		},
		&Scenario{
			Name: "master-sigstop",
			Doc: `The master's whole daemon is frozen with SIGSTOP for 5 s, then resumed with SIGCONT. n2
				takes over while n1 sleeps; n1 wakes up still master with the higher priority: exactly
				one master must remain (no split brain), n3 must not move. The notes give the client's
				outage after the thaw.`,
			Short: true,
			Run:   runSigstop,
		},
	)
}

func runKill9(ctx context.Context, e *Env) (*Result, error) {
	if err := e.StartCluster(ctx, Conf{}); err != nil {
		return nil, err
	}
	return kill9Master(ctx, e)
}

// kill9Master kills n1's daemon and takes n1 off the bridge, then measures.
func kill9Master(ctx context.Context, e *Env) (*Result, error) {
	d := e.Daemons[0]
	kids := d.Children()
	fault := time.Now()
	if err := d.Kill9(); err != nil {
		return nil, err
	}
	if err := e.Cut(ctx, 0, true); err != nil {
		return nil, err
	}
	r, err := e.Measure(ctx, fault, 0, 0, 2)
	if err != nil {
		return r, err
	}
	// The whole daemon died, children too (they would otherwise keep the VIP and advertise).
	r.Check(len(kids) > 0, "no child process of %s found before the kill", e.Impl.Name)
	for role, pid := range kids {
		st, err := proc.ReadStat(pid)
		r.Check(err != nil || st.Zombie, "the %s child (pid %d) survived the kill", role, pid)
	}
	if h, _ := e.Holders(ctx); len(h) == 1 && h[0] != 1 {
		r.Fail("%s took over, not n2", e.Nodes[h[0]].Name)
	}
	return r, nil
}

func runKill9MySQL(ctx context.Context, e *Env) (*Result, error) {
	m, err := e.StartMySQL(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.StartCluster(ctx, Conf{}); err != nil {
		return nil, err
	}
	if err := m.StartWriter(ctx); err != nil {
		return nil, fmt.Errorf("writer: %w", err)
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	return kill9Master(ctx, e)
}

func runLinkCut(ctx context.Context, e *Env) (*Result, error) {
	if err := e.StartCluster(ctx, Conf{}); err != nil {
		return nil, err
	}
	fault := time.Now()
	if err := e.Cut(ctx, 0, true); err != nil {
		return nil, err
	}
	r, err := e.Measure(ctx, fault, 0, 0, 2)
	if err != nil {
		return r, err
	}
	if ok, _ := e.Nodes[0].HasAddr(ctx, VIP(0)); ok {
		r.Note("n1 kept the VIP on its dead link")
	}
	heal := time.Now()
	if err := e.Cut(ctx, 0, false); err != nil {
		return r, err
	}
	r2, err := e.Measure(ctx, heal, 0, 0, 2)
	if err != nil {
		return r, err
	}
	r.Check(r2.Masters == 1, "after the heal: %d masters", r2.Masters)
	r.Moved += r2.Moved
	holder := "none"
	if h, _ := e.Holders(ctx); len(h) == 1 {
		holder = e.Nodes[h[0]].Name
	}
	r.Note("after the heal: master %s, converged in %s, outage %s, %s", holder, dur(r2.Converge), dur(r2.Outage), r2.Notes[0])
	return r, nil
}

// freeze is how long the master's daemon stays stopped.
const freeze = 5 * time.Second

func runSigstop(ctx context.Context, e *Env) (*Result, error) {
	if err := e.StartCluster(ctx, Conf{}); err != nil {
		return nil, err
	}
	d := e.Daemons[0]
	fault := time.Now()
	if err := d.Signal(syscall.SIGSTOP); err != nil {
		return nil, err
	}
	// Whatever happens next, the daemon is resumed before the cleanup stops it.
	e.Defer(func() { _ = d.Signal(syscall.SIGCONT) })
	if err := sleepCtx(ctx, freeze); err != nil {
		return nil, err
	}
	n2took, _ := e.Nodes[1].HasAddr(ctx, VIP(0))
	thaw := time.Now()
	if err := d.Signal(syscall.SIGCONT); err != nil {
		return nil, err
	}
	r, err := e.Measure(ctx, fault, 0, 0, 2)
	if err != nil {
		return r, err
	}
	after := Between(e.Client.Requests(), thaw, e.measuredTo)
	out, _ := Outage(after)
	holder := "none"
	if h, _ := e.Holders(ctx); len(h) == 1 {
		holder = e.Nodes[h[0]].Name
	}
	r.Note("after the thaw: outage %s, master %s; n2 had taken over during the freeze: %v", dur(out), holder, n2took)
	return r, nil
}
