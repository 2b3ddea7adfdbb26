package speaker

import (
	"net/netip"
	"testing"

	"github.com/vigil-ha/vigil/core/internal/bgppb"
)

// FuzzNewRoute: whatever the vrrp process sends, a route is either refused with an error or
// becomes a path whose prefix is the one asked for and whose every attribute GoBGP can put
// on the wire: a route that passes the check never fails later, inside GoBGP.
func FuzzNewRoute(f *testing.F) {
	f.Add("192.0.2.10/32", "64512:100", true, uint32(10), false, uint32(0), true)
	f.Add("2001:db8::10/128", "65535:0", false, uint32(0), true, uint32(200), false)
	f.Add("192.0.2.0/24", "1:2", false, uint32(0), false, uint32(0), false)
	f.Add("192.0.2.1/24", "x", true, uint32(1), true, uint32(1), true)
	f.Fuzz(func(t *testing.T, prefix, community string, hasMED bool, med uint32, hasLP bool, lp uint32, gshut bool) {
		in := &bgppb.Route{Prefix: prefix, Communities: []string{community}, HasMed: hasMED, Med: med,
			HasLocalPref: hasLP, LocalPref: lp, GracefulShutdown: gshut, Owner: "VI_1"}
		r, err := newRoute(in)
		if err != nil {
			return
		}
		want, perr := netip.ParsePrefix(prefix)
		if perr != nil || r.prefix != want {
			t.Fatalf("route %q accepted as %v", prefix, r.prefix)
		}
		if _, err := r.path.Nlri.Serialize(); err != nil {
			t.Fatalf("route %q: NLRI does not serialize: %v", prefix, err)
		}
		for _, a := range r.path.Attrs {
			if _, err := a.Serialize(); err != nil {
				t.Fatalf("route %q: attribute %v does not serialize: %v", prefix, a, err)
			}
		}
	})
}
