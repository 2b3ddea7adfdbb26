package lvs

import (
	"net/netip"
	"slices"
)

// Result is what a checker reported.
type Result struct {
	Up bool
	// Weight is the weight the checker asks for its real server while up (MISC_CHECK's
	// misc_dynamic: exit status - 2; a plugin's own weight answer); nil for none, which
	// leaves the configured weight. With two checkers asking, their differences from the
	// configured weight add up, as in keepalived.
	Weight *int
	// Initial marks the state a check scheduler sends before any probe ran. It is ignored:
	// the Director starts each checker as keepalived does (failed with alpha, up without),
	// and a checker whose configuration a reload changed keeps the state it had.
	Initial bool
}

// Role is the sync daemon's role.
type Role uint8

// Sync daemon roles.
const (
	RoleNone Role = iota
	RoleBackup
	RoleMaster
	// RoleBoth runs master and backup together (lvs_sync_daemon without an instance).
	RoleBoth
)

func (r Role) String() string {
	switch r {
	case RoleBackup:
		return "backup"
	case RoleMaster:
		return "master"
	case RoleBoth:
		return "master+backup"
	}
	return "none"
}

// Director holds the state of every virtual server, real server and checker. It is not
// safe for concurrent use: its owner feeds it one event at a time.
type Director struct {
	cfg     Config
	svcs    []*svcState
	checks  map[string][]*ckState // by checker name; two services may share a name
	master  map[string]bool       // VRRP instances that are master
	stopped bool
}

type svcState struct {
	spec     *Service
	reals    []*realState
	quorumUp bool
	// sorryIn is keepalived's "sorry server alive": it is in the pool, and the real
	// servers are out of it.
	sorryIn bool
	// present: one of the service's addresses is up here (ha_suspend).
	present bool
}

// suspended reports whether ha_suspend holds the service's checkers.
func (s *svcState) suspended() bool { return s.spec.HASuspend && !s.present }

type realState struct {
	spec     *Real
	alive    bool
	checkers []*ckState
}

type ckState struct {
	spec   Checker
	svc    *svcState
	real   *realState
	up     bool
	hasRun bool
	// dyn is the weight the checker asked for with its last success; nil for none, and
	// after a failure (keepalived resets a MISC_CHECK's weight when it fails).
	dyn *int64
}

// New starts a Director on cfg, as keepalived's checker process starts: real servers
// without a failed checker are up (a checker with alpha starts failed), the quorum of each
// virtual server is evaluated, and the events of that start are returned (the quorum's
// state, and real servers that start up when InitNotifies is set).
func New(cfg Config) (*Director, []Event) {
	d := &Director{master: map[string]bool{}}
	d.cfg = clone(cfg)
	d.svcs, d.checks = d.build()
	var ev []Event
	for _, s := range d.svcs {
		ev = append(ev, d.start(s, s.reals)...)
	}
	return d, ev
}

// clone copies what the Director keeps of cfg, so that the caller may reuse it.
func clone(cfg Config) Config {
	out := cfg
	out.Services = slices.Clone(cfg.Services)
	for i := range out.Services {
		s := &out.Services[i]
		s.Keys = slices.Clone(s.Keys)
		s.Reals = slices.Clone(s.Reals)
		for j := range s.Reals {
			s.Reals[j].Checkers = slices.Clone(s.Reals[j].Checkers)
		}
		if s.Sorry != nil {
			ss := *s.Sorry
			s.Sorry = &ss
		}
	}
	out.Instances = make(map[string][]netip.Addr, len(cfg.Instances))
	for k, v := range cfg.Instances {
		out.Instances[k] = slices.Clone(v)
	}
	out.Static = slices.Clone(cfg.Static)
	if cfg.SyncDaemon != nil {
		sd := *cfg.SyncDaemon
		out.SyncDaemon = &sd
	}
	return out
}

// build makes fresh states for d.cfg: checkers as at start, quorum as keepalived's
// set_quorum_states finds it before any server is alive.
func (d *Director) build() ([]*svcState, map[string][]*ckState) {
	checks := map[string][]*ckState{}
	cfg := d.cfg
	var svcs []*svcState
	for i := range cfg.Services {
		spec := &cfg.Services[i]
		s := &svcState{spec: spec, quorumUp: spec.Quorum+spec.Hysteresis <= 0}
		s.present = d.present(spec, cfg)
		for j := range spec.Reals {
			r := &realState{spec: &spec.Reals[j]}
			for _, c := range r.spec.Checkers {
				ck := &ckState{spec: c, svc: s, real: r, up: !c.Alpha}
				r.checkers = append(r.checkers, ck)
				checks[c.Name] = append(checks[c.Name], ck)
			}
			s.reals = append(s.reals, r)
		}
		svcs = append(svcs, s)
	}
	return svcs, checks
}

