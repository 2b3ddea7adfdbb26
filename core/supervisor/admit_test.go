package supervisor

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

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

// TestReloadWindowAdmitsBothConfigs: while the children may still run the configuration
// before a reload, what they send by it is admitted (a transition of an instance the
// reload removes, the state of a check it drops); once every child has reloaded, only the
// new configuration counts.
func TestReloadWindowAdmitsBothConfigs(t *testing.T) {
	oldCfg, ds := config.Parse("old.conf", []byte(fuzzConf), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	// The new configuration drops VI_2 and the check chk.
	newText := strings.Replace(fuzzConf, "    track_script {\n        chk\n    }\n", "", 1)
	newText = newText[:strings.Index(newText, "vrrp_instance VI_2")]
	newText = strings.Replace(newText, "vrrp_script chk {\n    script \"/bin/true\"\n    weight -20\n}\n", "", 1)
	newCfg, ds := config.Parse("new.conf", []byte(newText), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	s, err := New(oldCfg, Options{Exe: "/nonexistent", Log: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	gone := &childpb.Transition{Instance: "VI_2", From: "MASTER", To: "BACKUP", Priority: 100, Vips: []string{"192.0.2.101/32"}}
	dropped := &childpb.CheckState{Name: "chk", Up: true, Epoch: 1, Seq: 1}

	// During the reload: core has taken the new configuration, the children not yet.
	s.mu.Lock()
	s.alt, s.cfg, s.names = oldCfg, newCfg, checkNames(newCfg)
	for n := range checkNames(oldCfg) {
		s.names[n] = true
	}
	s.mu.Unlock()
	if _, err := s.admitTransition(gone); err != nil {
		t.Errorf("a transition of VI_2 made before the vrrp child reloaded: %v", err)
	}
	if _, err := admitCheck(dropped, 1, s.names); err != nil {
		t.Errorf("a state of chk sent before the check child reloaded: %v", err)
	}

	// A reload that every child took (here: none runs) ends the window.
	if _, err := s.Reload(context.Background(), newCfg); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admitTransition(gone); err == nil {
		t.Error("a transition of VI_2 was admitted after every child reloaded without it")
	}
	if _, err := admitCheck(dropped, 1, s.names); err == nil {
		t.Error("a state of chk was admitted after every child reloaded without it")
	}
}
