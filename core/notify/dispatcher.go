// Package notify is core's delivery of notify actions: keepalived's notify scripts,
// notify_fifo lines, smtp_alert mail and vrrp_notify plugins, for every state change that the
// vrrp child reports.
//
// Ordering. Every instance and every sync group has, per action, one worker with a queue:
// an action sees the events of one instance one at a time and in order, while other actions
// and other instances go on. A slow or hung action delays only itself, and nothing here ever
// waits for VRRP or makes VRRP wait: the vrrp child reports transitions to core over a
// stream that does not block it, and Transition only appends to queues (and writes the FIFO
// without blocking).
//
// Deadlines. Each call has one: a vrrp_notify block's timeout (10 s by default), 30 s for
// keepalived's notify scripts, which had none (keepalived forgets them), smtp_connect_timeout
// plus 10 s for smtp_alert. A script past its deadline is killed with its process group.
//
// Full queues. A queue holds QueueLen events (8). When an action falls so far behind that
// its queue is full, the oldest waiting event is dropped and the next one takes over its old
// state, so that the action still sees a consistent chain of states; a change that this
// makes a no-op (BACKUP→MASTER then MASTER→BACKUP become BACKUP→BACKUP) is dropped too. So an
// action behind a flapping instance converges on the state the instance is in now, which is
// what matters after a flap, rather than replaying old history or losing the latest state.
// Every drop is logged with what was dropped.
package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/loglimit"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
	sdk "github.com/vigil-ha/vigil/sdk/notify"
)

// Plugins is the part of core/plugin's Host that the dispatcher uses.
type Plugins interface {
	ConfigureNotifier(ctx context.Context, plugin string, req sdk.ConfigureRequest) (sdk.ConfigureResponse, error)
	Notify(ctx context.Context, plugin string, req sdk.NotifyRequest) error
}

// Options configure a Dispatcher.
type Options struct {
	// Plugins delivers through notify plugins; nil: there are none (keepalived's scripts then
	// run from core, other actions are skipped with a log line).
	Plugins Plugins
	// Installed says whether notify plugin NAME (vigil-notify-NAME) is installed; nil: none is.
	Installed func(name string) bool
	Log       hclog.Logger
	// QueueLen bounds the events waiting per instance and action (8).
	QueueLen int
	// ScriptTimeout is the deadline of a keepalived notify script (30s).
	ScriptTimeout time.Duration
	// ConfigureTimeout bounds the configuration of the notify plugins at start (60s). It is
	// the plugin host's own bound on a start that progresses (6 x its 10 s without
	// progress): a plugin that makes none is failed by the host after 10 s anyway, and one
	// that starts slowly on a loaded machine (seen: over 10 s in an emulated VM beside two
	// busy loops) is waited for, its events held meanwhile, rather than left unconfigured
	// with every later event failing.
	ConfigureTimeout time.Duration
	// Delivered, when set, is told of every delivery of an action (an instance's, a sync
	// group's or the load balancer's; not of those with nothing to do): its name, its outcome
	// (ok, failed, timeout, cancelled at shutdown) and how long it took. For metrics.
	Delivered func(action, outcome string, took time.Duration)
}

func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = hclog.NewNullLogger()
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 8
	}
	if o.ScriptTimeout <= 0 {
		o.ScriptTimeout = 30 * time.Second
	}
	if o.ConfigureTimeout <= 0 {
		o.ConfigureTimeout = 60 * time.Second
	}
	if o.Installed == nil {
		o.Installed = func(string) bool { return false }
	}
	return o
}

// Transition is an instance's state change, as the vrrp child reported it.
type Transition struct {
	Instance string
	From, To string
	Priority int
	Time     time.Time
}

// States that notify actions hear of. INIT is not one: keepalived never notifies it.
const (
	Master  = "MASTER"
	Backup  = "BACKUP"
	Fault   = "FAULT"
	Stop    = "STOP"
	Deleted = "DELETED"
	// MasterRxLowerPri is not a state: a master heard an advert of a lower priority
	// (notify_master_rx_lower_pri). Only that script and the FIFO hear of it.
	MasterRxLowerPri = fsm.MasterRxLowerPri
)

