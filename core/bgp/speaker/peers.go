package speaker

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// peer is what the speaker follows of one neighbor's session, from GoBGP's events.
type peer struct {
	as, local uint32
	state     string
	since     time.Time
	flaps     uint32
	lastErr   string
	bfd       bool
	md5       bool // a TCP MD5 password is set
	// ending is the NOTIFICATION, read from GoBGP's log, that is ending an established
	// session: its words are more than the state change's reason (a Cease's communication,
	// "BFD is down").
	ending string
}

func stateName(s bgp.FSMState) string {
	switch s {
	case bgp.BGP_FSM_IDLE:
		return "idle"
	case bgp.BGP_FSM_CONNECT:
		return "connect"
	case bgp.BGP_FSM_ACTIVE:
		return "active"
	case bgp.BGP_FSM_OPENSENT:
		return "opensent"
	case bgp.BGP_FSM_OPENCONFIRM:
		return "openconfirm"
	case bgp.BGP_FSM_ESTABLISHED:
		return "established"
	}
	return strings.ToLower(s.String())
}

// reasonWords turns GoBGP's reason for a transition ("notification-received open bad peer
// AS", "hold-timer-expired") into words for the log and status.
func reasonWords(msg string) string {
	w, rest, _ := strings.Cut(msg, " ")
	w = strings.ReplaceAll(w, "-", " ")
	switch w {
	case "notification sent":
		w = "sent NOTIFICATION:"
	case "notification received":
		w = "received NOTIFICATION:"
	}
	return strings.TrimSpace(w + " " + rest)
}

// isError says whether a transition's reason is a failure worth keeping as last_error:
// not the steps of a session coming up, nor the speaker's own removal of the neighbor.
func isError(r api.PeerState_DisconnectReason) bool {
	switch r {
	case api.PeerState_DISCONNECT_REASON_UNSPECIFIED, api.PeerState_DISCONNECT_REASON_ADMIN_DOWN,
		api.PeerState_DISCONNECT_REASON_DECONFIGURED, api.PeerState_DISCONNECT_REASON_IDLE_TIMER_EXPIRED:
		return false
	}
	return true
}

// peerEvent follows a session's state. GoBGP calls it from its watcher goroutine, one event
// at a time; it only updates the record and writes (at most) one log line, so that GoBGP's
// event queue drains as fast as it fills.
func (s *Speaker) peerEvent(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	a := ev.Peer.State.NeighborAddress.Unmap()
	next := stateName(ev.Peer.State.SessionState)
	reason := reasonWords(ev.Peer.State.DisconnectMessage)
	s.mu.Lock()
	p := s.peers[a]
	if p == nil || p.state == next {
		s.mu.Unlock()
		return
	}
	prev := p.state
	p.state, p.since = next, at
	if prev == "established" {
		p.flaps++
		if p.ending != "" {
			reason = p.ending
		}
	}
	p.ending = ""
	if isError(ev.Peer.State.DisconnectReason) && reason != "" {
		p.lastErr = reason
	}
	as, flaps := p.as, p.flaps
	s.mu.Unlock()

	level := hclog.Info
	if prev == "established" {
		level = hclog.Warn
	}
	args := []any{"neighbor", a, "remote_as", as, "from", prev, "to", next}
	if reason != "" {
		args = append(args, "reason", reason)
	}
	if flaps > 0 {
		args = append(args, "flaps", flaps)
	}
	s.limit.Log(s.log, a.String()+"/"+next, level, "BGP peer state changed", args...)
}

