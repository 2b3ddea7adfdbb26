package supervisor

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// TestReplayKeepsNewestCheckState: the state core replays to a (re)started vrrp child is the
// newest of each check in the order of the check children (epoch, then sequence), not the
// last to arrive nor the one with the latest time: a state of a check child that was
// restarted meanwhile may arrive after the new child's first states, and its clock may be
// ahead of the new child's (the clock stepped back between the two).
func TestReplayKeepsNewestCheckState(t *testing.T) {
	s := &Supervisor{checks: map[string]*childpb.CheckState{}}
	now := time.Now()
	oldChild := &childpb.CheckState{Name: "chk", Up: true, Epoch: 1, Seq: 40, UnixNano: now.Add(time.Hour).UnixNano()}
	newChild := &childpb.CheckState{Name: "chk", Up: false, Epoch: 2, Seq: 2, UnixNano: now.UnixNano()}
	if !s.noteCheck(oldChild) || !s.noteCheck(newChild) {
		t.Fatal("a newer state was not taken")
	}
	if s.noteCheck(oldChild) {
		t.Error("a late state of the earlier check child was taken after the new child's")
	}
	if !s.noteCheck(newChild) {
		t.Error("the same state again (a replay) was not taken")
	}
	if got := s.checks["chk"]; got != newChild {
		t.Errorf("replayed: %v, want the new child's %v", got, newChild)
	}
}

// TestBadCheckStatesRefused: what core refuses from a check child (a compromised one runs as
// script_user, with nothing but its stream to core), and what it bounds. Each refused state
// leaves nothing behind: an unknown name would otherwise grow core's memory with every name,
// a later epoch would make every later check child's states look stale (the check frozen for
// good), a NaN metric would keep `vigil status` from encoding.
func TestBadCheckStatesRefused(t *testing.T) {
	s := fuzzSupervisor(t)
	w, big := int32(-20), int32(254)
	for _, tc := range []struct {
		why string
		st  *childpb.CheckState
	}{
		{"a check the configuration does not have", &childpb.CheckState{Name: "nope", Epoch: fuzzEpoch, Seq: 1}},
		{"a later epoch than the child's", &childpb.CheckState{Name: "chk", Epoch: fuzzEpoch + 1, Seq: 1}},
		{"an earlier epoch than the child's", &childpb.CheckState{Name: "chk", Epoch: fuzzEpoch - 1, Seq: 1}},
		{"no sequence number", &childpb.CheckState{Name: "chk", Epoch: fuzzEpoch}},
		{"a weight beyond 253", &childpb.CheckState{Name: "chk", Epoch: fuzzEpoch, Seq: 1, Weight: &big}},
	} {
		if _, ok := s.takeCheck(tc.st, fuzzEpoch, &logLimit{}); ok || len(s.checks) != 0 {
			t.Errorf("%s: taken (%v)", tc.why, s.checks)
		}
	}
	st := &childpb.CheckState{Name: "chk", Epoch: fuzzEpoch, Seq: 1, Weight: &w, Message: strings.Repeat("\x1b[2J", 1000),
		Metrics: map[string]float64{"nan": math.NaN(), "inf": math.Inf(1), "lag": 2}}
	got, ok := s.takeCheck(st, fuzzEpoch, &logLimit{})
	if !ok || len(got.Message) > checksched.MaxMessage || strings.ContainsRune(got.Message, 0x1b) || len(got.Metrics) != 1 || got.Metrics["lag"] != 2 || *got.Weight != w {
		t.Fatalf("a good state with a long message and bad metrics: %v, %v", got, ok)
	}
	if _, err := json.Marshal(s.Status(context.Background())); err != nil {
		t.Fatalf("vigil status: %v", err)
	}
}
