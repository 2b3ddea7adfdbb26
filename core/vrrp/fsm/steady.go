package fsm

import "time"

// A runtime driving hundreds of routers with 10 ms adverts cannot afford to wake each
// machine for every advert it sends or hears. In the steady states the machine's answer is
// known in advance: a master only sends the same advert every Advertisement_Interval, and a
// backup that keeps hearing the same master only pushes its Master_Down_Timer back. The two
// methods below let a runtime do that work in bulk and bring the machine up to date before it
// hands it any other event.

// RefreshedBy reports whether handling ev at any time t from now on, with no other event in
// between, would do nothing but set the Master_Down_Timer to t + MasterDownInterval(). That
// holds in Backup for an advert from the master we follow, with the interval it already
// advertises, that we accept (6.4.2) and that starts or stops no preempt_delay.
//
// A runtime may then record only when such adverts arrive and hand the machine the last one
// (with its arrival time) before any other event or when the timer is near.
func (m *Machine) RefreshedBy(ev AdvertReceived) bool {
	if !m.started || m.state != Backup || m.wantMaster || ev.Priority == PriorityStop {
		return false
	}
	if ev.From != m.masterAddr {
		return false
	}
	if m.cfg.Version == 3 && ev.Interval > 0 && ev.Interval != m.masterAdverInterval {
		return false
	}
	if m.demoted {
		return true // follows any master (see Demote), and runs no preempt_delay
	}
	if int(ev.Priority) >= m.priority {
		// Accepted; a preempt_delay is cleared, so it must not be running.
		return m.preemptAt.IsZero()
	}
	// Lower than ours: accepted only without preemption, and then a preempt_delay starts at
	// the first such advert; after that the advert changes nothing else.
	return !m.cfg.Preempt && (m.cfg.PreemptDelay == 0 || !m.preemptAt.IsZero())
}

// AdvertsSentUntil tells a master that its runtime sent the adverts of every Adver_Timer
// expiry before next on its behalf (6.4.3 "If the Adver_Timer fires"), and that the timer
// next fires at next. It does nothing in other states.
func (m *Machine) AdvertsSentUntil(next time.Time) {
	if m.state == Master && !next.IsZero() {
		m.deadline = next
	}
}
