package bgp

import (
	"net/netip"
	"testing"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/bgppb"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func announce(mode config.AnnounceMode) *config.Announce {
	return &config.Announce{Mode: mode, MED: -1, LocalPref: -1}
}

// TestAnnounced is the rule of each mode: master mode follows the addresses (MASTER only);
// anycast announces while healthy, and a demote withdraws it.
func TestAnnounced(t *testing.T) {
	for _, c := range []struct {
		mode    config.AnnounceMode
		state   string
		demoted bool
		want    bool
	}{
		{config.AnnounceMaster, "MASTER", false, true},
		{config.AnnounceMaster, "BACKUP", false, false},
		{config.AnnounceMaster, "FAULT", false, false},
		{config.AnnounceMaster, "INIT", false, false},
		{config.AnnounceAnycast, "MASTER", false, true},
		{config.AnnounceAnycast, "BACKUP", false, true},
		{config.AnnounceAnycast, "FAULT", false, false},
		{config.AnnounceAnycast, "INIT", false, false},
		{config.AnnounceAnycast, "BACKUP", true, false},
	} {
		in := Instance{Name: "VI_1", Announce: announce(c.mode), State: c.state, Demoted: c.demoted}
		if got := in.Announced(); got != c.want {
			t.Errorf("%s in %s (demoted %v): announced %v, want %v", c.mode, c.state, c.demoted, got, c.want)
		}
	}
}

func TestRoutes(t *testing.T) {
	med := announce(config.AnnounceAnycast)
	med.MEDFromPriority, med.LocalPref, med.Communities = true, 300, []string{"64512:100"}
	got := Routes([]Instance{
		{Name: "VI_2", Announce: med, VIPs: addrs("2001:db8::10", "192.0.2.10"), State: "BACKUP", EffectivePriority: 90},
		// VI_1 sorts first and takes 192.0.2.10 from VI_2.
		{Name: "VI_1", Announce: announce(config.AnnounceMaster), VIPs: addrs("192.0.2.10", "::ffff:192.0.2.11"), State: "MASTER"},
		{Name: "VI_3", Announce: announce(config.AnnounceMaster), VIPs: addrs("192.0.2.12"), State: "BACKUP"},
		{Name: "VI_4", VIPs: addrs("192.0.2.13"), State: "MASTER"}, // announces nothing
	})
	want := []*bgppb.Route{
		{Prefix: "192.0.2.10/32", Owner: "VI_1"},
		{Prefix: "192.0.2.11/32", Owner: "VI_1"},
		{Prefix: "2001:db8::10/128", Owner: "VI_2", HasMed: true, Med: 165, HasLocalPref: true, LocalPref: 300, Communities: []string{"64512:100"}},
	}
	if len(got) != len(want) {
		t.Fatalf("routes %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i].String() {
			t.Errorf("route %d: %v, want %v", i, got[i], want[i])
		}
	}
}
