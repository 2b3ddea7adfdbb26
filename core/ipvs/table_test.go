package ipvs

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestServiceKeyString(t *testing.T) {
	for _, c := range []struct {
		k    ServiceKey
		want string
	}{
		{AddrKey(TCP, netip.MustParseAddrPort("192.0.2.1:80")), "TCP  192.0.2.1:80"},
		{AddrKey(UDP, netip.MustParseAddrPort("[2001:db8::1]:53")), "UDP  [2001:db8::1]:53"},
		{AddrKey(SCTP, netip.MustParseAddrPort("[::ffff:192.0.2.7]:9")), "SCTP  192.0.2.7:9"},
		{FWMarkKey(IPv4, 7), "FWM  7"},
		{FWMarkKey(IPv6, 7), "FWM  7 IPv6"},
	} {
		if got := c.k.String(); got != c.want {
			t.Errorf("%#v: got %q, want %q", c.k, got, c.want)
		}
		if err := c.k.Validate(); err != nil {
			t.Errorf("%v: %v", c.k, err)
		}
	}
}

func TestValidateRefuses(t *testing.T) {
	v4 := AddrKey(TCP, netip.MustParseAddrPort("192.0.2.1:80"))
	rs := DestKeyFrom(netip.MustParseAddrPort("198.51.100.1:80"))
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"no family", ServiceKey{FWMark: 1}.Validate(), "neither IPv4 nor IPv6"},
		{"fwmark with protocol", ServiceKey{Family: IPv4, FWMark: 1, Protocol: TCP}.Validate(), "fwmark service has no protocol"},
		{"bad protocol", ServiceKey{Family: IPv4, Protocol: 1, Addr: v4.Addr}.Validate(), "not TCP, UDP or SCTP"},
		{"family mismatch", ServiceKey{Family: IPv6, Protocol: TCP, Addr: v4.Addr}.Validate(), "not a plain IPv6"},
		{"no scheduler", Service{Key: v4}.Validate(), "no scheduler"},
		{"hashed", Service{Key: v4, Scheduler: "rr", Flags: FlagHashed}.Validate(), "kernel's to set"},
		{"netmask", Service{Key: v4, Scheduler: "rr", Netmask: 33}.Validate(), "longer than /32"},
		{"cross family DR", Destination{Key: DestKeyFrom(netip.MustParseAddrPort("[2001:db8::2]:80")), Method: DR}.Validate(v4), "needs TUN"},
		{"tunnel on DR", Destination{Key: rs, Method: DR, TunnelType: GUE, TunnelPort: 6080}.Validate(v4), "tunnel settings"},
		{"GUE without port", Destination{Key: rs, Method: TUN, TunnelType: GUE}.Validate(v4), "needs a port"},
		{"thresholds", Destination{Key: rs, UpperThreshold: 5, LowerThreshold: 6}.Validate(v4), "lower threshold"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.name, c.err, c.want)
		}
	}
}

func TestTable(t *testing.T) {
	tab := Table{}
	k6 := AddrKey(TCP, netip.MustParseAddrPort("[2001:db8::1]:443"))
	k4 := AddrKey(TCP, netip.MustParseAddrPort("192.0.2.1:80"))
	fw := FWMarkKey(IPv4, 3)
	for _, k := range []ServiceKey{k6, fw, k4} {
		tab.Add(Service{Key: k, Scheduler: "wrr"})
	}
	if err := tab.AddDest(k4, Destination{Key: DestKeyFrom(netip.MustParseAddrPort("198.51.100.2:80")), Weight: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tab.AddDest(AddrKey(UDP, k4.Addr), Destination{}); err == nil {
		t.Error("AddDest to a missing service: no error")
	}
	if err := tab.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := tab.Keys(), []ServiceKey{k4, fw, k6}; !slices.Equal(got, want) {
		t.Errorf("Keys: got %v, want %v", got, want)
	}
	c := tab.Clone()
	if !c.Equal(tab) {
		t.Fatal("clone differs")
	}
	// Add keeps the destinations of a service it replaces.
	c.Add(Service{Key: k4, Scheduler: "rr"})
	if len(c[k4].Dests) != 1 || c.Equal(tab) {
		t.Errorf("Add replacing a service: %v", c[k4])
	}
	if len(tab.Only(func(k ServiceKey) bool { return k.IsFWMark() })) != 1 {
		t.Error("Only")
	}
	// A nil and an empty destination map are the same table.
	d := Table{fw: {Service: tab[fw].Service}}
	if !d.Equal(tab.Only(func(k ServiceKey) bool { return k == fw })) {
		t.Error("nil vs empty Dests differ")
	}
}
