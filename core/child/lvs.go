package child

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/ipvs"
	"github.com/vigil-ha/vigil/core/lvs"
)

// The check process owns IPVS, as keepalived's checker process does. One goroutine, the
// balancer's loop, owns the lvs.Director and the ipvs.Client: everything that moves the
// director (a checker's result, a VRRP instance's state, a reload, the stop) is an input to
// it, and after each batch of inputs it reports the director's events and brings the kernel
// to Director.Desired (read the kernel's table, restricted to the services vigil manages;
// ipvs.Diff; Apply). The decisions are core/lvs's and core/ipvs's, tested there without a
// kernel; what is here only feeds them and carries their answers out.

// lvsWanted says whether cfg has a load-balancer part: without a virtual_server and an
// lvs_sync_daemon, nothing opens IPVS at all.
func lvsWanted(cfg *config.Config) bool {
	return len(cfg.VirtualServers) > 0 || cfg.Global.LVSSyncDaemon != nil
}

// Retry bounds: a kernel error is tried again at the next input or after retryMin, doubling
// to retryMax while it persists; without IPVS, Open is tried again every reopenEvery.
const (
	retryMin    = 5 * time.Second
	retryMax    = 60 * time.Second
	reopenEvery = 60 * time.Second
	// lvsEventLimit is how many notifications a stream to core holds before the older
	// ones of a server give way to its newest (fanout).
	lvsEventLimit = 4096
)

// lvsInput is one input of the loop; exactly one field is set.
type lvsInput struct {
	check    *lvsCheck
	instance *lvsInstance
	reload   *config.Config
}

type lvsCheck struct {
	name string
	res  lvs.Result
}

type lvsInstance struct {
	name   string
	master bool
}

// balancer is the load balancer of the check process.
type balancer struct {
	log hclog.Logger
	// keep is --dont-release-ipvs: at stop the kernel's table is left as it is.
	keep bool
	// open connects to the kernel's IPVS (ipvs.Open).
	open func() (*ipvs.Client, error)
	// publish hands a notification to core's stream (checkServer.publishLVS).
	publish func(*childpb.LVSEvent)

	// mu guards the inputs waiting for the loop, and what Status reads.
	mu      sync.Mutex
	pending []lvsInput
	wake    chan struct{}
	snap    *childpb.LVSStatus
	// keysByID and destsByID are each virtual server's IPVS services and its real servers'
	// destinations (in Status's order), for the counters.
	keysByID  map[string][]ipvs.ServiceKey
	destsByID map[string][]lvs.Dest
	client    *ipvs.Client // for Status's counters; set by the loop
	stopped   bool         // stop began: inputs are ignored

	stopReq chan struct{}
	done    chan struct{} // closed when the loop has ended (after the stop's events)

	// The loop's own: the director, the kernel, and what is managed there.
	dir   *lvs.Director
	cfg   *config.Config
	spec  lvs.Config
	kern  *ipvs.Client
	owned map[ipvs.ServiceKey]bool // keys vigil programs, or programmed and has to remove
	// openErr is why Open failed (nil once open).
	openErr   error
	lastOpen  time.Time
	retryWait time.Duration
	failed    map[string]string // virtual server ID -> the kernel's last refusal, logged once
	syncErr   error
	// syncOwned: a configuration with lvs_sync_daemon ran; when a reload removes it, the
	// daemons are stopped once more.
	syncOwned bool
}

// newBalancer starts the loop for cfg, with the VRRP instance states core gave so far.
func newBalancer(log hclog.Logger, cfg *config.Config, masters map[string]bool, keep bool, open func() (*ipvs.Client, error),
	publish func(*childpb.LVSEvent)) *balancer {
	b := &balancer{log: log.Named("lvs"), keep: keep, open: open, publish: publish,
		wake: make(chan struct{}, 1), stopReq: make(chan struct{}), done: make(chan struct{}),
		owned: map[ipvs.ServiceKey]bool{}, failed: map[string]string{}}
	b.cfg, b.spec = cfg, lvs.FromConfig(cfg)
	var ev []lvs.Event
	b.dir, ev = lvs.New(b.spec)
	// keepalived reads the host's addresses before its checkers start: the instances'
	// states are fed before the first table is programmed.
	for _, name := range sortedKeys(masters) {
		if masters[name] {
			ev = append(ev, b.dir.InstanceState(name, true)...)
		}
	}
	b.start(ev)
	go b.run()
	return b
}

