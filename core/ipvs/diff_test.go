package ipvs

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

// applyOps does to t what the kernel does with ops, and refuses what the
// kernel refuses (an add of what exists, a change of what does not).
func applyOps(t Table, ops []Op) error {
	for i, op := range ops {
		k := op.Service.Key
		v, ok := t[k]
		var err error
		switch op.Kind {
		case AddService:
			if ok {
				err = fmt.Errorf("exists")
				break
			}
			t[k] = Virtual{Service: op.Service, Dests: map[DestKey]Destination{}}
		case UpdateService:
			if !ok {
				err = fmt.Errorf("no such service")
				break
			}
			v.Service = op.Service
			t[k] = v
		case DelService:
			if !ok {
				err = fmt.Errorf("no such service")
				break
			}
			delete(t, k)
		case AddDest, UpdateDest, DelDest:
			if !ok {
				err = fmt.Errorf("no such service")
				break
			}
			_, exists := v.Dests[op.Dest.Key]
			switch {
			case op.Kind == AddDest && exists:
				err = fmt.Errorf("destination exists")
			case op.Kind != AddDest && !exists:
				err = fmt.Errorf("no such destination")
			case op.Kind == DelDest:
				delete(v.Dests, op.Dest.Key)
			default:
				v.Dests[op.Dest.Key] = op.Dest
			}
		default:
			err = fmt.Errorf("unknown op")
		}
		if err != nil {
			return fmt.Errorf("op %d (%v): %w", i, op, err)
		}
	}
	return nil
}

// normalTable is t as the kernel would report it back.
func normalTable(t Table) Table {
	c := t.Clone()
	for k, v := range c {
		v.Service = v.Service.normal()
		c[k] = v
	}
	return c
}

var (
	vip4  = AddrKey(TCP, netip.MustParseAddrPort("192.0.2.10:80"))
	vip4u = AddrKey(UDP, netip.MustParseAddrPort("192.0.2.10:53"))
	vip6  = AddrKey(SCTP, netip.MustParseAddrPort("[2001:db8::10]:443"))
	fwm4  = FWMarkKey(IPv4, 1)
	fwm6  = FWMarkKey(IPv6, 1)
	rs1   = DestKeyFrom(netip.MustParseAddrPort("198.51.100.1:80"))
	rs2   = DestKeyFrom(netip.MustParseAddrPort("198.51.100.2:80"))
	rs3   = DestKeyFrom(netip.MustParseAddrPort("198.51.100.3:8080"))
	rs6   = DestKeyFrom(netip.MustParseAddrPort("[2001:db8::1:1]:443"))
)

func sampleTable() Table {
	t := Table{}
	t.Add(Service{Key: vip4, Scheduler: "wrr"})
	t.AddDest(vip4, Destination{Key: rs1, Method: DR, Weight: 3})
	t.AddDest(vip4, Destination{Key: rs2, Method: DR, Weight: 2})
	t.Add(Service{Key: vip6, Scheduler: "mh", Flags: FlagMHFallback | FlagMHPort})
	t.AddDest(vip6, Destination{Key: rs6, Method: NAT, Weight: 1})
	t.Add(Service{Key: fwm4, Scheduler: "rr", Flags: FlagPersistent, Timeout: 300, Netmask: 24})
	t.AddDest(fwm4, Destination{Key: DestKey{Addr: rs1.Addr}, Method: TUN, Weight: 1, TunnelType: GUE, TunnelPort: 6080})
	return t
}

func TestDiff(t *testing.T) {
	base := sampleTable()
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(Table)
		want []string
	}{
		{"unchanged", func(Table) {}, nil},
		{"weight only", func(w Table) {
			w[vip4].Dests[rs2] = Destination{Key: rs2, Method: DR, Weight: 7}
		}, []string{"update destination TCP  192.0.2.10:80 -> 198.51.100.2:80 DR weight 7"}},
		{"inhibit: weight 0", func(w Table) {
			w[vip4].Dests[rs1] = Destination{Key: rs1, Method: DR}
		}, []string{"update destination TCP  192.0.2.10:80 -> 198.51.100.1:80 DR weight 0"}},
		{"method in place", func(w Table) {
			w[vip6].Dests[rs6] = Destination{Key: rs6, Method: DR, Weight: 1}
		}, []string{"update destination SCTP  [2001:db8::10]:443 -> [2001:db8::1:1]:443 DR weight 1"}},
		{"scheduler in place", func(w Table) {
			w.Add(Service{Key: vip4, Scheduler: "sh", Flags: FlagSHFallback})
		}, []string{"update service TCP  192.0.2.10:80 sh flags sched1"}},
		{"remove and add a real server", func(w Table) {
			delete(w[vip4].Dests, rs1)
			w.AddDest(vip4, Destination{Key: rs3, Method: DR, Weight: 1})
		}, []string{
			"delete destination TCP  192.0.2.10:80 -> 198.51.100.1:80",
			"add destination TCP  192.0.2.10:80 -> 198.51.100.3:8080 DR weight 1",
		}},
		{"protocol change is delete and add", func(w Table) {
			v := w[vip4]
			delete(w, vip4)
			w.Add(Service{Key: vip4u, Scheduler: "wrr"})
			for _, d := range v.Dests {
				w.AddDest(vip4u, d)
			}
		}, []string{
			"delete service TCP  192.0.2.10:80",
			"add service UDP  192.0.2.10:53 wrr",
			"add destination UDP  192.0.2.10:53 -> 198.51.100.1:80 DR weight 3",
			"add destination UDP  192.0.2.10:53 -> 198.51.100.2:80 DR weight 2",
		}},
		{"family change is delete and add", func(w Table) {
			v := w[fwm4]
			delete(w, fwm4)
			w.Add(Service{Key: fwm6, Scheduler: "rr"})
			for _, d := range v.Dests {
				w.AddDest(fwm6, d)
			}
		}, []string{
			"delete service FWM  1",
			"add service FWM  1 IPv6 rr",
			"add destination FWM  1 IPv6 -> 198.51.100.1:0 TUN weight 1 tunnel gue port 6080",
		}},
		{"whole netmask is the default", func(w Table) {
			w.Add(Service{Key: vip4, Scheduler: "wrr", Netmask: 32})
		}, nil},
		{"everything goes", func(w Table) { clear(w) }, []string{
			"delete service TCP  192.0.2.10:80",
			"delete service FWM  1",
			"delete service SCTP  [2001:db8::10]:443",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := base.Clone()
			c.edit(want)
			ops := Diff(base, want)
			var got []string
			for _, op := range ops {
				got = append(got, op.String())
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got\n\t%q\nwant\n\t%q", got, c.want)
			}
			have := base.Clone()
			if err := applyOps(have, ops); err != nil {
				t.Fatal(err)
			}
			if !have.Equal(normalTable(want)) {
				t.Errorf("applied: got %v, want %v", have, want)
			}
		})
	}
}

