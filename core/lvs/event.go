package lvs

import (
	"fmt"

	"github.com/vigil-ha/vigil/core/config"
)

// Kind is what an Event reports.
type Kind uint8

// Event kinds.
const (
	// RealUp and RealDown: a real server joined or left its pool (notify_up / notify_down,
	// an "RS" FIFO line).
	RealUp Kind = iota + 1
	RealDown
	// QuorumUp and QuorumDown: the virtual server gained or lost its quorum (quorum_up /
	// quorum_down, a "VS" FIFO line).
	QuorumUp
	QuorumDown
	// Suspended and Resumed: ha_suspend stopped or restarted the virtual server's checkers
	// (their results are ignored meanwhile). Nothing is notified.
	Suspended
	Resumed
	// SyncRole: the sync daemon's role changed (see Director.Sync). Nothing is notified.
	SyncRole
)

func (k Kind) String() string {
	switch k {
	case RealUp:
		return "real server up"
	case RealDown:
		return "real server down"
	case QuorumUp:
		return "quorum up"
	case QuorumDown:
		return "quorum down"
	case Suspended:
		return "checkers suspended"
	case Resumed:
		return "checkers resumed"
	case SyncRole:
		return "sync daemon role"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Event is something to report. Events come in the order keepalived reports them: a real
// server's change before the quorum change it causes.
type Event struct {
	Kind Kind
	// Service is the virtual server's ID; Real the real server (ADDR:PORT) for RealUp and
	// RealDown.
	Service string
	Real    string
	// Init is set on the quorum reported when a virtual server starts (at start or when a
	// reload adds it): keepalived's "Starting with quorum up/down", in its mail only; the
	// script and the FIFO line go as for any change.
	Init bool
	// Stopping is set on the notifications of a shutdown (omega). keepalived runs their
	// scripts then and gives each a second before it goes on.
	Stopping bool
	// Script is the script to run: the real server's notify_up or notify_down, the
	// virtual server's quorum_up or quorum_down; nil for none.
	Script *config.Script
	// Quorum, Hysteresis, Threshold and Weight are the figures of a quorum change, for
	// the mail keepalived sends: the threshold crossed and the live weight.
	Quorum, Hysteresis, Threshold, Weight int64
	// Role is the sync daemon's new role, for SyncRole (Daemons says what to run).
	Role Role
	// FIFO is keepalived's notify FIFO line for RealUp, RealDown, QuorumUp and QuorumDown,
	// without the newline: "RS [192.0.2.11]:tcp:80 [192.0.2.100]:tcp:80 UP",
	// "VS [192.0.2.100]:tcp:80 DOWN". Empty for the other kinds.
	FIFO string
}

// fifoRS is keepalived's line for a real server: its address with the virtual server's
// protocol, then the virtual server.
func fifoRS(s *Service, d Dest, up bool) string {
	return fmt.Sprintf("RS %s %s %s", trio(d, s.Protocol), s.FIFO, upDown(up))
}

func fifoVS(s *Service, up bool) string {
	return fmt.Sprintf("VS %s %s", s.FIFO, upDown(up))
}

// trio is keepalived's "[ADDR]:PROTO:PORT".
func trio(d Dest, proto string) string {
	return fmt.Sprintf("[%s]:%s:%d", d.Addr, proto, d.Port)
}

func upDown(up bool) string {
	if up {
		return "UP"
	}
	return "DOWN"
}
