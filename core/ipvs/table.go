// Package ipvs owns vigil's view of the kernel's IPVS table: the types of a
// table (this file), the operations that take one table to another (diff.go),
// the kernel through generic netlink (client.go) and the connection
// synchronisation daemon (daemon.go).
//
// Everything here is a comparable value: a Table built from the configuration
// and a Table read from the kernel are equal exactly when the kernel holds what
// the configuration says, so that a reload can change only the difference.
package ipvs

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Family is an address family, with the kernel's numbers (AF_INET, AF_INET6).
type Family uint16

// The address families IPVS knows.
const (
	IPv4 Family = 2
	IPv6 Family = 10
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("family(%d)", uint16(f))
}

// familyOf is the family an address belongs to (an IPv4-mapped IPv6 address is
// IPv6: the kernel would treat it so).
func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// Protocol is a transport protocol, with its IP protocol number.
type Protocol uint16

// The protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	case 0:
		return "-"
	}
	return fmt.Sprintf("proto(%d)", uint16(p))
}

// ServiceKey identifies a virtual service in the kernel: either a protocol
// with an address and port, or a firewall mark. Build one with AddrKey or
// FWMarkKey; the zero value is no service.
//
// A fwmark service has neither protocol nor address: the kernel matches it on
// the mark alone (it records such a service as TCP and never reports the
// protocol back), so Protocol and Addr stay zero and two fwmark services with
// the same family and mark are the same service.
type ServiceKey struct {
	Family   Family
	Protocol Protocol       // TCP, UDP or SCTP; 0 for a fwmark service
	Addr     netip.AddrPort // zero for a fwmark service
	FWMark   uint32         // non-zero for a fwmark service
}

// AddrKey is the key of the service for proto on ap (the port may be 0, as in
// keepalived's "virtual_server 192.0.2.1 0" with persistence).
func AddrKey(proto Protocol, ap netip.AddrPort) ServiceKey {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return ServiceKey{Family: familyOf(ap.Addr()), Protocol: proto, Addr: ap}
}

// FWMarkKey is the key of the service for firewall mark mark in family f.
func FWMarkKey(f Family, mark uint32) ServiceKey {
	return ServiceKey{Family: f, FWMark: mark}
}

// IsFWMark says whether the key names a fwmark service.
func (k ServiceKey) IsFWMark() bool { return k.FWMark != 0 }

// Validate says what is wrong with a key, if anything.
func (k ServiceKey) Validate() error {
	if k.Family != IPv4 && k.Family != IPv6 {
		return fmt.Errorf("service %v: address family %v is neither IPv4 nor IPv6", k, k.Family)
	}
	if k.IsFWMark() {
		if k.Protocol != 0 || k.Addr.IsValid() {
			return fmt.Errorf("service %v: a fwmark service has no protocol or address (the kernel matches the mark alone)", k)
		}
		return nil
	}
	switch k.Protocol {
	case TCP, UDP, SCTP:
	default:
		return fmt.Errorf("service %v: protocol %v is not TCP, UDP or SCTP", k, k.Protocol)
	}
	a := k.Addr.Addr()
	if !a.IsValid() {
		return fmt.Errorf("service %v: no address and no fwmark", k)
	}
	if a.Is4In6() || familyOf(a) != k.Family || a.Zone() != "" {
		return fmt.Errorf("service %v: address %v is not a plain %v address", k, a, k.Family)
	}
	return nil
}

// String is the key as ipvsadm -Ln shows it: "TCP  192.0.2.1:80",
// "UDP  [2001:db8::1]:53", "FWM  7" (with " IPv6" for an IPv6 fwmark service).
func (k ServiceKey) String() string {
	if k.IsFWMark() {
		if k.Family == IPv6 {
			return fmt.Sprintf("FWM  %d IPv6", k.FWMark)
		}
		return fmt.Sprintf("FWM  %d", k.FWMark)
	}
	return fmt.Sprintf("%v  %v", k.Protocol, k.Addr)
}

// Compare orders keys: IPv4 before IPv6, then address services before fwmark
// services, then by protocol, address, port and mark. Diff's order follows it.
func (k ServiceKey) Compare(o ServiceKey) int {
	if c := cmp.Compare(k.Family, o.Family); c != 0 {
		return c
	}
	if c := cmp.Compare(k.FWMark, o.FWMark); c != 0 {
		return c
	}
	if c := cmp.Compare(k.Protocol, o.Protocol); c != 0 {
		return c
	}
	return k.Addr.Compare(o.Addr)
}

