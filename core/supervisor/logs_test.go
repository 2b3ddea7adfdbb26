package supervisor_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// The plugins of the logging test: vigil's own check and notify plugins, and the host's test
// plugin, which logs a line of its own (with its check's name) when it is configured.
var logPlugins = map[string]string{
	"vigil-check-tcp":      "github.com/vigil-ha/vigil/plugins/vigil-check-tcp",
	"vigil-check-http":     "github.com/vigil-ha/vigil/plugins/vigil-check-http",
	"vigil-check-mysql":    "github.com/vigil-ha/vigil/plugins/vigil-check-mysql",
	"vigil-check-exec":     "github.com/vigil-ha/vigil/plugins/vigil-check-exec",
	"vigil-check-test":     "../plugin/testdata/vigil-check-test",
	"vigil-notify-exec":    "github.com/vigil-ha/vigil/plugins/vigil-notify-exec",
	"vigil-notify-email":   "github.com/vigil-ha/vigil/plugins/vigil-notify-email",
	"vigil-notify-webhook": "github.com/vigil-ha/vigil/plugins/vigil-notify-webhook",
}

var logChecks = []string{"chk_tcp", "chk_http", "chk_mysql", "chk_exec", "chk_test", "chk_flap"}

// logConf is a node with a check through each check plugin, a vrrp_script that flag makes
// flap (weight 0: its failure is FAULT), and an action through each notify plugin; hook
// appends a line per event it is called for.
func logConf(plugins, addr, flag, hook, secret string) string {
	return fmt.Sprintf(`global_defs {
    router_id logs
    plugin_dir %[1]s
}
vrrp_check chk_tcp {
    plugin tcp
    interval 0.5
    timeout 2
    params {
        address %[2]s
    }
}
vrrp_check chk_http {
    plugin http
    interval 0.5
    timeout 2
    params {
        address %[2]s
        url {
            path /
        }
    }
}
vrrp_check chk_mysql {
    plugin mysql
    interval 0.5
    timeout 2
    weight -10
    params {
        address 127.0.0.1:1
        user monitor
    }
}
vrrp_check chk_exec {
    plugin exec
    interval 0.5
    timeout 2
    params {
        command /bin/true
    }
}
vrrp_check chk_test {
    plugin test
    interval 0.5
    timeout 2
    params {
        mode ok
        warn "a line of the test plugin"
    }
}
vrrp_script chk_flap {
    script "/usr/bin/test -e %[3]s"
    interval 0.1
    timeout 10
    weight 0
}
vrrp_notify n_exec {
    plugin exec
    params {
        command %[4]s
    }
}
vrrp_notify n_mail {
    plugin email
    params {
        server 127.0.0.1
        port 1
        from vigil@example.com
        to ops@example.com
    }
}
vrrp_notify n_hook {
    plugin webhook
    params {
        url http://%[2]s/hook
        secret_file %[5]s
        retries 0
    }
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.2
    version 3
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk_tcp
        chk_http
        chk_mysql
        chk_exec
        chk_test
        chk_flap
    }
    notify_action n_exec
    notify_action n_mail
    notify_action n_hook
}
`, plugins, addr, flag, hook, secret)
}

