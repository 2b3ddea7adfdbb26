package lvs

import (
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/ipvs"
)

// FromConfig is what a Director needs of a validated configuration: its virtual servers
// with their checkers named as core/checksched names them (so that a check's results find
// their checker), which VRRP instances hold the addresses of ha_suspend services, and
// lvs_sync_daemon.
// A virtual server whose group is not defined is left out (validation refuses it).
func FromConfig(cfg *config.Config) Config {
	names := map[*config.Checker]string{}
	for _, rc := range checksched.RealServerChecks(cfg) {
		names[rc.Checker] = rc.Name
	}
	var out Config
	rank := map[string]int{} // a group's virtual servers, numbered as keepalived does
	for _, vs := range cfg.VirtualServers {
		var r int
		if vs.Group != "" {
			r = rank[vs.Group]
			rank[vs.Group]++
		}
		if s, ok := serviceOf(cfg, vs, r, names); ok {
			out.Services = append(out.Services, s)
		}
	}
	// The addresses of ha_suspend services, by the instances that hold them (config's
	// AddressHolders is the one rule for that).
	out.Instances = map[string][]netip.Addr{}
	for _, s := range out.Services {
		if !s.HASuspend {
			continue
		}
		for _, k := range s.Keys {
			a := k.Addr.Addr()
			if k.IsFWMark() || slices.Contains(out.Static, a) {
				continue
			}
			vis, static := cfg.AddressHolders(a)
			if static {
				out.Static = append(out.Static, a)
			}
			for _, vi := range vis {
				if !slices.Contains(out.Instances[vi.Name], a) {
					out.Instances[vi.Name] = append(out.Instances[vi.Name], a)
				}
			}
		}
	}
	out.InitNotifies = cfg.Global.RSInitNotifies
	out.FlushOnStop = cfg.Global.LVSFlushOnStop
	if sd := cfg.Global.LVSSyncDaemon; sd != nil {
		out.SyncDaemon = &SyncDaemon{Interface: sd.Interface, Instance: sd.Instance, SyncID: uint8(sd.SyncID),
			MaxLen: uint16(sd.MaxLen), Port: uint16(sd.Port), TTL: uint8(sd.TTL), Group: sd.Group}
	}
	return out
}

func serviceOf(cfg *config.Config, vs *config.VirtualServer, rank int, names map[*config.Checker]string) (Service, bool) {
	ck := cfg.Services(vs)
	if len(ck) == 0 {
		return Service{}, false
	}
	proto := strings.ToLower(vs.Protocol)
	if proto == "" {
		proto = "none"
	}
	s := Service{
		Protocol:  proto,
		Scheduler: vs.LBAlgo,
		Timeout:   uint32(vs.Persist.Seconds()),
		Netmask:   prefixLen(vs.PersistMask),
		PE:        vs.PersistEngine,
		Quorum:    int64(vs.Quorum), Hysteresis: int64(vs.Hysteresis),
		Omega: vs.Omega, HASuspend: vs.HASuspend,
		QuorumUp: vs.QuorumUp, QuorumDown: vs.QuorumDown, SMTPAlert: vs.SMTPAlert,
	}
	for _, k := range ck {
		s.Keys = append(s.Keys, serviceKey(k))
	}
	switch {
	case vs.Group != "":
		s.ID = fmt.Sprintf("group %s #%d", vs.Group, rank)
		s.Name = "group " + vs.Group
		s.FIFO = fmt.Sprintf("[%s]:%d", vs.Group, rank)
	case vs.FWMark != 0:
		s.ID = fmt.Sprintf("fwmark %d", vs.FWMark)
		if vs.Family == 6 {
			s.ID += " inet6"
		}
		s.Name = fmt.Sprintf("fwmark %d", vs.FWMark)
		s.FIFO = fmt.Sprintf("FWM %d", vs.FWMark)
	default:
		d := Dest{Addr: vs.Addr, Port: uint16(vs.Port)}
		s.ID = vs.Protocol + " " + d.HostPort()
		s.Name = d.HostPort()
		s.FIFO = trio(d, proto)
	}
	if vs.SchedFlag1 {
		s.Flags |= ipvs.FlagSched1
	}
	if vs.SchedFlag2 {
		s.Flags |= ipvs.FlagSched2
	}
	if vs.SchedFlag3 {
		s.Flags |= ipvs.FlagSched3
	}
	if vs.OPS {
		s.Flags |= ipvs.FlagOnePacket
	}
	if ss := vs.SorryServer; ss != nil {
		s.Sorry = &Sorry{Dest: dest(vs, ss, ck[0]), Inhibit: ss.InhibitOnFailure}
		if s.Sorry.Method == ipvs.NAT {
			// keepalived gives a NAT real server written without a port the service's,
			// but not a NAT sorry server: IPVS then keeps the client's port for it.
			s.Sorry.Port = uint16(ss.Port)
		}
	}
	for _, rs := range vs.RealServers {
		r := Real{Dest: dest(vs, rs, ck[0]), Weight: int64(rs.Weight), Inhibit: rs.InhibitOnFailure,
			NotifyUp: rs.NotifyUp, NotifyDown: rs.NotifyDown, SMTPAlert: rs.SMTPAlert}
		for _, c := range rs.Checkers {
			r.Checkers = append(r.Checkers, Checker{Name: names[c], Alpha: c.Alpha})
		}
		s.Reals = append(s.Reals, r)
	}
	return s, true
}

