package fsm

import (
	"fmt"
	"time"
)

// Reconfigure applies a reloaded configuration to a running machine without leaving its
// state: the RFC has no event for it, so this follows what a reload must not do (steal or
// drop mastership) and what it must (use the new settings from now on). The identity of
// the virtual router (VRID, version, primary address) cannot change; a reload that changes
// it makes a new machine. The primary address may change only while the machine neither
// sends nor listens (INIT, FAULT): an interface that had no address when the machine was
// made, or lost the one it had, gives it one.
//
// The base priority takes effect through the next PriorityChanged, which the runtime sends
// after recomputing the effective priority with the new base (see Effective); only the
// address owner's 255 is applied here, since trackers never move it. A master keeps its
// Adver_Timer, and from its next expiry advertises with the new interval; a backup keeps
// its Master_Down_Timer, which the next advert restarts with the new values.
func (m *Machine) Reconfigure(now time.Time, cfg Config) error {
	if cfg.VRID != m.cfg.VRID || cfg.Version != m.cfg.Version {
		return fmt.Errorf("fsm: VRID and version cannot change in place")
	}
	if cfg.PrimaryAddr != m.cfg.PrimaryAddr && (m.state == Backup || m.state == Master) {
		return fmt.Errorf("fsm: the primary address cannot change in %s", m.state)
	}
	if cfg.Priority < 1 || cfg.Priority > PriorityOwner || cfg.AdvertInterval <= 0 {
		return fmt.Errorf("fsm: priority %d or advert interval %s out of range", cfg.Priority, cfg.AdvertInterval)
	}
	if cfg.DownTimerAdverts <= 0 {
		cfg.DownTimerAdverts = 3
	}
	// InitialState only matters at start, which is over.
	cfg.InitialState = m.cfg.InitialState
	if cfg.Priority == PriorityOwner {
		cfg.Preempt = true
	}
	wasOwner := m.isOwner()
	m.cfg = cfg
	switch {
	case m.isOwner():
		m.priority = PriorityOwner
	case wasOwner:
		m.priority = cfg.Priority // trackers adjust it with the next PriorityChanged
	}
	if m.state != Backup || cfg.Version == 2 {
		// A v3 backup keeps the master's interval, learned from its adverts (6.4.2); a v2
		// router counts its Master_Down_Interval from its own.
		m.masterAdverInterval = cfg.AdvertInterval
	}
	if !cfg.Preempt || cfg.PreemptDelay == 0 {
		m.preemptAt = time.Time{}
	}
	return nil
}
