package config

import "net/netip"

// VirtualServerGroup returns the virtual_server_group of that name, or nil.
func (c *Config) VirtualServerGroup(name string) *VirtualServerGroup {
	for _, g := range c.VirtualServerGroups {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// Services returns the IPVS services of a virtual server, in the order keepalived 2.2.7 adds
// them: one for an address or a fwmark service; for "virtual_server group NAME", one per
// address of each address entry of the group (each address of a range is a service of its
// own, with the entry's port and the virtual server's protocol), then one per fwmark entry
// (with the entry's family, else the virtual server's). nil when the group is not defined.
func (c *Config) Services(vs *VirtualServer) []ServiceKey {
	if vs.Group == "" {
		if vs.FWMark != 0 {
			return []ServiceKey{{Family: vs.Family, FWMark: vs.FWMark}}
		}
		return []ServiceKey{{Family: vs.Family, Addr: vs.Addr, Port: vs.Port, Protocol: vs.Protocol}}
	}
	g := c.VirtualServerGroup(vs.Group)
	if g == nil {
		return nil
	}
	var out []ServiceKey
	for _, e := range g.Entries {
		if e.FWMark != 0 {
			continue
		}
		for _, a := range e.Addrs() {
			out = append(out, ServiceKey{Family: famOf(a), Addr: a, Port: e.Port, Protocol: vs.Protocol})
		}
	}
	for _, e := range g.Entries {
		if e.FWMark == 0 {
			continue
		}
		fam := e.Family
		if fam == 0 {
			fam = vs.Family
		}
		out = append(out, ServiceKey{Family: fam, FWMark: e.FWMark})
	}
	return out
}

// Addrs lists the addresses of an address entry, from Addr to RangeTo; nil for a fwmark
// entry. A range lies within the last octet or 16-bit group, so it holds at most 65536.
func (e VSGEntry) Addrs() []netip.Addr {
	if e.FWMark != 0 || !e.Addr.IsValid() {
		return nil
	}
	if !e.RangeTo.IsValid() {
		return []netip.Addr{e.Addr}
	}
	var out []netip.Addr
	for a := e.Addr; a.IsValid() && !e.RangeTo.Less(a); a = a.Next() {
		out = append(out, a)
	}
	return out
}

// DestPort is the port of real server (or sorry server) rs in service k, as keepalived 2.2.7
// programs it: a NAT server keeps its own port (an address:port service gives its port to a
// NAT real server written without one, not to the sorry server); a DR or TUN server takes the
// service's port, whatever its own (0 in a fwmark service): IPVS does not rewrite the port
// for them.
func (vs *VirtualServer) DestPort(rs *RealServer, k ServiceKey) int {
	if rs.LVSMethod != "NAT" {
		return k.Port
	}
	if rs.Port == 0 && vs.Group == "" && vs.FWMark == 0 && rs != vs.SorryServer {
		return vs.Port
	}
	return rs.Port
}

// AddressHolders returns the vrrp_instances whose virtual_ipaddress (or
// virtual_ipaddress_excluded) holds address a, in file order, and whether a static_ipaddress
// holds it. With ha_suspend, keepalived 2.2.7 runs a service's checkers only while one of its
// addresses is on this host: for a VIP, while one of these instances is master.
func (c *Config) AddressHolders(a netip.Addr) ([]*VRRPInstance, bool) {
	has := func(list []*Address) bool {
		for _, x := range list {
			if x.Prefix.Addr() == a {
				return true
			}
		}
		return false
	}
	var out []*VRRPInstance
	for _, vi := range c.Instances {
		if has(vi.VIPs) || has(vi.ExcludedVIPs) {
			out = append(out, vi)
		}
	}
	return out, has(c.StaticAddrs)
}
