package supervisor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/metrics"
)

// metricsAddr is where each node's core serves metrics: loopback inside the node's namespace.
const metricsAddr = "127.0.0.1:9650"

// httpIn is a client that connects inside n's namespace.
func (n *node) httpIn() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return n.DialContext(ctx, network, metricsAddr)
		},
	}}
}

// get fetches path from n's metrics listener with method, returning the status code and body.
func (n *node) get(t *testing.T, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+metricsAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := n.httpIn().Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// scrape reads n's /metrics as Prometheus does (the text format), fails the test on anything
// promtool check metrics would report, and returns the families by name.
func (n *node) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := n.get(t, http.MethodGet, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("%s: GET /metrics: %d %s", n.Name, code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: /metrics does not parse: %v\n%s", n.Name, err, body)
	}
	problems, err := promlint.NewWithMetricFamilies(slices.Collect(maps.Values(fams))).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: promlint: %s: %s", n.Name, p.Metric, p.Text)
	}
	return fams
}

// value is the sample of family name whose labels include want; ok is false when none has.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
metrics:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue metrics
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// must is value for a sample that has to be there.
func must(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := value(fams, name, labels)
	if !ok {
		t.Fatalf("no sample %s%v", name, labels)
	}
	return v
}

// vi1 selects VI_1's samples. The label is vrrp_instance: instance is Prometheus' own target
// label, and a scraped "instance" would be renamed exported_instance.
var vi1 = map[string]string{"vrrp_instance": "VI_1", "role": "vrrp"}

