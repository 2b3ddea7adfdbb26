package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/metrics"
)

// queries walks a Grafana dashboard and returns every PromQL text in it: the panels' target
// expressions and the template variables' queries, with where each is.
func queries(v any, where string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && (k == "expr" || k == "definition") {
				out[where+"."+k] = s
			}
			if q, ok := e.(map[string]any); ok && k == "query" {
				if s, ok := q["query"].(string); ok {
					out[where+".query"] = s
				}
			}
			name := k
			if t, ok := x["title"].(string); ok {
				name = k + "(" + t + ")"
			}
			queries(e, where+"."+name, out)
		}
	case []any:
		for _, e := range x {
			queries(e, where+"[]", out)
		}
	}
}

var (
	quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	// Every metric vigil exports starts with one of these; no label, function or keyword
	// does. keepalived_ catches a name left over from a keepalived-exporter dashboard.
	metricName = regexp.MustCompile(`\b(?:vigil|go|process|keepalived)_[A-Za-z0-9_:]*`)
)

// TestDashboardNamesExportedMetrics: every metric that configs/grafana-dashboard.json names is
// one that vigil's registries register (metrics.Names with the children's collectors), so
// that no panel stays empty for a misspelt or renamed metric.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	names, err := metrics.Names(child.Collectors()...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../configs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("configs/grafana-dashboard.json: %v", err)
	}
	qs := map[string]string{}
	queries(dash, "", qs)
	if len(qs) < 10 {
		t.Fatalf("only %d queries found in the dashboard", len(qs))
	}
	used := map[string]bool{}
	for where, q := range qs {
		for _, m := range metricName.FindAllString(quoted.ReplaceAllString(q, `""`), -1) {
			used[m] = true
			if slices.Contains(names, m) {
				continue
			}
			base := m
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if base == m || !slices.Contains(names, base) {
				t.Errorf("%s: %q names %s, which vigil does not export", where, q, m)
			}
		}
	}
	// What the issue asks the dashboard to show.
	for _, m := range []string{"vigil_vrrp_instance_state", "vigil_vrrp_transitions_total", "vigil_check_probe_duration_seconds_bucket",
		"vigil_plugin_restarts_total", "vigil_reloads_total"} {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

// TestNamesListsEveryFamily: Names knows the children's metrics and core's, so that the
// dashboard test compares against what vigil exports, not against a list kept by hand.
func TestNamesListsEveryFamily(t *testing.T) {
	names, err := metrics.Names(child.Collectors()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"vigil_child_up", "vigil_vrrp_state", "vigil_check_probes_total", "vigil_lvs_real_server_bytes_total",
		"vigil_notify_deliveries_total", "vigil_plugin_up", "go_goroutines", "process_resident_memory_bytes"} {
		if !slices.Contains(names, m) {
			t.Errorf("Names has no %s: %v", m, names)
		}
	}
}