// Flags are the kernel's service flags (IP_VS_SVC_F_*). The scheduler flags
// mean what the scheduler says: sh and mh read SCHED1 as "fallback" and SCHED2
// as "port"; other schedulers ignore them.
type Flags uint32

// The service flags.
const (
	FlagPersistent Flags = 0x0001
	// FlagHashed is the kernel's own mark of a service in its hash table: it
	// sets it on every service, whatever was asked. Read and Diff leave it out
	// so that a table read back equals the one applied.
	FlagHashed    Flags = 0x0002
	FlagOnePacket Flags = 0x0004 // keepalived's "ops": one-packet scheduling (UDP)
	FlagSched1    Flags = 0x0008
	FlagSched2    Flags = 0x0010
	FlagSched3    Flags = 0x0020

	FlagSHFallback = FlagSched1 // sh: pick another server when the hashed one is unavailable
	FlagSHPort     = FlagSched2 // sh: hash the source port too
	FlagMHFallback = FlagSched1 // mh: as sh-fallback
	FlagMHPort     = FlagSched2 // mh: as sh-port
)

// String is the flags in words, scheduler flags by their generic names
// ("persistent|ops|sched1").
func (f Flags) String() string {
	names := []struct {
		f Flags
		n string
	}{
		{FlagPersistent, "persistent"}, {FlagHashed, "hashed"}, {FlagOnePacket, "ops"},
		{FlagSched1, "sched1"}, {FlagSched2, "sched2"}, {FlagSched3, "sched3"},
	}
	var out []string
	for _, n := range names {
		if f&n.f != 0 {
			out = append(out, n.n)
			f &^= n.f
		}
	}
	if f != 0 {
		out = append(out, fmt.Sprintf("%#x", uint32(f)))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "|")
}

// Service is a virtual service: its key and the settings the kernel can change
// in place (IPVS_CMD_SET_SERVICE).
type Service struct {
	Key       ServiceKey
	Scheduler string // rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos ...
	Flags     Flags  // FlagHashed is never set here: see FlagHashed
	// Timeout is the persistence timeout in seconds; it matters with
	// FlagPersistent (keepalived's persistence_timeout sets both).
	Timeout uint32
	// Netmask is the persistence granularity as a prefix length: clients in
	// the same /Netmask share a persistence template. 0 means the whole
	// address (/32 or /128), the kernel's default, so a granularity of /0
	// cannot be said (the kernel refuses it for IPv6 anyway).
	Netmask uint8
	// PE is the persistence engine ("sip"), empty for none.
	PE string
}

// Validate says what is wrong with a service, if anything.
func (s Service) Validate() error {
	if err := s.Key.Validate(); err != nil {
		return err
	}
	if s.Scheduler == "" {
		return fmt.Errorf("service %v: no scheduler", s.Key)
	}
	// IP_VS_SCHEDNAME_MAXLEN and IP_VS_PENAME_MAXLEN are 16 with the NUL.
	if len(s.Scheduler) > 15 {
		return fmt.Errorf("service %v: scheduler name %q is longer than the kernel's 15 bytes", s.Key, s.Scheduler)
	}
	if len(s.PE) > 15 {
		return fmt.Errorf("service %v: persistence engine name %q is longer than the kernel's 15 bytes", s.Key, s.PE)
	}
	if s.Flags&FlagHashed != 0 {
		return fmt.Errorf("service %v: the hashed flag is the kernel's to set", s.Key)
	}
	if s.Flags&^(FlagPersistent|FlagOnePacket|FlagSched1|FlagSched2|FlagSched3) != 0 {
		return fmt.Errorf("service %v: unknown flags %v", s.Key, s.Flags)
	}
	if limit := s.Key.maxBits(); int(s.Netmask) > limit {
		return fmt.Errorf("service %v: persistence netmask /%d is longer than /%d", s.Key, s.Netmask, limit)
	}
	return nil
}

func (k ServiceKey) maxBits() int {
	if k.Family == IPv6 {
		return 128
	}
	return 32
}

// Method is how IPVS forwards to a destination, with the kernel's numbers
// (IP_VS_CONN_F_MASQ ...). The zero value is NAT, keepalived's default lb_kind.
type Method uint32

// The forwarding methods keepalived's lb_kind names (the kernel's "local" and
// "bypass" are its own).
const (
	NAT Method = 0 // masquerading
	TUN Method = 2 // IP-in-IP (or GUE, GRE) tunnelling
	DR  Method = 3 // direct routing
)