// start brings the service's fresh real servers up unless a checker failed, then evaluates
// its quorum (keepalived's init_service_vs). Real servers are down until then, so that a
// reload measures the quorum by the servers it kept, as keepalived does.
func (d *Director) start(s *svcState, fresh []*realState) []Event {
	var ev []Event
	for _, r := range fresh {
		r.alive = allUp(r)
		if r.alive && d.cfg.InitNotifies {
			ev = append(ev, realEvent(s, r, false))
		}
	}
	return append(ev, d.quorum(s, true)...)
}

func allUp(r *realState) bool {
	for _, c := range r.checkers {
		if !c.up {
			return false
		}
	}
	return true
}

// effective is the real server's weight: the configured one plus what each checker's
// dynamic weight adds to it.
func effective(r *realState) int64 {
	w := r.spec.Weight
	for _, c := range r.checkers {
		if c.dyn != nil {
			w += *c.dyn - r.spec.Weight
		}
	}
	return w
}

// live is the weight of the real servers that are up, which the quorum is measured by.
func live(s *svcState) int64 {
	var sum int64
	for _, r := range s.reals {
		if r.alive {
			sum += realWeight(effective(r))
		}
	}
	return sum
}

// quorum re-evaluates the service's quorum, as keepalived's update_quorum_state: one
// transition at most. Gaining it takes Quorum+Hysteresis of live weight and takes the sorry
// server out; losing it is falling below Quorum-Hysteresis (or to no weight at all) and puts
// the sorry server in. init is a start: a service that starts without its quorum reports
// that only when it has a sorry server to put in, as keepalived does.
func (d *Director) quorum(s *svcState, init bool) []Event {
	sum := live(s)
	q, h := s.spec.Quorum, s.spec.Hysteresis
	if !s.quorumUp {
		switch {
		case sum >= q+h:
			s.quorumUp, s.sorryIn = true, false
			return []Event{quorumEvent(s.spec, true, init, q+h, sum)}
		case init && s.spec.Sorry != nil && !s.sorryIn:
			s.sorryIn = true
			return []Event{quorumEvent(s.spec, false, init, q+h, sum)}
		}
		return nil
	}
	if sum == 0 || sum < q-h {
		s.quorumUp = false
		s.sorryIn = s.spec.Sorry != nil
		return []Event{quorumEvent(s.spec, false, init, q-h, sum)}
	}
	return nil
}

// quorumEvent reports a quorum gained or lost at threshold th with live weight sum.
func quorumEvent(spec *Service, up, init bool, th, sum int64) Event {
	ev := Event{Kind: QuorumDown, Service: spec.ID, Init: init, Quorum: spec.Quorum, Hysteresis: spec.Hysteresis,
		Threshold: th, Weight: sum, FIFO: fifoVS(spec, up), Script: spec.QuorumDown}
	if up {
		ev.Kind, ev.Script = QuorumUp, spec.QuorumUp
	}
	return ev
}

func realEvent(s *svcState, r *realState, stopping bool) Event {
	k := RealDown
	if r.alive {
		k = RealUp
	}
	script := r.spec.NotifyDown
	if r.alive {
		script = r.spec.NotifyUp
	}
	return Event{Kind: k, Service: s.spec.ID, Real: r.spec.HostPort(), Stopping: stopping,
		FIFO: fifoRS(s.spec, r.spec.Dest, r.alive), Script: script}
}

// Check applies one checker's result and returns what it caused. A result for a name no
// checker has, for a suspended checker (ha_suspend) or after Stop changes nothing.
//
// The owner may report every result or only the changes a check scheduler sends: the
// table is the same. Only keepalived's notification of an alpha checker's first result
// (a real server that started down is announced down once its first check fails) needs
// every result.
func (d *Director) Check(name string, r Result) []Event {
	if d.stopped || r.Initial {
		return nil
	}
	var ev []Event
	for _, c := range d.checks[name] {
		ev = append(ev, d.check(c, r)...)
	}
	return ev
}

func (d *Director) check(c *ckState, res Result) []Event {
	s, r := c.svc, c.real
	if s.suspended() {
		return nil
	}
	first := !c.hasRun
	c.hasRun = true
	var ev []Event
	// The weight first, as keepalived applies a MISC_CHECK's exit status before its state.
	var dyn *int64
	if res.Up && res.Weight != nil {
		w := int64(*res.Weight)
		dyn = &w
	}
	if !eqWeight(dyn, c.dyn) {
		before := realWeight(effective(r))
		c.dyn = dyn
		// Only a success changes the weight with a re-evaluation (update_svr_wgt); a
		// failure drops it silently, and its state change below re-evaluates.
		if res.Up && realWeight(effective(r)) != before {
			ev = append(ev, d.quorum(s, false)...)
		}
	}
	if res.Up == c.up {
		// keepalived announces a real server's state at a checker's first result when
		// that result confirms an alpha checker's assumed state, or a failure.
		if first && (c.spec.Alpha || !res.Up) {
			ev = append(ev, realEvent(s, r, false))
		}
		return ev
	}
	c.up = res.Up
	if alive := allUp(r); alive != r.alive {
		r.alive = alive
		ev = append(ev, realEvent(s, r, false))
		ev = append(ev, d.quorum(s, false)...)
	}
	return ev
}

