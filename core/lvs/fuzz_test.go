package lvs

import (
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"testing"

	"github.com/vigil-ha/vigil/core/ipvs"
)

// fuzzConfig builds a small configuration from b: two services sharing a pool of checker
// names (so one name may feed several checkers), with quorum, hysteresis, sorry server,
// inhibit, alpha, weights and ha_suspend chosen by the bytes.
func fuzzConfig(b []byte) Config {
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		v := b[0]
		b = b[1:]
		return v
	}
	var cfg Config
	for i := range 2 {
		s := service()
		s.ID = fmt.Sprintf("svc%d", i)
		if i == 1 {
			s.Keys = append(s.Keys, ipvs.FWMarkKey(ipvs.IPv4, 3))
		}
		flags := next()
		s.Quorum, s.Hysteresis = int64(flags%4), int64(flags/4%3)
		if flags&0x40 != 0 {
			s.Sorry = sorry(flags&0x80 != 0)
		}
		s.HASuspend = next()%3 == 0
		n := int(next() % 5)
		for j := range n {
			f := next()
			r := rs(byte(10+j), int64(f%5), nil...)
			if f&0x08 != 0 {
				r.Method = ipvs.DR
			}
			r.Inhibit = f&0x10 != 0
			for k := range int(f / 32 % 3) {
				c := next()
				r.Checkers = append(r.Checkers, Checker{Name: fmt.Sprint("c", c%6), Alpha: c&0x80 != 0})
				_ = k
			}
			s.Reals = append(s.Reals, r)
		}
		if s.Sorry != nil && next()%4 == 0 && len(s.Reals) > 0 {
			s.Sorry.Dest = s.Reals[0].Dest // a sorry server that is a real server
		}
		cfg.Services = append(cfg.Services, s)
	}
	cfg.Instances = map[string][]netip.Addr{"VI_1": {netip.MustParseAddr(vip)}}
	if next()%2 == 0 {
		cfg.SyncDaemon = &SyncDaemon{Interface: "eth0", Instance: "VI_1"}
	}
	cfg.InitNotifies = next()%2 == 0
	return cfg
}

// fuzzRun feeds ops to a Director and returns everything it said, checking the invariants
// after each op.
func fuzzRun(t *testing.T, cfgBytes, ops []byte) []any {
	d, ev := New(fuzzConfig(cfgBytes))
	out := []any{ev, d.Desired()}
	for i := 0; i+1 < len(ops); i += 2 {
		op, arg := ops[i], ops[i+1]
		switch op % 8 {
		case 0, 1, 2, 3:
			var wt *int
			if arg&0x10 != 0 {
				v := int(int8(arg)) // -128..127, beyond what a check may say too
				wt = &v
			}
			ev = d.Check(fmt.Sprint("c", arg%6), Result{Up: op&0x10 != 0, Weight: wt, Initial: op&0x20 != 0})
		case 4:
			ev = d.InstanceState("VI_1", arg%2 == 0)
		case 5:
			ev = d.Reload(fuzzConfig(ops[i+1:]))
		case 6:
			if arg == 0 {
				ev = d.Stop()
			}
		case 7:
			ev = d.InstanceState("VI_2", arg%2 == 0)
		}
		checkInvariants(t, d)
		out = append(out, ev)
	}
	return append(out, d.Desired(), d.Status(), d.Suspended(), d.Daemons())
}

func checkInvariants(t *testing.T, d *Director) {
	t.Helper()
	tb := d.Desired()
	if err := tb.Validate(); err != nil {
		t.Fatal(err)
	}
	for k, v := range tb {
		for _, td := range v.Dests {
			if td.Weight > math.MaxInt32 {
				t.Fatalf("%v: weight %d", k, td.Weight)
			}
		}
	}
	if d.stopped {
		return
	}
	for _, s := range d.svcs {
		q, h, sum := s.spec.Quorum, s.spec.Hysteresis, live(s)
		// keepalived's own rules make a quorum of 0 flip at each evaluation; only a
		// real quorum must hold.
		if q >= 1 {
			if s.quorumUp && (sum == 0 || sum < q-h) {
				t.Fatalf("%s: quorum up with live weight %d (quorum %d-%d)", s.spec.ID, sum, q, h)
			}
			if !s.quorumUp && sum >= q+h {
				t.Fatalf("%s: quorum down with live weight %d (quorum %d+%d)", s.spec.ID, sum, q, h)
			}
			if s.sorryIn != (s.spec.Sorry != nil && !s.quorumUp) {
				t.Fatalf("%s: sorry server in %v, quorum up %v", s.spec.ID, s.sorryIn, s.quorumUp)
			}
		}
		for _, r := range s.reals {
			if r.alive != allUp(r) {
				t.Fatalf("%s/%s: alive %v with checkers %v", s.spec.ID, r.spec.HostPort(), r.alive, r.checkers)
			}
		}
	}
}

func FuzzDirector(f *testing.F) {
	f.Add([]byte{0x46, 0, 3, 0x30, 1, 0x21, 2, 0x41, 0, 0}, []byte{0, 1, 0x10, 1, 4, 0, 2, 2, 5, 0x47, 6, 0})
	f.Add([]byte{0xc5, 3, 4, 0x2a, 0x81, 0x31, 5, 0x40, 2}, []byte{0x10, 0x11, 0, 1, 4, 1, 5, 3, 0x13, 0x14})
	f.Add([]byte{}, []byte{6, 0, 0, 0})
	f.Fuzz(func(t *testing.T, cfg, ops []byte) {
		if len(ops) > 160 { // 80 inputs: enough for any sequence of states here
			ops = ops[:160]
		}
		a := fuzzRun(t, cfg, ops)
		b := fuzzRun(t, cfg, ops)
		if !reflect.DeepEqual(a, b) {
			t.Fatal("the same inputs gave different outputs")
		}
	})
}
