package vrrp_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// startCase is one instance of TestCheckStartDifferential: a vrrp_script whose service is
// up or down from the start, with rise and fall above 1.
type startCase struct {
	name     string
	prio     int    // 0 means 100
	block    string // the vrrp_script's weight line
	up       bool   // the script succeeds (/bin/true) or fails (/bin/false)
	interval int
	want     []int  // keepalived.conf(5)'s reading: every priority advertised (none: FAULT throughout)
	group    string // the vrrp_sync_group the instance is in, if any
	noScript bool   // the instance tracks no script (block, up and interval unused)
}

func startCases() []startCase {
	return []startCase{
		// A dead service at start: the first failure is a failure, whatever fall says.
		{name: "weight 0, down", block: "weight 0", interval: 2},
		{name: "weight -20, down", block: "weight -20", interval: 2, want: []int{80}},
		{name: "weight 20, down", block: "weight 20", interval: 2, want: []int{100}},
		{name: "weight -20 reverse, up", block: "weight -20 reverse", up: true, interval: 2, want: []int{100}},
		// A live service: the first success is enough, whatever rise says.
		{name: "weight 20, up", block: "weight 20", up: true, interval: 2, want: []int{120}},
		{name: "weight 0, up", block: "weight 0", up: true, interval: 2, want: []int{100}},
		// The owner waits for its weight-0 script's first result before it advertises.
		{name: "owner, weight 0, down", prio: 255, block: "weight 0", interval: 1},
		{name: "owner, weight 0, down, interval 2", prio: 255, block: "weight 0", interval: 2},
		{name: "owner, weight 0, up", prio: 255, block: "weight 0", up: true, interval: 1, want: []int{255}},
		// A sync group waits for its members' weight-0 scripts, and goes to FAULT together.
		{name: "sync group G, weight 0, down", block: "weight 0", interval: 2, group: "G"},
		{name: "sync group G, no script", group: "G", noScript: true},
	}
}

// startConfig is the file both daemons run: instance i (VRID i+1) tracks script s<i+1>, with
// fall 3 and rise 2.
func startConfig(cs []startCase) string {
	var defs, insts strings.Builder
	groups := map[string][]string{}
	var order []string
	for i, c := range cs {
		if c.group != "" {
			if groups[c.group] == nil {
				order = append(order, c.group)
			}
			groups[c.group] = append(groups[c.group], fmt.Sprintf("VI_%d", i+1))
		}
		id := i + 1
		prio, state := c.prio, "BACKUP"
		if prio == 0 {
			prio = 100
		}
		if prio == 255 {
			state = "MASTER" // keepalived requires it of the owner
		}
		cmd := "/bin/false"
		if c.up {
			cmd = "/bin/true"
		}
		track := ""
		if !c.noScript {
			fmt.Fprintf(&defs, "vrrp_script s%d {\n    script %s\n    interval %d\n    fall 3\n    rise 2\n    %s\n}\n", id, cmd, c.interval, c.block)
			track = fmt.Sprintf("    track_script {\n        s%d\n    }\n", id)
		}
		fmt.Fprintf(&insts, "vrrp_instance VI_%d {\n    state %s\n    interface eth0\n    virtual_router_id %d\n    priority %d\n    advert_int 1\n    version 3\n%s    virtual_ipaddress {\n        192.0.2.%d/24\n    }\n}\n",
			id, state, id, prio, track, 100+id)
	}
	for _, g := range order {
		fmt.Fprintf(&insts, "vrrp_sync_group %s {\n    group {\n        %s\n    }\n}\n", g, strings.Join(groups[g], "\n        "))
	}
	return "global_defs {\n    enable_script_security\n    script_user root\n}\n" + defs.String() + insts.String()
}

// TestCheckStartDifferential: a node whose tracked service is dead (or alive) when it starts
// advertises no priority that keepalived 2.2.7 would not advertise on the same file, from its
// first advert on: the script's state is unknown until its first result, which alone decides
// it (keepalived's vrrp_scheduler.c), so a dead service never counts as up for the first
// fall-1 intervals (long enough at fall 3, interval 2 for a backup to become master), and the
// address owner sends nothing at 255 before a weight-0 script's first result. Every advert
// seen from the daemon's start until it has settled counts, not only the last.
func TestCheckStartDifferential(t *testing.T) {
	l := newInteropLab(t, 1)
	nd := l.Nodes[0]
	withExec := vigilWithExecPlugin(t)
	cs := startCases()
	conf := startConfig(cs)
	l.startCapture()
	if l.capt == nil {
		t.Skip("the test reads the adverts off the wire with tshark")
	}
	var path string // keepalived's run writes the file; vigil's runs read that same file
	runs := []struct {
		name  string
		start func() *lab.Proc
	}{
		{"keepalived", func() *lab.Proc { r := l.startKA(0, conf); path = r.conf; return r.Proc }},
		{"vigil+exec", func() *lab.Proc { return l.startVigilOn(0, withExec, path) }},
		{"vigil", func() *lab.Proc { return l.startVigilOn(0, vigilBin, path) }},
	}
	// seen[run][vrid] is every priority advertised, in order of first appearance.
	seen := make([]map[int][]int, len(runs))
	for i, r := range runs {
		from := time.Now()
		p := r.start()
		l.settledPriorities(nd.Addr4.Addr(), from, len(cs))
		until := time.Now()
		seen[i] = map[int][]int{}
		for _, pk := range l.readPackets() {
			if pk.src != nd.Addr4.Addr() || pk.at.Before(from) || pk.at.After(until) {
				continue
			}
			if !slices.Contains(seen[i][pk.vrid], pk.prio) {
				seen[i][pk.vrid] = append(seen[i][pk.vrid], pk.prio)
			}
		}
		l.stopTERM(p)
		if err := p.Wait(30 * time.Second); err != nil {
			t.Fatalf("%s did not stop: %v", r.name, err)
		}
	}

	show := func(ps []int) string {
		if len(ps) == 0 {
			return "none"
		}
		return strings.Trim(fmt.Sprint(ps), "[]")
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-42s %8s %12s %12s %12s\n", "case (VRID: instance; fall 3, rise 2)", "doc", "keepalived", "vigil+exec", "vigil")
	for i, c := range cs {
		id := i + 1
		ka := seen[0][id]
		fmt.Fprintf(&table, "%2d %-39s %8s %12s %12s %12s\n", id, c.name, show(c.want), show(ka), show(seen[1][id]), show(seen[2][id]))
		if !slices.Equal(ka, c.want) {
			t.Errorf("VRID %d (%s): keepalived advertised %s; keepalived.conf(5) reads %s: the case is wrong", id, c.name, show(ka), show(c.want))
		}
		allowed := map[int]bool{}
		for _, p := range ka {
			allowed[p] = true
		}
		for j := 1; j < len(runs); j++ {
			var extra []int
			for _, p := range seen[j][id] {
				if !allowed[p] {
					extra = append(extra, p)
				}
			}
			if len(extra) > 0 {
				t.Errorf("VRID %d (%s): %s advertised priority %s, which keepalived never did (keepalived: %s)", id, c.name, runs[j].name, show(extra), show(ka))
			}
		}
	}
	t.Logf("priorities advertised from the start until settled (0: resigning a mastership):\n%s", table.String())
}
