package notify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/lvs"
	sdk "github.com/vigil-ha/vigil/sdk/notify"
)

// The load balancer's notifications: a real server joining or leaving its pool (its
// notify_up or notify_down script, an "RS" FIFO line) and a virtual server gaining or losing
// its quorum (quorum_up or quorum_down, a "VS" line). The check process reports them; what
// is run and written comes from this configuration, by the servers' names. Each virtual
// server has one worker: its scripts run one at a time, in the order of the events, and a
// slow script delays only the scripts of its own virtual server.

// LVSEvent is one notification of the load balancer.
type LVSEvent struct {
	Kind lvs.Kind // RealUp, RealDown, QuorumUp or QuorumDown
	// Service is the virtual server's ID (core/lvs Service.ID); Real the real server,
	// ADDR:PORT, for RealUp and RealDown.
	Service, Real string
	// Init: the quorum reported when the virtual server starts (its mail says "Starting
	// with quorum up"). Stopping: a notification of the shutdown (omega). keepalived gives
	// each such script a second before it goes on; so does vigil.
	Init, Stopping bool
	Time           time.Time
}

// stoppingTimeout is the deadline of a script run for the shutdown (keepalived's).
const stoppingTimeout = time.Second

// lvsQueueFactor: a virtual server's worker holds this many times QueueLen scripts: one
// failure can make many real servers' scripts due at once.
const lvsQueueFactor = 8

// lvsSource is one virtual server and its scripts.
type lvsSource struct {
	svc    lvs.Service
	reals  map[string]int    // ADDR:PORT -> index in svc.Reals
	run    map[string]runner // by script key (scriptKey)
	worker *lvsWorker
	// mail sends smtp_alert's mail through the email plugin, within mailTimeout; nil when
	// no mail can be sent (no notification_email, smtp_server or email plugin).
	mail        runner
	mailTimeout time.Duration
}

func scriptKey(kind lvs.Kind, real string) string { return fmt.Sprintf("%d/%s", kind, real) }

// lvsKey names a real server of a virtual server in Dispatcher.rsUp.
func lvsKey(service, real string) string { return service + "\x00" + real }

// lvsMailer is smtp_alert's mail for the load balancer, or nil when none can be sent. A
// real server's smtp_alert is on by default (keepalived's default), so a file without
// notification_email or smtp_server sends none and says nothing, as keepalived; one that
// has them but no email plugin says so once.
func (b *builder) lvsMailer(svcs []lvs.Service) (runner, time.Duration) {
	on := false
	for _, s := range svcs {
		on = on || s.SMTPAlert || slices.ContainsFunc(s.Reals, func(r lvs.Real) bool { return r.SMTPAlert })
	}
	g := b.cfg.Global
	if !on || len(g.NotificationEmail) == 0 || g.SMTPServer == "" {
		return nil, 0
	}
	if !b.usable("email") {
		b.d.log.Warn("smtp_alert of the virtual and real servers needs the email notify plugin (vigil-notify-email in plugin_dir); no mail is sent")
		return nil, 0
	}
	timeout := b.smtpNotifier()
	return func(ctx context.Context, ev sdk.Event) error {
		return b.d.opts.Plugins.Notify(ctx, "email", sdk.NotifyRequest{Name: smtpName, Event: ev})
	}, timeout
}

// lvsSources builds the virtual servers' scripts (through the exec plugin when it is
// installed, as the VRRP scripts).
func (b *builder) lvsSources() (map[string]*lvsSource, []*lvsSource) {
	if len(b.cfg.VirtualServers) == 0 {
		return nil, nil
	}
	byID := map[string]*lvsSource{}
	var order []*lvsSource
	svcs := lvs.FromConfig(b.cfg).Services
	mail, mailTimeout := b.lvsMailer(svcs)
	for _, svc := range svcs {
		if byID[svc.ID] != nil {
			continue
		}
		src := &lvsSource{svc: svc, reals: map[string]int{}, run: map[string]runner{}, mail: mail, mailTimeout: mailTimeout}
		add := func(kind lvs.Kind, real, keyword string, s *config.Script) {
			if s == nil {
				return
			}
			name := "virtual_server " + svc.ID + " " + keyword
			if real != "" {
				name = "real_server " + real + " of virtual_server " + svc.ID + " " + keyword
			}
			src.run[scriptKey(kind, real)] = b.script(name, s, false)
		}
		add(lvs.QuorumUp, "", "quorum_up", svc.QuorumUp)
		add(lvs.QuorumDown, "", "quorum_down", svc.QuorumDown)
		for i, r := range svc.Reals {
			hp := r.HostPort()
			if _, dup := src.reals[hp]; dup {
				continue
			}
			src.reals[hp] = i
			// As the Director starts it: up unless a checker starts failed (alpha).
			b.d.rsUp[lvsKey(svc.ID, hp)] = !slices.ContainsFunc(r.Checkers, func(c lvs.Checker) bool { return c.Alpha })
			add(lvs.RealUp, hp, "notify_up", r.NotifyUp)
			add(lvs.RealDown, hp, "notify_down", r.NotifyDown)
		}
		src.worker = newLVSWorker(b.d, "virtual_server "+svc.ID, b.usable("exec") || mail != nil)
		byID[svc.ID] = src
		order = append(order, src)
	}
	return byID, order
}

