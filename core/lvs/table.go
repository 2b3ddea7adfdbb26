package lvs

import (
	"math"
	"net/netip"
)

// Kernel service flags (IP_VS_SVC_F_*).
const (
	FlagPersistent = 0x0001
	FlagOnePacket  = 0x0004
	FlagSched1     = 0x0008 // sh-fallback, mh-fallback
	FlagSched2     = 0x0010 // sh-port, mh-port
	FlagSched3     = 0x0020
)

// Table is the IPVS table a Director wants: services in configuration order (a group's keys
// in their order), each with its destinations (real servers in order, then the sorry
// server).
type Table struct {
	Services []TableService
}

// TableService is one IPVS service to program.
type TableService struct {
	Key
	Scheduler string
	Flags     uint32 // with FlagPersistent when Timeout is set
	Timeout   uint32
	// Netmask is the persistence granularity: 255.255.255.255 or the /128 mask unless
	// set.
	Netmask netip.Addr
	PE      string
	Dests   []TableDest
}

// TableDest is one destination to program.
type TableDest struct {
	Addr   netip.Addr
	Port   uint16
	Method Method
	Tunnel Tunnel
	Weight int32
	// UThreshold and LThreshold are the connection limits.
	UThreshold, LThreshold uint32
}

// realWeight is the weight IPVS can take: a dynamic weight may push the sum below 0 or
// above the kernel's limit, and keepalived clamps it (real_weight).
func realWeight(w int64) int64 {
	return min(max(w, 0), math.MaxInt32)
}

// Desired is the table to program now. After Stop it is empty.
func (d *Director) Desired() Table {
	var t Table
	if d.stopped {
		return t
	}
	for _, s := range d.svcs {
		for _, k := range s.spec.Keys {
			t.Services = append(t.Services, tableService(s, k))
		}
	}
	return t
}

func tableService(s *svcState, k Key) TableService {
	spec := s.spec
	ts := TableService{Key: k, Scheduler: spec.Scheduler, Flags: spec.Flags, Netmask: fullMask(k.IPv6), PE: spec.PE}
	if spec.Timeout > 0 {
		ts.Flags |= FlagPersistent
		ts.Timeout = spec.Timeout
		if spec.Granularity.IsValid() {
			ts.Netmask = spec.Granularity
		}
	} else {
		ts.PE = ""
	}
	seen := map[netip.AddrPort]int{}
	add := func(d Dest, w int64, override bool) {
		td := TableDest{Addr: d.Addr, Port: destPort(k, d), Method: d.Method, Tunnel: d.Tunnel,
			Weight: int32(realWeight(w)), UThreshold: d.UThreshold, LThreshold: d.LThreshold}
		ap := netip.AddrPortFrom(td.Addr, td.Port)
		if i, ok := seen[ap]; ok {
			// Two servers on one destination (DR servers that differ only by port, or a
			// sorry server that is also a real server): keepalived's later command wins
			// for the sorry server in the pool, the first otherwise.
			if override {
				ts.Dests[i] = td
			}
			return
		}
		seen[ap] = len(ts.Dests)
		ts.Dests = append(ts.Dests, td)
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
	return ts
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

// destPort is the port of a destination of key k: a NAT server's own, otherwise the
// service's (none for a fwmark): IPVS does not rewrite the port for DR and TUN.
func destPort(k Key, d Dest) uint16 {
	if d.Method == NAT {
		return d.Port
	}
	return k.Port
}

func fullMask(ipv6 bool) netip.Addr {
	if ipv6 {
		var all [16]byte
		for i := range all {
			all[i] = 0xff
		}
		return netip.AddrFrom16(all)
	}
	return netip.AddrFrom4([4]byte{255, 255, 255, 255})
}
