package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

func TestIdentity(t *testing.T) {
	base := func() *config.VRRPInstance {
		return &config.VRRPInstance{Name: "VI_1", Interface: "eth0", VRID: 51, Version: 3, Priority: 100,
			VIPs: []*config.Address{{Prefix: netip.MustParsePrefix("192.0.2.100/24")}}}
	}
	g := config.Global{}
	id := identity(base(), g)
	same := map[string]func(*config.VRRPInstance){
		"renamed":        func(v *config.VRRPInstance) { v.Name = "VI_9" },
		"other priority": func(v *config.VRRPInstance) { v.Priority = 200 },
		"more VIPs": func(v *config.VRRPInstance) {
			v.VIPs = append(v.VIPs, &config.Address{Prefix: netip.MustParsePrefix("192.0.2.101/24")})
		},
	}
	for name, mod := range same {
		v := base()
		mod(v)
		if identity(v, g) != id {
			t.Errorf("%s: identity changed", name)
		}
	}
	other := map[string]func(*config.VRRPInstance){
		"VRID":      func(v *config.VRRPInstance) { v.VRID = 52 },
		"interface": func(v *config.VRRPInstance) { v.Interface = "eth1" },
		"version":   func(v *config.VRRPInstance) { v.Version = 2 },
		"family":    func(v *config.VRRPInstance) { v.IPv6 = true },
		"unicast": func(v *config.VRRPInstance) {
			v.UnicastPeers = []config.UnicastPeer{{Addr: netip.MustParseAddr("192.0.2.12")}}
		},
		"source": func(v *config.VRRPInstance) { v.UnicastSrcIP = netip.MustParseAddr("192.0.2.11") },
	}
	for name, mod := range other {
		v := base()
		mod(v)
		if identity(v, g) == id {
			t.Errorf("%s: identity unchanged", name)
		}
	}
}

func TestUnitStays(t *testing.T) {
	inst := func(name string, vrid int) *instance {
		vc := &config.VRRPInstance{Name: name, Interface: "eth0", VRID: vrid, Version: 3, Priority: 100, AdvertInt: time.Second}
		return &instance{name: name, cfg: vc, m: fsm.New(fsm.Config{VRID: uint8(vrid), Version: 3, Priority: 100, AdvertInterval: time.Second})}
	}
	group := func(name string, members ...string) *config.SyncGroup {
		g := &config.SyncGroup{Name: name}
		for _, m := range members {
			g.Members = append(g.Members, config.NameRef{Name: m})
		}
		return g
	}
	cfgOf := func(groups []*config.SyncGroup, ins ...*instance) *config.Config {
		c := &config.Config{SyncGroups: groups}
		for _, in := range ins {
			vc := *in.cfg
			c.Instances = append(c.Instances, &vc)
		}
		return c
	}
	a, b := inst("A", 51), inst("B", 52)
	lone := newUnit([]*instance{a}, false, time.Now(), nil)
	pair := newUnit([]*instance{a, b}, true, time.Now(), nil)
	oldLone := cfgOf(nil, a, b)
	oldPair := cfgOf([]*config.SyncGroup{group("G", "A", "B")}, a, b)
	for _, tc := range []struct {
		name string
		u    *unit
		old  *config.Config
		next *config.Config
		want bool
	}{
		{"lone stays lone", lone, oldLone, cfgOf(nil, a, b), true},
		{"lone joins a group", lone, oldLone, cfgOf([]*config.SyncGroup{group("G", "A", "B")}, a, b), false},
		{"group unchanged", pair, oldPair, cfgOf([]*config.SyncGroup{group("G", "A", "B")}, a, b), true},
		{"group renamed", pair, oldPair, cfgOf([]*config.SyncGroup{group("H", "B", "A")}, a, b), true},
		{"group split", pair, oldPair, cfgOf(nil, a, b), false},
		{"member gone", pair, oldPair, cfgOf([]*config.SyncGroup{group("G", "A")}, a), false},
		{"member added", pair, oldPair, cfgOf([]*config.SyncGroup{group("G", "A", "B", "C")}, a, b, inst("C", 53)), false},
	} {
		newByID := map[string]*config.VRRPInstance{}
		groupOf := map[string]string{}
		for _, vc := range tc.next.Instances {
			newByID[identity(vc, tc.next.Global)] = vc
		}
		for _, g := range tc.next.SyncGroups {
			for _, m := range g.Members {
				groupOf[m.Name] = g.Name
			}
		}
		if got := unitStays(tc.u.view(), tc.old, tc.next, newByID, groupOf); got != tc.want {
			t.Errorf("%s: unitStays = %v, want %v", tc.name, got, tc.want)
		}
	}
}
