package checksched

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/config"
)

// TestCheckerLanesSpreadBursts: a thousand real_server checkers are not one burst. Their
// groups hold about a sixteenth each, and the groups' grids start at different moments of
// the interval, so that no instant sends the plugin more than a small share of the probes.
func TestCheckerLanesSpreadBursts(t *testing.T) {
	const n = 1000
	groups := map[string]int{}
	for i := range n {
		name := fmt.Sprintf("192.0.2.100:%d/198.51.100.%d:%d/TCP_CHECK", 80+i/100, 11+i%100, 8000+i/100)
		groups[checkerAlign(name)]++
	}
	if len(groups) != checkerLanes {
		t.Fatalf("%d groups, want %d: %v", len(groups), checkerLanes, groups)
	}
	for g, c := range groups {
		if c > 2*n/checkerLanes {
			t.Errorf("group %s holds %d of %d checkers, more than twice its share", g, c, n)
		}
	}
	// The groups' first grid points within one interval: a burst is one group's probes,
	// so two groups must not share a point.
	interval := time.Second
	t0 := time.Unix(1700000000, 0)
	at := map[time.Time]string{}
	for g := range groups {
		p := nextSlot(g, interval, t0)
		if other, dup := at[p]; dup {
			t.Errorf("groups %s and %s probe at the same moment", g, other)
		}
		at[p] = g
	}
}

// TestCheckerSpecsAligned: a real_server checker (configured or pending: both go through
// checkerTiming) probes on its lane's grid, not on the plugins group's.
func TestCheckerSpecsAligned(t *testing.T) {
	s := checkerTiming(Spec{Name: "192.0.2.100:80/198.51.100.11:8080/TCP_CHECK", Align: PluginAlign}, &config.Checker{})
	if s.Align == PluginAlign || s.Align != checkerAlign(s.Name) {
		t.Fatalf("a configured checker's Align is %q, want its lane %q", s.Align, checkerAlign(s.Name))
	}
}
