package supervisor_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReloadValidatesOnCheckChild runs vigil and reloads it with real_server checkers of the
// host's test plugin (core/plugin/testdata), behind a wrapper that counts the plugin's
// starts. Without a check child the reload validates on a fresh plugin host, as `vigil -t`
// does (a start); once the check child runs the plugin, a reload that adds a real server is
// validated by it: no start, and a bad param is refused with the very line `vigil -t` prints
// for the same file, a good one applied.
func TestReloadValidatesOnCheckChild(t *testing.T) {
	ctx, n := newLab(t, 1)
	real := filepath.Join(t.TempDir(), "vigil-check-test")
	build := exec.Command("go", "build", "-o", real, "../plugin/testdata/vigil-check-test")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	plugins := t.TempDir()
	starts := filepath.Join(t.TempDir(), "starts")
	wrapper := fmt.Sprintf("#!/bin/sh\necho start >> %s\nexec %s \"$@\"\n", starts, real)
	if err := os.WriteFile(filepath.Join(plugins, "vigil-check-test"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	started := func() int {
		b, _ := os.ReadFile(starts)
		return strings.Count(string(b), "start")
	}

	base := "global_defs {\n    plugin_dir " + plugins + "\n}\n" + conf(150, "")
	// lvs is base with a virtual_server whose real servers have a PLUGIN_CHECK each, with
	// the given modes.
	lvs := func(modes ...string) string {
		var b strings.Builder
		b.WriteString(base + "virtual_server 192.0.2.200 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n")
		for i, m := range modes {
			fmt.Fprintf(&b, "    real_server 198.51.100.%d 80 {\n        PLUGIN_CHECK {\n            plugin test\n            params {\n                mode %s\n            }\n        }\n    }\n", 11+i, m)
		}
		b.WriteString("}\n")
		return b.String()
	}
	path := filepath.Join(n[0].dir, n[0].Name+".conf")
	n[0].start(t, base, "-D", "--watch", "0")
	waitFor(t, 10*time.Second, "n1 holds the VIP", func() bool { return n[0].holds(t, ctx) })

	// reload writes text and reloads with `vigil reload`; it returns its output, and the
	// errors `vigil -t` prints for the same file.
	reload := func(text string) (out, test string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		b, _ := exec.CommandContext(ctx, "ip", "netns", "exec", n[0].NS, vigilBin, "-t", "-f", path).CombinedOutput()
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, ": error: ") {
				test += l + "\n"
			}
		}
		b, _ = exec.CommandContext(ctx, "ip", "netns", "exec", n[0].NS, vigilBin, "reload", "--control", n[0].sock()).CombinedOutput()
		return string(b), test
	}
	logged := func(s string) int { return strings.Count(n[0].proc.Output(), s) }
	const (
		viaChild = "validated checks on the check process's plugins"
		viaFresh = "validating checks on a fresh plugin host: the check process cannot"
	)
	// The reload refuses the file with each error `vigil -t` gives, word for word.
	refused := func(what, out, test string) {
		t.Helper()
		if !strings.Contains(out, "REFUSED") || test == "" || !strings.Contains(test, `mode "bogus"`) {
			t.Fatalf("%s: vigil reload:\n%s\nvigil -t errors:\n%s", what, out, test)
		}
		for _, l := range strings.Split(strings.TrimSpace(test), "\n") {
			if !strings.Contains(out, "  "+l+"\n") {
				t.Errorf("%s: vigil reload:\n%s\nlacks the line of vigil -t:\n%s", what, out, l)
			}
		}
	}

	// No check child yet: the fresh host validates, and starts the plugin (vigil -t too).
	before := started()
	out, test := reload(lvs("bogus"))
	refused("no check child", out, test)
	if logged(viaFresh) != 1 || logged(viaChild) != 0 {
		t.Errorf("without a check child, the reload was not validated on a fresh plugin host:\n%s", n[0].proc.Output())
	}
	if started() < before+2 {
		t.Errorf("plugin starts %d -> %d; want one for vigil -t and one for the reload's fresh host", before, started())
	}

	out, _ = reload(lvs("ok"))
	if !strings.Contains(out, "applied") || strings.Contains(out, "REFUSED") {
		t.Fatalf("vigil reload with a good checker:\n%s", out)
	}
	waitFor(t, 30*time.Second, "the checker runs in the check child", func() bool {
		st, err := n[0].tryStatus()
		if err != nil {
			return false
		}
		for _, c := range st.Checks {
			// Its states come once the child's Start is done: core asks it from then on.
			if c.Name == "192.0.2.200:80/198.51.100.11:80/PLUGIN_CHECK" {
				return true
			}
		}
		return false
	})

	// The check child runs the plugin now: it validates, and nothing starts the plugin but
	// vigil -t.
	before = started()
	out, test = reload(lvs("ok", "bogus"))
	refused("with the check child", out, test)
	if logged(viaChild) != 1 {
		t.Errorf("the reload was not validated by the check child:\n%s", n[0].proc.Output())
	}
	if got := started(); got != before+1 {
		t.Errorf("plugin starts %d -> %d; want one, vigil -t's", before, got)
	}
	before = started()
	out, _ = reload(lvs("ok", "ok"))
	if !strings.Contains(out, "applied") || strings.Contains(out, "REFUSED") || !strings.Contains(out, "198.51.100.12:80/PLUGIN_CHECK") {
		t.Fatalf("vigil reload adding a good checker:\n%s", out)
	}
	if logged(viaChild) != 2 {
		t.Errorf("the second reload was not validated by the check child:\n%s", n[0].proc.Output())
	}
	if got := started(); got != before+1 {
		t.Errorf("plugin starts %d -> %d; want one, vigil -t's", before, got)
	}
}
