package lvs

import (
	"math"

	"github.com/vigil-ha/vigil/core/ipvs"
)

// realWeight is the weight IPVS can take: a dynamic weight may push the sum below 0 or
// above the kernel's limit, and keepalived clamps it (real_weight).
func realWeight(w int64) int64 {
	return min(max(w, 0), math.MaxInt32)
}

// Desired is the table to program now: every service of every virtual server (a group's
// one per key), each with its destinations. After Stop it is empty.
func (d *Director) Desired() ipvs.Table {
	t := ipvs.Table{}
	if d.stopped {
		return t
	}
	for _, s := range d.svcs {
		for _, k := range s.spec.Keys {
			if _, dup := t[k]; dup {
				continue // two virtual servers on one key: the first one's, as in the kernel
			}
			d.addService(t, s, k)
		}
	}
	return t
}

func (d *Director) addService(t ipvs.Table, s *svcState, k ipvs.ServiceKey) {
	spec := s.spec
	svc := ipvs.Service{Key: k, Scheduler: spec.Scheduler, Flags: spec.Flags}
	if spec.Timeout > 0 {
		svc.Flags |= ipvs.FlagPersistent
		svc.Timeout, svc.Netmask, svc.PE = spec.Timeout, spec.Netmask, spec.PE
	}
	t.Add(svc)
	add := func(d Dest, w int64, override bool) {
		dk := ipvs.DestKey{Addr: d.Addr, Port: destPort(k, d)}
		if _, ok := t[k].Dests[dk]; ok && !override {
			// Two servers on one destination (DR servers that differ only by port, a
			// sorry server that is also a real server): the first one's, except that
			// a sorry server standing in takes it, as keepalived's later command does.
			return
		}
		t[k].Dests[dk] = ipvs.Destination{Key: dk, Method: d.Method, Weight: uint32(realWeight(w)),
			UpperThreshold: d.UThreshold, LowerThreshold: d.LThreshold,
			TunnelType: d.TunnelType, TunnelPort: d.TunnelPort, TunnelFlags: d.TunnelFlags}
	}
	for _, r := range s.reals {
		if w, ok := realEntry(s, r); ok {
			add(r.spec.Dest, w, false)
		}
	}
	if ss := spec.Sorry; ss != nil {
		switch {
		case s.sorryIn:
			add(ss.Dest, 1, true)
		case ss.Inhibit:
			add(ss.Dest, 0, false)
		}
	}
}

// realEntry is a real server's place in the table: while the sorry server is in, only the
// inhibited servers, at weight 0; otherwise the live ones at their weight and the failed
// inhibited ones at 0.
func realEntry(s *svcState, r *realState) (int64, bool) {
	switch {
	case s.sorryIn:
		return 0, r.spec.Inhibit
	case r.alive:
		return effective(r), true
	}
	return 0, r.spec.Inhibit
}

// destPort is the port of a destination of service k: a NAT server's own, otherwise the
// service's (none for a fwmark): IPVS does not rewrite the port for DR and TUN.
func destPort(k ipvs.ServiceKey, d Dest) uint16 {
	if d.Method == ipvs.NAT {
		return d.Port
	}
	return k.Addr.Port()
}

// Daemons are the sync daemons to run: none, the backup or the master one as the
// instance is, or both without an instance (keepalived's lvs_sync_daemon).
func (d *Director) Daemons() []ipvs.Daemon {
	sd := d.cfg.SyncDaemon
	role := d.role()
	if role == RoleNone {
		return nil
	}
	base := ipvs.Daemon{Interface: sd.Interface, SyncID: sd.SyncID, MaxLen: sd.MaxLen, Port: sd.Port, TTL: sd.TTL, Group: sd.Group}
	var out []ipvs.Daemon
	if role == RoleMaster || role == RoleBoth {
		m := base
		m.State = ipvs.Master
		out = append(out, m)
	}
	if role == RoleBackup || role == RoleBoth {
		b := base
		b.State = ipvs.Backup
		out = append(out, b)
	}
	return out
}