// lvsEventKey is what a notification supersedes when a stream falls far behind: the
// earlier one of its server.
func lvsEventKey(e *childpb.LVSEvent) string { return e.GetService() + "\x00" + e.GetReal() }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// push queues an input for the loop; it never blocks (forward, which calls it, also feeds
// VRRP). Results of one check that the loop has not taken yet are superseded by the newest.
func (b *balancer) push(in lvsInput) {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return
	}
	if in.check != nil {
		b.pending = slices.DeleteFunc(b.pending, func(p lvsInput) bool { return p.check != nil && p.check.name == in.check.name })
	}
	b.pending = append(b.pending, in)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *balancer) check(name string, res lvs.Result) {
	b.push(lvsInput{check: &lvsCheck{name: name, res: res}})
}
func (b *balancer) instance(name string, master bool) {
	b.push(lvsInput{instance: &lvsInstance{name: name, master: master}})
}
func (b *balancer) reload(cfg *config.Config) { b.push(lvsInput{reload: cfg}) }

// stop ends the loop: the director's stop (unless --dont-release-ipvs: keepalived then
// reports nothing either), its events, the kernel's table cleaned of what vigil added
// (lvs_flush_on_stop full: the whole table), the sync daemons stopped. Bounded by ctx.
func (b *balancer) stop(ctx context.Context) {
	b.mu.Lock()
	already := b.stopped
	b.stopped = true
	b.mu.Unlock()
	if !already {
		close(b.stopReq)
	}
	select {
	case <-b.done:
	case <-ctx.Done():
		b.log.Error("load balancer did not stop in time; the kernel's table may keep vigil's services")
	}
}

// start is the loop's first step: open IPVS, flush at start (lvs_flush), the first events
// and table.
func (b *balancer) start(ev []lvs.Event) {
	b.tryOpen(true)
	if b.kern != nil && b.cfg.Global.LVSFlush {
		// lvs_flush: the whole table is emptied at start, whoever added it (keepalived's
		// ipvs_flush_cmd); without it, a service already there with vigil's key is adopted.
		if err := b.flushAll(context.Background()); err != nil {
			b.log.Error("lvs_flush: could not empty the IPVS table at start", "error", err)
		}
	}
	b.emit(ev)
	b.program()
}

func (b *balancer) run() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		b.armTimer(timer)
		select {
		case <-b.stopReq:
			b.finish()
			return
		case <-b.wake:
		case <-timer.C:
		}
		b.mu.Lock()
		inputs := b.pending
		b.pending = nil
		b.mu.Unlock()
		var ev []lvs.Event
		for _, in := range inputs {
			switch {
			case in.check != nil:
				ev = append(ev, b.dir.Check(in.check.name, in.check.res)...)
			case in.instance != nil:
				ev = append(ev, b.dir.InstanceState(in.instance.name, in.instance.master)...)
			case in.reload != nil:
				b.cfg, b.spec = in.reload, lvs.FromConfig(in.reload)
				ev = append(ev, b.dir.Reload(b.spec)...)
			}
		}
		if b.kern == nil && time.Since(b.lastOpen) >= reopenEvery {
			b.tryOpen(false)
		}
		b.emit(ev)
		b.program()
	}
}

// armTimer sets the slow timer: a retry while the kernel refuses something, a new Open
// while IPVS is missing, otherwise nothing (an hour).
func (b *balancer) armTimer(t *time.Timer) {
	wait := time.Hour
	switch {
	case b.kern == nil && b.openErr != nil:
		wait = reopenEvery
	case b.syncErr != nil:
		wait = b.retryWait
	}
	t.Reset(wait)
}

