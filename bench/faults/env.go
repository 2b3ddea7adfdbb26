package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/daemon"
	"github.com/vigil-ha/vigil/internal/lab"
)

// Env is the lab of one run of one scenario on one implementation: VRRP nodes n1..nN, a
// client node after them, all on one bridge; the daemons, the services, the client and the
// MySQL pair that the scenario starts; and the measurements. Every run gets a lab of its own,
// which the runner closes (processes by PID, then namespaces) whatever the scenario leaves.
type Env struct {
	Impl       *daemon.Impl
	Lab        *lab.Lab
	Nodes      []*lab.Node      // the VRRP nodes, n1 first
	ClientNode *lab.Node        // the client's node, after the VRRP nodes
	Daemons    []*daemon.Daemon // by VRRP node; nil where none was started
	Client     *Client          // the client, once StartCluster has started it
	MySQL      *MySQL           // the MariaDB pair and writer, once StartMySQL has started them
	Conf       Conf             // what StartCluster was given, with its defaults filled in
	Work       string           // this run's directory (configurations, logs, notify file)
	Short      bool             // the run is part of -short: keep waits short

	self       string // this program, re-executed as service and client
	notify     string // the notify script
	notifyLog  string // where it appends
	services   []*lab.Proc
	detached   map[int]bool // nodes that Cut or Isolate took off the bridge
	measuredTo time.Time    // the end of the last Measure's window
	cleanups   []func()
}

// Logf writes a progress line prefixed with the implementation.
func (e *Env) Logf(format string, args ...any) {
	logf("  %s: "+format, append([]any{e.Impl.Name}, args...)...)
}

// Defer registers f to run when the run ends, before the daemons are stopped and the lab is
// closed (last registered, first run): remove an nft table, resume a stopped process.
func (e *Env) Defer(f func()) { e.cleanups = append(e.cleanups, f) }

// ConfText is node i's keepalived.conf for e.Conf (see Conf).
func (e *Env) ConfText(i int) string { return e.Conf.text(i, e.Nodes[i].Name, e.notify) }

// Start starts the implementation on node i with configuration text (ConfText(i), or a
// scenario's own), replacing the record of a daemon started there before.
func (e *Env) Start(ctx context.Context, i int, text string) (*daemon.Daemon, error) {
	d, err := e.Impl.Start(ctx, e.Nodes[i], e.Work, "run", text)
	if err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", e.Impl.Name, e.Nodes[i].Name, err)
	}
	e.Daemons[i] = d
	return d, nil
}

