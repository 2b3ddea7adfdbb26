package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// bgpConf is a bgp block and one instance that announces; the tests vary both.
func bgpConf(globals, bgp, announce string) string {
	return "global_defs {\n" + globals + "    bgp {\n" + bgp + "    }\n}\n" +
		"vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n" +
		"    virtual_ipaddress {\n        203.0.113.10\n        203.0.113.11/24\n    }\n" +
		"    announce {\n" + announce + "    }\n}\n"
}

// TestBGPModel: good files parse to the model the vrrp process and vigil-bgp read, defaults
// included. Fails when a keyword is not read into its field or a default changes.
func TestBGPModel(t *testing.T) {
	pos := func(line, col int) Pos { return Pos{File: "bgp.conf", Line: line, Col: col} }
	tests := []struct {
		name     string
		src      string
		bgp      *BGP
		announce *Announce
	}{{
		name: "defaults",
		src:  bgpConf("    router_id 192.0.2.1\n", "        local_as 64512\n        neighbor 198.51.100.1 {\n            remote_as 64513\n        }\n", ""),
		bgp: &BGP{LocalAS: 64512, RouterID: netip.MustParseAddr("192.0.2.1"), GracefulShutdown: 3 * time.Second, Pos: pos(3, 5),
			Neighbors: []*BGPNeighbor{{Address: netip.MustParseAddr("198.51.100.1"), RemoteAS: 64513, HoldTime: 90 * time.Second, ConnectRetry: 5 * time.Second, Pos: pos(5, 9)}}},
		announce: &Announce{Mode: AnnounceMaster, MED: -1, LocalPref: -1, Pos: pos(17, 5)},
	}, {
		name: "everything",
		src: bgpConf("    router_id node1\n",
			"        local_as 4200000000\n        router_id 192.0.2.7\n        graceful_shutdown 0\n"+
				"        neighbor 198.51.100.1 {\n            remote_as 64513\n            password \"s3cr et\"\n            hold_time 9\n"+
				"            connect_retry 30\n            ebgp_multihop 2\n            bfd\n        }\n"+
				"        neighbor 2001:db8::1 {\n            remote_as 4200000000\n            hold_time 3\n            bfd off\n        }\n",
			"        mode anycast\n        med priority\n        local_pref 200\n        community 64512:100 0:65535\n        community 65535:0\n"),
		bgp: &BGP{LocalAS: 4200000000, RouterID: netip.MustParseAddr("192.0.2.7"), GracefulShutdown: 0, Pos: pos(3, 5),
			Neighbors: []*BGPNeighbor{
				{Address: netip.MustParseAddr("198.51.100.1"), RemoteAS: 64513, Password: "s3cr et", HoldTime: 9 * time.Second,
					ConnectRetry: 30 * time.Second, Multihop: 2, BFD: true, Pos: pos(7, 9)},
				{Address: netip.MustParseAddr("2001:db8::1"), RemoteAS: 4200000000, HoldTime: 3 * time.Second, ConnectRetry: 5 * time.Second, Pos: pos(15, 9)},
			}},
		announce: &Announce{Mode: AnnounceAnycast, MEDFromPriority: true, MED: -1, LocalPref: 200,
			Communities: []string{"64512:100", "0:65535", "65535:0"}, Pos: pos(29, 5)},
	}, {
		name: "fixed med, local_pref from priority",
		src: bgpConf("    router_id 192.0.2.1\n", "        local_as 64512\n        neighbor 198.51.100.1 {\n            remote_as 64512\n        }\n",
			"        mode master\n        med 4294967295\n        local_pref priority\n"),
		bgp: &BGP{LocalAS: 64512, RouterID: netip.MustParseAddr("192.0.2.1"), GracefulShutdown: 3 * time.Second, Pos: pos(3, 5),
			Neighbors: []*BGPNeighbor{{Address: netip.MustParseAddr("198.51.100.1"), RemoteAS: 64512, HoldTime: 90 * time.Second, ConnectRetry: 5 * time.Second, Pos: pos(5, 9)}}},
		announce: &Announce{Mode: AnnounceMaster, MED: 4294967295, LocalPrefFromPriority: true, LocalPref: -1, Pos: pos(17, 5)},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ds := Parse("bgp.conf", []byte(tc.src), Options{InterfaceExists: hostInterfaces})
			if len(ds) > 0 {
				t.Fatalf("diagnostics:\n%v\n%s", ds, tc.src)
			}
			got := cfg.Global.BGP
			if got == nil {
				t.Fatal("no BGP in the model")
			}
			// Places are for messages; the model test compares the values.
			got.Places = nil
			for _, nb := range got.Neighbors {
				nb.Places = nil
			}
			if !reflect.DeepEqual(got, tc.bgp) {
				t.Errorf("bgp:\n got %+v\nwant %+v", got, tc.bgp)
				for i := range min(len(got.Neighbors), len(tc.bgp.Neighbors)) {
					t.Errorf("neighbor %d:\n got %+v\nwant %+v", i, got.Neighbors[i], tc.bgp.Neighbors[i])
				}
			}
			an := cfg.Instances[0].Announce
			if an == nil {
				t.Fatal("no Announce in the model")
			}
			an.Places = nil
			if !reflect.DeepEqual(an, tc.announce) {
				t.Errorf("announce:\n got %+v\nwant %+v", an, tc.announce)
			}
		})
	}
}

