package vm

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireEnv makes a VM that cannot start a failure outside CI too.
const requireEnv = "VIGIL_REQUIRE_VM"

// raceEnv lets a race-enabled test binary run its VM tests after all.
const raceEnv = "VIGIL_VM_RACE"

// SkipReason says why VM tests do not run in this test binary, or "" when they do. Under TCG
// a race-enabled binary runs about 30 times slower than a plain one (the detector's shadow
// memory accesses are all emulated), so VM tests run from a build without -race: make test has
// a line of its own for them. VIGIL_VM_RACE=1 runs them in a race build anyway.
func SkipReason() string {
	if raceBuild && os.Getenv(raceEnv) != "1" {
		return "a -race build: VM tests run without -race (make test runs them on a line of their own; " + raceEnv + "=1 runs them here)"
	}
	return ""
}

// Required reports whether VM tests must fail, rather than skip, when no VM can start: in CI
// (CI set, as CI systems do) or when VIGIL_REQUIRE_VM=1.
func Required() bool {
	return os.Getenv("CI") != "" || os.Getenv(requireEnv) == "1"
}

// Guest marks a test as one that runs inside the VM: call it first. Name such tests TestVM...:
// make test's line for VM tests selects them by that prefix. Inside the VM it returns
// at once. On the host it skips the test, because Main runs it again in the VM after the host's
// tests; if no VM can start here, it says exactly why, and fails instead of skipping when
// Required.
func Guest(t testing.TB) {
	t.Helper()
	if InGuest() {
		return
	}
	if r := SkipReason(); r != "" {
		t.Skip(r)
	}
	if err := Available(); err != nil {
		if Required() {
			t.Fatalf("needs a VM, which cannot start here: %v", err)
		}
		t.Skipf("needs a VM, which cannot start here: %v (set %s=1 to fail instead)", err, requireEnv)
	}
	t.Skip("runs inside the VM that vm.Main boots once the host's tests are done")
}

// Main is a TestMain for a package whose VM tests (the top-level tests matching pattern, each
// starting with Guest(t)) need a kernel of their own:
//
//	func TestMain(m *testing.M) { vm.Main(m, "^TestVM", vm.Config{Modules: []string{"ip_vs"}}) }
//
// On the host it runs the tests as usual (the VM tests skip there), then, when the -run flag
// selects any VM test, boots one VM and runs this same test binary in it with only those tests,
// passing -v, -count, -short, -failfast, -timeout, -parallel, -skip, -shuffle and -cpu on. The
// VM's console is this binary's standard output. The binary fails when the VM tests fail, or
// when the VM cannot start and Required says that is a failure; a race build boots nothing
// (see SkipReason). Inside the VM it only runs the tests. cfg is the VM's: the directory of this binary is added to its Shares, and Dir defaults
// to the current directory (the package's source, readable in the guest).
//
// Things the VM tests need from the host (binaries built with go build, certificates) are
// best made by cfg.Prepare, beside the test binary (its directory is shared) or into a
// directory in cfg.Shares: it runs only when the VM boots, and building under TCG is many
// times slower.
func Main(m *testing.M, pattern string, cfg Config) {
	started := time.Now()
	if InGuest() {
		os.Exit(m.Run())
	}
	code := m.Run()
	// Listing and fuzzing run no VM test (and fuzz workers run TestMain once each).
	for _, name := range []string{"test.list", "test.fuzz", "test.fuzzworker"} {
		if v := flagValue(name); v != "" && v != "false" {
			os.Exit(code)
		}
	}
	if vmCode := runGuestTests(m, pattern, cfg, started); code == 0 {
		code = vmCode
	}
	os.Exit(code)
}