// peerProblem records why a session cannot start: a failed TCP connection, or a
// NOTIFICATION sent or received before the session came up. GoBGP keeps such a peer in
// active and retries, with no state change to say why, so this comes from its log (kind
// names the problem for the log limit).
func (s *Speaker) peerProblem(a netip.Addr, kind, reason string) {
	s.mu.Lock()
	p := s.peers[a]
	if p == nil {
		s.mu.Unlock()
		return
	}
	if p.state == "established" {
		// A NOTIFICATION that ends an established session is the reason of the state
		// change that follows, which records and logs it.
		p.ending = reason
		s.mu.Unlock()
		return
	}
	if kind == "connect" && p.md5 && strings.HasSuffix(reason, "timeout") {
		// The neighbor's kernel drops segments whose MD5 signature it cannot check, so a
		// password it does not share shows only as a connection that never answers.
		reason += " (or a TCP MD5 password the neighbor does not share)"
	}
	p.lastErr = reason
	as := p.as
	s.mu.Unlock()
	s.limit.Log(s.log, a.String()+"/"+kind, hclog.Warn, "BGP peer cannot establish a session",
		"neighbor", a, "remote_as", as, "reason", reason)
}

// problem reads a GoBGP log record that says why a session failed, if r is one: its
// neighbor, kind and reason in words.
func (h *logHandler) problem(r slog.Record) (a netip.Addr, kind, reason string, ok bool) {
	var sent bool
	switch r.Message {
	case "failed to connect":
		kind = "connect"
	case "sent notification":
		kind, sent = "notification", true
	case "received notification":
		kind = "notification"
	default:
		return a, "", "", false
	}
	key, why, said := h.key, "", ""
	var code, subcode int64
	r.Attrs(func(at slog.Attr) bool {
		switch at.Key {
		case "Key":
			key = at.Value.String()
		case "Error":
			why = at.Value.String()
		case "Code":
			code = at.Value.Int64()
		case "Subcode":
			subcode = at.Value.Int64()
		case "Communicated-Reason":
			said = at.Value.String()
		}
		return true
	})
	a, err := netip.ParseAddr(key)
	if err != nil {
		return a, "", "", false
	}
	if kind == "connect" {
		// "dial tcp 192.0.2.99:179: connect: connection refused" -> "connection refused"
		if i := strings.LastIndex(why, ": "); i >= 0 {
			why = why[i+2:]
		}
		return a.Unmap(), kind, "TCP connection failed: " + why, true
	}
	reason = "received NOTIFICATION: "
	if sent {
		reason = "sent NOTIFICATION: "
	}
	reason += bgp.NewNotificationErrorCode(uint8(code), uint8(subcode)).String()
	if said != "" {
		reason += fmt.Sprintf(" (%q)", said)
	}
	return a.Unmap(), kind, reason, true
}

// logHandler receives GoBGP's log records: it picks out failed connections (logged at debug
// level, with the neighbor in the "Key" attribute), and passes warnings and errors on to the
// speaker's log, limited per message.
type logHandler struct {
	s     *Speaker
	key   string // the "Key" attribute GoBGP's peer loggers carry: the neighbor's address
	attrs []slog.Attr
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	if a, kind, reason, ok := h.problem(r); ok {
		h.s.peerProblem(a, kind, reason)
	}
	// GoBGP's info and debug lines are many and mostly repeat the speaker's own; they are
	// passed on only when the speaker's log asks for debug.
	if r.Level < slog.LevelWarn && !h.s.glog.IsDebug() {
		return nil
	}
	args := make([]any, 0, 2*(len(h.attrs)+r.NumAttrs()))
	add := func(at slog.Attr) bool {
		args = append(args, at.Key, at.Value.String())
		return true
	}
	for _, at := range h.attrs {
		add(at)
	}
	r.Attrs(add)
	level := hclog.Debug
	switch {
	case r.Level >= slog.LevelError:
		level = hclog.Error
	case r.Level >= slog.LevelWarn:
		level = hclog.Warn
	}
	h.s.limit.Log(h.s.glog, fmt.Sprintf("gobgp/%s/%s", h.key, r.Message), level, r.Message, args...)
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := &logHandler{s: h.s, key: h.key, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
	for _, at := range attrs {
		if at.Key == "Key" {
			n.key = at.Value.String()
		}
	}
	return n
}

// WithGroup keeps the records flat: the speaker's log has no groups.
func (h *logHandler) WithGroup(string) slog.Handler { return h }
