package vrrp

import (
	"fmt"
	"slices"
	"testing"

	"github.com/vigil-ha/vigil/core/config"
)

// indexSummary writes idx as name: instance/weight/reverse ..., sorted by name.
func indexSummary(idx checkIndex) []string {
	var out []string
	for name, t := range idx {
		s := name + " (" + t.key + "):"
		for _, c := range t.by {
			s += fmt.Sprintf(" %s/%d/%v", c.in.name, c.weight, c.reverse)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// TestCheckIndexOf: the index gives each check the instances that track it with the
// weight and direction each line gives it, its own lines before its sync group's, and
// follows a configuration's change of those (what a reload builds it anew from).
func TestCheckIndexOf(t *testing.T) {
	inst := func(name string, refs ...config.TrackRef) *instance {
		return &instance{name: name, cfg: &config.VRRPInstance{Name: name, TrackScripts: refs}}
	}
	ref := func(name string) config.TrackRef { return config.TrackRef{Name: name} }
	weighted := func(name string, w int) config.TrackRef {
		return config.TrackRef{Name: name, Weight: w, HasWeight: true}
	}
	scripts := []*config.VRRPScript{{Name: "chk_a", Weight: -20}, {Name: "chk_b", Weight: 10, Reverse: true}}
	checks := []*config.PluginCheck{{Name: "chk_db", Weight: -50}}
	group := &config.SyncGroup{Name: "G", Members: []config.NameRef{{Name: "VI_1"}, {Name: "VI_2"}},
		TrackScripts: []config.TrackRef{weighted("chk_b", 5)}}
	for _, tc := range []struct {
		name      string
		cfg       *config.Config
		instances []*instance
		want      []string
	}{
		{name: "own lines and a plugin check",
			cfg:       &config.Config{Scripts: scripts, Checks: checks},
			instances: []*instance{inst("VI_1", ref("chk_a"), ref("chk_db")), inst("VI_2", weighted("chk_a", -30))},
			want:      []string{"chk_a (script:chk_a): VI_1/-20/false VI_2/-30/false", "chk_db (script:chk_db): VI_1/-50/false"}},
		{name: "check added, one removed, one reweighted",
			cfg:       &config.Config{Scripts: []*config.VRRPScript{{Name: "chk_a", Weight: -10}, scripts[1]}, Checks: checks},
			instances: []*instance{inst("VI_1", ref("chk_a"), ref("chk_b")), inst("VI_2", weighted("chk_a", -30))},
			want:      []string{"chk_a (script:chk_a): VI_1/-10/false VI_2/-30/false", "chk_b (script:chk_b): VI_1/10/true"}},
		{name: "sync group after own lines",
			cfg:       &config.Config{Scripts: scripts, SyncGroups: []*config.SyncGroup{group}},
			instances: []*instance{inst("VI_1", ref("chk_b")), inst("VI_2"), inst("VI_3", ref("chk_b"))},
			want:      []string{"chk_b (script:chk_b): VI_1/10/true VI_3/10/true VI_1/5/true VI_2/5/true"}},
		{name: "nothing tracked", cfg: &config.Config{Scripts: scripts}, instances: []*instance{inst("VI_1")}},
	} {
		if got := indexSummary(checkIndexOf(tc.cfg, tc.instances)); !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
