package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/supervisor"
)

// TestPrintDemoted: status marks a demoted instance in the table, says until when, with
// which sync group, and warns when nobody is master of it.
func TestPrintDemoted(t *testing.T) {
	since := time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)
	until := since.Add(time.Hour)
	var b bytes.Buffer
	printStatus(&b, supervisor.Status{Instances: []supervisor.InstanceStatus{
		{Name: "VI_1", State: "BACKUP", Priority: 100, EffectivePriority: 100,
			Demoted: &supervisor.DemotionStatus{Since: since, Applied: true, NoMasterSince: &until}},
		{Name: "VI_2", State: "BACKUP", Priority: 100, EffectivePriority: 100,
			Demoted: &supervisor.DemotionStatus{Since: since, Until: &until, Group: "G", Applied: true}},
		{Name: "VI_3", State: "MASTER", Priority: 100, EffectivePriority: 100},
	}})
	out := b.String()
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	squeezed := strings.Join(lines, "\n") // the table's columns, one space apart
	for _, want := range []string{
		"BACKUP (demoted)", "DEMOTED", "VI_1 2026-12-07T20:00:00Z vigil promote NO MASTER",
		"NO MASTER since 2026-12-07T21:00:00Z: nobody serves the addresses; vigil promote VI_1 to take over",
		"VI_2 2026-12-07T20:00:00Z 2026-12-07T21:00:00Z with sync group G",
	} {
		if !strings.Contains(squeezed, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "(demoted)") != 2 {
		t.Errorf("VI_3 shown demoted:\n%s", out)
	}
}

// TestHandoverCommandLine: a bad command line exits 2 before asking the daemon; a daemon
// that cannot be reached, 3.
func TestHandoverCommandLine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"demote", "--control", sock}, exitUsage},
		{[]string{"demote", "VI_1", "--all", "--control", sock}, exitUsage},
		{[]string{"demote", "VI_1", "--for", "-1s", "--control", sock}, exitUsage},
		{[]string{"promote", "VI_1", "--for", "1s", "--control", sock}, exitUsage},
		{[]string{"demote", "VI_1", "--for", "10m", "--control", sock}, exitInternal},
		{[]string{"promote", "--all", "--control", sock}, exitInternal},
	} {
		var out, errOut bytes.Buffer
		if got := run(c.args, &out, &errOut); got != c.code {
			t.Errorf("vigil %v: exit %d, want %d (%s)", c.args, got, c.code, errOut.String())
		}
	}
}
