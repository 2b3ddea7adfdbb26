package vrrp

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// planInst is an instance for the plan tests: what identity needs, and a name.
func planInst(name, iface string, vrid int) *config.VRRPInstance {
	return &config.VRRPInstance{Name: name, Interface: iface, VRID: vrid, Version: 3, Priority: 100}
}

// planCfg is a configuration of instances and sync groups (each a list of member names).
func planCfg(ins []*config.VRRPInstance, groups ...[]string) *config.Config {
	c := &config.Config{Instances: ins}
	for i, g := range groups {
		sg := &config.SyncGroup{Name: fmt.Sprintf("G%d", i)}
		for _, m := range g {
			sg.Members = append(sg.Members, config.NameRef{Name: m})
		}
		c.SyncGroups = append(c.SyncGroups, sg)
	}
	return c
}

// planUnits groups cfg's instances into units with makeUnits, the engine's own rule, and
// returns their views. The instances are stubs: a name, a configuration and a machine
// that has never run (a sync group's unit links its members' machines), which is all
// makeUnits and unit.view read.
func planUnits(cfg *config.Config) []unitView {
	ins := make([]*instance, len(cfg.Instances))
	for i, vc := range cfg.Instances {
		ins[i] = &instance{name: vc.Name, cfg: vc, m: new(fsm.Machine)}
	}
	units := makeUnits(cfg, ins, time.Time{}, nil)
	views := make([]unitView, len(units))
	for i, u := range units {
		views[i] = u.view()
	}
	return views
}

// planSummary is a plan by names, for comparing with a table's expectation.
type planSummary struct {
	kept, removed, restarted, added []string // kept: old name>new name
	vmacs                           []string
}

func summarize(units []unitView, p reloadPlan) planSummary {
	var s planSummary
	for i, k := range p.keep {
		for m, vc := range units[k].members {
			s.kept = append(s.kept, vc.Name+">"+p.next[i][m].Name)
		}
	}
	s.removed, s.restarted = p.removed, p.restarted
	for _, st := range p.start {
		if !st.restart {
			s.added = append(s.added, st.vc.Name)
		}
	}
	for name := range p.freeVMAC {
		s.vmacs = append(s.vmacs, name)
	}
	slices.Sort(s.vmacs)
	return s
}