// TestEveryLineCarriesItsFields runs vigil with -log-json, every check and notify plugin,
// and an instance and a check that flap, then reads the whole log:
//
//   - every line is JSON and carries role (core, vrrp or check);
//   - a line that names the instance carries instance=VI_1, one that names a check carries
//     check=NAME, one that names a plugin's executable carries plugin=;
//   - each role and each plugin has lines (a plugin's own line among them);
//   - the flapping instance's, check's and notify actions' lines are bounded (5 per 10 s,
//     then one summary per 10 s with suppressed=N), while notify still got every transition.
func TestEveryLineCarriesItsFields(t *testing.T) {
	_, n := newLab(t, 1)
	dir := n[0].dir
	plugins := buildPlugins(t, dir, logPlugins)
	addr := httpServerIn(t, n[0].NS)
	flag := filepath.Join(dir, "flag")
	notified := filepath.Join(dir, "notified")
	hook := filepath.Join(dir, "hook.sh")
	secret := filepath.Join(dir, "secret")
	os.WriteFile(flag, nil, 0o644)
	os.WriteFile(hook, []byte("#!/bin/sh\necho event >> "+notified+"\n"), 0o755)
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	n[0].start(t, logConf(plugins, addr, flag, hook, secret), "-log-json")
	waitFor(t, 20*time.Second, "n1 master with every check up but mysql", func() bool {
		st, err := n[0].tryStatus()
		if err != nil || len(st.Instances) != 1 || st.Instances[0].State != "MASTER" {
			return false
		}
		up := 0
		for _, c := range st.Checks {
			if c.Up {
				up++
			}
		}
		return up == len(logChecks)-1
	})

	// Flap: each round is MASTER -> FAULT -> BACKUP -> MASTER, and chk_flap down and up.
	const rounds = 6
	for i := range rounds {
		os.Remove(flag)
		waitFor(t, 10*time.Second, fmt.Sprintf("round %d: FAULT", i), func() bool { return state(n[0]) == "FAULT" })
		os.WriteFile(flag, nil, 0o644)
		waitFor(t, 10*time.Second, fmt.Sprintf("round %d: MASTER again", i), func() bool { return state(n[0]) == "MASTER" })
	}
	waitFor(t, 20*time.Second, "notify heard every transition", func() bool { return len(fileLines(notified)) >= 1+3*rounds+1 })
	if err := n[0].proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := n[0].proc.Wait(60 * time.Second); err != nil {
		t.Fatal(err)
	}

	var all []map[string]any
	sc := bufio.NewScanner(strings.NewReader(n[0].proc.Output()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Errorf("not a JSON line: %s", sc.Text())
			continue
		}
		all = append(all, e)
	}
	if len(all) == 0 {
		t.Fatal("no log lines")
	}
	roles := map[string]int{}
	pluginLines := map[string]int{}
	for _, e := range all {
		line, _ := json.Marshal(e)
		role, _ := e["role"].(string)
		roles[role]++
		if !slices.Contains([]string{"core", "vrrp", "check"}, role) {
			t.Errorf("line without a role: %s", line)
		}
		// What the line says besides the fields that name things.
		var said strings.Builder
		for k, v := range e {
			if k != "instance" && k != "check" && k != "plugin" && k != "@timestamp" {
				fmt.Fprintf(&said, "%s=%v ", k, v)
			}
		}
		if strings.Contains(said.String(), "VI_1") && e["instance"] != "VI_1" {
			t.Errorf("line about VI_1 without instance=VI_1: %s", line)
		}
		for _, c := range logChecks {
			if strings.Contains(said.String(), c) && e["check"] != c {
				t.Errorf("line about %s without check=%s: %s", c, c, line)
			}
		}
		plugin, _ := e["plugin"].(string)
		for p := range logPlugins {
			if strings.Contains(plugin, p) {
				pluginLines[p]++
			} else if strings.Contains(said.String(), p) {
				t.Errorf("line about %s without plugin=: %s", p, line)
			}
		}
	}
	for _, r := range []string{"core", "vrrp", "check"} {
		if roles[r] == 0 {
			t.Errorf("no line of role %s (roles: %v)", r, roles)
		}
	}
	for p := range logPlugins {
		if pluginLines[p] == 0 {
			t.Errorf("no line of plugin %s", p)
		}
	}
	// The plugin's own line (its log/slog, through its stderr) carries its check and plugin.
	if !slices.ContainsFunc(all, func(e map[string]any) bool {
		p, _ := e["plugin"].(string)
		return e["@message"] == "a line of the test plugin" && e["check"] == "chk_test" && strings.HasSuffix(p, "vigil-check-test")
	}) {
		t.Error("the test plugin's own line is missing, or lacks check=chk_test or plugin=vigil-check-test")
	}

	// The flap: lines bounded, the transitions all counted.
	elapsed := logSpan(t, all)
	bound := 5 + int(elapsed/(10*time.Second)) + 2 // the burst, a summary per period, the flush at stop
	for _, f := range []struct {
		role, msg, key, name string
		action               string // of a notify line
	}{
		{"vrrp", "state change", "instance", "VI_1", ""},
		{"core", "state change", "instance", "VI_1", ""},
		{"check", "check changed", "check", "chk_flap", ""},
		{"core", "notify action done", "instance", "VI_1", "vrrp_notify n_exec"},
		{"core", "notify action failed", "instance", "VI_1", "vrrp_notify n_mail"},
	} {
		written, counted, summaries := 0, 0, 0
		for _, e := range all {
			if e["role"] != f.role || e["@message"] != f.msg || e[f.key] != f.name || (f.action != "" && e["action"] != f.action) {
				continue
			}
			written++
			if s, ok := e["suppressed"].(float64); ok {
				counted += int(s)
				summaries++
			} else {
				counted++
			}
		}
		t.Logf("%s %q of %s: %d lines (%d summaries) for %d events over %v", f.role, f.msg, f.name, written, summaries, counted, elapsed.Round(time.Second))
		if written > bound {
			t.Errorf("%s %q of %s: %d lines over %v, want at most %d", f.role, f.msg, f.name, written, elapsed, bound)
		}
		if summaries == 0 || counted < 2*rounds {
			t.Errorf("%s %q of %s: %d events in %d summaries, want the flap's %d or more summarised", f.role, f.msg, f.name, counted, summaries, 2*rounds)
		}
	}
	got := fileLines(notified)
	if want := 1 + 3*rounds + 1 + 1; len(got) < want { // INIT->BACKUP, the rounds, ->MASTER, STOP
		t.Errorf("notify got %d events, want %d or more: %q", len(got), want, got)
	}
}

