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
// balancer's loop, owns the lvs.Director and the kernel's IPVS: everything that moves the
// director (a checker's result, a VRRP instance's state, a reload, the stop) is an input to
// it, and after each batch of inputs it reports the director's events and brings the kernel
// to Director.Desired with ipvs.Diff and Apply. The decisions are core/lvs's and core/ipvs's,
// tested there without a kernel; what is here only feeds them and carries their answers out.
//
// What the kernel holds is kept, not read again for every batch: with a thousand real
// servers a read is a dozen netlink dumps, and a batch comes with every check that changes.
// The loop diffs Desired against the table it last applied, and reads the kernel only where
// that cache may be wrong: at start (a service already there is adopted), after the kernel
// refused something or an apply broke off, after a reload (its new services may exist in
// the kernel already), and every verifyEvery without a read (a hand edit with ipvsadm). A
// batch that leaves Desired as it was does nothing at all. keepalived never reads its table
// back: a destination deleted by hand stays deleted until its real server changes state.
// vigil restores it within verifyEvery, which costs one read a minute.

// lvsWanted says whether cfg has a load-balancer part: without a virtual_server and an
// lvs_sync_daemon, nothing opens IPVS at all.
func lvsWanted(cfg *config.Config) bool {
	return len(cfg.VirtualServers) > 0 || cfg.Global.LVSSyncDaemon != nil
}

// Retry bounds: a kernel error is tried again when Desired changes or after retryMin,
// doubling to retryMax while it persists; without IPVS, Open is tried again every
// reopenEvery.
const (
	retryMin    = 5 * time.Second
	retryMax    = 60 * time.Second
	reopenEvery = 60 * time.Second
	// verifyEvery is how long the loop trusts what it applied without reading the kernel.
	verifyEvery = time.Minute
	// gatherEvery spaces the batches of a burst: an input that comes after a quiet time is
	// applied at once, but inputs that keep coming (the first results of a thousand
	// checkers) are taken together, at most one batch per gatherEvery.
	gatherEvery = 50 * time.Millisecond
	// lvsEventLimit is how many notifications a stream to core holds before the older
	// ones of a server give way to its newest (fanout).
	lvsEventLimit = 4096
)

// lvsInput is one input of the loop; exactly one field is set.
type lvsInput struct {
	check    *lvsCheck
	instance *lvsInstance
	reload   *config.Config
	// barrier is closed once the inputs pushed before it are applied (or refused).
	barrier chan struct{}
}

// kernel is what the loop uses of the kernel's IPVS (*ipvs.Client): narrow, so that the
// loop's own rules (when to read, when to apply) are tested against a table in memory.
type kernel interface {
	Read() (ipvs.Table, map[ipvs.ServiceKey]ipvs.ServiceStats, error)
	Apply(ctx context.Context, ops []ipvs.Op) error
	Flush(ctx context.Context, keys []ipvs.ServiceKey) error
	Daemons(ctx context.Context) ([]ipvs.Daemon, error)
	StartDaemon(ctx context.Context, d ipvs.Daemon) error
	StopDaemon(ctx context.Context, st ipvs.DaemonState) error
	Close() error
}

// loopTiming are the loop's periods (tests shorten them).
type loopTiming struct {
	verify, gather time.Duration
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
	open   func() (kernel, error)
	timing loopTiming
	// publish hands a notification to core's stream (checkServer.publishLVS).
	publish func(*childpb.LVSEvent)

	// mu guards the inputs waiting for the loop, and what Status reads.
	mu      sync.Mutex
	pending []lvsInput
	wake    chan struct{}
	snap    *childpb.LVSStatus
	// snapStale: the director moved since snap was made; Status asks the loop for a new one
	// (snapReq) rather than the loop making one for every batch.
	snapStale bool
	snapReq   chan chan struct{}
	// keysByID and destsByID are each virtual server's IPVS services and its real servers'
	// destinations (in Status's order), for the counters.
	keysByID  map[string][]ipvs.ServiceKey
	destsByID map[string][]lvs.Dest
	client    kernel // for Status's counters; set by the loop
	stopped   bool   // stop began: inputs are ignored

	stopReq chan struct{}
	done    chan struct{} // closed when the loop has ended (after the stop's events)

	// The loop's own: the director, the kernel, and what is managed there.
	dir   *lvs.Director
	cfg   *config.Config
	spec  lvs.Config
	kern  kernel
	owned map[ipvs.ServiceKey]bool // keys vigil programs, or programmed and has to remove
	// applied is what the kernel holds of the managed services, as far as the loop knows:
	// read, then changed by each successful Apply. known is false where it may be wrong
	// (see the top of this file); the next apply reads first. attempted is the Desired
	// table last handed to the kernel, applied or refused: the same again is not retried
	// before the retry timer.
	applied, attempted ipvs.Table
	known              bool
	// verifyAt is when the cache has gone unread for verifyEvery (set at each read, or
	// failed try); verifying says that the read it causes checks a cache believed right.
	verifyAt  time.Time
	verifying bool
	// The sync daemons likewise: those last brought to, and whether that is sure.
	appliedDaemons []ipvs.Daemon
	daemonsKnown   bool
	lastProgram    time.Time // the end of the last batch that programmed, for gatherEvery
	nextRetry      time.Time // while syncErr: when the kernel is tried again without a change
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
	openKernel := func() (kernel, error) {
		c, err := open()
		if err != nil {
			return nil, err // not a nil *ipvs.Client in a non-nil kernel
		}
		return c, nil
	}
	return startBalancer(log, cfg, masters, keep, openKernel, publish, loopTiming{verify: verifyEvery, gather: gatherEvery})
}

