package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// childRegistry is what a child's registry looks like: the Go and process collectors and a
// counter of its own, with a role label that the child has no business setting.
func childRegistry(t *testing.T) []byte {
	t.Helper()
	reg := NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_test_total", Help: "A test counter."}, []string{"role", "zone"})
	c.WithLabelValues("core", "a").Add(3)
	reg.MustRegister(c)
	b, err := Encode(reg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestDecodeOwnsTheRoleLabel(t *testing.T) {
	fams, err := Decode(childRegistry(t), "check")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if r := labels(m)["role"]; r != "check" {
				t.Errorf("%s: role %q, want check", f.GetName(), r)
			}
			names := []string{}
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName())
			}
			if strings.Join(names, ",") != "role,zone" && f.GetName() == "vigil_test_total" {
				t.Errorf("labels not sorted once: %v", names)
			}
		}
		if f.GetName() == "vigil_test_total" {
			found = true
			if v := f.GetMetric()[0].GetCounter().GetValue(); v != 3 {
				t.Errorf("counter %v, want 3", v)
			}
		}
	}
	if !found {
		t.Error("the child's counter is missing")
	}
}

func TestDecodeRefusesGarbage(t *testing.T) {
	if _, err := Decode([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff}, "vrrp"); err == nil {
		t.Error("garbage decoded without an error")
	}
	if fams, err := Decode(nil, "vrrp"); err != nil || len(fams) != 0 {
		t.Errorf("an empty answer: %v, %v", fams, err)
	}
}

func TestGathererMergesAndLabels(t *testing.T) {
	core := NewCore()
	core.Registry.MustRegister(RuntimeCollectors()...)
	core.Reloaded(time.Now(), false, true)
	core.Delivered("notify scripts", "ok", 20*time.Millisecond)
	child := childRegistry(t)
	g := &Gatherer{Core: core.Registry, Children: func(ctx context.Context) []ChildMetrics {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the children are asked without a deadline")
		}
		return []ChildMetrics{{Role: "vrrp", Families: child}, {Role: "check", Err: errors.New("not running")}}
	}}
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	up := map[string]float64{}
	for _, m := range byName["vigil_child_up"].GetMetric() {
		up[labels(m)["role"]] = m.GetGauge().GetValue()
	}
	if up["vrrp"] != 1 || up["check"] != 0 || len(up) != 2 {
		t.Errorf("vigil_child_up %v, want vrrp 1, check 0", up)
	}
	roles := map[string]bool{}
	for _, m := range byName["go_goroutines"].GetMetric() {
		roles[labels(m)["role"]] = true
	}
	if !roles["core"] || !roles["vrrp"] || len(roles) != 2 {
		t.Errorf("go_goroutines roles %v, want core and vrrp", roles)
	}
	for _, m := range byName["vigil_reloads_total"].GetMetric() {
		l := labels(m)
		want := map[bool]float64{true: 1}[l["result"] == "refused"]
		if l["role"] != "core" || m.GetCounter().GetValue() != want {
			t.Errorf("vigil_reloads_total%v = %v, want %v", l, m.GetCounter().GetValue(), want)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(fams).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestViewIsReadOnly(t *testing.T) {
	ready := errors.New("the vrrp process has not answered for 4s")
	v := View{
		Gatherer: NewRegistry(),
		Status:   func(context.Context) any { return map[string]int{"goroutines": 7} },
		Ready:    func() error { return ready },
	}
	srv := httptest.NewServer(v.Handler())
	defer srv.Close()
	do := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		method, path string
		code         int
		has          string
	}{
		{"GET", "/healthz", 200, "ok"},
		{"GET", "/readyz", 503, "not ready: the vrrp process has not answered"},
		{"GET", "/status", 200, `"goroutines": 7`},
		{"GET", "/metrics", 200, "go_goroutines"},
		{"HEAD", "/status", 200, ""},
		{"POST", "/status", 405, ""},
		{"PUT", "/metrics", 405, ""},
		{"DELETE", "/readyz", 405, ""},
		{"POST", "/healthz", 405, ""},
		{"GET", "/reload", 404, ""},
	} {
		code, body := do(c.method, c.path)
		if code != c.code || !strings.Contains(body, c.has) {
			t.Errorf("%s %s: %d %q, want %d with %q", c.method, c.path, code, body, c.code, c.has)
		}
	}
	ready = nil
	if code, body := do("GET", "/readyz"); code != 200 {
		t.Errorf("ready: %d %s", code, body)
	}
}

func TestUnauthenticated(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9650": false, "[::1]:9650": false, "localhost:9650": false, "127.0.0.53:1": false,
		":9650": true, "0.0.0.0:9650": true, "[::]:9650": true, "192.0.2.1:9650": true, "[2001:db8::1]:9650": true,
		"example.org:9650": true, "nonsense": true,
	} {
		if got := Unauthenticated(addr); got != want {
			t.Errorf("Unauthenticated(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestListenServesAndCloses(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", View{Gatherer: NewRegistry(), Status: func(context.Context) any { return nil }, Ready: func() error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + srv.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz: %s", resp.Status)
	}
	if err := srv.Close(); err != nil {
		t.Error(err)
	}
	if _, err := Listen(srv.Addr().String()+"x", View{}); err == nil {
		t.Error("a bad address was taken")
	}
}