func TestPlanReload(t *testing.T) {
	a, b, c := planInst("A", "eth0", 1), planInst("B", "eth0", 2), planInst("C", "eth1", 1)
	vmac := func(vc *config.VRRPInstance) *config.VRRPInstance {
		v := *vc
		v.UseVMAC = true
		return &v
	}
	renamed := func(vc *config.VRRPInstance, name string) *config.VRRPInstance {
		v := *vc
		v.Name = name
		return &v
	}
	otherVRID := *a
	otherVRID.VRID = 9
	exited := func(units []unitView) []unitView {
		units[0].exited = true
		return units
	}
	for _, tc := range []struct {
		name  string
		units []unitView // nil: planUnits(old)
		old   *config.Config
		next  *config.Config
		want  planSummary
	}{
		{name: "unchanged", old: planCfg([]*config.VRRPInstance{a, b}), next: planCfg([]*config.VRRPInstance{a, b}),
			want: planSummary{kept: []string{"A>A", "B>B"}}},
		{name: "removed", old: planCfg([]*config.VRRPInstance{a, b}), next: planCfg([]*config.VRRPInstance{a}),
			want: planSummary{kept: []string{"A>A"}, removed: []string{"B"}}},
		{name: "added", old: planCfg([]*config.VRRPInstance{a}), next: planCfg([]*config.VRRPInstance{a, c}),
			want: planSummary{kept: []string{"A>A"}, added: []string{"C"}}},
		{name: "renamed keeps its state", old: planCfg([]*config.VRRPInstance{a}), next: planCfg([]*config.VRRPInstance{renamed(a, "Z")}),
			want: planSummary{kept: []string{"A>Z"}}},
		{name: "identity changed", old: planCfg([]*config.VRRPInstance{a}), next: planCfg([]*config.VRRPInstance{&otherVRID}),
			want: planSummary{removed: []string{"A"}, added: []string{"A"}}},
		{name: "joins a group", old: planCfg([]*config.VRRPInstance{a, b}), next: planCfg([]*config.VRRPInstance{a, b}, []string{"A", "B"}),
			want: planSummary{restarted: []string{"A", "B"}}},
		{name: "group renamed and reordered", old: planCfg([]*config.VRRPInstance{a, b}, []string{"A", "B"}),
			next: planCfg([]*config.VRRPInstance{b, a}, []string{"B", "A"}), want: planSummary{kept: []string{"A>A", "B>B"}}},
		{name: "group split", old: planCfg([]*config.VRRPInstance{a, b}, []string{"A", "B"}), next: planCfg([]*config.VRRPInstance{a, b}),
			want: planSummary{restarted: []string{"A", "B"}}},
		{name: "group loses a member", old: planCfg([]*config.VRRPInstance{a, b, c}, []string{"A", "B"}),
			next: planCfg([]*config.VRRPInstance{a, c}, []string{"A"}), want: planSummary{kept: []string{"C>C"}, removed: []string{"B"}, restarted: []string{"A"}}},
		{name: "exited unit restarts", units: exited(planUnits(planCfg([]*config.VRRPInstance{a, b}))),
			old: planCfg([]*config.VRRPInstance{a, b}), next: planCfg([]*config.VRRPInstance{a, b}),
			want: planSummary{kept: []string{"B>B"}, restarted: []string{"A"}}},
		{name: "VMAC goes with its instance", old: planCfg([]*config.VRRPInstance{vmac(b), vmac(c)}), next: planCfg([]*config.VRRPInstance{vmac(c)}),
			want: planSummary{kept: []string{"C>C"}, removed: []string{"B"}, vmacs: []string{"vrrp.2"}}},
		{name: "VMAC still used by the successor", old: planCfg([]*config.VRRPInstance{vmac(a), b}),
			next: planCfg([]*config.VRRPInstance{vmac(a), b}, []string{"A", "B"}), want: planSummary{restarted: []string{"A", "B"}}},
	} {
		units := tc.units
		if units == nil {
			units = planUnits(tc.old)
		}
		p := planReload(units, tc.old, tc.next)
		checkPlan(t, tc.name, units, tc.old, tc.next, p)
		if got := summarize(units, p); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: plan %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// checkPlan checks what holds for every plan: each running instance is kept or stopped, each
// new instance is kept or started, exactly once; a kept instance keeps its identity; what
// starts as a successor has a stopped predecessor; the VMACs that go are exactly those of
// stopped members that no new instance uses.
func checkPlan(t *testing.T, name string, units []unitView, oldCfg, cfg *config.Config, p reloadPlan) {
	t.Helper()
	seenUnit := make([]int, len(units))
	for _, i := range append(slices.Clone(p.keep), p.stop...) {
		seenUnit[i]++
	}
	for i, n := range seenUnit {
		if n != 1 {
			t.Errorf("%s: unit %d is kept or stopped %d times", name, i, n)
		}
	}
	if len(p.next) != len(p.keep) {
		t.Fatalf("%s: %d kept units, %d next lists", name, len(p.keep), len(p.next))
	}
	seenNew := map[*config.VRRPInstance]int{}
	for i, k := range p.keep {
		if units[k].exited {
			t.Errorf("%s: unit %d has exited but is kept", name, k)
		}
		if len(p.next[i]) != len(units[k].members) {
			t.Fatalf("%s: unit %d: %d members, %d next", name, k, len(units[k].members), len(p.next[i]))
		}
		for m, vc := range p.next[i] {
			seenNew[vc]++
			if identity(vc, cfg.Global) != identity(units[k].members[m], oldCfg.Global) {
				t.Errorf("%s: %s kept as %s, another virtual router", name, units[k].members[m].Name, vc.Name)
			}
		}
	}
	stoppedIDs := map[string]bool{}
	var stoppedNames []string
	for _, i := range p.stop {
		for _, vc := range units[i].members {
			stoppedIDs[identity(vc, oldCfg.Global)] = true
			stoppedNames = append(stoppedNames, vc.Name)
		}
	}
	for _, s := range p.start {
		seenNew[s.vc]++
		if s.restart != stoppedIDs[identity(s.vc, cfg.Global)] {
			t.Errorf("%s: %s starts with restart=%v", name, s.vc.Name, s.restart)
		}
	}
	for _, vc := range cfg.Instances {
		if seenNew[vc] != 1 {
			t.Errorf("%s: new instance %s is kept or started %d times", name, vc.Name, seenNew[vc])
		}
	}
	got := append(slices.Clone(p.removed), p.restarted...)
	slices.Sort(got)
	slices.Sort(stoppedNames)
	if !slices.Equal(got, stoppedNames) {
		t.Errorf("%s: removed+restarted %v, stopped %v", name, got, stoppedNames)
	}
	for vm := range p.freeVMAC {
		if slices.ContainsFunc(cfg.Instances, func(vc *config.VRRPInstance) bool { return vmacName(vc) == vm }) {
			t.Errorf("%s: VMAC %s goes, but a new instance uses it", name, vm)
		}
	}
	// The converse: a VMAC of a stopped member that no new instance uses goes (else it
	// would stay on the host with nobody to remove it), and nothing else does.
	stoppedVMAC := map[string]bool{}
	for _, i := range p.stop {
		for _, vc := range units[i].members {
			vm := vmacName(vc)
			if vm == "" {
				continue
			}
			stoppedVMAC[vm] = true
			if !p.freeVMAC[vm] && !slices.ContainsFunc(cfg.Instances, func(nc *config.VRRPInstance) bool { return vmacName(nc) == vm }) {
				t.Errorf("%s: VMAC %s of stopped %s is used by no new instance but stays", name, vm, vc.Name)
			}
		}
	}
	for vm := range p.freeVMAC {
		if !stoppedVMAC[vm] {
			t.Errorf("%s: VMAC %s goes, but no stopped member has it", name, vm)
		}
	}
}

// planFuzzCfg makes a configuration from data: up to six instances, named from A and drawn
// from a few identities (so that two configurations share some), in up to two sync groups.
func planFuzzCfg(data []byte) *config.Config {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	var ins []*config.VRRPInstance
	ids := map[[2]int]bool{}
	names := map[string]bool{}
	for range int(next() % 7) {
		b := next()
		id := [2]int{int(b % 2), int(b/2%3) + 1}
		name := string(rune('A' + next()%8))
		if ids[id] || names[name] {
			continue // identities and names are unique in a valid configuration
		}
		ids[id], names[name] = true, true
		vc := planInst(name, fmt.Sprintf("eth%d", id[0]), id[1])
		vc.UseVMAC = b&0x80 != 0
		vc.Priority = 100 + int(b>>6&1) // a setting that changes in place
		ins = append(ins, vc)
	}
	var groups [][]string
	g := [2][]string{}
	for _, vc := range ins {
		switch next() % 3 {
		case 1:
			g[0] = append(g[0], vc.Name)
		case 2:
			g[1] = append(g[1], vc.Name)
		}
	}
	for _, m := range g {
		if len(m) > 0 {
			groups = append(groups, m)
		}
	}
	return planCfg(ins, groups...)
}

// FuzzPlanReload checks the invariants of checkPlan for any two configurations, with any
// of the running units exited.
func FuzzPlanReload(f *testing.F) {
	f.Add([]byte{3, 0, 0, 2, 1, 1, 4, 2, 1}, []byte{3, 0, 0, 2, 1, 1, 4, 2, 1}, byte(0))
	f.Add([]byte{3, 0, 0, 2, 1, 1, 4, 2, 1}, []byte{2, 2, 1, 0, 0, 1, 1}, byte(1))
	f.Add([]byte{6, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 1, 1, 2, 2, 0, 0}, []byte{5, 1, 0, 2, 1, 3, 2, 4, 3, 0x85, 4, 2, 2, 1, 1, 0}, byte(2))
	f.Fuzz(func(t *testing.T, oldData, newData []byte, exitedMask byte) {
		oldCfg, cfg := planFuzzCfg(oldData), planFuzzCfg(newData)
		units := planUnits(oldCfg)
		for i := range units {
			units[i].exited = exitedMask>>(i%8)&1 != 0
		}
		checkPlan(t, "fuzz", units, oldCfg, cfg, planReload(units, oldCfg, cfg))
	})
}
