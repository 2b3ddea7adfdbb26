package supervisor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
)

// TestReadiness: /readyz's answer (Readiness) is not ready until every child took the
// configuration, then only while every child answers; the metrics of a child that does not
// run are missing with the reason.
func TestReadiness(t *testing.T) {
	cfg, ds := config.Parse("r.conf", []byte("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n  192.0.2.1/32\n }\n}\n"),
		config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	s, err := New(cfg, Options{Log: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Readiness(); err == nil || !strings.Contains(err.Error(), "starting") {
		t.Errorf("before any child started: %v, want starting", err)
	}
	m := s.ChildMetrics(context.Background())
	if len(m) != 1 || m[0].Role != "vrrp" || m[0].Err == nil || !strings.Contains(m[0].Err.Error(), "not running") {
		t.Errorf("metrics of a child that does not run: %+v", m)
	}
	p := s.procs()[0]
	s.configured(p)
	if err := s.Readiness(); err == nil || !strings.Contains(err.Error(), "vrrp process is not running") {
		t.Errorf("configured, then gone: %v, want the vrrp process not running", err)
	}
	p.set(func() { p.answered = time.Now() })
	if err := s.Readiness(); err != nil {
		t.Errorf("configured and answering: %v", err)
	}
	p.set(func() { p.answered = time.Now().Add(-2 * ReadyWithin) })
	if err := s.Readiness(); err == nil || !strings.Contains(err.Error(), "has not answered") {
		t.Errorf("silent for 2×ReadyWithin: %v", err)
	}
}
