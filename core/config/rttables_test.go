package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLookupRTTable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rt_tables")
	if err := os.WriteFile(p, []byte("# reserved values\n255\tlocal\n254 main\n100 isp1 # uplink one\n0x65 isp2\nbad isp3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"isp1": 100, "isp2": 101, "main": 254} {
		if got, ok := lookupRTTable(p, name); !ok || got != want {
			t.Errorf("%s: got %d, %v; want %d", name, got, ok, want)
		}
	}
	for _, name := range []string{"isp3", "uplink", "#"} {
		if got, ok := lookupRTTable(p, name); ok {
			t.Errorf("%s: found as %d, want not found", name, got)
		}
	}
}

func TestRouteTableResolved(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	os.WriteFile(conf, []byte(`vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100/24
    }
    virtual_routes {
        198.51.100.0/24 via 192.0.2.1 table local
        203.0.113.0/24 via 192.0.2.1 table 100
        0.0.0.0/0 via 192.0.2.1 table isp1
        192.0.2.128/25 via 192.0.2.1
    }
}
`), 0o644)
	cfg, ds := Load(conf, Options{RouteTable: func(name string) (int, bool) { return 7, name == "isp1" }})
	for _, d := range ds {
		t.Errorf("diagnostic: %v", d)
	}
	if cfg == nil || len(cfg.Instances) != 1 {
		t.Fatal("no instance")
	}
	var got []int
	for _, r := range cfg.Instances[0].Routes {
		got = append(got, r.TableID)
	}
	// An injected lookup replaces the files, not the kernel's own names.
	want := []int{255, 100, 7, 0}
	if len(got) != len(want) {
		t.Fatalf("tables %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("tables %v, want %v", got, want)
		}
	}
}
