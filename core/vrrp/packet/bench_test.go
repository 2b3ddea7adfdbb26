package packet

import (
	"net/netip"
	"testing"
	"time"
)

func benchAdverts() []struct {
	name     string
	a        Advert
	src, dst netip.Addr
} {
	pw := [8]byte{'s', 'e', 'c', 'r', 'e', 't'}
	return []struct {
		name     string
		a        Advert
		src, dst netip.Addr
	}{
		{"v2_pass_1", Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second, AuthType: AuthPass, AuthData: pw, Addrs: addrs4(1)}, src4, IPv4Group},
		{"v3_ipv4_20", Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: addrs4(20)}, src4, IPv4Group},
		{"v3_ipv6_20", Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: addrs6(20)}, src6, IPv6Group},
	}
}

func BenchmarkMarshal(b *testing.B) {
	for _, c := range benchAdverts() {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, c.a.Len())
			b.ReportAllocs()
			b.SetBytes(int64(c.a.Len()))
			for b.Loop() {
				out, err := c.a.AppendMarshal(buf[:0], c.src, c.dst, Options{})
				if err != nil {
					b.Fatal(err)
				}
				buf = out
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, c := range benchAdverts() {
		pkt, err := c.a.Marshal(c.src, c.dst, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				if _, err := Parse(pkt, c.src, c.dst, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"_reuse", func(b *testing.B) {
			var a Advert
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				if err := a.Unmarshal(pkt, c.src, c.dst, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The sender's hot path must not allocate: keepalived-style 1 s (or 10 ms) adverts for many
// instances should not feed the garbage collector.
func TestMarshalReusedBufferDoesNotAllocate(t *testing.T) {
	for _, c := range benchAdverts() {
		buf := make([]byte, 0, c.a.Len())
		n := testing.AllocsPerRun(100, func() {
			if _, err := c.a.AppendMarshal(buf[:0], c.src, c.dst, Options{}); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per AppendMarshal", c.name, n)
		}
		var a Advert
		pkt, _ := c.a.Marshal(c.src, c.dst, Options{})
		_ = a.Unmarshal(pkt, c.src, c.dst, Options{})
		n = testing.AllocsPerRun(100, func() {
			if err := a.Unmarshal(pkt, c.src, c.dst, Options{}); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per Unmarshal into a reused Advert", c.name, n)
		}
	}
}
