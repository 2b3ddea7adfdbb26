package fsm

import "testing"

func TestEffective(t *testing.T) {
	up := func(w int) Tracker { return Tracker{Up: true, Weight: w} }
	down := func(w int) Tracker { return Tracker{Up: false, Weight: w} }
	rev := func(tr Tracker) Tracker { tr.Reverse = true; return tr }
	file := func(v, w int) Tracker { return Tracker{Kind: TrackFile, Value: v, Weight: w} }
	tests := []struct {
		name     string
		base     int
		trackers []Tracker
		prio     int
		fault    bool
	}{
		{"no trackers", 100, nil, 100, false},
		{"+w while up", 100, []Tracker{up(20)}, 120, false},
		{"+w while down: nothing", 100, []Tracker{down(20)}, 100, false},
		{"-w while down", 100, []Tracker{down(-30)}, 70, false},
		{"-w while up: nothing", 100, []Tracker{up(-30)}, 100, false},
		{"reverse +w while up subtracts", 100, []Tracker{rev(up(20))}, 80, false},
		{"reverse +w while down: nothing", 100, []Tracker{rev(down(20))}, 100, false},
		{"reverse -w while down adds", 100, []Tracker{rev(down(-30))}, 130, false},
		{"reverse -w while up: nothing", 100, []Tracker{rev(up(-30))}, 100, false},
		{"weight 0 down: fault", 100, []Tracker{down(0)}, 100, true},
		{"weight 0 up: fine", 100, []Tracker{up(0)}, 100, false},
		{"weight 0 reverse up: fault", 100, []Tracker{rev(up(0))}, 100, true},
		{"weight 0 reverse down: fine", 100, []Tracker{rev(down(0))}, 100, false},
		{"sum of several", 100, []Tracker{up(10), down(-20), up(5), down(7)}, 95, false},
		{"fault and weights together", 100, []Tracker{down(0), down(-20)}, 80, true},
		{"clamped to 254", 200, []Tracker{up(100)}, 254, false},
		{"never becomes owner", 254, []Tracker{up(1)}, 254, false},
		{"clamped to 1", 50, []Tracker{down(-100)}, 1, false},
		{"owner ignores weights", 255, []Tracker{down(-100), up(50)}, 255, false},
		{"owner still faults on weight 0", 255, []Tracker{down(0)}, 255, true},
		{"file value*weight", 100, []Tracker{file(3, 10)}, 130, false},
		{"file negative", 100, []Tracker{file(-2, 10)}, 80, false},
		{"file reverse", 100, []Tracker{{Kind: TrackFile, Value: 3, Weight: 10, Reverse: true}}, 70, false},
		{"file capped at +253", 1, []Tracker{file(1000, 1)}, 254, false},
		{"file capped at +253 then summed", 1, []Tracker{file(1000, 1), down(-10)}, 244, false},
		{"file at -254: fault", 100, []Tracker{file(-254, 1)}, 100, true},
		{"file below -254: fault", 100, []Tracker{file(-10, 100)}, 100, true},
		{"file -253: no fault", 100, []Tracker{file(-253, 1)}, 1, false},
		{"file weight 0, value 0: fine", 100, []Tracker{file(0, 0)}, 100, false},
		{"file weight 0, non-zero: fault", 100, []Tracker{file(7, 0)}, 100, true},
		{"file weight 0 reverse, zero: fault", 100, []Tracker{{Kind: TrackFile, Value: 0, Reverse: true}}, 100, true},
		{"file weight 0 reverse, non-zero: fine", 100, []Tracker{{Kind: TrackFile, Value: 1, Reverse: true}}, 100, false},
		// keepalived ignores an owner's weighted trackers, and a file's weight 1 is weight 0.
		{"owner file weight 1: non-zero faults", 255, []Tracker{file(-300, 1)}, 255, true},
		{"owner file weight 1: zero is fine", 255, []Tracker{file(0, 1)}, 255, false},
		{"owner file weight 1 reverse: zero faults", 255, []Tracker{{Kind: TrackFile, Value: 0, Weight: 1, Reverse: true}}, 255, true},
		{"owner file weight 10 at -300: ignored", 255, []Tracker{file(-30, 10)}, 255, false},
		{"owner file weight 0: non-zero faults", 255, []Tracker{file(2, 0)}, 255, true},
		{"owner weight 0 reverse up: fault", 255, []Tracker{rev(up(0))}, 255, true},
		{"owner weighted reverse: ignored", 255, []Tracker{rev(up(20)), rev(down(-20))}, 255, false},
	}
	for _, tt := range tests {
		p, f := Effective(tt.base, tt.trackers)
		if p != tt.prio || f != tt.fault {
			t.Errorf("%s: Effective(%d) = %d, %v; want %d, %v", tt.name, tt.base, p, f, tt.prio, tt.fault)
		}
	}
}

func TestEffectiveDynamicWeight(t *testing.T) {
	dw := func(n int) *int { return &n }
	for _, tc := range []struct {
		name    string
		tr      Tracker
		prio    int
		faulted bool
	}{
		{"up: dynamic replaces +weight", Tracker{Up: true, Weight: 20, Dynamic: dw(-30)}, 70, false},
		{"up: dynamic with weight 0 is no fault", Tracker{Up: true, Weight: 0, Dynamic: dw(5)}, 105, false},
		{"up: dynamic capped", Tracker{Up: true, Weight: -10, Dynamic: dw(-1000)}, 1, false},
		{"down: configured weight 0 faults", Tracker{Up: false, Weight: 0, Dynamic: dw(50)}, 100, true},
		{"down: configured negative weight", Tracker{Up: false, Weight: -20, Dynamic: dw(50)}, 80, false},
		{"reverse ignores dynamic", Tracker{Up: true, Weight: 10, Reverse: true, Dynamic: dw(50)}, 90, false},
	} {
		p, f := Effective(100, []Tracker{tc.tr})
		if p != tc.prio || f != tc.faulted {
			t.Errorf("%s: got %d fault %v, want %d fault %v", tc.name, p, f, tc.prio, tc.faulted)
		}
	}
	if p, _ := Effective(PriorityOwner, []Tracker{{Up: true, Dynamic: dw(-50)}}); p != PriorityOwner {
		t.Errorf("owner with a dynamic weight: %d, want 255", p)
	}
}

// TestEffectiveScriptCases: the twelve script cases of keepalived.conf(5) (weight +20/-20/0,
// reverse or not, script up or down), with Up the script's raw result: reverse is applied
// here and only here. core/vrrp's TestPriorityDifferential compares the same cases with
// keepalived 2.2.7 on the wire.
func TestEffectiveScriptCases(t *testing.T) {
	const F = -1 // FAULT
	for _, tc := range []struct {
		weight  int
		reverse bool
		up      bool
		want    int
	}{
		{20, false, true, 120}, {20, false, false, 100},
		{20, true, true, 80}, {20, true, false, 100},
		{-20, false, true, 100}, {-20, false, false, 80},
		{-20, true, true, 100}, {-20, true, false, 120},
		{0, false, true, 100}, {0, false, false, F},
		{0, true, true, F}, {0, true, false, 100},
	} {
		p, f := Effective(100, []Tracker{{Up: tc.up, Weight: tc.weight, Reverse: tc.reverse}})
		got := p
		if f {
			got = F
		}
		if got != tc.want {
			t.Errorf("weight %d reverse %v up %v: %d (fault %v), want %d (-1: FAULT)", tc.weight, tc.reverse, tc.up, p, f, tc.want)
		}
	}
}