// startBalancer is newBalancer on any kernel, with the loop's periods.
func startBalancer(log hclog.Logger, cfg *config.Config, masters map[string]bool, keep bool, open func() (kernel, error),
	publish func(*childpb.LVSEvent), timing loopTiming) *balancer {
	b := &balancer{log: log.Named("lvs"), keep: keep, open: open, publish: publish, timing: timing,
		wake: make(chan struct{}, 1), snapReq: make(chan chan struct{}), stopReq: make(chan struct{}), done: make(chan struct{}),
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

// stopLVS stops the load balancer of a Start that failed, and forgets it.
func (s *checkServer) stopLVS() {
	s.mu.Lock()
	b := s.lvs
	s.lvs, s.lvsCfg = nil, nil
	s.mu.Unlock()
	if b != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.stop(ctx)
		s.timeouts.restore()
	}
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

// settled returns once every input pushed before it has been applied (or refused), or ctx
// ended, or the loop stopped.
func (b *balancer) settled(ctx context.Context) {
	c := make(chan struct{})
	b.push(lvsInput{barrier: c})
	select {
	case <-c:
	case <-b.done:
	case <-ctx.Done():
	}
}

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
	b.program(true)
	b.snapshot()
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
		case reply := <-b.snapReq:
			b.snapshot()
			close(reply)
			continue
		case <-b.wake:
		case <-timer.C:
		}
		// A burst is taken in batches at most gatherEvery apart: each batch computes the
		// whole Desired table, so a thousand results one by one would cost a thousand.
		if wait := b.timing.gather - time.Since(b.lastProgram); wait > 0 {
			select {
			case <-b.stopReq:
				b.finish()
				return
			case <-time.After(wait):
			}
		}
		b.mu.Lock()
		inputs := b.pending
		b.pending = nil
		b.mu.Unlock()
		var ev []lvs.Event
		var barriers []chan struct{}
		// changed: an input that may move Desired (a check's initial state does not: the
		// director ignores it). force: the kernel is read and programmed even if Desired
		// stayed as it was.
		changed, force := false, false
		for _, in := range inputs {
			switch {
			case in.check != nil:
				changed = changed || !in.check.res.Initial
				ev = append(ev, b.dir.Check(in.check.name, in.check.res)...)
			case in.instance != nil:
				changed = true
				ev = append(ev, b.dir.InstanceState(in.instance.name, in.instance.master)...)
			case in.reload != nil:
				changed, force = true, true
				b.cfg, b.spec = in.reload, lvs.FromConfig(in.reload)
				ev = append(ev, b.dir.Reload(b.spec)...)
				// Its new services may be in the kernel already (adopted), and the
				// managed set changes: read before the next diff.
				b.known, b.daemonsKnown = false, false
			case in.barrier != nil:
				barriers = append(barriers, in.barrier)
			}
		}
		now := time.Now()
		if b.kern == nil && now.Sub(b.lastOpen) >= reopenEvery {
			b.tryOpen(false)
			force = force || b.kern != nil
		}
		if b.kern != nil && (b.syncErr != nil && !now.Before(b.nextRetry) || !now.Before(b.verifyAt)) {
			force = true
		}
		b.emit(ev)
		if changed || force {
			b.program(force)
			b.mu.Lock()
			b.snapStale = true
			b.mu.Unlock()
		}
		for _, c := range barriers {
			close(c)
		}
	}
}

