package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func runVigil(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestExampleConfigs: every configuration shipped in configs/ passes vigil -t, but for the
// plugins it names, which this host need not have installed (a missing plugin is an error).
func TestExampleConfigs(t *testing.T) {
	var files []string
	err := filepath.WalkDir("../../configs", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".conf") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("want at least the MySQL pair and a minimal example in configs/, found %v", files)
	}
	for _, f := range files {
		code, _, stderr := runVigil("-t", "-f", f)
		missing := 0
		for _, line := range strings.Split(stderr, "\n") {
			if strings.Contains(line, ": error: ") && strings.Contains(line, " is not installed in ") {
				missing++
			} else if strings.Contains(line, ": error: ") {
				t.Errorf("%s: error reported: %s", f, line)
			}
		}
		if code != exitOK && (code != exitConfig || missing == 0) {
			t.Errorf("vigil -t -f %s = %d\n%s", f, code, stderr)
		}
	}
}

func writeConf(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "k.conf")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const good = `@n1 $PRIO=150
@^n1 $PRIO=100
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 7
    priority $PRIO
    virtual_ipaddress {
        192.0.2.7/32
    }
}
`

func TestConfigTest(t *testing.T) {
	p := writeConf(t, good)
	code, _, stderr := runVigil("-t", "-f", p)
	if code != exitOK || !strings.Contains(stderr, "configuration OK") {
		t.Errorf("good file: code %d\n%s", code, stderr)
	}
	bad := writeConf(t, strings.Replace(good, "virtual_router_id 7", "virtual_router_id 700", 1)+"vrrp_instanse X {\n}\n")
	code, _, stderr = runVigil("--config-test", "--use-file", bad)
	if code != exitConfig {
		t.Errorf("bad file: code %d, want %d", code, exitConfig)
	}
	for _, want := range []string{"k.conf:5:23: error: 700 is out of range: use 1 to 255", `k.conf:11:1: error: unknown keyword "vrrp_instanse" at top level; did you mean "vrrp_instance"?`, "2 error(s)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	code, _, stderr = runVigil("-t", "-f", filepath.Join(t.TempDir(), "missing.conf"))
	if code != exitConfig || !strings.Contains(stderr, "cannot read configuration") {
		t.Errorf("missing file: code %d\n%s", code, stderr)
	}
}

func TestDump(t *testing.T) {
	p := writeConf(t, good)
	code, out, _ := runVigil("-d", "-f", p, "-i", "n1")
	if code != exitOK || !strings.Contains(out, "priority 150") || strings.Contains(out, "$PRIO") {
		t.Errorf("dump with -i n1: code %d\n%s", code, out)
	}
	_, out, _ = runVigil("-d", "-f", p, "--config-id", "other")
	if !strings.Contains(out, "priority 100") {
		t.Errorf("dump with another id:\n%s", out)
	}
	code, out, _ = runVigil("-d", "--json", "-f", p, "-i", "n1")
	var m struct {
		Instances []struct {
			Name     string
			Priority int
			VRID     int
		}
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil || code != exitOK {
		t.Fatalf("json dump: %v (code %d)\n%s", err, code, out)
	}
	if len(m.Instances) != 1 || m.Instances[0].Priority != 150 || m.Instances[0].VRID != 7 {
		t.Errorf("json model: %+v", m)
	}
}

func TestFlags(t *testing.T) {
	code, out, _ := runVigil("-v")
	if code != exitOK || !strings.HasPrefix(out, "vigil ") {
		t.Errorf("-v: %d %q", code, out)
	}
	code, _, stderr := runVigil("--no-such-flag")
	if code != exitUsage || !strings.Contains(stderr, "no-such-flag") {
		t.Errorf("unknown flag: %d %q", code, stderr)
	}
	code, _, _ = runVigil("-t", "-f", writeConf(t, good), "extra")
	if code != exitUsage {
		t.Errorf("extra argument: %d", code)
	}
	// keepalived's -n, -l and -D are accepted.
	code, _, stderr = runVigil("-n", "-l", "-D", "-t", "-f", writeConf(t, good))
	if code != exitOK {
		t.Errorf("-n -l -D: %d\n%s", code, stderr)
	}
	// keepalived's -I / --dont-release-ipvs and -V / --dont-release-vrrp too (core passes
	// them to the children: see core/supervisor's TestLoadBalancerPlumbing and
	// TestDontReleaseVRRP).
	for _, flag := range []string{"-I", "--dont-release-ipvs", "-V", "--dont-release-vrrp"} {
		code, _, stderr = runVigil(flag, "-t", "-f", writeConf(t, good))
		if code != exitOK {
			t.Errorf("%s: %d\n%s", flag, code, stderr)
		}
	}
}

func TestLogJSON(t *testing.T) {
	// Nothing to run: the daemon logs the loaded configuration, then stops.
	code, _, stderr := runVigil("--log-json", "-f", writeConf(t, "global_defs {\n    router_id json\n}\n"),
		"-p", filepath.Join(t.TempDir(), "pid"), "--control", filepath.Join(t.TempDir(), "sock"))
	if code != exitConfig {
		t.Fatalf("daemon mode: code %d\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["@message"] == nil {
			t.Errorf("not a JSON log line: %q (%v)", line, err)
		}
	}
	if len(lines) < 2 {
		t.Errorf("want the load and the stop logged, got %q", stderr)
	}
}

// TestConfigTestRealServerPlugins: vigil -t asks the plugins of real_server checkers too; a
// plugin missing on this host is one error for all the checkers that need it, at the first.
func TestConfigTestRealServerPlugins(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	os.WriteFile(conf, []byte(`global_defs {
    plugin_dir `+dir+`
}
virtual_server 192.0.2.100 80 {
    protocol TCP
    real_server 192.0.2.11 80 {
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 192.0.2.12 80 {
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
`), 0o644)
	code, _, stderr := runVigil("-t", "-f", conf)
	if code != exitConfig {
		t.Errorf("vigil -t exited %d, want %d:\n%s", code, exitConfig, stderr)
	}
	want := conf + `:7:9: error: real_server check "192.0.2.100:80/192.0.2.11:80/TCP_CHECK": plugin tcp is not installed in ` + dir
	if strings.Count(stderr, "plugin tcp is not installed") != 1 || !strings.Contains(stderr, want) {
		t.Errorf("vigil -t:\n%s\nwant one error: %s", stderr, want)
	}
}

// TestConfigTestMissingPlugin: a vrrp_check whose plugin is not installed makes vigil -t fail
// at the check's place in the operator's (included) file, as the daemon would refuse it:
// `vigil -t && systemctl reload vigil` must not pass such a file.
func TestConfigTestMissingPlugin(t *testing.T) {
	dir := t.TempDir()
	checks := filepath.Join(dir, "checks.conf")
	if err := os.WriteFile(checks, []byte("! the checks\n\n  vrrp_check chk {\n    plugin redsi\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte("global_defs {\n    plugin_dir "+dir+"\n}\ninclude checks.conf\n"+strings.Replace(good, "    virtual_ipaddress", "    track_script {\n        chk\n    }\n    virtual_ipaddress", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runVigil("-t", "-f", conf)
	if code != exitConfig {
		t.Errorf("vigil -t exited %d, want %d:\n%s", code, exitConfig, stderr)
	}
	want := checks + `:3:3: error: vrrp_check "chk": plugin redsi is not installed in ` + dir
	if !strings.Contains(stderr, want) {
		t.Errorf("vigil -t:\n%s\nwant: %s", stderr, want)
	}
}

// TestConfigTestRefusesSpecialFiles: vigil -t on a file that includes /dev/zero, or given a
// FIFO with -f, stops at once with the place and the reason; before, it read /dev/zero until
// memory ran out and blocked on the FIFO for ever.
func TestConfigTestRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(good+"include /dev/zero\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ file, want string }{
		{conf, conf + ":11:1: error: /dev/zero is a character device, not a regular file"},
		{fifo, fifo + ": error: " + fifo + " is a FIFO, not a regular file"},
	} {
		done := make(chan string, 1)
		go func() {
			code, _, stderr := runVigil("-t", "-f", tt.file)
			done <- fmt.Sprintf("exit %d\n%s", code, stderr)
		}()
		select {
		case got := <-done:
			if !strings.HasPrefix(got, fmt.Sprintf("exit %d\n", exitConfig)) || !strings.Contains(got, tt.want) {
				t.Errorf("vigil -t -f %s: %s\nwant exit %d and %s", tt.file, got, exitConfig, tt.want)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("vigil -t -f %s has not returned after 60 s", tt.file)
		}
	}
}