func eqWeight(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// InstanceState records whether a VRRP instance is master. It moves the sync daemon that
// follows the instance, and suspends or resumes the checkers of ha_suspend services whose
// addresses the instance holds. Every instance starts as not master, so the owner feeds the
// states it knows right after New (keepalived reads the host's addresses before its
// checkers start).
func (d *Director) InstanceState(instance string, master bool) []Event {
	if d.stopped || d.master[instance] == master {
		return nil
	}
	role := d.role()
	if master {
		d.master[instance] = true
	} else {
		delete(d.master, instance)
	}
	var ev []Event
	for _, s := range d.svcs {
		was := s.suspended()
		s.present = d.present(s.spec, d.cfg)
		if now := s.suspended(); now != was {
			k := Resumed
			if now {
				k = Suspended
			}
			ev = append(ev, Event{Kind: k, Service: s.spec.ID})
		}
	}
	if r := d.role(); r != role {
		ev = append(ev, Event{Kind: SyncRole, Role: r})
	}
	return ev
}

// present reports whether one of the service's addresses is up here: static, or held by
// a VRRP instance that is master. keepalived watches the addresses themselves; vigil's
// check process learns them from the instances' states. A service without addresses
// (fwmark) is never suspended: keepalived refuses ha_suspend there.
func (d *Director) present(spec *Service, cfg Config) bool {
	if !spec.HASuspend {
		return true
	}
	has := func(a netip.Addr) bool {
		for _, k := range spec.Keys {
			if !k.IsFWMark() && k.Addr.Addr() == a {
				return true
			}
		}
		return false
	}
	addrs := false
	for _, k := range spec.Keys {
		addrs = addrs || !k.IsFWMark()
	}
	if !addrs || slices.ContainsFunc(cfg.Static, has) {
		return true
	}
	for inst := range d.master {
		if slices.ContainsFunc(cfg.Instances[inst], has) {
			return true
		}
	}
	return false
}

func (d *Director) role() Role {
	sd := d.cfg.SyncDaemon
	switch {
	case d.stopped || sd == nil:
		return RoleNone
	case sd.Instance == "":
		return RoleBoth
	case d.master[sd.Instance]:
		return RoleMaster
	}
	return RoleBackup
}

// Suspended lists the checkers that ha_suspend holds now: their probes are wasted, and
// their results are ignored.
func (d *Director) Suspended() []string {
	var names []string
	for _, s := range d.svcs {
		if !s.suspended() {
			continue
		}
		for _, r := range s.reals {
			for _, c := range r.checkers {
				names = append(names, c.spec.Name)
			}
		}
	}
	return names
}

// Stop is the shutdown: every real server leaves and every quorum is lost. Only services
// with omega report it, as keepalived does: their real servers that were up and in the table
// (unless FlushOnStop empties the table at once), then the quorum down, even if it was down
// already. The Desired table is empty afterwards and no sync daemon runs. An owner that
// keeps IPVS on exit (--dont-release-ipvs) does not call Stop: keepalived then reports
// nothing either.
func (d *Director) Stop() []Event {
	if d.stopped {
		return nil
	}
	var ev []Event
	for _, s := range d.svcs {
		if d.cfg.FlushOnStop == "" {
			for _, r := range s.reals {
				if leaving(s, r) && s.spec.Omega {
					ev = append(ev, realEvent(s, r, true))
				}
			}
		}
		for _, r := range s.reals {
			r.alive = false
		}
		s.quorumUp, s.sorryIn = false, false
		if s.spec.Omega {
			e := quorumEvent(s.spec, false, false, s.spec.Quorum-s.spec.Hysteresis, 0)
			e.Stopping = true
			ev = append(ev, e)
		}
	}
	d.stopped = true
	return ev
}

// leaving takes a real server out for good (stop, or a reload that removes it) and says
// whether that is reported: keepalived reports a server that was up and in the table, not
// one that the sorry server had pushed out (clear_service_rs).
func leaving(s *svcState, r *realState) bool {
	_, in := realEntry(s, r)
	report := r.alive && in
	r.alive = false
	return report
}