// finish is the stop, on the loop.
func (b *balancer) finish() {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if b.keep {
		b.log.Info("IPVS table kept as it is (--dont-release-ipvs)")
	} else {
		b.emit(b.dir.Stop())
		if b.kern != nil {
			var err error
			if b.cfg.Global.LVSFlushOnStop == "full" {
				err = b.flushAll(ctx)
			} else {
				err = b.apply(ctx) // Desired is empty now: vigil's services go
			}
			if err != nil {
				b.log.Error("could not remove vigil's services from IPVS at stop", "error", err)
			}
		}
	}
	if b.kern != nil {
		// The sync daemons stop with vigil, as with keepalived (whose checker and vrrp
		// processes stop the ones they run on their way out, -I or not).
		if b.cfg.Global.LVSSyncDaemon != nil {
			for _, st := range []ipvs.DaemonState{ipvs.Master, ipvs.Backup} {
				if err := b.kern.StopDaemon(ctx, st); err != nil {
					b.log.Warn("could not stop the IPVS sync daemon", "state", st.String(), "error", err)
				}
			}
		}
		b.kern.Close()
	}
	b.snapshot()
}

// tryOpen connects to IPVS. A missing ip_vs is said once, clearly, at start; the checks and
// VRRP go on, and the load balancer's decisions too (status, notify), without a kernel.
func (b *balancer) tryOpen(first bool) {
	b.lastOpen = time.Now()
	c, err := b.open()
	if err != nil {
		if first || b.openErr == nil || b.openErr.Error() != err.Error() {
			b.log.Error("load balancing is off: the kernel's IPVS cannot be used; checks and VRRP go on", "error", err)
		}
		b.openErr = err
		return
	}
	if !first {
		b.log.Info("IPVS is available now; programming the virtual servers")
	}
	b.kern, b.openErr = c, nil
	b.mu.Lock()
	b.client = c
	b.mu.Unlock()
}

// emit logs and publishes the director's events, and follows the sync daemon's role.
func (b *balancer) emit(events []lvs.Event) {
	for _, e := range events {
		var kind childpb.LVSEvent_Kind
		switch e.Kind {
		case lvs.RealUp:
			kind = childpb.LVSEvent_REAL_UP
		case lvs.RealDown:
			kind = childpb.LVSEvent_REAL_DOWN
		case lvs.QuorumUp:
			kind = childpb.LVSEvent_QUORUM_UP
		case lvs.QuorumDown:
			kind = childpb.LVSEvent_QUORUM_DOWN
		case lvs.SyncRole:
			b.log.Info("IPVS sync daemon role", "role", e.Role.String())
			continue // program() brings the daemons to Director.Daemons
		default:
			b.log.Info(e.Kind.String(), "virtual_server", e.Service)
			continue
		}
		args := []any{"virtual_server", e.Service}
		if e.Real != "" {
			args = append(args, "real_server", e.Real)
		}
		b.log.Info(e.Kind.String(), args...)
		b.publish(&childpb.LVSEvent{Kind: kind, Service: e.Service, Real: e.Real, Init: e.Init, Stopping: e.Stopping})
	}
}

// program brings the kernel to the director's table and sync daemons, then updates the
// status. A refusal is logged once per virtual server (until it changes or clears) with its
// file:line and what to do, and tried again at the next input or the slow timer.
func (b *balancer) program() {
	defer b.snapshot()
	if b.kern == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := errors.Join(b.apply(ctx), b.daemons(ctx))
	if err != nil {
		if b.syncErr == nil {
			b.retryWait = retryMin
		} else {
			b.retryWait = min(2*b.retryWait, retryMax)
		}
	}
	b.syncErr = err
}

// managed are the kernel's services that vigil programs: those of the configuration, and
// those it added before and has still to remove (a reload dropped them).
func (b *balancer) managed(want ipvs.Table) func(ipvs.ServiceKey) bool {
	for _, s := range b.spec.Services {
		for _, k := range s.Keys {
			b.owned[k] = true
		}
	}
	for k := range want {
		b.owned[k] = true
	}
	return func(k ipvs.ServiceKey) bool { return b.owned[k] }
}

