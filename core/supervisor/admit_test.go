package supervisor

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// TestTransitionAddressesBoundByConfig: a transition may name as many addresses as its
// instance has configured (virtual_ipaddress and virtual_ipaddress_excluded), however many
// that is, and no more. A fixed bound (it was 4096) refused the transitions, and so the
// notify actions, of an instance with more addresses than that, which keepalived allows.
func TestTransitionAddressesBoundByConfig(t *testing.T) {
	var b strings.Builder
	b.WriteString("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n  192.0.2.1/32\n }\n virtual_ipaddress_excluded {\n")
	var vips []string
	vips = append(vips, "192.0.2.1/32")
	for i := range 5000 {
		v := fmt.Sprintf("2001:db8::%x/128", i+1)
		fmt.Fprintf(&b, "  %s\n", v)
		vips = append(vips, v)
	}
	b.WriteString(" }\n}\n")
	cfg, ds := config.Parse("many.conf", []byte(b.String()), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	tr := &childpb.Transition{Instance: "VI_1", From: "BACKUP", To: "MASTER", Priority: 100, Vips: vips}
	if got, err := admitTransition(tr, cfg); err != nil || len(got.VIPs) != 5001 {
		t.Errorf("all 5001 configured addresses: %d passed on, %v", len(got.VIPs), err)
	}
	tr.Vips = append(vips, "198.51.100.1/32")
	if _, err := admitTransition(tr, cfg); err == nil {
		t.Error("a transition naming more addresses than the instance has was passed on")
	}
	ins, _ := instancesOf(&childpb.VRRPStatus{Instances: []*childpb.InstanceStatus{{Name: "VI_1", Vips: tr.Vips}}}, cfg)
	if len(ins) != 1 || len(ins[0].VIPs) != 5001 {
		t.Errorf("vigil status shows %v", ins)
	}
}

// TestReloadWindowAdmitsBothConfigs: what a child sends by the configuration it ran before a
// reload is admitted while it may still run it (it has not answered the reload, or failed
// it) and right after it took the reload (its stream may still carry older messages); two
// reloads later, only what the newer configurations have room for.
func TestReloadWindowAdmitsBothConfigs(t *testing.T) {
	parse := func(name, text string) *config.Config {
		t.Helper()
		cfg, ds := config.Parse(name, []byte(text), config.Options{DisableIncludes: true})
		if ds.HasErrors() {
			t.Fatal(ds.Errors())
		}
		return cfg
	}
	oldCfg := parse("old.conf", fuzzConf)
	// The new configuration drops VI_2 and the check chk.
	newText := strings.Replace(fuzzConf, "    track_script {\n        chk\n    }\n", "", 1)
	newText = newText[:strings.Index(newText, "vrrp_instance VI_2")]
	newText = strings.Replace(newText, "vrrp_script chk {\n    script \"/bin/true\"\n    weight -20\n}\n", "", 1)
	newCfg, newerCfg := parse("new.conf", newText), parse("newer.conf", newText)
	s, err := New(oldCfg, Options{Exe: "/nonexistent", Log: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	gone := &childpb.Transition{Instance: "VI_2", From: "MASTER", To: "BACKUP", Priority: 100, Vips: []string{"192.0.2.101/32"}}
	dropped := &childpb.CheckState{Name: "chk", Up: true, Epoch: 1, Seq: 1}
	admitted := func(when string, want bool) {
		t.Helper()
		if _, err := s.admitTransition(gone); (err == nil) != want {
			t.Errorf("%s: a transition of VI_2 admitted %v, want %v (%v)", when, err == nil, want, err)
		}
		s.mu.Lock()
		names := s.names
		s.mu.Unlock()
		if _, err := admitCheck(dropped, 1, names); (err == nil) != want {
			t.Errorf("%s: a state of chk admitted %v, want %v (%v)", when, err == nil, want, err)
		}
	}

	// No child here answers the reload: as far as core knows they still run the old one.
	if _, err := s.Reload(context.Background(), newCfg); err != nil {
		t.Fatal(err)
	}
	admitted("before the children took the reload", true)
	// The children take it (what Reload records when a child answers).
	s.mu.Lock()
	s.took(child.RoleVRRP, newCfg)
	s.took(child.RoleCheck, newCfg)
	s.mu.Unlock()
	admitted("right after the children took the reload", true)
	// The next reload, taken too: the old configuration is two behind.
	if _, err := s.Reload(context.Background(), newerCfg); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.took(child.RoleVRRP, newerCfg)
	s.took(child.RoleCheck, newerCfg)
	s.mu.Unlock()
	admitted("two reloads later", false)
}