// Dispatcher delivers the notify actions of one configuration. Its methods are safe for
// concurrent use.
type Dispatcher struct {
	opts   Options
	log    hclog.Logger
	node   string
	ctx    context.Context
	cancel context.CancelFunc
	ready  chan struct{} // closed when the plugins are configured
	wg     sync.WaitGroup
	fifos  *fifoSet
	// lines limits the lines of each action of a flapping instance as its transition
	// lines are (done and failed apart, so that a summary never hides a failure among
	// successes); every event is still delivered.
	lines *loglimit.Limiter

	mu        sync.Mutex
	instances map[string]*source
	groups    map[string]*source
	order     []*source // instances, then groups, in the file's order: the order of STOP
	stopped   bool
	// lvs are the virtual servers' notifications (lvs.go), by ID; lvsOrder in the file's order.
	lvs      map[string]*lvsSource
	lvsOrder []*lvsSource
	// prevLVS are the virtual servers of the dispatcher this one took over from (Adopt),
	// and retired runs the scripts of those this configuration no longer has.
	prevLVS map[string]*lvsSource
	retired *lvsWorker
	// rsUp is whether each real server (lvsKey) is up as the notifications so far say, from
	// its state at start (up unless a checker has alpha): smtp_alert mails a change only.
	rsUp map[string]bool
}

// source is an instance or a sync group and its actions.
type source struct {
	group   bool
	name    string
	inGroup string   // an instance's sync group
	members []string // a group's instances
	vips    []string
	state   string
	prio    int
	workers []*worker
}

// New prepares the actions of cfg and starts their workers; it returns at once (plugins are
// configured in the background, and events wait for that). Close releases everything.
func New(cfg *config.Config, opts Options) *Dispatcher {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		opts: opts, log: opts.Log, node: cfg.Global.RouterID, ctx: ctx, cancel: cancel, lines: loglimit.ForTransitions(),
		ready: make(chan struct{}), instances: map[string]*source{}, groups: map[string]*source{}, rsUp: map[string]bool{},
	}
	b := &builder{d: d, cfg: cfg}
	inGroup := map[string]string{}
	for _, g := range cfg.SyncGroups {
		for _, m := range g.Members {
			inGroup[m.Name] = g.Name
		}
	}
	for _, in := range cfg.Instances {
		src := &source{name: in.Name, inGroup: inGroup[in.Name]}
		for _, a := range in.VIPs {
			src.vips = append(src.vips, a.Prefix.String())
		}
		src.workers = b.actions(src, in.Notify, in.NotifyActions, in.SMTPAlert)
		d.instances[in.Name] = src
		d.order = append(d.order, src)
	}
	for _, g := range cfg.SyncGroups {
		src := &source{group: true, name: g.Name}
		for _, m := range g.Members {
			src.members = append(src.members, m.Name)
			if in := d.instances[m.Name]; in != nil {
				src.vips = append(src.vips, in.vips...)
			}
		}
		src.workers = b.actions(src, g.Notify, g.NotifyActions, g.SMTPAlert)
		d.groups[g.Name] = src
		d.order = append(d.order, src)
	}
	d.lvs, d.lvsOrder = b.lvsSources()
	d.fifos = openFIFOs(cfg.Global, d.log)
	for _, src := range d.order {
		for _, w := range src.workers {
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				w.run(ctx)
			}()
		}
	}
	d.retired = newLVSWorker(d, "virtual servers removed by a reload", false)
	for _, w := range append(d.lvsWorkers(), d.retired) {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			w.run(ctx)
		}()
	}
	go func() {
		b.configure(ctx)
		close(d.ready)
	}()
	return d
}