// StartCluster starts a service on every VRRP node, then the daemons with c (n1 first, and
// the others once n1 holds its VIPs), waits until every node has reported its first state
// through the notify script and no backup holds a VIP, then starts the client and waits until
// n1 answers it.
func (e *Env) StartCluster(ctx context.Context, c Conf) error {
	e.Conf = c.withDefaults()
	// A failure bound only. Each instance adds a notify script run per node at start (a fork
	// of sh), which a loaded machine can take 100 ms or more to do.
	bound := 20*time.Second + 4*e.Conf.Advert + time.Duration(e.Conf.Instances)*200*time.Millisecond
	p := filepath.Join(e.Work, "check.conf")
	if err := os.WriteFile(p, []byte(e.ConfText(0)), 0o644); err != nil {
		return err
	}
	if err := e.Impl.ConfigTest(ctx, p); err != nil {
		return err
	}
	for _, nd := range e.Nodes {
		sp, err := nd.Start(e.self, "-serve", nd.Name)
		if err != nil {
			return fmt.Errorf("service on %s: %w", nd.Name, err)
		}
		e.services = append(e.services, sp)
	}
	if _, err := e.Start(ctx, 0, e.ConfText(0)); err != nil {
		return err
	}
	if err := e.waitFor(ctx, bound, func() bool {
		n, _ := e.countVIPs(ctx, 0)
		return n == e.Conf.Instances
	}); err != nil {
		return fmt.Errorf("%s never took its VIPs: %w\n%s", e.Nodes[0].Name, err, daemon.Tail(e.Daemons[0].Proc.Output(), 2000))
	}
	for i := 1; i < len(e.Nodes); i++ {
		if _, err := e.Start(ctx, i, e.ConfText(i)); err != nil {
			return err
		}
	}
	if e.Conf.NoNotify {
		time.Sleep(4*e.Conf.Advert + time.Second)
	} else if err := e.waitFor(ctx, bound, func() bool {
		for i := range e.Nodes {
			if len(e.Transitions(i, time.Time{})) < e.Conf.Instances {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("not every node ran its notify script for each instance: %w\n%s", err, e.notifyText())
	}
	for i := 1; i < len(e.Nodes); i++ {
		if n, err := e.countVIPs(ctx, i); err != nil || n > 0 {
			return fmt.Errorf("%s holds %d VIPs while %s is master (%v)", e.Nodes[i].Name, n, e.Nodes[0].Name, err)
		}
	}
	cl, err := startClient(e.ClientNode, e.self, fmt.Sprintf("%s:%d", VIP(0), servicePort))
	if err != nil {
		return err
	}
	e.Client = cl
	want := e.Nodes[0].Name
	if err := e.waitFor(ctx, bound, func() bool {
		node, _, n := FinalRun(e.Client.Requests())
		return node == want && n >= 20
	}); err != nil {
		return fmt.Errorf("the client never got 20 answers in a row from %s: %w (answers: %s)", want, err, formatCounts(Answers(e.Client.Requests())))
	}
	e.measuredTo = time.Now()
	return nil
}

// Cut takes node i's bridge port down (the node's eth0 loses its carrier) or up again, and
// records that the node is off the bridge: Holders and Measure do not count it.
func (e *Env) Cut(ctx context.Context, i int, cut bool) error {
	if err := e.Nodes[i].Cut(ctx, cut); err != nil {
		return err
	}
	e.detached[i] = cut
	return nil
}

// Isolate takes node i's port out of the bridge (carrier kept) or puts it back, recorded as
// Cut does.
func (e *Env) Isolate(ctx context.Context, i int, isolate bool) error {
	if err := e.Nodes[i].Isolate(ctx, isolate); err != nil {
		return err
	}
	e.detached[i] = isolate
	return nil
}

// Holders are the VRRP nodes on the bridge that hold VIP(0).
func (e *Env) Holders(ctx context.Context) ([]int, error) {
	var out []int
	for i, nd := range e.Nodes {
		if e.detached[i] {
			continue
		}
		ok, err := nd.HasAddr(ctx, VIP(0))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, i)
		}
	}
	return out, nil
}

// countVIPs is how many of the instances' VIPs node i holds.
func (e *Env) countVIPs(ctx context.Context, i int) (int, error) {
	out, err := exec.CommandContext(ctx, "ip", "-n", e.Nodes[i].NS, "-o", "addr", "show").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ip addr in %s: %w", e.Nodes[i].NS, err)
	}
	vips := map[netip.Addr]bool{}
	for k := range e.Conf.withDefaults().Instances {
		vips[VIP(k)] = true
	}
	n := 0
	for _, f := range strings.Fields(string(out)) {
		if p, err := netip.ParsePrefix(f); err == nil && vips[p.Addr()] {
			n++
		}
	}
	return n, nil
}

// Transition is one line of the notify script's file.
type Transition struct {
	Node, Instance, State string
	At                    time.Time // when the script ran
}

// Transitions are node i's state changes that the notify script recorded at or after since.
func (e *Env) Transitions(i int, since time.Time) []Transition {
	var out []Transition
	sc := bufio.NewScanner(strings.NewReader(e.notifyText()))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != e.Nodes[i].Name {
			continue
		}
		secs, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(secs*1e9))
		if at.Before(since) {
			continue
		}
		out = append(out, Transition{Node: f[0], Instance: f[1], State: f[2], At: at})
	}
	return out
}

func (e *Env) notifyText() string {
	b, _ := os.ReadFile(e.notifyLog)
	return string(b)
}

// MasterDown is RFC 5798's Master_Down_Interval of node i for e.Conf.
func (e *Env) MasterDown(i int) time.Duration {
	c := e.Conf.withDefaults()
	return 3*c.Advert + time.Duration(256-c.priority(i))*c.Advert/256
}

// SkewTime is node i's Skew_Time for e.Conf: how long a backup waits after a priority 0
// advert before it takes over. VRRPv3 (RFC 5798 6.1) scales it by the advert interval;
// VRRPv2 (RFC 3768 6.1) does not: (256 - priority) / 256 seconds.
func (e *Env) SkewTime(i int) time.Duration {
	c := e.Conf.withDefaults()
	if c.Version == 2 {
		return time.Duration(256-c.priority(i)) * time.Second / 256
	}
	return time.Duration(256-c.priority(i)) * c.Advert / 256
}