// TestDiffFromEmpty: a start adds each service before its destinations.
func TestDiffFromEmpty(t *testing.T) {
	ops := Diff(nil, sampleTable())
	added := map[ServiceKey]bool{}
	for _, op := range ops {
		switch op.Kind {
		case AddService:
			added[op.Service.Key] = true
		case AddDest:
			if !added[op.Service.Key] {
				t.Errorf("%v before its service", op)
			}
		default:
			t.Errorf("unexpected %v", op)
		}
	}
	if len(ops) != 3+4 {
		t.Errorf("%d ops, want 7: %v", len(ops), ops)
	}
}

// tableFrom builds a table from fuzz bytes over a small set of keys, so that
// two tables share services and destinations often.
func tableFrom(b []byte) Table {
	keys := []ServiceKey{vip4, vip4u, vip6, fwm4, fwm6}
	dests := []DestKey{rs1, rs2, rs3, rs6, {Addr: rs1.Addr}}
	scheds := []string{"rr", "wrr", "sh", "mh"}
	t := Table{}
	for len(b) >= 8 {
		c := b[:8]
		b = b[8:]
		k := keys[int(c[0])%len(keys)]
		if c[1]&1 == 0 {
			t.Add(Service{
				Key:       k,
				Scheduler: scheds[int(c[2])%len(scheds)],
				Flags:     Flags(c[3]) & (FlagPersistent | FlagOnePacket | FlagSched1 | FlagSched2),
				Timeout:   uint32(c[4] % 3),
				Netmask:   c[5] % 3 * 16,
				PE:        []string{"", "sip"}[c[6]&1],
			})
			continue
		}
		if _, ok := t[k]; !ok {
			continue
		}
		t.AddDest(k, Destination{
			Key:            dests[int(c[2])%len(dests)],
			Method:         []Method{NAT, DR, TUN}[int(c[3])%3],
			Weight:         uint32(binary.LittleEndian.Uint16(c[4:6]) % 4),
			UpperThreshold: uint32(c[6] % 2),
			TunnelPort:     uint16(c[7] % 2),
		})
	}
	return t
}

func FuzzDiff(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 2, 1, 3, 0, 0, 0}, []byte{0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 2, 1, 4, 0, 0, 0})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0}, []byte{4, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		have, want := tableFrom(a), tableFrom(b)
		if ops := Diff(want, want); len(ops) != 0 {
			t.Fatalf("Diff(x, x) = %v", ops)
		}
		ops := Diff(have, want)
		got := have.Clone()
		if err := applyOps(got, ops); err != nil {
			t.Fatalf("%v\nops %v", err, ops)
		}
		if !normalTable(got).Equal(normalTable(want)) {
			t.Fatalf("have %v\nwant %v\nops %v\ngot %v", have, want, ops, got)
		}
		// Minimal: each service and each destination is touched at most
		// once, and only when it differs (a deleted service takes its
		// destinations without further ops).
		type target struct {
			s    ServiceKey
			d    DestKey
			dest bool
		}
		seen := map[target]bool{}
		for _, op := range ops {
			tg := target{s: op.Service.Key, d: op.Dest.Key, dest: op.IsDest()}
			if seen[tg] {
				t.Fatalf("%v touched twice: %v", tg, ops)
			}
			seen[tg] = true
			if op.IsDest() && seen[target{s: op.Service.Key}] && op.Kind == DelDest {
				t.Fatalf("%v after its service's op: %v", op, ops)
			}
			switch op.Kind {
			case UpdateService:
				if have[op.Service.Key].Service.normal() == op.Service {
					t.Fatalf("no-op %v", op)
				}
			case UpdateDest:
				if have[op.Service.Key].Dests[op.Dest.Key] == op.Dest {
					t.Fatalf("no-op %v", op)
				}
			}
		}
		// Deterministic.
		if again := Diff(have, want); !slices.Equal(again, ops) {
			t.Fatalf("two runs differ:\n%v\n%v", ops, again)
		}
	})
}
