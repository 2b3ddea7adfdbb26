package config

import (
	"testing"
	"time"
)

// TestExampleLVSConfig: configs/keepalived-lvs.conf, which make demo-lvs runs, loads without
// an error or a warning and says what its comments say: one rr NAT virtual server checked
// every second, three real servers of weight 1 with one TCP_CHECK each.
func TestExampleLVSConfig(t *testing.T) {
	cfg, diags := Load("../../configs/keepalived-lvs.conf", Options{})
	for _, d := range diags {
		t.Errorf("diagnostic: %v", d)
	}
	if cfg == nil || len(cfg.VirtualServers) != 1 {
		t.Fatalf("want one virtual_server, got %+v", cfg)
	}
	vs := cfg.VirtualServers[0]
	if vs.LBAlgo != "rr" || vs.LBKind != "NAT" || vs.DelayLoop != time.Second || len(vs.RealServers) != 3 {
		t.Fatalf("virtual server: algo %q kind %q delay_loop %v, %d real servers", vs.LBAlgo, vs.LBKind, vs.DelayLoop, len(vs.RealServers))
	}
	for _, rs := range vs.RealServers {
		if rs.Weight != 1 || rs.Port != 8080 || rs.LVSMethod != "NAT" || len(rs.Checkers) != 1 {
			t.Errorf("real server %v: weight %d port %d method %s, %d checkers", rs.Addr, rs.Weight, rs.Port, rs.LVSMethod, len(rs.Checkers))
		}
	}
}
