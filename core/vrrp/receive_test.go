package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// TestReceive checks the receive path: which adverts reach the state machine, and how drops
// are counted by reason.
func TestReceive(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.100")
	peer := netip.MustParseAddr("192.0.2.12")
	self := netip.MustParseAddr("192.0.2.11")
	var pass [8]byte
	copy(pass[:], "secret")
	in := &instance{
		name:     "VI_1",
		cfg:      &config.VRRPInstance{Name: "VI_1", VRID: 51},
		src:      self,
		advAddrs: []netip.Addr{vip},
		authType: packet.AuthPass,
		auth:     pass,
	}
	in.expect = packet.Expect{Version: 2, VRID: 51, AuthType: packet.AuthPass, AuthData: pass, Interval: time.Second, Addrs: in.advAddrs}
	u := newUnit([]*instance{in}, false)
	e := &Engine{log: hclog.NewNullLogger()}
	sg := &sockGroup{byVRID: map[uint8]*instance{51: in}}

	advert := func(mod func(a *packet.Advert)) []byte {
		a := packet.Advert{Version: 2, VRID: 51, Priority: 120, Interval: time.Second, AuthType: packet.AuthPass, AuthData: pass, Addrs: []netip.Addr{vip}}
		if mod != nil {
			mod(&a)
		}
		b, err := a.Marshal(peer, packet.IPv4Group, packet.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name      string
		payload   []byte
		ttl       int
		src       netip.Addr
		delivered bool
		reason    string
	}{
		{"valid", advert(nil), 255, peer, true, ""},
		{"other virtual router", advert(func(a *packet.Advert) { a.VRID = 9 }), 255, peer, false, "unknown_vrid"},
		{"TTL not 255", advert(nil), 64, peer, false, "bad_ttl"},
		{"wrong password", advert(func(a *packet.Advert) { a.AuthData = [8]byte{'x'} }), 255, peer, false, "auth_mismatch"},
		{"interval differs (v2)", advert(func(a *packet.Advert) { a.Interval = 2 * time.Second }), 255, peer, false, "interval_mismatch"},
		{"other address list still counts", advert(func(a *packet.Advert) { a.Addrs = append(a.Addrs, netip.MustParseAddr("192.0.2.101")) }), 255, peer, true, "bad_addr_count"},
		{"corrupt", append(advert(nil)[:10], 0xff), 255, peer, false, "bad_length"},
		{"own advert looped back", advert(nil), 255, self, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.Drops()[tt.reason]
			e.receive(sg, datagram{payload: tt.payload, src: tt.src, dst: packet.IPv4Group, ttl: tt.ttl})
			select {
			case ue := <-u.inbox:
				if !tt.delivered {
					t.Errorf("delivered %+v", ue.ev)
				} else if ar, ok := ue.ev.(fsm.AdvertReceived); !ok || ar.From != peer || ar.Priority != 120 {
					t.Errorf("delivered %+v", ue.ev)
				}
			default:
				if tt.delivered {
					t.Error("not delivered")
				}
			}
			if tt.reason != "" && e.Drops()[tt.reason] != before+1 {
				t.Errorf("drop count for %s = %d, want %d", tt.reason, e.Drops()[tt.reason], before+1)
			}
		})
	}
}

func TestStripIPv4Header(t *testing.T) {
	payload := []byte{0x31, 51, 100, 1, 0, 100, 0, 0}
	withHeader := append([]byte{0x45, 0, 0, 28, 0, 0, 0, 0, 255, 112, 0, 0, 192, 0, 2, 11, 224, 0, 0, 18}, payload...)
	if got := stripIPv4Header(withHeader); string(got) != string(payload) {
		t.Errorf("with header: % x", got)
	}
	if got := stripIPv4Header(payload); string(got) != string(payload) {
		t.Errorf("without header: % x", got)
	}
	opts := append([]byte{0x46, 0, 0, 32, 0, 0, 0, 0, 255, 112, 0, 0, 192, 0, 2, 11, 224, 0, 0, 18, 1, 1, 1, 1}, payload...)
	if got := stripIPv4Header(opts); string(got) != string(payload) {
		t.Errorf("with IP options: % x", got)
	}
}
