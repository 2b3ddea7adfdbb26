package lvs

// Reload moves the Director to a new configuration as keepalived's checker reloads: a virtual
// server that stays (same ID) keeps its quorum state and the sorry server's place, a real
// server that stays (same address and port) keeps whether it is up, and each of its
// checkers that stays (same name) keeps its state. Removed real servers that were up are
// reported down; removed virtual servers lose their quorum. New virtual and real servers
// start as at start. Reload after Stop does nothing.
func (d *Director) Reload(cfg Config) []Event {
	if d.stopped {
		return nil
	}
	role := d.role()
	oldSvcs := d.svcs
	oldSusp := map[string]bool{}
	for _, o := range oldSvcs {
		oldSusp[o.spec.ID] = o.suspended()
	}
	d.cfg = clone(cfg)
	svcs, checks := d.build()
	byID := make(map[string]*svcState, len(svcs))
	for _, s := range svcs {
		byID[s.spec.ID] = s
	}
	var ev []Event
	kept := map[*svcState]bool{}
	fresh := map[*realState]bool{}
	for _, s := range svcs {
		for _, r := range s.reals {
			fresh[r] = true
		}
	}
	// Old virtual servers first, in their order (keepalived's clear_diff_services).
	for _, o := range oldSvcs {
		n := byID[o.spec.ID]
		if n == nil || kept[n] {
			ev = append(ev, d.remove(o)...)
			continue
		}
		kept[n] = true
		n.quorumUp = o.quorumUp
		n.sorryIn = o.sorryIn && sameSorry(o.spec.Sorry, n.spec.Sorry)
		for _, or := range o.reals {
			nr := findReal(n, or.spec.Dest)
			if nr == nil || !fresh[nr] {
				if leaving(o, or) {
					ev = append(ev, realEvent(o, or, false))
				}
				continue
			}
			delete(fresh, nr)
			ev = append(ev, d.migrate(n, or, nr)...)
		}
		// Removing real servers may have lost the quorum (keepalived's update_vs_notifies),
		// measured by the old servers and settings. keepalived puts the sorry server in only
		// at the next step and then reports the loss a second time; vigil reports it once.
		sum := live(o)
		if o.quorumUp && (sum == 0 || sum < o.spec.Quorum-o.spec.Hysteresis) {
			n.quorumUp = false
			n.sorryIn = n.spec.Sorry != nil
			ev = append(ev, quorumEvent(o.spec, false, false, o.spec.Quorum-o.spec.Hysteresis, sum))
		}
	}
	d.svcs, d.checks = svcs, checks
	// Then every virtual server as at start (init_services): fresh real servers join, and
	// the quorum is evaluated with the new settings.
	for _, s := range svcs {
		var joined []*realState
		for _, r := range s.reals {
			if fresh[r] {
				joined = append(joined, r)
			}
		}
		ev = append(ev, d.start(s, joined)...)
		if was, ok := oldSusp[s.spec.ID]; ok && kept[s] && was != s.suspended() {
			k := Resumed
			if s.suspended() {
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

// remove takes a virtual server away: its real servers that were up (and in the table) are
// reported down, then its quorum, if it had it (keepalived's clear_service_vs). With
// lvs_flush_on_stop keepalived takes the other way out even on a reload: no real server is
// reported, and the quorum only if no live weight was left.
func (d *Director) remove(o *svcState) []Event {
	var ev []Event
	if d.cfg.FlushOnStop == "" {
		for _, r := range o.reals {
			if leaving(o, r) {
				ev = append(ev, realEvent(o, r, false))
			}
		}
	}
	th := o.spec.Quorum - o.spec.Hysteresis
	if sum := live(o); o.quorumUp && (sum == 0 || sum < th) {
		o.quorumUp = false
		ev = append(ev, quorumEvent(o.spec, false, false, th, sum))
	}
	return ev
}

// migrate carries a kept real server's state into its new configuration, as keepalived's
// migrate_checkers: checkers that ran keep their state and weight; one that has not run
// yet (new, or not run since start) is up, except a checker with alpha when the real
// server has a failed checker or is down with no checker run. A real server with no failed
// checker left is up.
func (d *Director) migrate(s *svcState, or, nr *realState) []Event {
	nr.alive = or.alive
	failed, ran := 0, false
	for _, nc := range nr.checkers {
		nc.up, nc.hasRun, nc.dyn = true, false, nil
		for _, oc := range or.checkers {
			if oc.spec.Name == nc.spec.Name && oc.hasRun {
				nc.up, nc.hasRun, nc.dyn = oc.up, true, oc.dyn
				break
			}
		}
		if nc.hasRun {
			ran = true
			if !nc.up {
				failed++
			}
		}
	}
	if failed > 0 || (!nr.alive && !ran) {
		for _, nc := range nr.checkers {
			if !nc.hasRun && nc.spec.Alpha {
				nc.up = false
			}
		}
	}
	alive := allUp(nr)
	if alive == nr.alive {
		return nil
	}
	nr.alive = alive
	return append([]Event{realEvent(s, nr, false)}, d.quorum(s, false)...)
}

func findReal(s *svcState, d Dest) *realState {
	for _, r := range s.reals {
		if r.spec.Addr == d.Addr && r.spec.Port == d.Port {
			return r
		}
	}
	return nil
}

func sameSorry(a, b *Sorry) bool {
	return a != nil && b != nil && a.Addr == b.Addr && a.Port == b.Port
}