// Transition hands one state change to the actions of its instance and, when the change
// moves the instance's sync group to a new state, to the group's. It never blocks.
func (d *Dispatcher) Transition(t Transition) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	// INIT is not notified (keepalived never does), and the state the actions last heard of
	// is the old state of the next event: a vrrp child that stops (to INIT) and is started
	// again (from INIT) back into the same state notifies nothing, and into another state
	// notifies the change from the one the actions know. (An instance a reload removed
	// also goes to INIT; its DELETED comes from the old configuration's actions.)
	if t.To == "INIT" {
		return
	}
	src := d.instances[t.Instance]
	if src == nil {
		d.log.Warn("state change of an instance this configuration does not have; no notify", "instance", t.Instance)
		return
	}
	if t.To == MasterRxLowerPri {
		// The instance stays master; its state as the actions know it does not change.
		src.prio = t.Priority
		d.emit(src, Master, MasterRxLowerPri, t.Time)
		return
	}
	src.prio = t.Priority
	if t.To == src.state {
		return
	}
	from := t.From
	if src.state != "" {
		from = src.state
	}
	src.state = t.To
	d.emit(src, from, t.To, t.Time)
	if src.inGroup == "" {
		return
	}
	g := d.groups[src.inGroup]
	if g == nil {
		return
	}
	if next := d.groupState(g); next != "" && next != g.state {
		old := g.state
		g.state = next
		d.emit(g, orInit(old), next, t.Time)
	}
}

// groupState is a sync group's state from its members': FAULT when one is, MASTER or BACKUP
// when all are; "" while they disagree (the group is moving, keep its state).
func (d *Dispatcher) groupState(g *source) string {
	var states []string
	for _, m := range g.members {
		if in := d.instances[m]; in != nil {
			states = append(states, in.state)
		}
	}
	if slices.Contains(states, Fault) {
		return Fault
	}
	for _, s := range []string{Master, Backup} {
		if len(states) > 0 && !slices.ContainsFunc(states, func(x string) bool { return x != s }) {
			return s
		}
	}
	return ""
}

func orInit(s string) string {
	if s == "" {
		return "INIT"
	}
	return s
}

// emit writes the FIFO line and queues the event for each action of src.
func (d *Dispatcher) emit(src *source, from, to string, at time.Time) {
	ev := sdk.Event{Node: d.node, OldState: orInit(from), NewState: to, Priority: src.prio, Time: at, VIPs: src.vips}
	if src.group {
		ev.Group, ev.Priority = src.name, 0
	} else {
		ev.Instance, ev.Group = src.name, src.inGroup
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	d.fifos.write(ev)
	for _, w := range src.workers {
		if w.act.wants(to) {
			w.push(ev)
		}
	}
}

// Stop delivers STOP to every instance's actions, then every sync group's, as keepalived
// does on shutdown, and waits until every action has run what it has queued, or ctx ends.
// Transitions after Stop are ignored: they are the shutdown itself.
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.finish(Stop, nil)
	return d.drain(ctx)
}

// Delete delivers DELETED for instances and groups that a reload removes (keepalived's
// notify_deleted), and waits like Stop. The Dispatcher takes no events afterwards.
func (d *Dispatcher) Delete(ctx context.Context, keep func(group bool, name string) bool) error {
	d.finish(Deleted, keep)
	return d.drain(ctx)
}

func (d *Dispatcher) finish(state string, keep func(bool, string) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	d.stopped = true
	for _, src := range d.order {
		if keep != nil && keep(src.group, src.name) {
			continue
		}
		old := src.state
		src.state = state
		d.emit(src, old, state, time.Now())
	}
}

// drain waits until every worker is idle or ctx ends; the error names the actions still busy.
func (d *Dispatcher) drain(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var busy []string
		for _, src := range d.order {
			for _, w := range src.workers {
				if !w.idle() {
					busy = append(busy, w.what())
				}
			}
		}
		if len(busy) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("notify actions still running: %v: %w", busy, ctx.Err())
		case <-tick.C:
		}
	}
}

// Close cancels the calls in flight, drops what is queued, and returns when every worker has
// ended and the FIFOs are closed.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	d.lines.Flush()
	return d.fifos.close()
}

// action is one thing done for the events of one source.
type action struct {
	name    string // for the log: "notify_master script", "vrrp_notify move_ip", "smtp_alert"
	states  []string
	timeout time.Duration
	plugin  bool // delivers through a plugin: waits for the plugins' configuration
	call    func(ctx context.Context, ev sdk.Event) error
}

func (a *action) wants(state string) bool { return slices.Contains(a.states, state) }

// worker runs one action's events for one source, one at a time, in order.
type worker struct {
	serial[sdk.Event]
	d   *Dispatcher
	src string
	act *action
	// log names the source as a field of its own (instance or sync_group), so that a
	// journal filter on an instance finds its notify lines too.
	log hclog.Logger
}