// LVS writes the FIFO line of ev and queues its script. It never blocks. Unlike Transition,
// it is taken after Stop: the shutdown's own notifications (omega) come while the check
// process stops, after VRRP's STOP went out; Close ends it.
func (d *Dispatcher) LVS(ev LVSEvent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return
	}
	real := ev.Kind == lvs.RealUp || ev.Kind == lvs.RealDown
	has := func(src *lvsSource) bool {
		if src == nil {
			return false
		}
		_, ok := src.reals[ev.Real]
		return !real || ok
	}
	src, worker := d.lvs[ev.Service], (*lvsWorker)(nil)
	if src != nil {
		worker = src.worker
	}
	removed := false
	if !has(src) {
		// A server that the reload which made this dispatcher removed: its last
		// notifications (notify_down, quorum_down) come after the reload, by the
		// configuration before it.
		if old := d.prevLVS[ev.Service]; has(old) {
			src, removed = old, true
			if worker == nil {
				worker = d.retired
			}
		} else {
			d.log.Warn("load-balancer event of a server this configuration does not have; no notify", "virtual_server", ev.Service, "real_server", ev.Real)
			return
		}
	}
	var dest lvs.Dest
	if real {
		dest = src.svc.Reals[src.reals[ev.Real]].Dest
	}
	line := src.svc.FIFOLine(ev.Kind, dest)
	if line == "" {
		return
	}
	d.fifos.writeLine(line+"\n", true)
	key := ""
	if real {
		key = ev.Real
	}
	up := ev.Kind == lvs.RealUp || ev.Kind == lvs.QuorumUp
	state := "DOWN"
	if up {
		state = "UP"
	}
	at := ev.Time
	if at.IsZero() {
		at = time.Now()
	}
	if run := src.run[scriptKey(ev.Kind, key)]; run != nil {
		timeout := d.opts.ScriptTimeout
		if ev.Stopping {
			timeout = min(timeout, stoppingTimeout)
		}
		worker.push(lvsJob{what: ev.Kind.String(), real: ev.Real, run: run, timeout: timeout,
			ev: sdk.Event{Node: d.node, NewState: state, Time: at}})
	}
	// smtp_alert's mail goes after the script, as keepalived sends it after the notifies.
	if real {
		k := lvsKey(ev.Service, ev.Real)
		was, known := d.rsUp[k]
		d.rsUp[k] = up
		if removed {
			// Its last notification: nothing is told of it any more, and rsUp holds only
			// the servers that can still be (see adoptLVS).
			delete(d.rsUp, k)
		}
		if known && was == up {
			// Not a change: an alpha checker's first failure (the server started down),
			// or the notify_up of a server up from the start (notify_rs_init): keepalived
			// mails neither.
			return
		}
	}
	on := src.svc.SMTPAlert
	if real {
		on = src.svc.Reals[src.reals[ev.Real]].SMTPAlert
	}
	if src.mail == nil || !on {
		return
	}
	mev := sdk.Event{Node: d.node, NewState: state, Time: at, VirtualServer: src.svc.FIFO, Detail: mailDetail(ev, removed)}
	if real {
		mev.RealServer = src.svc.RealName(dest)
	}
	worker.push(lvsJob{what: "smtp_alert of " + ev.Kind.String(), real: ev.Real, run: src.mail, timeout: src.mailTimeout, ev: mev})
}

