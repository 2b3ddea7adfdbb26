package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/sdk"
)

// buildHello builds examples/check-hello into dir as vigil-check-hello and returns its path.
func buildHello(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "vigil-check-hello")
	build := exec.Command("go", "build", "-o", path, "github.com/vigil-ha/vigil/examples/check-hello")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return path
}

// TestPluginsConfig: vigil plugins -f applies the file's plugin_dir and plugin_sha256.
func TestPluginsConfig(t *testing.T) {
	bin := t.TempDir()
	real := buildHello(t, bin)
	// The plugin directory holds a wrapper that leaves a mark when it runs, then runs the
	// real plugin: that the mark is missing shows that a mispinned plugin was not started.
	dir := t.TempDir()
	mark := filepath.Join(t.TempDir(), "ran")
	wrapper := filepath.Join(dir, "vigil-check-hello")
	script := fmt.Sprintf("#!/bin/sh\n: > %s\nexec %s \"$@\"\n", mark, real)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(script))
	good := hex.EncodeToString(sum[:])
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(pin string) {
		t.Helper()
		g := "    plugin_dir " + dir + "\n"
		if pin != "" {
			g += "    plugin_sha256 vigil-check-hello " + pin + "\n"
		}
		if err := os.WriteFile(conf, []byte("global_defs {\n"+g+"}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	for _, pin := range []string{"", good} {
		name := "unpinned"
		if pin != "" {
			name = "pinned"
		}
		t.Run(name, func(t *testing.T) {
			os.Remove(mark)
			write(pin)
			code, stdout, stderr := runVigil("plugins", "-f", conf)
			if code != 0 {
				t.Fatalf("vigil plugins -f exited %d:\n%s%s", code, stdout, stderr)
			}
			row := regexp.MustCompile(fmt.Sprintf(`(?m)^check +hello +0\.1\.0 +%d +%s +address\*:string expect:string$`,
				sdk.ProtocolVersion, regexp.QuoteMeta(wrapper)))
			if !row.MatchString(stdout) {
				t.Errorf("vigil plugins -f %s:\n%s\nwant a row matching %s", conf, stdout, row)
			}
			if _, err := os.Stat(mark); err != nil {
				t.Errorf("the plugin did not run: %v", err)
			}
		})
	}

	t.Run("mispinned", func(t *testing.T) {
		os.Remove(mark)
		bad := strings.Repeat("0", 64)
		write(bad)
		code, stdout, stderr := runVigil("plugins", "-f", conf)
		if code != exitConfig {
			t.Errorf("vigil plugins -f listing a checksum mismatch exited %d, want %d:\n%s%s", code, exitConfig, stdout, stderr)
		}
		want := fmt.Sprintf("error: plugin checksum mismatch: check plugin hello: %s has SHA-256 %s, but plugin_sha256 vigil-check-hello in global_defs expects %s", wrapper, good, bad)
		if !regexp.MustCompile(`(?m)^check +hello +- +- +` + regexp.QuoteMeta(wrapper) + ` +` + regexp.QuoteMeta(want)).MatchString(stdout) {
			t.Errorf("vigil plugins -f %s:\n%s\nwant an error row: %s", conf, stdout, want)
		}
		if _, err := os.Stat(mark); err == nil {
			t.Errorf("the plugin ran although its checksum does not match the pin")
		}
		// --dir overrides the directory, not the pins.
		code, stdout, _ = runVigil("plugins", "-f", conf, "--dir", dir, "--json")
		if code != exitConfig || !strings.Contains(stdout, `"error": "plugin checksum mismatch`) {
			t.Errorf("vigil plugins -f --dir --json (exit %d):\n%s\nwant the checksum error", code, stdout)
		}
		if _, err := os.Stat(mark); err == nil {
			t.Errorf("with --dir, the plugin ran although its checksum does not match the pin")
		}
	})

	t.Run("dir overrides plugin_dir", func(t *testing.T) {
		write("")
		other := t.TempDir()
		code, stdout, stderr := runVigil("plugins", "-f", conf, "--dir", other)
		if code != 0 || strings.Contains(stdout, "hello") {
			t.Errorf("vigil plugins -f --dir EMPTY (exit %d) lists what plugin_dir holds:\n%s%s", code, stdout, stderr)
		}
	})

	t.Run("default file", func(t *testing.T) {
		saved := defaultConfigFiles
		t.Cleanup(func() { defaultConfigFiles = saved })
		write(strings.Repeat("0", 64))
		os.Remove(mark)
		// With no -f, the daemon's default file applies when it exists ...
		defaultConfigFiles = []string{filepath.Join(t.TempDir(), "none.conf"), conf}
		code, stdout, stderr := runVigil("plugins")
		if code != exitConfig || !strings.Contains(stdout, "error: plugin checksum mismatch") {
			t.Errorf("vigil plugins with the default file pinning a wrong checksum (exit %d):\n%s%s", code, stdout, stderr)
		}
		if _, err := os.Stat(mark); err == nil {
			t.Errorf("the plugin ran although the default file pins another checksum")
		}
		// ... and when none exists, nothing is pinned and nothing is said about it.
		defaultConfigFiles = []string{filepath.Join(t.TempDir(), "none.conf")}
		code, stdout, stderr = runVigil("plugins", "--dir", dir)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "address*:string") {
			t.Errorf("vigil plugins --dir with no default file (exit %d):\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})

	t.Run("bad file", func(t *testing.T) {
		if err := os.WriteFile(conf, []byte("global_defs {\n    plugin_sha256 vigil-check-hello xyz\n}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runVigil("plugins", "-f", conf)
		if code == 0 || stdout != "" || !strings.Contains(stderr, conf+":2:") || !strings.Contains(stderr, "is not a SHA-256 checksum") {
			t.Errorf("vigil plugins -f with a bad plugin_sha256 (exit %d):\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		missing := filepath.Join(t.TempDir(), "none.conf")
		if code, _, stderr := runVigil("plugins", "-f", missing); code == 0 || !strings.Contains(stderr, missing) {
			t.Errorf("vigil plugins -f MISSING exited %d:\n%s", code, stderr)
		}
	})
}

// TestConfigTestCheckPlugin: vigil -t passes a vrrp_check's params to its plugin and prints
// the plugin's own objection at the check's line.
func TestConfigTestCheckPlugin(t *testing.T) {
	dir := t.TempDir()
	buildHello(t, dir)
	conf := filepath.Join(dir, "keepalived.conf")
	write := func(address string) {
		t.Helper()
		err := os.WriteFile(conf, []byte(`global_defs {
    plugin_dir `+dir+`
}
vrrp_check chk_smtp {
    plugin hello
    interval 2
    params {
        address `+address+`
        expect 220
    }
}
`), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}
	write("nohostport")
	code, _, stderr := runVigil("-t", "-f", conf)
	if code == 0 {
		t.Errorf("vigil -t accepted address nohostport:\n%s", stderr)
	}
	if want := conf + `:4:1: error: vrrp_check "chk_smtp": plugin hello: address "nohostport": want host:port`; !strings.Contains(stderr, want) {
		t.Errorf("vigil -t:\n%s\nwant: %s", stderr, want)
	}
	write("127.0.0.1:25")
	if code, _, stderr := runVigil("-t", "-f", conf); code != 0 {
		t.Errorf("vigil -t refused a good address (exit %d):\n%s", code, stderr)
	}
}

// TestPluginsExitStatus: vigil plugins exits non-zero when a row is an error, so that it can
// gate CI: a plugin whose file anyone may change, and one that the configuration names but
// that is not installed (the checksum mismatch is in TestPluginsConfig).
func TestPluginsExitStatus(t *testing.T) {
	dir := t.TempDir()
	buildHello(t, dir)
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte("global_defs {\n    plugin_dir "+dir+"\n}\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string) string { return "vrrp_check " + name + " {\n    plugin " + name + "\n}\n" }

	write(check("hello"))
	if code, stdout, stderr := runVigil("plugins", "-f", conf); code != exitOK {
		t.Fatalf("all well: exit %d\n%s%s", code, stdout, stderr)
	}

	write(check("hello") + "\n" + check("redsi"))
	code, stdout, stderr := runVigil("plugins", "-f", conf)
	if code != exitConfig {
		t.Errorf("a named plugin is missing: exit %d, want %d\n%s%s", code, exitConfig, stdout, stderr)
	}
	want := filepath.Join(dir, "vigil-check-redsi") + `  error: not installed, but ` + conf + `:8:1: vrrp_check "redsi" names it`
	if !strings.Contains(stdout, want) || !strings.Contains(stderr, "1 plugin(s) cannot run") {
		t.Errorf("vigil plugins:\n%s%s\nwant a row ending %s", stdout, stderr, want)
	}

	write(check("hello"))
	if err := os.Chmod(filepath.Join(dir, "vigil-check-hello"), 0o777); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runVigil("plugins", "-f", conf, "--json")
	if code != exitConfig || !strings.Contains(stdout, "is group- or world-writable") {
		t.Errorf("a world-writable plugin: exit %d, want %d\n%s%s", code, exitConfig, stdout, stderr)
	}
}