// armTimer sets the slow timer: a new Open while IPVS is missing; otherwise the retry while
// the kernel refuses something, and the verification.
func (b *balancer) armTimer(t *time.Timer) {
	wait := time.Hour
	switch {
	case b.kern == nil && b.openErr != nil:
		wait = reopenEvery
	case b.kern != nil:
		wait = time.Until(b.verifyAt)
		if b.syncErr != nil {
			wait = min(wait, time.Until(b.nextRetry))
		}
	}
	t.Reset(max(wait, 0))
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
				// Desired is empty now: vigil's services go. Read first: a service
				// removed by hand since would only make the stop's log say it failed.
				b.known = false
				err = b.apply(ctx, b.dir.Desired())
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
	b.kern, b.openErr, b.known, b.daemonsKnown = c, nil, false, false
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
			// Not "role": that field is the process's (check), which the line must keep.
			b.log.Info("IPVS sync daemon role", "sync_role", e.Role.String())
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

// program brings the kernel to the director's table and sync daemons. Without force, a
// Desired table and daemons the same as last time do nothing. A refusal is logged once per
// virtual server (until it changes or clears) with its file:line and what to do, and tried
// again when Desired changes or at the retry timer (force).
func (b *balancer) program(force bool) {
	if b.kern == nil {
		return
	}
	defer func() { b.lastProgram = time.Now() }()
	if !time.Now().Before(b.verifyAt) {
		b.verifying = b.verifying || b.known
		b.known, b.daemonsKnown = false, false
	}
	want := b.dir.Desired()
	if !force && b.attempted != nil && want.Equal(b.attempted) && b.daemonsSettled() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := errors.Join(b.apply(ctx, want), b.daemons(ctx))
	if err != nil {
		if b.syncErr == nil {
			b.retryWait = retryMin
		} else {
			b.retryWait = min(2*b.retryWait, retryMax)
		}
		b.nextRetry = time.Now().Add(b.retryWait)
	}
	b.syncErr = err
}

// daemonsSettled says whether the sync daemons are as last brought to and still wanted so.
func (b *balancer) daemonsSettled() bool {
	if b.spec.SyncDaemon == nil && !b.syncOwned {
		return true
	}
	return b.daemonsKnown && slices.Equal(b.dir.Daemons(), b.appliedDaemons)
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

// apply brings the managed services to want: the kernel is read first where the cache may
// be wrong (known), then the difference from the cache is applied.
func (b *balancer) apply(ctx context.Context, want ipvs.Table) error {
	managed := b.managed(want)
	if !b.known {
		have, _, err := b.kern.Read()
		b.verifyAt = time.Now().Add(b.timing.verify)
		if err != nil {
			b.log.Error("could not read the IPVS table; trying again", "error", err)
			return err
		}
		have = have.Only(managed)
		// A verification that finds the kernel other than vigil left it: someone else
		// changed it. Said, and put back.
		if b.verifying && !have.Equal(b.applied) {
			b.log.Warn("the IPVS table differs from what vigil programmed (changed by hand?); putting vigil's services back",
				"changes", len(ipvs.Diff(have, b.applied)))
		}
		b.applied, b.known, b.verifying = have, true, false
	}
	b.attempted = want
	ops := ipvs.Diff(b.applied, want)
	var failed []*ipvs.OpError
	if len(ops) > 0 {
		for _, op := range ops {
			b.log.Debug("ipvs", "op", op.String())
		}
		start := time.Now()
		var ae *ipvs.ApplyError
		err := b.kern.Apply(ctx, ops)
		if err != nil {
			// Some ops may have gone through: the cache is no longer sure.
			b.known = false
		} else {
			b.applied = want
		}
		if took := time.Since(start); len(ops) >= 100 || took >= time.Second {
			b.log.Info("IPVS table programmed", "changes", len(ops), "took", took.Round(time.Millisecond))
		}
		if errors.As(err, &ae) {
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
	want := b.dir.Daemons()
	if b.daemonsKnown && slices.Equal(want, b.appliedDaemons) {
		return nil
	}
	running, err := b.kern.Daemons(ctx)
	if err != nil {
		b.daemonsKnown = false
		return fmt.Errorf("read the IPVS sync daemons: %w", err)
	}
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
		b.appliedDaemons, b.daemonsKnown = want, true
	} else {
		b.syncOwned = true // not done: try again
		b.daemonsKnown = false
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

// snapshot records what Status shows; counters are added when Status is asked. The loop
// makes one at start and stop, and between batches when Status asks for one (snapStale).
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
	b.snap, b.keysByID, b.destsByID, b.snapStale = st, keys, dests, false
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
	stale := b.snapStale && !b.stopped
	b.mu.Unlock()
	if stale {
		// The loop makes it between two batches; a loop busy past ctx leaves the last one.
		reply := make(chan struct{})
		select {
		case b.snapReq <- reply:
			select {
			case <-reply:
			case <-ctx.Done():
			}
		case <-b.done:
		case <-ctx.Done():
		}
	}
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
