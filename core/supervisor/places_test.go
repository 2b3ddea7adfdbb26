package supervisor_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadConfigurationNamesTheOperatorsFile: a child that refuses the configuration (here the
// check child, for a vrrp_check whose plugin is not installed) stops the daemon with a message
// naming the operator's file, line and column, even inside an included file. Core hands the
// children the resolved text; before, their messages named that text ("core:5:1").
func TestBadConfigurationNamesTheOperatorsFile(t *testing.T) {
	_, n := newLab(t, 1)
	checks := filepath.Join(n[0].dir, "checks.conf")
	// Bypass vigil -t's plugin check: core starts the children with what it loaded.
	if err := os.WriteFile(checks, []byte("! the checks\n\nvrrp_check chk {\n    plugin redsi\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	extra := "global_defs {\n    plugin_dir " + n[0].dir + "\n}\ninclude " + checks + "\n"
	n[0].start(t, conf(150, extra))
	if err := n[0].proc.Wait(60 * time.Second); err == nil {
		t.Fatalf("vigil ran with a vrrp_check whose plugin is not installed:\n%s", n[0].proc.Output())
	}
	out := n[0].proc.Output()
	t.Logf("vigil's output:\n%s", out)
	want := "bad configuration: " + checks + ":3:1: vrrp_check chk: plugin redsi"
	if !strings.Contains(out, want) {
		t.Errorf("the daemon's message does not name the included file's line:\nwant %s\n%s", want, out)
	}
	if strings.Contains(out, "core:") {
		t.Errorf("a message names the resolved text instead of the operator's file:\n%s", out)
	}
}