// TestNoBGP: without the blocks the model has neither, so that no speaker runs.
func TestNoBGP(t *testing.T) {
	cfg, ds := Parse("d.conf", []byte("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n"), Options{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	if cfg.Global.BGP != nil || cfg.Instances[0].Announce != nil {
		t.Errorf("BGP %+v, Announce %+v; want both nil", cfg.Global.BGP, cfg.Instances[0].Announce)
	}
}

// TestBGPRouterIDFromGlobal: the bgp block takes global_defs' router_id when it is IPv4,
// wherever in global_defs it is written.
func TestBGPRouterIDFromGlobal(t *testing.T) {
	src := "global_defs {\n bgp {\n  local_as 64512\n  neighbor 198.51.100.1 {\n   remote_as 64513\n  }\n }\n router_id 192.0.2.9\n}\n"
	cfg, ds := Parse("r.conf", []byte(src), Options{})
	if len(ds) > 0 {
		t.Fatal(ds)
	}
	if got := cfg.Global.BGP.RouterID; got != netip.MustParseAddr("192.0.2.9") {
		t.Errorf("router ID %v, want 192.0.2.9", got)
	}
}

// TestBGPDiagnostics: each bad input gives its diagnostic at its place, with the hint that
// says what to do. Lines and columns are those of bgpConf's layout: the bgp block's first
// line is line 4; with a bgp block of four lines, announce is at line 17 and its first line
// is line 18.
func TestBGPDiagnostics(t *testing.T) {
	const nb = "        neighbor 198.51.100.1 {\n            remote_as 64513\n        }\n"
	const rid = "    router_id 192.0.2.1\n"
	tests := []struct {
		name                   string
		globals, bgp, announce string
		src                    string // instead of bgpConf
		want                   string // one diagnostic, as vigil -t prints it
	}{
		{name: "no local_as", globals: rid, bgp: nb,
			want: `bgp.conf:3:5: error: bgp has no local_as; add: local_as N, this node's AS number (a private one is 64512 to 65534)`},
		{name: "AS 0", globals: rid, bgp: "        local_as 0\n" + nb,
			want: `bgp.conf:4:18: error: AS 0 is reserved (RFC 7607); use a number from 1 to 4294967295 (a private one is 64512 to 65534)`},
		{name: "AS_TRANS", globals: rid, bgp: "        local_as 23456\n" + nb,
			want: `bgp.conf:4:18: error: AS 23456 is AS_TRANS (RFC 6793), not an AS of its own; use the real AS number: 4-octet ones are written whole`},
		{name: "AS too big", globals: rid, bgp: "        local_as 4294967296\n" + nb,
			want: `bgp.conf:4:18: error: AS 4294967296 is out of range: use 1 to 4294967295`},
		{name: "AS asdot", globals: rid, bgp: "        local_as 1.10\n" + nb,
			want: `bgp.conf:4:18: error: "1.10" is not an AS number; write it as a whole number from 1 to 4294967295 (a private one is 64512 to 65534)`},
		{name: "no remote_as", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.1 {\n        }\n",
			want: `bgp.conf:5:9: error: neighbor 198.51.100.1 has no remote_as; add: remote_as N, the router's AS number (the same as local_as for iBGP)`},
		{name: "remote_as 23456", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.1 {\n            remote_as 23456\n        }\n",
			want: `bgp.conf:6:23: error: AS 23456 is AS_TRANS (RFC 6793), not an AS of its own; use the real AS number: 4-octet ones are written whole`},
		{name: "neighbor with port", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.1:179 {\n            remote_as 64513\n        }\n",
			want: `bgp.conf:5:18: error: neighbor "198.51.100.1:179" is not an IP address; write the address alone (198.51.100.1): BGP always uses TCP port 179`},
		{name: "IPv6 neighbor with port", globals: rid, bgp: "        local_as 64512\n        neighbor [2001:db8::1]:179 {\n            remote_as 64513\n        }\n",
			want: `bgp.conf:5:18: error: neighbor "[2001:db8::1]:179" is not an IP address; write the address alone (2001:db8::1): BGP always uses TCP port 179`},
		{name: "neighbor with prefix", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.0/24 {\n            remote_as 64513\n        }\n",
			want: `bgp.conf:5:18: error: neighbor "198.51.100.0/24" is not an IP address; write the router's address without a prefix length`},
		{name: "neighbor name", globals: rid, bgp: "        local_as 64512\n        neighbor router1 {\n            remote_as 64513\n        }\n",
			want: `bgp.conf:5:18: error: neighbor "router1" is not an IP address; write the router's IPv4 or IPv6 address, e.g. 198.51.100.1`},
		{name: "neighbor with zone", globals: rid, bgp: "        local_as 64512\n        neighbor fe80::1%eth0 {\n            remote_as 64513\n        }\n",
			want: `bgp.conf:5:18: error: neighbor "fe80::1%eth0" has a zone; vigil peers with global addresses only; use the router's global (or IPv4) address`},
		{name: "neighbor IPv4-mapped", globals: rid, bgp: "        local_as 64512\n        neighbor ::ffff:198.51.100.1 {\n            remote_as 64513\n        }\n",
			want: `bgp.conf:5:18: error: neighbor ::ffff:198.51.100.1 is an IPv4 address written as IPv6; write it as 198.51.100.1: the session, and the routes it carries, are IPv4`},
		{name: "neighbor unspecified", globals: rid, bgp: "        local_as 64512\n        neighbor 0.0.0.0 {\n            remote_as 64513\n        }\n",
			want: `bgp.conf:5:18: error: neighbor 0.0.0.0 is not the address of a router; write the router's own address, e.g. 198.51.100.1`},
		{name: "neighbor without block", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.1\n",
			want: `bgp.conf:5:9: error: "neighbor" needs a { ... } block; write neighbor 198.51.100.1 { ... }`},
		{name: "duplicate neighbor", globals: rid, bgp: "        local_as 64512\n" + nb + "        neighbor 198.51.100.1 {\n            remote_as 64514\n        }\n",
			want: `bgp.conf:8:9: error: neighbor 198.51.100.1 is already defined at bgp.conf:5:9; keep one neighbor block per router address`},
		{name: "duplicate neighbor IPv6 spelling", globals: rid, bgp: "        local_as 64512\n" + nb + "        neighbor 2001:db8::1 {\n            remote_as 64513\n        }\n        neighbor 2001:DB8:0::1 {\n            remote_as 64513\n        }\n",
			want: `bgp.conf:11:9: error: neighbor 2001:db8::1 is already defined at bgp.conf:8:9; keep one neighbor block per router address`},
		{name: "hold_time 2", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.1 {\n            remote_as 64513\n            hold_time 2\n        }\n",
			want: `bgp.conf:7:23: error: hold_time 2 is not allowed: use 3 to 65535; RFC 4271 forbids 1 and 2; routers close a session that offers them`},
		{name: "hold_time too long", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.1 {\n            remote_as 64513\n            hold_time 65536\n        }\n",
			want: `bgp.conf:7:23: error: 65536 is out of range: use 0 to 65535`},
		{name: "connect_retry 0", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.1 {\n            remote_as 64513\n            connect_retry 0\n        }\n",
			want: `bgp.conf:7:27: error: connect_retry 0 is out of range: use 1 to 3600 seconds`},
		{name: "connect_retry fraction", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.1 {\n            remote_as 64513\n            connect_retry 0.5\n        }\n",
			want: `bgp.conf:7:27: error: connect_retry "0.5" is not a whole number of seconds; use a number from 1 to 3600`},
		{name: "ebgp_multihop 256", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.1 {\n            remote_as 64513\n            ebgp_multihop 256\n        }\n",
			want: `bgp.conf:7:27: error: 256 is out of range: use 1 to 255`},
		{name: "graceful_shutdown 11", globals: rid, bgp: "        local_as 64512\n        graceful_shutdown 11\n" + nb,
			want: `bgp.conf:5:27: error: graceful_shutdown 11 is out of range: use 0 to 10 seconds`},
		{name: "password too long", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.1 {\n            remote_as 64513\n            password " + strings.Repeat("x", 81) + "\n        }\n",
			want: `bgp.conf:7:22: error: password is 81 bytes long; a TCP MD5 key has at most 80; use a shorter password, the same on the router`},
		{name: "router_id IPv6", globals: rid, bgp: "        local_as 64512\n        router_id 2001:db8::1\n" + nb,
			want: `bgp.conf:5:19: error: router_id 2001:db8::1 is not an IPv4 address; a BGP identifier is 32 bits written as IPv4: use one of this node's IPv4 addresses`},
		{name: "router_id from a name", globals: "    router_id node1\n", bgp: "        local_as 64512\n" + nb,
			want: `bgp.conf:3:5: error: bgp has no router_id; add: router_id A.B.C.D to the bgp block (global_defs router_id "node1" is not an IPv4 address)`},
		{name: "no router_id", bgp: "        local_as 64512\n" + nb,
			want: `bgp.conf:2:5: error: bgp has no router_id; add: router_id A.B.C.D to the bgp block, one of this node's IPv4 addresses`},
		{name: "unknown keyword in bgp", globals: rid, bgp: "        local_as 64512\n        remote_as 64513\n" + nb,
			want: `bgp.conf:5:9: error: unknown keyword "remote_as" in global_defs/bgp`},
		{name: "typo in neighbor", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.1 {\n            remote_as 64513\n            pasive\n        }\n",
			want: `bgp.conf:7:13: error: unknown keyword "pasive" in global_defs/bgp/neighbor`},
		{name: "two bgp blocks", src: "global_defs {\n bgp {\n  local_as 64512\n  router_id 192.0.2.1\n  neighbor 198.51.100.1 {\n   remote_as 64513\n  }\n }\n bgp {\n }\n}\n",
			want: `bgp.conf:9:2: error: bgp is given twice; the first is at bgp.conf:2:2; keep one bgp block and put every neighbor in it`},
		{name: "no neighbor", globals: rid, bgp: "        local_as 64512\n",
			want: `bgp.conf:3:5: warning: bgp has no neighbor; nothing will be announced; add: neighbor ADDR { remote_as N }`},
		{name: "mode", globals: rid, bgp: "        local_as 64512\n" + nb, announce: "        mode anycas\n",
			want: `bgp.conf:18:14: error: "anycas" is not one of master, anycast; did you mean "anycast"?`},
		{name: "med word", globals: rid, bgp: "        local_as 64512\n" + nb, announce: "        med prio\n",
			want: `bgp.conf:18:13: error: med "prio" is not priority or a number from 0 to 4294967295; write med priority to follow the instance's priority, or a fixed number`},
		{name: "med typo", globals: rid, bgp: "        local_as 64512\n" + nb, announce: "        med priorty\n",
			want: `bgp.conf:18:13: error: med "priorty" is not priority or a number from 0 to 4294967295; did you mean "priority"?`},
		{name: "med negative", globals: rid, bgp: "        local_as 64512\n" + nb, announce: "        med -1\n",
			want: `bgp.conf:18:13: error: med "-1" is not priority or a number from 0 to 4294967295; write med priority to follow the instance's priority, or a fixed number`},
		{name: "local_pref too big", globals: rid, bgp: "        local_as 64512\n        neighbor 198.51.100.1 {\n            remote_as 64512\n        }\n", announce: "        local_pref 4294967296\n",
			want: `bgp.conf:18:20: error: local_pref "4294967296" is not priority or a number from 0 to 4294967295; write local_pref priority to follow the instance's priority, or a fixed number`},
		{name: "community value", globals: rid, bgp: "        local_as 64512\n" + nb, announce: "        community 64512:100 64512:65536\n",
			want: `bgp.conf:18:29: error: community "64512:65536" is not ASN:VALUE; write two numbers from 0 to 65535 joined by a colon, e.g. 64512:100`},
		{name: "community without colon", globals: rid, bgp: "        local_as 64512\n" + nb, announce: "        community 64512\n",
			want: `bgp.conf:18:19: error: community "64512" is not ASN:VALUE; write two numbers from 0 to 65535 joined by a colon, e.g. 64512:100`},
		{name: "community large", globals: rid, bgp: "        local_as 64512\n" + nb, announce: "        community 64512:1:2\n",
			want: `bgp.conf:18:19: error: community "64512:1:2" is not ASN:VALUE; write two numbers from 0 to 65535 joined by a colon, e.g. 64512:100`},
		{name: "unknown keyword in announce", globals: rid, bgp: "        local_as 64512\n" + nb, announce: "        nexthop self\n",
			want: `bgp.conf:18:9: error: unknown keyword "nexthop" in vrrp_instance/announce`},
		{name: "local_pref with eBGP only", globals: rid, bgp: "        local_as 64512\n" + nb, announce: "        local_pref 200\n",
			want: `bgp.conf:18:9: warning: vrrp_instance "VI_1" sets local_pref but every neighbor is eBGP (remote_as differs from local_as); eBGP ignores it; use med to steer an eBGP router, or remove local_pref`},
		{name: "IPv4 addresses, IPv6 neighbor", globals: rid, bgp: "        local_as 64512\n        neighbor 2001:db8::1 {\n            remote_as 64513\n        }\n",
			want: `bgp.conf:17:5: warning: vrrp_instance "VI_1" announces IPv4 addresses but bgp has no IPv4 neighbor; they are not announced; routes go only to neighbors of their family: add an IPv4 neighbor`},
		{name: "IPv6 addresses, IPv4 neighbor",
			src:  "global_defs {\n bgp {\n  local_as 64512\n  router_id 192.0.2.1\n  neighbor 198.51.100.1 {\n   remote_as 64513\n  }\n }\n}\nvrrp_instance VI_6 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  2001:db8::10\n }\n announce {\n }\n}\n",
			want: `bgp.conf:16:2: warning: vrrp_instance "VI_6" announces IPv6 addresses but bgp has no IPv6 neighbor; they are not announced; routes go only to neighbors of their family: add an IPv6 neighbor`},
		{name: "excluded IPv6 addresses, IPv4 neighbor",
			src:  "global_defs {\n bgp {\n  local_as 64512\n  router_id 192.0.2.1\n  neighbor 198.51.100.1 {\n   remote_as 64513\n  }\n }\n}\nvrrp_instance VI_6 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.10\n }\n virtual_ipaddress_excluded {\n  2001:db8::10\n }\n announce {\n }\n}\n",
			want: `bgp.conf:19:2: warning: vrrp_instance "VI_6" announces IPv6 addresses but bgp has no IPv6 neighbor; they are not announced; routes go only to neighbors of their family: add an IPv6 neighbor`},
		{name: "announce without bgp",
			src:  "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.10\n }\n announce {\n  mode anycast\n }\n}\n",
			want: `bgp.conf:7:2: error: vrrp_instance "VI_1" announces over BGP but there is no bgp block; add a bgp block to global_defs`},
		{name: "two announce blocks",
			src:  "global_defs {\n bgp {\n  local_as 64512\n  router_id 192.0.2.1\n  neighbor 198.51.100.1 {\n   remote_as 64513\n  }\n }\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.10\n }\n announce {\n }\n announce {\n }\n}\n",
			want: `bgp.conf:18:2: error: announce is given twice in vrrp_instance "VI_1"; the first is at bgp.conf:16:2; keep one announce block`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			if src == "" {
				src = bgpConf(tc.globals, tc.bgp, tc.announce)
			}
			_, ds := Parse("bgp.conf", []byte(src), Options{InterfaceExists: hostInterfaces})
			if len(ds) != 1 || ds[0].String() != tc.want {
				t.Errorf("got %d diagnostic(s):\n%v\nwant:\n%s\nin:\n%s", len(ds), ds, tc.want, src)
			}
		})
	}
}
