package sdk_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// daemonOnly are module paths a plugin built with the SDK alone must not pull in: the daemon
// itself and what only the daemon needs (netlink, the reload watcher, the MySQL driver, the
// metrics library). A plugin that needs one requires it itself.
var daemonOnly = []string{
	"github.com/vigil-ha/vigil", // exactly the root module; the SDK is github.com/vigil-ha/vigil/sdk
	"github.com/vishvananda/netlink",
	"github.com/fsnotify/fsnotify",
	"github.com/go-sql-driver/mysql",
	"github.com/prometheus/client_golang",
	"github.com/prometheus/client_model",
	"github.com/prometheus/common",
	"github.com/prometheus/procfs",
}

// TestThirdPartyModule builds examples/check-hello the way a vendor does, by each recipe of
// sdk/README.md, "Depending on the SDK": copied into a module of its own outside this
// repository, which gets github.com/vigil-ha/vigil/sdk from this checkout through a replace
// (subtest replace) or a go.work workspace (subtest work). It checks that neither the module
// graph (go list -m all) nor the built plugin (go version -m) holds the daemon or its
// dependencies, and runs the example's own tests there, which launch the built plugin through
// the real handshake. `make example-check-hello` runs this test.
func TestThirdPartyModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with the go command")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	sdkDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	example := filepath.Join(sdkDir, "..", "examples", "check-hello")
	if _, err := os.Stat(filepath.Join(example, "main.go")); err != nil {
		t.Skipf("no examples/check-hello beside the SDK (not a vigil checkout): %v", err)
	}

	t.Run("replace", func(t *testing.T) {
		dir, run := vendorModule(t, goBin, example, "GOWORK=off")
		// The recipe, as sdk/README.md gives it.
		run("mod", "init", "example.com/vigil-check-hello")
		run("mod", "edit", "-require=github.com/vigil-ha/vigil/sdk@v0.0.0",
			"-replace=github.com/vigil-ha/vigil/sdk="+sdkDir)
		run("mod", "tidy")
		checkVendorBuild(t, dir, run)
	})
	t.Run("work", func(t *testing.T) {
		// GOWORK unset (empty): the go command finds the go.work the recipe writes in the
		// module's directory, as on the vendor's machine.
		dir, run := vendorModule(t, goBin, example, "GOWORK=")
		// The recipe, as sdk/README.md gives it: no require, no tidy.
		run("mod", "init", "example.com/vigil-check-hello")
		run("work", "init", ".", sdkDir)
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err != nil || strings.Contains(string(b), "vigil-ha/vigil") {
			t.Errorf("go.mod names vigil (%v), want it free of the SDK in a workspace:\n%s", err, b)
		}
		checkVendorBuild(t, dir, run)
	})
}

// vendorModule copies the example into a temporary directory and returns it with a function
// that runs the go command there, with gowork ("GOWORK=...") in its environment.
func vendorModule(t *testing.T, goBin, example, gowork string) (string, func(args ...string) string) {
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(example, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir = dir
		// gowork: with GOWORK=off a go.work above the temporary directory must not decide
		// the build.
		// GONOSUMDB: modules come from the proxy without the checksum database, which this
		// machine may not reach; a vendor's machine usually does and needs no such setting.
		// GOFLAGS is cleared so that the developer's flags do not change what a vendor sees.
		cmd.Env = append(os.Environ(), "GOFLAGS=", "GONOSUMDB=*", gowork)
		out, err := cmd.CombinedOutput()
		if err != nil {
			s := string(out)
			if strings.Contains(s, "dial tcp") || strings.Contains(s, "no such host") ||
				strings.Contains(s, "proxyconnect") {
				t.Skipf("the module proxy is not reachable: go %s: %v\n%s", strings.Join(args, " "), err, s)
			}
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, s)
		}
		return string(out)
	}
	return dir, run
}

// checkVendorBuild builds the plugin in dir as the README's recipes do, checks that neither
// its module graph nor its binary holds a daemon module, and runs its vet and tests.
func checkVendorBuild(t *testing.T, dir string, run func(args ...string) string) {
	t.Helper()
	bin := filepath.Join(dir, "vigil-check-hello")
	run("build", "-o", bin, ".")

	graph := strings.Fields(run("list", "-m", "-f", "{{.Path}}", "all"))
	if err := noDaemonModules(graph); err != nil {
		t.Errorf("go list -m all: %v", err)
	}
	if !slices.Contains(graph, "github.com/vigil-ha/vigil/sdk") {
		t.Errorf("go list -m all holds no github.com/vigil-ha/vigil/sdk: the graph is not what it seems:\n%s", strings.Join(graph, "\n"))
	}

	// go version -m: "dep" and "=>" lines name the modules linked into the binary.
	var linked []string
	for _, line := range strings.Split(run("version", "-m", bin), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "dep" || f[0] == "=>") {
			linked = append(linked, f[1])
		}
	}
	if err := noDaemonModules(linked); err != nil {
		t.Errorf("go version -m %s: %v", bin, err)
	}
	if !slices.Contains(linked, "github.com/vigil-ha/vigil/sdk") {
		t.Errorf("go version -m: the plugin links no SDK module:\n%s", strings.Join(linked, "\n"))
	}

	// The example's tests, there: in-process through gRPC, and the built binary launched
	// through the handshake vigil uses.
	run("vet", ".")
	run("test", "-count=1", ".")
}

func noDaemonModules(mods []string) error {
	var errs []error
	for _, m := range mods {
		if slices.Contains(daemonOnly, m) {
			errs = append(errs, fmt.Errorf("%s is a daemon dependency, not the SDK's", m))
		}
	}
	return errors.Join(errs...)
}
