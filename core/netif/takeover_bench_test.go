package netif

import (
	"net/netip"
	"testing"
)

// BenchmarkTakeover times what a new master does for one VIP before its first gratuitous ARP
// leaves: add the address, then announce it. Run as root:
// go test -run '^$' -bench Takeover ./core/netif
func BenchmarkTakeover(b *testing.B) {
	l := newLab(b)
	l.veth(b)
	vip := Addr{Prefix: netip.MustParsePrefix("192.0.2.100/24"), Dev: "v0"}
	b.Run("AddAddr", func(b *testing.B) {
		for b.Loop() {
			if err := l.n.AddAddr(vip); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			l.n.DelAddr(vip)
			b.StartTimer()
		}
	})
	b.Run("SendGARP", func(b *testing.B) {
		for b.Loop() {
			if err := l.n.SendGARP("v0", vip.Prefix.Addr()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
