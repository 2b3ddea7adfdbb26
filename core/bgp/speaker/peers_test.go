package speaker

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// A flapping peer writes one line per state in a period, whatever the number of flaps; the
// status still counts every flap and keeps the last reason.
func TestFlappingPeerDoesNotFloodTheLog(t *testing.T) {
	var buf bytes.Buffer
	s := New(hclog.New(&hclog.LoggerOptions{Output: &buf}))
	a := netip.MustParseAddr("192.0.2.12")
	s.peers[a] = &peer{as: 64512, state: "idle"}
	ev := func(st bgp.FSMState, r api.PeerState_DisconnectReason, msg string) {
		s.peerEvent(&apiutil.WatchEventMessage_PeerEvent{Type: apiutil.PEER_EVENT_STATE, Peer: apiutil.Peer{
			State: apiutil.PeerState{NeighborAddress: a, SessionState: st, DisconnectReason: r, DisconnectMessage: msg},
		}}, time.Now())
	}
	const flaps = 100
	for range flaps {
		ev(bgp.BGP_FSM_ESTABLISHED, api.PeerState_DISCONNECT_REASON_UNSPECIFIED, "open-msg-negotiated")
		ev(bgp.BGP_FSM_IDLE, api.PeerState_DISCONNECT_REASON_HOLD_TIMER_EXPIRED, "hold-timer-expired")
	}
	lines := strings.Count(buf.String(), "BGP peer state changed")
	if lines != 2 {
		t.Errorf("%d log lines for %d flaps; want 2 (one per state):\n%s", lines, flaps, buf.String())
	}
	if !strings.Contains(buf.String(), "neighbor=192.0.2.12") || !strings.Contains(buf.String(), `reason="hold timer expired"`) {
		t.Errorf("log does not name the neighbor and reason:\n%s", buf.String())
	}
	p := s.peers[a]
	if p.flaps != flaps || p.lastErr != "hold timer expired" || p.state != "idle" {
		t.Errorf("peer = %+v; want %d flaps, last error hold timer expired, idle", *p, flaps)
	}
}
