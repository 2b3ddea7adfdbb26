package supervisor

import (
	"testing"
	"time"

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
