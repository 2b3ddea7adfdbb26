package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildsAsThirdParty builds this example the way an outside author does: in a module of
// its own that requires vigil, and checks that of vigil it links the SDK alone.
func TestBuildsAsThirdParty(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	dir := t.TempDir()
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	mod := "module example.com/vigil-check-hello\n\ngo 1.26\n\nrequire github.com/vigil-ha/vigil v0.0.0\n\nreplace github.com/vigil-ha/vigil => " + root + "\n"
	// vigil's go.sum vouches for the same versions of the same modules.
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"main.go": src, "go.mod": []byte(mod), "go.sum": sum} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(goBin, args...)
		cmd.Dir = dir
		// GONOSUMDB: what vigil's go.sum does not vouch for (go.mod files of old versions
		// that tidy reads) comes from the module proxy without the checksum database, which
		// this machine may not reach.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GONOSUMDB=*", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	if out, err := run("mod", "tidy"); err != nil {
		if strings.Contains(out, "dial tcp") || strings.Contains(out, "no such host") {
			t.Skipf("the module proxy is not reachable: %v", err)
		}
		t.Fatal(err)
	}
	if _, err := run("build", "-o", filepath.Join(dir, "vigil-check-hello"), "."); err != nil {
		t.Fatal(err)
	}
	deps, err := run("list", "-deps", ".")
	if err != nil {
		t.Fatal(err)
	}
	sdk := 0
	for _, p := range strings.Fields(deps) {
		if strings.HasPrefix(p, "github.com/vigil-ha/vigil/sdk") {
			sdk++
		}
		if strings.HasPrefix(p, "github.com/vigil-ha/vigil/") && !strings.HasPrefix(p, "github.com/vigil-ha/vigil/sdk") {
			t.Errorf("the example links %s, which is not the SDK", p)
		}
	}
	if sdk == 0 {
		t.Error("the example links no SDK package: the dependency list is not what it seems")
	}
}