// apply is one round of read, diff, apply.
func (b *balancer) apply(ctx context.Context) error {
	want := b.dir.Desired()
	have, _, err := b.kern.Read()
	if err != nil {
		b.log.Error("could not read the IPVS table; trying again", "error", err)
		return err
	}
	have = have.Only(b.managed(want))
	ops := ipvs.Diff(have, want)
	var failed []*ipvs.OpError
	if len(ops) > 0 {
		for _, op := range ops {
			b.log.Debug("ipvs", "op", op.String())
		}
		var ae *ipvs.ApplyError
		if err := b.kern.Apply(ctx, ops); errors.As(err, &ae) {
			failed = ae.Failed
		} else if err != nil {
			return err
		}
	}
	// What is no longer wanted and is gone from the kernel is no longer vigil's.
	inCfg := map[ipvs.ServiceKey]bool{}
	for _, s := range b.spec.Services {
		for _, k := range s.Keys {
			inCfg[k] = true
		}
	}
	refusedKeys := map[ipvs.ServiceKey]bool{}
	for _, f := range failed {
		refusedKeys[f.Op.Service.Key] = true
	}
	for k := range b.owned {
		if !inCfg[k] && !refusedKeys[k] {
			delete(b.owned, k)
		}
	}
	b.report(failed, want)
	if len(failed) > 0 {
		return &ipvs.ApplyError{Failed: failed}
	}
	return nil
}

// report logs the kernel's refusals by virtual server, naming its block's file:line, once
// until the refusal changes; a virtual server that is programmed again is said to be.
func (b *balancer) report(failed []*ipvs.OpError, want ipvs.Table) {
	byKey := map[ipvs.ServiceKey]int{}
	for i, s := range b.spec.Services {
		for _, k := range s.Keys {
			if _, dup := byKey[k]; !dup {
				byKey[k] = i
			}
		}
	}
	msgs := map[string][]string{}
	for _, f := range failed {
		id := f.Op.Service.Key.String()
		if i, ok := byKey[f.Op.Service.Key]; ok {
			id = b.spec.Services[i].ID
		}
		msgs[id] = append(msgs[id], f.Error())
	}
	for _, id := range sortedKeys(msgs) {
		msg := strings.Join(msgs[id], "; ")
		if b.failed[id] == msg {
			continue
		}
		b.failed[id] = msg
		b.log.Error("the kernel refused part of a virtual_server; trying again at the next change or in a minute at most",
			"virtual_server", id, "at", b.posOf(id), "error", msg)
	}
	for id := range b.failed {
		if _, still := msgs[id]; still || id == "lvs_sync_daemon" {
			continue
		}
		delete(b.failed, id)
		// Said only of a virtual server that is in the table now (not one a reload or the
		// stop took out).
		if i := slices.IndexFunc(b.spec.Services, func(s lvs.Service) bool { return s.ID == id }); i >= 0 &&
			slices.ContainsFunc(b.spec.Services[i].Keys, func(k ipvs.ServiceKey) bool { _, ok := want[k]; return ok }) {
			b.log.Info("virtual_server programmed", "virtual_server", id)
		}
	}
}

// posOf is the file:line of the virtual_server block with ID id: FromConfig keeps the
// configuration's order (and leaves out only what validation refuses).
func (b *balancer) posOf(id string) string {
	svcs := b.spec.Services
	if len(svcs) != len(b.cfg.VirtualServers) {
		return "?"
	}
	for i, s := range svcs {
		if s.ID == id {
			p := b.cfg.VirtualServers[i].Pos
			return fmt.Sprintf("%s:%d", p.File, p.Line)
		}
	}
	return "?"
}