func state(nd *node) string {
	st, err := nd.tryStatus()
	if err != nil || len(st.Instances) != 1 {
		return ""
	}
	return st.Instances[0].State
}

func fileLines(path string) []string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// logSpan is the time between the first and the last line.
func logSpan(t *testing.T, all []map[string]any) time.Duration {
	at := func(e map[string]any) time.Time {
		s, _ := e["@timestamp"].(string)
		ts, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", s)
		if err != nil {
			t.Fatalf("@timestamp %q: %v", s, err)
		}
		return ts
	}
	return at(all[len(all)-1]).Sub(at(all[0]))
}

// buildPlugins builds each package of pkgs, as `make build` does, into dir/plugins under
// its executable name (one go build for all: each build costs a minute on a loaded machine).
func buildPlugins(t *testing.T, dir string, pkgs map[string]string) string {
	t.Helper()
	plugins := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"build", "-o", plugins + "/"}
	for _, p := range pkgs {
		args = append(args, p)
	}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the plugins: %v\n%s", err, out)
	}
	for name := range pkgs {
		if _, err := os.Stat(filepath.Join(plugins, name)); err != nil {
			t.Fatal(err)
		}
	}
	return plugins
}

// httpServerIn serves HTTP on 127.0.0.1 inside the namespace ns: 200 to every request (the
// http check's GET, the webhook's POST).
func httpServerIn(t *testing.T, ns string) string {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	c := make(chan result, 1)
	go func() {
		// The socket belongs to the namespace it is made in; only this thread moves, and
		// it dies with the goroutine if it cannot move back.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			c <- result{err: err}
			return
		}
		target, err := netns.GetFromName(ns)
		if err != nil {
			c <- result{err: err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			c <- result{err: err}
			return
		}
		ln, lerr := net.Listen("tcp", "127.0.0.1:0")
		if err := netns.Set(orig); err != nil {
			c <- result{err: err}
			return
		}
		runtime.UnlockOSThread()
		c <- result{ln, lerr}
	}()
	r := <-c
	if r.err != nil {
		t.Fatal(r.err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })}
	go srv.Serve(r.ln)
	t.Cleanup(func() { srv.Close() })
	return r.ln.Addr().String()
}