func (m Method) String() string {
	switch m {
	case NAT:
		return "NAT"
	case TUN:
		return "TUN"
	case DR:
		return "DR"
	case 1:
		return "Local"
	}
	return fmt.Sprintf("method(%d)", uint32(m))
}

// TunnelType is the encapsulation of a TUN destination (IP_VS_CONN_F_TUNNEL_TYPE_*).
type TunnelType uint8

// The tunnel types.
const (
	IPIP TunnelType = 0
	GUE  TunnelType = 1
	GRE  TunnelType = 2
)

func (t TunnelType) String() string {
	switch t {
	case IPIP:
		return "ipip"
	case GUE:
		return "gue"
	case GRE:
		return "gre"
	}
	return fmt.Sprintf("tunnel(%d)", uint8(t))
}

// TunnelFlags are a GUE or GRE tunnel's checksum options (IP_VS_TUNNEL_ENCAP_FLAG_*).
type TunnelFlags uint16

// The tunnel flags; none means no checksum.
const (
	TunnelChecksum       TunnelFlags = 0x1
	TunnelRemoteChecksum TunnelFlags = 0x2
)

// DestKey identifies a destination (real server) within its service.
type DestKey struct {
	Addr netip.Addr
	Port uint16 // 0 for a fwmark service's destination that keeps the packet's port
}

// DestKeyFrom is the key of the destination at ap.
func DestKeyFrom(ap netip.AddrPort) DestKey {
	return DestKey{Addr: ap.Addr().Unmap(), Port: ap.Port()}
}

// AddrPort is the key as an address and port.
func (k DestKey) AddrPort() netip.AddrPort { return netip.AddrPortFrom(k.Addr, k.Port) }

func (k DestKey) String() string { return k.AddrPort().String() }

// Compare orders destination keys by address, then port.
func (k DestKey) Compare(o DestKey) int {
	if c := k.Addr.Compare(o.Addr); c != 0 {
		return c
	}
	return cmp.Compare(k.Port, o.Port)
}

// Destination is a real server of a service: its key and the settings the
// kernel can change in place (IPVS_CMD_SET_DEST).
type Destination struct {
	Key            DestKey
	Method         Method
	Weight         uint32 // 0 takes no new connections (inhibit_on_failure); at most 1<<31-1
	UpperThreshold uint32 // 0 is no limit
	LowerThreshold uint32
	// The tunnel settings matter for Method TUN only.
	TunnelType  TunnelType
	TunnelPort  uint16 // GUE's UDP port
	TunnelFlags TunnelFlags
}

// Validate says what is wrong with a destination of a service with key svc.
func (d Destination) Validate(svc ServiceKey) error {
	a := d.Key.Addr
	if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
		return fmt.Errorf("service %v: destination %v: not a plain IPv4 or IPv6 address", svc, d.Key)
	}
	switch d.Method {
	case NAT, DR, TUN:
	default:
		return fmt.Errorf("service %v: destination %v: forwarding method %v is not NAT, DR or TUN", svc, d.Key, d.Method)
	}
	// The kernel forwards to another family only through a tunnel.
	if familyOf(a) != svc.Family && d.Method != TUN {
		return fmt.Errorf("service %v: destination %v: an %v destination of an %v service needs TUN", svc, d.Key, familyOf(a), svc.Family)
	}
	if d.Weight > 1<<31-1 {
		return fmt.Errorf("service %v: destination %v: weight %d above the kernel's %d", svc, d.Key, d.Weight, 1<<31-1)
	}
	if d.UpperThreshold != 0 && d.LowerThreshold > d.UpperThreshold {
		return fmt.Errorf("service %v: destination %v: lower threshold %d above the upper %d", svc, d.Key, d.LowerThreshold, d.UpperThreshold)
	}
	if d.Method != TUN && (d.TunnelType != IPIP || d.TunnelPort != 0 || d.TunnelFlags != 0) {
		return fmt.Errorf("service %v: destination %v: tunnel settings on a %v destination", svc, d.Key, d.Method)
	}
	switch d.TunnelType {
	case IPIP:
		if d.TunnelPort != 0 || d.TunnelFlags != 0 {
			return fmt.Errorf("service %v: destination %v: an ipip tunnel has no port or checksum flags", svc, d.Key)
		}
	case GUE:
		if d.TunnelPort == 0 {
			return fmt.Errorf("service %v: destination %v: a GUE tunnel needs a port", svc, d.Key)
		}
	case GRE:
		if d.TunnelPort != 0 {
			return fmt.Errorf("service %v: destination %v: a GRE tunnel has no port", svc, d.Key)
		}
	default:
		return fmt.Errorf("service %v: destination %v: unknown %v", svc, d.Key, d.TunnelType)
	}
	if d.TunnelFlags&^(TunnelChecksum|TunnelRemoteChecksum) != 0 {
		return fmt.Errorf("service %v: destination %v: unknown tunnel flags %#x", svc, d.Key, uint16(d.TunnelFlags))
	}
	return nil
}