func with(base map[string]string, kv ...string) map[string]string {
	m := maps.Clone(base)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestMetricsThroughFailover scrapes both nodes of a lab before and after n1's check fails
// and n2 takes over, and asserts that the counters and gauges moved as the failover did:
// n2 became master once more, n1 went MASTER to FAULT, each one's state gauges flipped, the
// adverts kept coming. Every scrape passes promlint (promtool check metrics) and parses.
// It also covers the read-only view: /status has the shape of `vigil status --json`, POST
// gets 405, and /readyz says 503 while a child is frozen (SIGSTOP), 200 again after.
func TestMetricsThroughFailover(t *testing.T) {
	ctx, n := newLab(t, 2)
	flag := filepath.Join(n[0].dir, "ok")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	n[0].start(t, conf(150, checkScript(flag)), "--metrics-listen", metricsAddr)
	// n2 takes the keyword from its file: both ways of turning metrics on are used.
	n[1].start(t, "global_defs {\n    metrics_listen "+metricsAddr+"\n}\n"+conf(100, ""))
	waitFor(t, 10*time.Second, "n1 holds the VIP", func() bool { return n[0].holds(t, ctx) && !n[1].holds(t, ctx) })
	for _, nd := range n {
		waitFor(t, 10*time.Second, nd.Name+" ready", func() bool { code, _ := nd.get(t, http.MethodGet, "/readyz"); return code == 200 })
		if code, body := nd.get(t, http.MethodGet, "/healthz"); code != 200 {
			t.Errorf("%s /healthz: %d %s", nd.Name, code, body)
		}
	}

	// The first scrapes once both nodes have settled: n2's instance may start (INIT) or hear
	// n1's first advert a moment after its core is ready, and on a loaded machine n2 may even
	// have been master for a moment before n1 preempted it. What follows compares with these.
	var b1, b2 map[string]*dto.MetricFamily
	waitFor(t, 10*time.Second, "n1 MASTER, n2 BACKUP and hearing adverts in the metrics", func() bool {
		b1, b2 = n[0].scrape(t), n[1].scrape(t)
		s1, _ := value(b1, "vigil_vrrp_instance_state", vi1)
		s2, _ := value(b2, "vigil_vrrp_instance_state", vi1)
		rx, _ := value(b2, "vigil_vrrp_adverts_received_total", vi1)
		return s1 == 2 && s2 == 1 && rx > 0
	})
	for _, st := range []string{"INIT", "BACKUP", "MASTER", "FAULT"} {
		want := map[bool]float64{true: 1}[st == "MASTER"]
		if v := must(t, b1, "vigil_vrrp_state", with(vi1, "state", st)); v != want {
			t.Errorf("n1 vigil_vrrp_state{state=%s} = %v, want %v", st, v, want)
		}
	}
	if v := must(t, b1, "vigil_vrrp_became_master_total", vi1); v < 1 {
		t.Errorf("n1, master, became master %v times", v)
	}
	if v := must(t, b1, "vigil_vrrp_priority", vi1); v != 150 {
		t.Errorf("n1 priority %v, want 150", v)
	}
	if must(t, b1, "vigil_vrrp_adverts_sent_total", vi1) == 0 {
		t.Error("no adverts sent counted while n1 is master")
	}
	if v := must(t, b1, "vigil_check_up", map[string]string{"check": "chk", "role": "check"}); v != 1 {
		t.Errorf("n1 check chk up = %v, want 1", v)
	}
	for _, role := range []string{"vrrp", "check"} {
		if v := must(t, b1, "vigil_child_up", map[string]string{"role": role}); v != 1 {
			t.Errorf("n1 vigil_child_up{role=%s} = %v", role, v)
		}
	}
	// What a running vigil serves is what metrics.Names lists (the dashboard's test uses it).
	names, err := metrics.Names(child.Collectors()...)
	if err != nil {
		t.Fatal(err)
	}
	for name := range b1 {
		if !slices.Contains(names, name) {
			t.Errorf("n1 serves %s, which metrics.Names does not list", name)
		}
	}
	for _, role := range []string{"core", "vrrp", "check"} {
		must(t, b1, "go_goroutines", map[string]string{"role": role})
		must(t, b1, "process_resident_memory_bytes", map[string]string{"role": role})
	}

	// The failover: n1's check fails (weight 0: FAULT), n2 takes over.
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n2 takes over", func() bool { return n[1].holds(t, ctx) && !n[0].holds(t, ctx) })
	var a1, a2 map[string]*dto.MetricFamily
	waitFor(t, 20*time.Second, "the state gauges flip", func() bool {
		a1, a2 = n[0].scrape(t), n[1].scrape(t)
		s1, _ := value(a1, "vigil_vrrp_instance_state", vi1)
		s2, _ := value(a2, "vigil_vrrp_instance_state", vi1)
		return s1 == 3 && s2 == 2
	})
	delta := func(before, after map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
		b, _ := value(before, name, labels) // absent before: 0
		return must(t, after, name, labels) - b
	}
	for _, c := range []struct {
		who           string
		before, after map[string]*dto.MetricFamily
		name          string
		labels        map[string]string
		want          float64
	}{
		{"n2", b2, a2, "vigil_vrrp_became_master_total", vi1, 1},
		{"n2", b2, a2, "vigil_vrrp_transitions_total", with(vi1, "from", "BACKUP", "to", "MASTER"), 1},
		{"n1", b1, a1, "vigil_vrrp_transitions_total", with(vi1, "from", "MASTER", "to", "FAULT"), 1},
		{"n1", b1, a1, "vigil_vrrp_released_master_total", vi1, 1},
		{"n1", b1, a1, "vigil_vrrp_became_master_total", vi1, 0},
	} {
		if d := delta(c.before, c.after, c.name, c.labels); d != c.want {
			t.Errorf("%s: %s%v moved by %v, want %v", c.who, c.name, c.labels, d, c.want)
		}
	}
	if d := delta(b2, a2, "vigil_vrrp_adverts_sent_total", vi1); d <= 0 {
		t.Errorf("n2 sent no adverts as master (moved by %v)", d)
	}
	if v := must(t, a1, "vigil_vrrp_state", with(vi1, "state", "FAULT")); v != 1 {
		t.Errorf("n1 vigil_vrrp_state{state=FAULT} = %v, want 1", v)
	}
	if v := must(t, a1, "vigil_check_up", map[string]string{"check": "chk", "role": "check"}); v != 0 {
		t.Errorf("n1 check chk up = %v after it failed, want 0", v)
	}
	if d := delta(b1, a1, "vigil_check_probes_total", map[string]string{"check": "chk", "outcome": "failure"}); d <= 0 {
		t.Errorf("n1 counted no failed probe of chk (moved by %v)", d)
	}
	if d := delta(b1, a1, "vigil_check_probe_duration_seconds", map[string]string{"check": "chk"}); d <= 0 {
		t.Errorf("n1's probe duration histogram took no probe (moved by %v)", d)
	}

	// /status: the JSON of vigil status --json, in shape.
	code, body := n[1].get(t, http.MethodGet, "/status")
	if code != 200 {
		t.Fatalf("GET /status: %d %s", code, body)
	}
	cli, err := exec.Command(vigilBin, "status", "--json", "--control", n[1].sock()).Output()
	if err != nil {
		t.Fatal(err)
	}
	if a, b := jsonShape(t, body), jsonShape(t, cli); a != b {
		t.Errorf("/status and vigil status --json differ in shape:\n%s\n%s", a, b)
	}
	// A reload is counted by core (the file is unchanged: applied).
	if out, err := exec.Command(vigilBin, "reload", "--control", n[1].sock()).CombinedOutput(); err != nil {
		t.Fatalf("vigil reload: %v: %s", err, out)
	}
	r := n[1].scrape(t)
	core := map[string]string{"role": "core"}
	if v := must(t, r, "vigil_reloads_total", with(core, "result", "applied")); v != 1 {
		t.Errorf("vigil_reloads_total{result=applied} = %v after one reload, want 1", v)
	}
	if v := must(t, r, "vigil_last_reload_timestamp_seconds", core); v <= 0 {
		t.Errorf("vigil_last_reload_timestamp_seconds = %v after a reload", v)
	}
	// Read-only: no other method.
	for _, p := range []string{"/metrics", "/status", "/healthz", "/readyz"} {
		if code, _ := n[1].get(t, http.MethodPost, p); code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d, want 405", p, code)
		}
	}

	// A frozen child: not ready, and missing from the scrape.
	pid := n[1].childPID(t, "vrrp")
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	var why []byte
	waitFor(t, 10*time.Second, "/readyz 503 with the vrrp child frozen", func() bool {
		code, why = n[1].get(t, http.MethodGet, "/readyz")
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(string(why), "vrrp") {
		t.Errorf("/readyz does not name the vrrp process: %s", why)
	}
	frozen := n[1].scrape(t)
	if v := must(t, frozen, "vigil_child_up", map[string]string{"role": "vrrp"}); v != 0 {
		t.Errorf("vigil_child_up{role=vrrp} = %v with the child stopped, want 0", v)
	}
	if _, ok := value(frozen, "vigil_vrrp_instance_state", vi1); ok {
		t.Error("a frozen child's metrics were served")
	}
	syscall.Kill(pid, syscall.SIGCONT)
	waitFor(t, 10*time.Second, "/readyz 200 again", func() bool { code, _ := n[1].get(t, http.MethodGet, "/readyz"); return code == 200 })
}

// jsonShape is the keys of a JSON document and of its first element of each array and
// object, as one line: two status answers of one daemon have the same shape.
func jsonShape(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	var walk func(prefix string, v any) []string
	walk = func(prefix string, v any) []string {
		var out []string
		switch x := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				if k == "last_reload" || k == "unanswered" {
					continue // present or not by what happened, not by the endpoint
				}
				out = append(out, prefix+"."+k)
				out = append(out, walk(prefix+"."+k, x[k])...)
			}
		case []any:
			if len(x) > 0 {
				out = append(out, walk(prefix+"[]", x[0])...)
			}
		}
		return out
	}
	return fmt.Sprint(walk("", v))
}
