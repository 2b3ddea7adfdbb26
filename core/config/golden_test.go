package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .want files of golden tests from the current output")

// render prints diagnostics one per line with file names relative to dir, so that expected
// output does not depend on where the repository is checked out.
func render(ds Diagnostics, dir string) string {
	var b strings.Builder
	for _, d := range ds {
		s := d.String()
		if dir != "" {
			s = strings.ReplaceAll(s, dir+string(filepath.Separator), "")
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}

// checkGolden compares got with the file want, or rewrites it under -update.
func checkGolden(t *testing.T, want, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it, then review it)", err)
	}
	if string(b) != got {
		t.Errorf("diagnostics differ from %s\n--- want\n%s--- got\n%s", want, b, got)
	}
}

// hostInterfaces pretends a host with eth0 and eth1, so environment warnings are repeatable.
func hostInterfaces(name string) bool { return name == "eth0" || name == "eth1" || name == "lo" }

// TestInvalidFixtures holds one configuration per validation problem. Each must produce
// exactly the diagnostics in its .want file, and at least one of them.
func TestInvalidFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".conf"), func(t *testing.T) {
			_, ds := Load(f, Options{ConfigID: "node1", InterfaceExists: hostInterfaces})
			if len(ds) == 0 {
				t.Fatalf("%s: no diagnostic; a fixture must show its problem", f)
			}
			checkGolden(t, strings.TrimSuffix(f, ".conf")+".want", render(ds, "testdata/invalid"))
		})
	}
}