// mailDetail is what smtp_alert's mail of ev says happened, in keepalived's words where it
// has them. keepalived's real server mail comes from the checker that changed ("=> TCP CHECK
// failed on service <="); core hears of the real server, not of its checkers' turns.
func mailDetail(ev LVSEvent, removed bool) string {
	up := ev.Kind == lvs.RealUp || ev.Kind == lvs.QuorumUp
	switch {
	case ev.Stopping:
		return "=> Shutting down <="
	case ev.Kind == lvs.RealUp || ev.Kind == lvs.RealDown:
		switch {
		case removed:
			return "=> Removing <="
		case up:
			return "=> All checkers succeed on service <="
		}
		return "=> A checker failed on service <="
	case ev.Init && up:
		return "=> Starting with quorum up <="
	case ev.Init:
		return "=> Starting with quorum down <="
	case up:
		return "=> Gained quorum <="
	}
	return "=> Lost quorum <="
}

// adoptLVS keeps old's virtual servers for the last notifications of those a reload removes
// (see LVS). Called by Adopt.
func (d *Dispatcher) adoptLVS(old *Dispatcher) {
	old.mu.Lock()
	prev := old.lvs
	rsUp := maps.Clone(old.rsUp)
	old.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.prevLVS = prev
	// The servers of the old configuration keep the state the notifications gave them: those
	// this one has too, and those it removed, whose last notification comes after the reload
	// (LVS forgets each after it). old.rsUp may still hold servers that the reload before
	// removed: they are not carried on, so that rsUp holds the servers of this configuration
	// and of the one before it, not every server ever configured.
	for id, src := range prev {
		for real := range src.reals {
			k := lvsKey(id, real)
			if up, ok := rsUp[k]; ok {
				d.rsUp[k] = up
			}
		}
	}
}

// WaitLVS waits until the load balancer's scripts queued so far have run, or ctx ends.
func (d *Dispatcher) WaitLVS(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var busy []string
		for _, w := range append(d.lvsWorkers(), d.retired) {
			if !w.idle() {
				busy = append(busy, w.src)
			}
		}
		if len(busy) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("load-balancer notify scripts still running: %v: %w", busy, ctx.Err())
		case <-tick.C:
		}
	}
}

func (d *Dispatcher) lvsWorkers() []*lvsWorker {
	var ws []*lvsWorker
	for _, src := range d.lvsOrder {
		ws = append(ws, src.worker)
	}
	return ws
}

// lvsJob is one script to run.
type lvsJob struct {
	what    string // the event, for the log
	real    string
	run     runner
	ev      sdk.Event
	timeout time.Duration
}

// lvsWorker runs one virtual server's scripts, one at a time, in order, from a bounded
// queue: when it is full the oldest waiting script is dropped, and the log says which.
type lvsWorker struct {
	serial[lvsJob]
	d      *Dispatcher
	src    string
	plugin bool // scripts go through the exec plugin: wait for its configuration
}

func newLVSWorker(d *Dispatcher, src string, plugin bool) *lvsWorker {
	w := &lvsWorker{d: d, src: src, plugin: plugin}
	w.serial = newSerial(d.opts.QueueLen*lvsQueueFactor, w.trim)
	return w
}

func (w *lvsWorker) trim(q []lvsJob) []lvsJob {
	old := q[0]
	w.d.log.Warn("load-balancer notify scripts are behind; the oldest waiting one was dropped", "for", w.src,
		"dropped", old.what, "real_server", old.real, "queue", w.max)
	return q[1:]
}

func (w *lvsWorker) run(ctx context.Context) {
	var ready <-chan struct{}
	if w.plugin {
		ready = w.d.ready
	}
	w.serial.run(ctx, ready, w.deliver)
}

func (w *lvsWorker) deliver(ctx context.Context, j lvsJob) {
	cctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	start := time.Now()
	err := j.run(cctx, j.ev)
	args := []any{"for", w.src, "event", j.what}
	if j.real != "" {
		args = append(args, "real_server", j.real)
	}
	elapsed := time.Since(start)
	outcome := ""
	switch {
	case err == nil:
		outcome = "ok"
		w.d.log.Info("notify script done", append(args, "took", elapsed.Round(time.Millisecond).String())...)
	case errors.Is(err, errSkipped):
	case ctx.Err() != nil:
		outcome = "cancelled"
		w.d.log.Warn("notify script cancelled at shutdown", args...)
	case cctx.Err() != nil || pastDeadline(cctx):
		outcome = "timeout"
		w.d.log.Error("notify script passed its deadline and was cancelled", append(args, "timeout", j.timeout.String(), "error", err)...)
	default:
		outcome = "failed"
		w.d.log.Error("notify script failed", append(args, "error", err)...)
	}
	if outcome != "" && w.d.opts.Delivered != nil {
		// The load balancer's actions are named by their event: "real server up", "quorum
		// down", "smtp_alert of real server down" (a handful of values).
		w.d.opts.Delivered(j.what, outcome, elapsed)
	}
}