// daemons brings the kernel's sync daemons to Director.Daemons. Only a configuration with
// lvs_sync_daemon touches them. A daemon that runs with other settings than wanted is
// restarted; the kernel fills in defaults, so only what the configuration sets is compared.
func (b *balancer) daemons(ctx context.Context) error {
	if b.spec.SyncDaemon == nil && !b.syncOwned {
		return nil
	}
	b.syncOwned = b.spec.SyncDaemon != nil
	running, err := b.kern.Daemons(ctx)
	if err != nil {
		return fmt.Errorf("read the IPVS sync daemons: %w", err)
	}
	want := b.dir.Daemons()
	var errs []error
	// Stops first, then starts: a role change stops the old daemon before the new one
	// starts, as keepalived does.
	var start []ipvs.Daemon
	for _, st := range []ipvs.DaemonState{ipvs.Master, ipvs.Backup} {
		w, r := findDaemon(want, st), findDaemon(running, st)
		if r != nil && (w == nil || !sameDaemon(*w, *r)) {
			if err := b.kern.StopDaemon(ctx, st); err != nil {
				errs = append(errs, fmt.Errorf("stop the %v sync daemon: %w", st, err))
				continue
			}
			b.log.Info("IPVS sync daemon stopped", "state", st.String())
			r = nil
		}
		if w != nil && r == nil {
			start = append(start, *w)
		}
	}
	for _, w := range start {
		if err := b.kern.StartDaemon(ctx, w); err != nil {
			errs = append(errs, fmt.Errorf("start the %v sync daemon on %s (lvs_sync_daemon): %w", w.State, w.Interface, err))
		} else {
			b.log.Info("IPVS sync daemon started", "state", w.State.String(), "interface", w.Interface, "sync_id", w.SyncID)
		}
	}
	err = errors.Join(errs...)
	if err != nil && b.failed["lvs_sync_daemon"] != err.Error() {
		b.failed["lvs_sync_daemon"] = err.Error()
		b.log.Error("the kernel refused the sync daemon; trying again", "at", b.syncPos(), "error", err)
	}
	if err == nil {
		delete(b.failed, "lvs_sync_daemon")
	} else {
		b.syncOwned = true // not done: try again
	}
	return err
}

func (b *balancer) syncPos() string {
	if sd := b.cfg.Global.LVSSyncDaemon; sd != nil {
		return fmt.Sprintf("%s:%d", sd.Pos.File, sd.Pos.Line)
	}
	return "global_defs"
}

func findDaemon(ds []ipvs.Daemon, st ipvs.DaemonState) *ipvs.Daemon {
	for i := range ds {
		if ds[i].State == st {
			return &ds[i]
		}
	}
	return nil
}

func sameDaemon(w, r ipvs.Daemon) bool {
	return w.Interface == r.Interface && w.SyncID == r.SyncID &&
		(w.MaxLen == 0 || w.MaxLen == r.MaxLen) && (w.Port == 0 || w.Port == r.Port) &&
		(w.TTL == 0 || w.TTL == r.TTL) && (!w.Group.IsValid() || w.Group == r.Group)
}

// flushAll empties the kernel's whole table (lvs_flush, lvs_flush_on_stop full).
func (b *balancer) flushAll(ctx context.Context) error {
	have, _, err := b.kern.Read()
	if err != nil {
		return err
	}
	return b.kern.Flush(ctx, have.Keys())
}