// Measure waits until the cluster has converged after the fault (one node on the bridge
// holds the VIP and the client's last 50 requests, at least, were all answered by it), at
// most bound (0: 10 s plus ten Master_Down_Intervals), then holds for hold (0: three
// advert intervals plus a second) to see a later flap, and measures the standard figures
// over the client's requests since the previous Measure (or since the cluster settled).
// still are the VRRP nodes (0-based) that should not have moved: their notify transitions
// from the fault on are counted. With a MySQL writer running, it stops the writer and counts
// the acknowledged writes missing on the final master.
func (e *Env) Measure(ctx context.Context, fault time.Time, bound, hold time.Duration, still ...int) (*Result, error) {
	if e.Client == nil {
		return nil, errors.New("Measure before StartCluster")
	}
	if bound <= 0 {
		bound = 10*time.Second + 10*e.MasterDown(1)
	}
	if hold <= 0 {
		hold = 3*e.Conf.Advert + time.Second
	}
	converged := e.waitFor(ctx, bound, func() bool {
		h, err := e.Holders(ctx)
		if err != nil || len(h) != 1 {
			return false
		}
		node, _, n := FinalRun(Between(e.Client.Requests(), fault, time.Time{}))
		return node == e.Nodes[h[0]].Name && n >= 50
	}) == nil
	if !converged {
		e.Logf("not converged within %s", bound)
	}
	if err := sleepCtx(ctx, hold); err != nil {
		return nil, err
	}
	holders, err := e.Holders(ctx)
	if err != nil {
		return nil, err
	}
	end := time.Now()
	// Requests end within clientTimeout: wait for the last ones of the window.
	if err := sleepCtx(ctx, clientTimeout+100*time.Millisecond); err != nil {
		return nil, err
	}
	rs := Between(e.Client.Requests(), e.measuredTo, end)
	e.measuredTo = end

	r := &Result{Masters: len(holders), Converge: -1, Lost: -1}
	r.Outage, _ = Outage(rs)
	node, since, _ := FinalRun(Between(rs, fault, time.Time{}))
	if len(holders) == 1 && node == e.Nodes[holders[0]].Name {
		r.Converge = max(0, since.Sub(fault))
	}
	for _, i := range still {
		r.Moved += len(transitionsBefore(e.Transitions(i, fault), end))
	}
	names := make([]string, len(holders))
	for k, h := range holders {
		names[k] = e.Nodes[h].Name
	}
	r.Note("answers: %s", formatCounts(Answers(rs)))
	if len(holders) != 1 {
		r.Note("VIP held by: [%s]", strings.Join(names, " "))
	}
	if e.MySQL != nil && e.MySQL.writing() {
		e.MySQL.StopWriter()
		if len(holders) != 1 {
			return r, fmt.Errorf("no single master to count the writes on (VIP on [%s])", strings.Join(names, " "))
		}
		lost, note, err := e.MySQL.Lost(ctx, holders[0])
		if err != nil {
			return r, err
		}
		r.Lost = lost
		r.Note("%s", note)
	}
	return r, nil
}

// transitionsBefore are the transitions before end.
func transitionsBefore(ts []Transition, end time.Time) []Transition {
	var out []Transition
	for _, t := range ts {
		if t.At.Before(end) {
			out = append(out, t)
		}
	}
	return out
}

// waitFor polls cond every 100 ms until it holds, the context ends or bound passes.
func (e *Env) waitFor(ctx context.Context, bound time.Duration, cond func() bool) error {
	deadline := time.Now().Add(bound)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", bound)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newEnv builds the lab of one run: nodes VRRP nodes and a client node.
func newEnv(ctx context.Context, im *daemon.Impl, name string, nodes int, work, self string, short bool) (*Env, error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	logs := filepath.Join(work, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	l, err := lab.New(ctx, name, nodes+1, logs)
	if err != nil {
		return nil, err
	}
	e := &Env{
		Impl: im, Lab: l, Nodes: l.Nodes[:nodes], ClientNode: l.Nodes[nodes],
		Daemons: make([]*daemon.Daemon, nodes), Work: work, Short: short, self: self,
		notify: filepath.Join(work, "notify.sh"), notifyLog: filepath.Join(work, "transitions"),
		detached: map[int]bool{},
	}
	if err := os.WriteFile(e.notify, []byte(notifyScript(e.notifyLog)), 0o755); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// close ends everything the run started: the scenario's cleanups, the client, the writer,
// the daemons, MariaDB, then the lab (its processes by PID, then the namespaces).
func (e *Env) close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	if e.Client != nil {
		e.Client.Stop()
	}
	if e.MySQL != nil {
		e.MySQL.close()
	}
	for _, d := range e.Daemons {
		if d != nil {
			d.Stop()
		}
	}
	if err := e.Lab.Close(); err != nil {
		logf("lab cleanup: %v", err)
	}
}
