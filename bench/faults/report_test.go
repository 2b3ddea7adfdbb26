package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/harness"
)

func scenarioNamed(t *testing.T, name string) *Scenario {
	t.Helper()
	for _, sc := range scenarios.list {
		if sc.Name == name {
			return sc
		}
	}
	t.Fatalf("no scenario %s", name)
	return nil
}

// TestUpdateReport: -update replaces the rows a run measured and keeps the others, each
// run's block lists its rows, a run whose rows were all measured again drops out, and the
// Scenarios section describes every scenario with a row.
func TestUpdateReport(t *testing.T) {
	kill, soak := scenarioNamed(t, "master-kill9"), scenarioNamed(t, "soak")
	res := func(outage time.Duration, note string) *Result {
		return &Result{Masters: 1, Converge: time.Millisecond, Outage: outage, Lost: -1, Moved: 0, Notes: []string{note}}
	}
	machine := func(date string) harness.Machine {
		d, _ := time.Parse("2006-01-02 15:04", date)
		return harness.Machine{Date: d, NProc: "2", VigilRev: "rev-" + date}
	}
	path := filepath.Join(t.TempDir(), "RELIABILITY.md")
	write := func(r *report) string {
		t.Helper()
		if err := os.WriteFile(path, []byte(r.markdown()), 0o644); err != nil {
			t.Fatal(err)
		}
		return r.markdown()
	}
	read := func() *priorReport {
		t.Helper()
		p, err := readPrior(path)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// A full run without the soak, as make faults with -run.
	write(&report{env: machine("2026-12-07 00:29"), rows: []row{
		{sc: kill, impl: "vigil", res: res(3*time.Second, "first kill vigil")},
		{sc: kill, impl: "keepalived", res: res(3*time.Second, "first kill keepalived")},
	}})
	// The soak alone, into it.
	out := write(&report{env: machine("2026-12-07 03:40"), prior: read(), rows: []row{
		{sc: soak, impl: "vigil", res: res(0, "soak vigil")},
		{sc: soak, impl: "keepalived", res: res(0, "soak keepalived")},
	}})
	for _, want := range []string{"first kill vigil", "first kill keepalived", "soak vigil", "soak keepalived",
		"### 2026-12-07 00:29 UTC", "- rows: every row not listed by a later run", "vigil rev-2026-12-07 00:29",
		"### 2026-12-07 03:40 UTC", "- rows: soak/vigil, soak/keepalived", "vigil rev-2026-12-07 03:40",
		"- **master-kill9**", "- **soak**", "- rows breaking an invariant: 0 of 4"} {
		if !strings.Contains(out, want) {
			t.Errorf("after the first update, the report lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "| master-kill9 | vigil") > strings.Index(out, "| soak | vigil") {
		t.Error("rows not in the suite's order")
	}

	// The soak again: its earlier block goes, the full run's stays.
	out = write(&report{env: machine("2026-12-07 04:20"), prior: read(), rows: []row{
		{sc: soak, impl: "vigil", res: res(0, "second soak vigil")},
		{sc: soak, impl: "keepalived", res: res(0, "second soak keepalived")},
	}})
	for _, gone := range []string{"03:40", "| soak | vigil | 1 | 1 ms | 0 ms | – | 0 | soak vigil |"} {
		if strings.Contains(out, gone) {
			t.Errorf("after the second update, the report still holds %q:\n%s", gone, out)
		}
	}
	for _, want := range []string{"first kill vigil", "second soak vigil", "### 2026-12-07 00:29 UTC", "### 2026-12-07 04:20 UTC"} {
		if !strings.Contains(out, want) {
			t.Errorf("after the second update, the report lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "| soak | "); n != 2 {
		t.Errorf("%d soak rows", n)
	}

	// A file that is not a report is refused before anything runs.
	os.WriteFile(path, []byte("# notes\n"), 0o644)
	if _, err := readPrior(path); err == nil {
		t.Error("a file that is not a report was taken for one")
	}
}

// TestPublishedReportUpdatable: the published RELIABILITY.md is one -update can read.
func TestPublishedReportUpdatable(t *testing.T) {
	p, err := readPrior("../../RELIABILITY.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.rows) < 40 || len(p.runs) == 0 {
		t.Errorf("%d rows and %d runs read", len(p.rows), len(p.runs))
	}
	if _, ok := p.rows[rowKey{"master-kill9", "keepalived"}]; !ok {
		t.Error("no row master-kill9 on keepalived")
	}
}