// snapshot records what Status shows; counters are added when Status is asked.
func (b *balancer) snapshot() {
	st := &childpb.LVSStatus{Running: b.kern != nil, SyncRole: syncRole(b.dir)}
	switch {
	case b.openErr != nil:
		st.Error = b.openErr.Error()
	case b.syncErr != nil:
		st.Error = b.syncErr.Error()
	}
	for i, s := range b.dir.Status() {
		vs := &childpb.VirtualServerStatus{Id: s.ID, Name: s.Name, QuorumUp: s.QuorumUp, SorryIn: s.SorryIn, Suspended: s.Suspended,
			LiveWeight: s.Live, Quorum: s.Quorum, Hysteresis: s.Hysteresis, Error: b.failed[s.ID]}
		if len(b.spec.Services) == len(b.cfg.VirtualServers) && i < len(b.cfg.VirtualServers) {
			p := b.cfg.VirtualServers[i].Pos
			vs.Pos = fmt.Sprintf("%s:%d", p.File, p.Line)
		}
		for _, k := range s.Keys {
			vs.Keys = append(vs.Keys, k.String())
		}
		if s.Sorry != nil {
			vs.Sorry = s.Sorry.HostPort()
		}
		for _, r := range s.Reals {
			rs := &childpb.RealServerStatus{Address: r.HostPort(), Method: r.Method.String(), Alive: r.Up, Weight: r.Weight,
				ConfiguredWeight: r.Configured, InTable: r.InTable, TableWeight: r.TableWeight}
			for _, c := range r.Checkers {
				rs.Checkers = append(rs.Checkers, &childpb.RealCheckerStatus{Name: c.Name, Up: c.Up, HasRun: c.HasRun, Weight: c.Weight})
			}
			vs.Reals = append(vs.Reals, rs)
		}
		st.Services = append(st.Services, vs)
	}
	keys, dests := map[string][]ipvs.ServiceKey{}, map[string][]lvs.Dest{}
	for _, s := range b.dir.Status() {
		keys[s.ID] = s.Keys
		for _, r := range s.Reals {
			dests[s.ID] = append(dests[s.ID], r.Dest)
		}
	}
	b.mu.Lock()
	b.snap, b.keysByID, b.destsByID = st, keys, dests
	b.mu.Unlock()
}

// syncRole is the sync daemon's role the director wants, in Role's words.
func syncRole(d *lvs.Director) string {
	ds := d.Daemons()
	switch {
	case len(ds) == 2:
		return lvs.RoleBoth.String()
	case len(ds) == 1 && ds[0].State == ipvs.Master:
		return lvs.RoleMaster.String()
	case len(ds) == 1:
		return lvs.RoleBackup.String()
	}
	return lvs.RoleNone.String()
}

// status is the last snapshot with the kernel's counters and sync daemons, read now.
func (b *balancer) status(ctx context.Context) *childpb.LVSStatus {
	b.mu.Lock()
	snap, c, stopped, keys, dests := b.snap, b.client, b.stopped, b.keysByID, b.destsByID
	b.mu.Unlock()
	if snap == nil {
		return nil
	}
	st := proto.CloneOf(snap)
	if c == nil || stopped {
		return st
	}
	_, stats, err := c.Read()
	if err != nil {
		return st
	}
	for _, vs := range st.Services {
		vs.Counters = sumCounters(stats, keys[vs.Id], nil)
		for i, rs := range vs.Reals {
			if d := dests[vs.Id]; i < len(d) {
				rs.Counters = sumCounters(stats, keys[vs.Id], &d[i])
			}
		}
	}
	if ds, err := c.Daemons(ctx); err == nil {
		for _, d := range ds {
			st.SyncDaemons = append(st.SyncDaemons, &childpb.SyncDaemonStatus{State: d.State.String(), Interface: d.Interface, SyncId: uint32(d.SyncID)})
		}
	}
	return st
}

// sumCounters adds up the counters of the services keys (or of the destination of each for
// real server d, when d is set); nil when the kernel has none of them.
func sumCounters(stats map[ipvs.ServiceKey]ipvs.ServiceStats, keys []ipvs.ServiceKey, d *lvs.Dest) *childpb.IPVSCounters {
	var out *childpb.IPVSCounters
	for _, k := range keys {
		ss, ok := stats[k]
		if !ok {
			continue
		}
		s := ss.Stats
		var active, inactive uint32
		if d != nil {
			// IPVS does not rewrite the port for DR and TUN: their destination has the
			// service's (core/lvs's table does the same).
			port := k.Addr.Port()
			if d.Method == ipvs.NAT {
				port = d.Port
			}
			ds, ok := ss.Dests[ipvs.DestKey{Addr: d.Addr, Port: port}]
			if !ok {
				continue
			}
			s, active, inactive = ds.Stats, ds.ActiveConns, ds.InactiveConns
		}
		if out == nil {
			out = &childpb.IPVSCounters{}
		}
		out.Conns += s.Conns
		out.InPackets += s.InPackets
		out.OutPackets += s.OutPackets
		out.InBytes += s.InBytes
		out.OutBytes += s.OutBytes
		out.ActiveConns += active
		out.InactiveConns += inactive
	}
	return out
}
