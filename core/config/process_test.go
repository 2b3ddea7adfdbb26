package config

import (
	"strings"
	"testing"
)

// TestProcessKeywords: the scheduling keywords of the vrrp and checker processes are read
// with keepalived 2.2.7's ranges (its -t fails on each out-of-range value below), and a bad
// value is an error at its place that names the valid range.
func TestProcessKeywords(t *testing.T) {
	tests := []struct {
		name    string
		lines   string
		vrrp    Process // Places not compared
		checker Process
		diags   []string // exact, in order
	}{
		{name: "defaults", lines: "router_id r1",
			vrrp: Process{RLimitRTTime: 10000}, checker: Process{RLimitRTTime: 10000}},
		{name: "all set",
			lines: "vrrp_priority -10\n vrrp_rt_priority 50\n vrrp_rlimit_rttime 20000\n vrrp_no_swap\n" +
				" checker_priority 5\n checker_rt_priority 1\n checker_rlimit_rttime 1\n checker_no_swap",
			vrrp:    Process{Nice: -10, RTPriority: 50, RLimitRTTime: 20000, NoSwap: true},
			checker: Process{Nice: 5, RTPriority: 1, RLimitRTTime: 2, NoSwap: true}}, // 1 is made 2, as keepalived does
		{name: "range ends", lines: "vrrp_priority -20\n vrrp_rt_priority 99\n checker_priority 19\n vrrp_rlimit_rttime 4294967295",
			vrrp: Process{Nice: -20, RTPriority: 99, RLimitRTTime: 4294967295}, checker: Process{Nice: 19, RLimitRTTime: 10000}},
		{name: "nice out of range", lines: "vrrp_priority -21\n checker_priority 20",
			vrrp: Process{RLimitRTTime: 10000}, checker: Process{RLimitRTTime: 10000},
			diags: []string{
				"p.conf:3:16: error: -21 is out of range: use -20 to 19",
				"p.conf:4:19: error: 20 is out of range: use -20 to 19",
			}},
		{name: "rt priority out of range", lines: "vrrp_rt_priority 0\n checker_rt_priority 100",
			vrrp: Process{RLimitRTTime: 10000}, checker: Process{RLimitRTTime: 10000},
			diags: []string{
				"p.conf:3:19: error: 0 is out of range: use 1 to 99",
				"p.conf:4:22: error: 100 is out of range: use 1 to 99",
			}},
		{name: "not numbers", lines: "vrrp_rt_priority high\n vrrp_priority x\n vrrp_rlimit_rttime 1.5",
			vrrp: Process{RLimitRTTime: 10000}, checker: Process{RLimitRTTime: 10000},
			diags: []string{
				`p.conf:3:19: error: "high" is not a whole number; use a number from 1 to 99`,
				`p.conf:4:16: error: "x" is not a whole number; use a number from -20 to 19`,
				`p.conf:5:21: error: "1.5" is not a whole number; give the microseconds, from 1 to 4294967295`,
			}},
		{name: "rlimit out of range", lines: "vrrp_rlimit_rttime 0\n checker_rlimit_rttime 4294967296\n vrrp_rlimit_rttime 99999999999999999999",
			vrrp: Process{RLimitRTTime: 10000}, checker: Process{RLimitRTTime: 10000},
			diags: []string{
				"p.conf:3:21: error: 0 is out of range: use 1 to 4294967295 microseconds",
				"p.conf:4:24: error: 4294967296 is out of range: use 1 to 4294967295 microseconds",
				"p.conf:5:21: error: 99999999999999999999 is out of range: use 1 to 4294967295 microseconds",
			}},
		{name: "missing values", lines: "vrrp_priority\n checker_rt_priority",
			vrrp: Process{RLimitRTTime: 10000}, checker: Process{RLimitRTTime: 10000},
			diags: []string{
				`p.conf:3:2: error: "vrrp_priority" needs 1 argument`,
				`p.conf:4:2: error: "checker_rt_priority" needs 1 argument`,
			}},
		{name: "deprecated rlimit spelling", lines: "vrrp_rlimit_rtime 5000\n checker_rlimit_rtime 6000",
			vrrp: Process{RLimitRTTime: 5000}, checker: Process{RLimitRTTime: 6000},
			diags: []string{
				`p.conf:3:2: warning: "vrrp_rlimit_rtime" is a deprecated spelling; write vrrp_rlimit_rttime`,
				`p.conf:4:2: warning: "checker_rlimit_rtime" is a deprecated spelling; write checker_rlimit_rttime`,
			}},
		{name: "no_swap with an argument", lines: "vrrp_no_swap no",
			vrrp: Process{RLimitRTTime: 10000, NoSwap: true}, checker: Process{RLimitRTTime: 10000},
			diags: []string{
				`p.conf:3:15: warning: "vrrp_no_swap" takes no argument; "no" is ignored and memory is locked; write vrrp_no_swap alone, or remove the line to leave memory unlocked`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "global_defs {\n router_id r1\n " + tt.lines + "\n}\n"
			cfg, ds := Parse("p.conf", []byte(text), Options{})
			var got []string
			for _, d := range ds {
				got = append(got, d.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.diags, "\n") {
				t.Fatalf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.diags, "\n"))
			}
			v, c := cfg.Global.VRRPProcess, cfg.Global.CheckerProcess
			v.Places, c.Places = nil, nil
			if v.Nice != tt.vrrp.Nice || v.RTPriority != tt.vrrp.RTPriority || v.RLimitRTTime != tt.vrrp.RLimitRTTime || v.NoSwap != tt.vrrp.NoSwap {
				t.Errorf("vrrp: %+v, want %+v", v, tt.vrrp)
			}
			if c.Nice != tt.checker.Nice || c.RTPriority != tt.checker.RTPriority || c.RLimitRTTime != tt.checker.RLimitRTTime || c.NoSwap != tt.checker.NoSwap {
				t.Errorf("checker: %+v, want %+v", c, tt.checker)
			}
		})
	}
}

// TestProcessKeywordsPlaces: each keyword's place is kept, so that the process can name the
// line when the kernel refuses it; bfd_ and cpu_affinity keywords stay unsupported.
func TestProcessKeywordsPlaces(t *testing.T) {
	text := "global_defs {\n vrrp_rt_priority 50\n vrrp_cpu_affinity 0\n bfd_priority -5\n}\n"
	cfg, ds := Parse("p.conf", []byte(text), Options{})
	if p := cfg.Global.VRRPProcess.Places["vrrp_rt_priority"]; p.String() != "p.conf:2:2" {
		t.Errorf("place of vrrp_rt_priority: %s", p)
	}
	want := []string{
		`p.conf:3:2: warning: "vrrp_cpu_affinity" is not supported by vigil; ignored; see docs/migrating.md, "keepalived features vigil does not support"`,
		`p.conf:4:2: warning: "bfd_priority" is not supported by vigil; ignored; see docs/migrating.md, "keepalived features vigil does not support"`,
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