// Virtual is one virtual service with its destinations, keyed by DestKey (each
// Destination's Key equals its map key).
type Virtual struct {
	Service Service
	Dests   map[DestKey]Destination
}

// Table is a set of virtual services keyed by ServiceKey (each Service.Key
// equals its map key). The zero value is an empty table; build one with Add
// and AddDest, or as a literal and check it with Validate.
type Table map[ServiceKey]Virtual

// Add puts s into the table, replacing a service with the same key but keeping
// that service's destinations.
func (t Table) Add(s Service) {
	v := t[s.Key]
	v.Service = s
	if v.Dests == nil {
		v.Dests = map[DestKey]Destination{}
	}
	t[s.Key] = v
}

// AddDest puts d under the service with key svc, which must be in the table.
func (t Table) AddDest(svc ServiceKey, d Destination) error {
	v, ok := t[svc]
	if !ok {
		return fmt.Errorf("destination %v: no service %v in the table", d.Key, svc)
	}
	if v.Dests == nil {
		v.Dests = map[DestKey]Destination{}
		t[svc] = v
	}
	v.Dests[d.Key] = d
	return nil
}

// Keys are the table's service keys in Compare order.
func (t Table) Keys() []ServiceKey {
	return slices.SortedFunc(maps.Keys(t), ServiceKey.Compare)
}

// DestKeys are the destination keys of v in Compare order.
func (v Virtual) DestKeys() []DestKey {
	return slices.SortedFunc(maps.Keys(v.Dests), DestKey.Compare)
}

// Validate says everything that is wrong with the table.
func (t Table) Validate() error {
	var errs []error
	for _, k := range t.Keys() {
		v := t[k]
		if v.Service.Key != k {
			errs = append(errs, fmt.Errorf("service %v filed under %v", v.Service.Key, k))
			continue
		}
		if err := v.Service.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, dk := range v.DestKeys() {
			d := v.Dests[dk]
			if d.Key != dk {
				errs = append(errs, fmt.Errorf("service %v: destination %v filed under %v", k, d.Key, dk))
				continue
			}
			if err := d.Validate(k); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Equal says whether two tables hold the same services with the same
// destinations (a nil and an empty destination map are equal).
func (t Table) Equal(o Table) bool {
	if len(t) != len(o) {
		return false
	}
	for k, v := range t {
		w, ok := o[k]
		if !ok || v.Service != w.Service || !maps.Equal(v.Dests, w.Dests) {
			return false
		}
	}
	return true
}

// Clone is a deep copy of the table.
func (t Table) Clone() Table {
	c := make(Table, len(t))
	for k, v := range t {
		c[k] = Virtual{Service: v.Service, Dests: maps.Clone(v.Dests)}
	}
	return c
}

// Only is the part of the table whose services keep says yes to: how a caller
// that manages some services leaves the others alone (Diff of the whole
// kernel table would delete services vigil did not add).
func (t Table) Only(keep func(ServiceKey) bool) Table {
	c := Table{}
	for k, v := range t {
		if keep(k) {
			c[k] = Virtual{Service: v.Service, Dests: maps.Clone(v.Dests)}
		}
	}
	return c
}

// Stats are the kernel's counters of a service or destination: totals since
// it was added, and rates (per second, estimated by the kernel over a few
// seconds).
type Stats struct {
	Conns      uint64 // connections scheduled
	InPackets  uint64
	OutPackets uint64
	InBytes    uint64
	OutBytes   uint64

	CPS    uint64 // connections per second
	InPPS  uint64
	OutPPS uint64
	InBPS  uint64 // bytes per second
	OutBPS uint64
}

// DestStats are a destination's counters and its current connections.
type DestStats struct {
	Stats
	ActiveConns   uint32
	InactiveConns uint32
	PersistConns  uint32 // persistence templates pointing at it
}

// ServiceStats are a service's counters and those of its destinations.
type ServiceStats struct {
	Stats
	Dests map[DestKey]DestStats
}