// runGuestTests boots the VM for the selected VM tests and returns the exit code to add to
// the host's.
func runGuestTests(m *testing.M, pattern string, cfg Config, started time.Time) int {
	run := flagValue("test.run")
	sel, err := guestRun(testNames(m), pattern, run)
	if err != nil {
		fmt.Printf("FAIL: vm: %v\n", err)
		return 1
	}
	if sel == "" {
		return 0 // -run selects no VM test: no boot
	}
	if r := SkipReason(); r != "" {
		fmt.Printf("vm: VM tests skipped: %s\n", r)
		return 0
	}
	if err := Available(); err != nil {
		// Guest already failed or skipped each VM test with this reason.
		if Required() {
			fmt.Printf("FAIL: vm: the VM tests cannot run: %v\n", err)
			return 1
		}
		fmt.Printf("vm: VM tests skipped: %v\n", err)
		return 0
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Printf("FAIL: vm: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	argv := []string{exe, "-test.run=" + sel}
	var timeout time.Duration
	if f := flag.Lookup("test.timeout"); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			timeout, _ = g.Get().(time.Duration)
		}
	}
	if timeout > 0 {
		// The host's deadline covers the boot; the guest's own, a little shorter, fires first
		// so that its panic shows where a test hung.
		left := time.Until(started.Add(timeout))
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, left)
		defer cancel()
		argv = append(argv, fmt.Sprintf("-test.timeout=%v", max(left*9/10, time.Second)))
	}
	for _, name := range []string{"test.v", "test.count", "test.short", "test.failfast", "test.parallel", "test.skip", "test.shuffle", "test.cpu"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != f.DefValue {
			argv = append(argv, "-"+name+"="+f.Value.String())
		}
	}
	var env []string
	for _, e := range os.Environ() {
		// The guest's /tmp is its own tmpfs: a TMPDIR elsewhere may not exist there.
		if !strings.HasPrefix(e, "TMPDIR=") {
			env = append(env, e)
		}
	}
	cfg.Shares = append([]string{filepath.Dir(exe)}, cfg.Shares...)
	if cfg.Dir == "" {
		if cfg.Dir, err = os.Getwd(); err != nil {
			fmt.Printf("FAIL: vm: %v\n", err)
			return 1
		}
	}
	if cfg.Console == nil {
		cfg.Console = os.Stdout
	}
	if cfg.Prepare != nil {
		if err := cfg.Prepare(); err != nil {
			fmt.Printf("FAIL: vm: preparing the VM tests: %v\n", err)
			return 1
		}
	}
	fmt.Printf("vm: booting a VM for -run %s\n", sel)
	res, err := Run(ctx, cfg, argv, env)
	if err != nil {
		fmt.Printf("FAIL: vm: %v\n", err)
		return 1
	}
	fmt.Printf("vm: VM tests exited %d (boot %v, VM %v)\n", res.ExitCode, res.Boot.Round(time.Millisecond), res.Elapsed.Round(time.Millisecond))
	if res.ExitCode != 0 {
		return 1
	}
	return 0
}

func flagValue(name string) string {
	if f := flag.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// testNames lists the binary's top-level tests. testing.M keeps them in an unexported field
// and has no method for them; reflect may read (not change) it. If a Go release renames the
// field this returns nil, and guestRun falls back to the pattern alone.
func testNames(m *testing.M) []string {
	v := reflect.ValueOf(m).Elem().FieldByName("tests")
	if !v.IsValid() || v.Kind() != reflect.Slice {
		return nil
	}
	var names []string
	for i := range v.Len() {
		if n := v.Index(i).FieldByName("Name"); n.Kind() == reflect.String {
			names = append(names, n.String())
		}
	}
	return names
}

// guestRun is the -test.run for the guest: the tests whose names match pattern and the
// first element of the host's -run (the one that selects top-level tests), then the rest of
// -run for subtests. "" means no test is selected. Without names (see testNames) it is
// pattern followed by the rest of -run.
func guestRun(names []string, pattern, run string) (string, error) {
	vmRe, err := regexp.Compile(pattern)
	if err != nil {
		return "", fmt.Errorf("VM test pattern %q: %w", pattern, err)
	}
	elems := splitRun(run)
	first, rest := "", ""
	if len(elems) > 0 {
		first = elems[0]
		if len(elems) > 1 {
			rest = "/" + strings.Join(elems[1:], "/")
		}
	}
	if names == nil {
		return pattern + rest, nil
	}
	runRe, err := regexp.Compile(first)
	if err != nil {
		return "", fmt.Errorf("-run %q: %w", run, err)
	}
	var sel []string
	for _, n := range names {
		if vmRe.MatchString(n) && runRe.MatchString(n) {
			sel = append(sel, regexp.QuoteMeta(n))
		}
	}
	if len(sel) == 0 {
		return "", nil
	}
	return "^(" + strings.Join(sel, "|") + ")$" + rest, nil
}

// splitRun splits a -run pattern at the slashes that separate test levels, as the testing
// package does: not inside brackets or parentheses, and not escaped.
func splitRun(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	depth, cs := 0, 0
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '[':
			cs++
		case ']':
			if cs > 0 {
				cs--
			}
		case '(':
			if cs == 0 {
				depth++
			}
		case ')':
			if cs == 0 && depth > 0 {
				depth--
			}
		case '/':
			if depth == 0 && cs == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}