func newWorker(d *Dispatcher, src string, act *action, log hclog.Logger) *worker {
	w := &worker{d: d, src: src, act: act, log: log}
	w.serial = newSerial(d.opts.QueueLen, w.trim)
	return w
}

func (w *worker) what() string { return w.act.name + " of " + w.src }

// trim drops the oldest waiting event, folding its old state into the next one so that the
// next script still hears where the instance came from; a transition that then goes
// nowhere (BACKUP→BACKUP) is dropped too.
func (w *worker) trim(q []sdk.Event) []sdk.Event {
	dropped := []string{q[0].OldState + "→" + q[0].NewState}
	q[1].OldState = q[0].OldState
	q = q[1:]
	if q[0].OldState == q[0].NewState {
		dropped = append(dropped, q[0].NewState+"→"+q[0].NewState)
		q = q[1:]
	}
	w.log.Warn("notify action is behind; its oldest waiting events were dropped", "action", w.act.name, "for", w.src,
		"dropped", strings.Join(dropped, " "), "queue", w.max)
	return q
}

func (w *worker) run(ctx context.Context) {
	var ready <-chan struct{}
	if w.act.plugin {
		ready = w.d.ready
	}
	w.serial.run(ctx, ready, w.deliver)
}

func (w *worker) deliver(ctx context.Context, ev sdk.Event) {
	cctx, cancel := context.WithTimeout(ctx, w.act.timeout)
	defer cancel()
	start := time.Now()
	err := w.act.call(cctx, ev)
	elapsed := time.Since(start)
	took := elapsed.Round(time.Millisecond).String()
	outcome := ""
	switch {
	case err == nil:
		outcome = "ok"
		w.d.lines.Log(w.log, w.what()+" done", hclog.Info, "notify action done", "action", w.act.name, "for", w.src, "state", ev.NewState, "took", took)
	case errors.Is(err, errSkipped):
	case ctx.Err() != nil:
		outcome = "cancelled"
		w.log.Warn("notify action cancelled at shutdown", "action", w.act.name, "for", w.src, "state", ev.NewState)
	case cctx.Err() != nil || pastDeadline(cctx):
		outcome = "timeout"
		w.log.Error("notify action passed its deadline and was cancelled", "action", w.act.name, "for", w.src, "state", ev.NewState,
			"timeout", w.act.timeout.String(), "error", err)
	default:
		outcome = "failed"
		w.d.lines.Log(w.log, w.what()+" failed", hclog.Error, "notify action failed", "action", w.act.name, "for", w.src, "state", ev.NewState, "took", took, "error", err)
	}
	if outcome != "" && w.d.opts.Delivered != nil {
		w.d.opts.Delivered(w.act.name, outcome, elapsed)
	}
}

// pastDeadline reports whether ctx's deadline has passed. A call can end for its deadline
// (the plugin, told it, gives up) before ctx's own timer has fired and set ctx.Err(), which
// happens on a loaded machine.
func pastDeadline(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// errSkipped: the action had nothing to do for this event (an e-mail already sent for that
// state, say).
var errSkipped = errors.New("nothing to do")

// Adopt takes over the states that old's actions last heard of, for the instances and sync
// groups both configurations have (by name). A reload keeps running instances in their
// state without a transition, so without this the first event after it would report
// INIT as the old state, and a group would notify a change it did not make.
func (d *Dispatcher) Adopt(old *Dispatcher) {
	d.adoptLVS(old)
	type seen struct {
		state string
		prio  int
	}
	old.mu.Lock()
	instances, groups := map[string]seen{}, map[string]seen{}
	for n, s := range old.instances {
		instances[n] = seen{s.state, s.prio}
	}
	for n, s := range old.groups {
		groups[n] = seen{s.state, s.prio}
	}
	old.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	for n, s := range d.instances {
		if o, ok := instances[n]; ok && o.state != Deleted {
			s.state, s.prio = o.state, o.prio
		}
	}
	for n, s := range d.groups {
		if o, ok := groups[n]; ok && o.state != Deleted {
			s.state, s.prio = o.state, o.prio
		}
	}
}