func serviceKey(k config.ServiceKey) ipvs.ServiceKey {
	fam := ipvs.IPv4
	if k.Family == 6 {
		fam = ipvs.IPv6
	}
	if k.FWMark != 0 {
		return ipvs.FWMarkKey(fam, uint32(k.FWMark))
	}
	proto := map[string]ipvs.Protocol{"TCP": ipvs.TCP, "UDP": ipvs.UDP, "SCTP": ipvs.SCTP}[k.Protocol]
	return ipvs.AddrKey(proto, netip.AddrPortFrom(k.Addr, uint16(k.Port)))
}

// dest is a real or sorry server. Outside a group its port is the one keepalived gives it
// (config's DestPort: the service's for DR and TUN), which is also how keepalived names it;
// in a group each key gives DR and TUN servers its own port (see destPort), and the server
// keeps the port written.
func dest(vs *config.VirtualServer, rs *config.RealServer, k config.ServiceKey) Dest {
	d := Dest{Addr: rs.Addr, Port: uint16(rs.Port), UThreshold: uint32(rs.UThreshold), LThreshold: uint32(rs.LThreshold)}
	if vs.Group == "" {
		d.Port = uint16(vs.DestPort(rs, k))
	}
	switch rs.LVSMethod {
	case "DR":
		d.Method = ipvs.DR
	case "TUN":
		d.Method = ipvs.TUN
		switch rs.Tunnel.Type {
		case "gue":
			d.TunnelType, d.TunnelPort = ipvs.GUE, uint16(rs.Tunnel.Port)
		case "gre":
			d.TunnelType = ipvs.GRE
		}
		switch rs.Tunnel.Checksum {
		case "csum":
			d.TunnelFlags = ipvs.TunnelChecksum
		case "remcsum":
			d.TunnelFlags = ipvs.TunnelRemoteChecksum
		}
	}
	return d
}

// prefixLen is persistence_granularity as the prefix length IPVS takes: the leading ones of
// the mask; 0 (each address on its own) when not set or all ones. An IPv4 mask with holes
// (keepalived passes it as it is) keeps only its leading ones.
func prefixLen(mask netip.Addr) uint8 {
	if !mask.IsValid() {
		return 0
	}
	n := 0
	for _, b := range mask.AsSlice() {
		n += bits.LeadingZeros8(^b)
		if b != 0xff {
			break
		}
	}
	if n == mask.BitLen() {
		return 0
	}
	return uint8(n)
}
