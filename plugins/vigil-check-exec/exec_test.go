package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// writeScript writes an executable shell script into a fresh directory that only its owner can
// change, so that it passes the secure check.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func params(kv ...any) []check.Param {
	var ps []check.Param
	for i := 0; i < len(kv); i += 2 {
		var vals []string
		switch v := kv[i+1].(type) {
		case string:
			vals = []string{v}
		case []string:
			vals = v
		}
		ps = append(ps, check.Param{Key: kv[i].(string), Values: vals})
	}
	return ps
}

func probe(t *testing.T, c check.Checker, timeout time.Duration, ps []check.Param) check.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Configure(ctx, check.ConfigureRequest{Name: "chk", Params: ps}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	pctx, pcancel := context.WithTimeout(ctx, timeout)
	defer pcancel()
	resp, err := c.Check(pctx, check.CheckRequest{Name: "chk"})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp
}

func TestExitStatus(t *testing.T) {
	c := sdktest.ServeCheck(t, newExecer())
	for _, tc := range []struct {
		name    string
		body    string
		mode    string
		dynamic bool
		status  check.Status
		msg     string
		weight  int // -1: none
	}{
		{"script ok", "exit 0", "vrrp_script", false, check.OK, "", -1},
		{"script fails", "exit 1", "vrrp_script", false, check.Critical, "exit status 1", -1},
		// A child left holding stdout keeps the output open past WaitDelay: the exit status
		// still decides, as in keepalived.
		{"script ok, child holds stdout", "sleep 5 & exit 0", "vrrp_script", false, check.OK, "", -1},
		{"script fails, child holds stdout", "sleep 5 & exit 1", "vrrp_script", false, check.Critical, "exit status 1", -1},
		{"script fails with output", "echo replication stopped; exit 3", "vrrp_script", false, check.Critical, "replication stopped", -1},
		{"misc ok", "exit 0", "misc_check", false, check.OK, "", -1},
		{"misc 2 without dynamic fails", "exit 2", "misc_check", false, check.Critical, "exit status 2", -1},
		{"misc dynamic 1 fails", "exit 1", "misc_check", true, check.Critical, "exit status 1", -1},
		{"misc dynamic 12 is weight 10", "exit 12", "misc_check", true, check.OK, "exit status 12: weight 10", 10},
		{"nagios ok", "echo 'OK - 3 connections | conns=3;50;100;0 lag=0.5s'; exit 0", "nagios", false, check.OK, "OK - 3 connections", -1},
		{"nagios warning", "echo 'WARNING - slow'; exit 1", "nagios", false, check.Warning, "WARNING - slow", -1},
		{"nagios critical", "echo 'CRITICAL - down' >&2; echo 'CRITICAL - no answer'; exit 2", "nagios", false, check.Critical, "CRITICAL - no answer", -1},
		{"nagios unknown", "exit 3", "nagios", false, check.Unknown, "exit status 3", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := params("command", writeScript(t, tc.body), "mode", tc.mode)
			if tc.dynamic {
				ps = append(ps, params("dynamic", "yes")...)
			}
			resp := probe(t, c, 5*time.Second, ps)
			if resp.Status != tc.status || resp.Message != tc.msg {
				t.Errorf("got %s %q, want %s %q", resp.Status, resp.Message, tc.status, tc.msg)
			}
			switch {
			case tc.weight < 0 && resp.Weight != nil:
				t.Errorf("weight %d, want none", *resp.Weight)
			case tc.weight >= 0 && (resp.Weight == nil || *resp.Weight != tc.weight):
				t.Errorf("weight %v, want %d", resp.Weight, tc.weight)
			}
			if tc.name == "nagios ok" && (resp.Metrics["conns"] != 3 || resp.Metrics["lag"] != 0.5) {
				t.Errorf("perfdata metrics %v", resp.Metrics)
			}
		})
	}
}

// TestTimeoutKillsGroup: a script that starts a long child and waits is stopped at the
// probe's deadline, with its child. What must hold is that the child dies long before its
// sleep 60 ends; the deadline (2 s, room for bash to start on a busy machine) and the bound
// on the child's end (30 s) leave load out of it.
func TestTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	c := sdktest.ServeCheck(t, newExecer())
	ps := params("command", writeScript(t, "sleep 60 & echo $! > "+pidFile+"; wait"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Configure(ctx, check.ConfigureRequest{Name: "chk", Params: ps}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	resp, err := c.Check(pctx, check.CheckRequest{Name: "chk"})
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		// The plugin answers 50 ms before the deadline; on a loaded machine that answer can
		// come after it. The plugin still ends the group at its own deadline: see below.
		t.Logf("the answer came after the deadline: %v", err)
	case err != nil:
		t.Fatalf("Check: %v", err)
	case resp.Status != check.Critical || !strings.Contains(resp.Message, "timed out"):
		t.Fatalf("got %s %q, want a timeout", resp.Status, resp.Message)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		// A zombie still answers kill 0 until reaped by init; look at its state.
		if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the script's child %d still runs after the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOneRunAtATime: a probe that comes while the previous run of the same command is still
// in its grace after the deadline (it trapped SIGTERM) does not start a second copy; it fails
// and says why. The grace is an hour, so the first run is surely still in it.
func TestOneRunAtATime(t *testing.T) {
	dir := t.TempDir()
	pidFile, trapped, runs := filepath.Join(dir, "pid"), filepath.Join(dir, "trapped"), filepath.Join(dir, "runs")
	ready := filepath.Join(dir, "ready")
	x := newExecer()
	c := sdktest.ServeCheck(t, x)
	// The trap is set before the script says it is ready, and the test ends the first probe
	// only then: a TERM can never come before the trap, however slow the machine.
	ps := params("command", writeScript(t, "trap 'echo TERM > "+trapped+"' TERM; echo run >> "+runs+"; echo $$ >> "+pidFile+"; echo ready > "+ready+"; while :; do sleep 1; done"))
	if _, err := c.Configure(context.Background(), check.ConfigureRequest{Name: "chk", Params: ps}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	cmd, err := x.checks.Lookup("chk")
	if err != nil {
		t.Fatal(err)
	}
	cmd.newCheck(time.Hour)
	first := make(chan struct{})
	firstCtx, endFirst := context.WithCancel(context.Background())
	defer endFirst()
	go func() {
		defer close(first)
		c.Check(firstCtx, check.CheckRequest{Name: "chk"})
	}()
	for wait := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(ready); string(b) == "ready\n" {
			break
		}
		if time.Since(wait) > time.Minute {
			t.Fatal("the first run's script never said it was ready (a failure bound only)")
		}
	}
	endFirst()
	// The trap has run: the first run got its TERM and is in its grace.
	for wait := time.Now(); ; {
		if b, _ := os.ReadFile(trapped); string(b) == "TERM\n" {
			break
		}
		if time.Since(wait) > time.Minute {
			t.Fatal("the first run got no TERM after its probe ended (a failure bound only)")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, check.CheckRequest{Name: "chk"})
	if err != nil || resp.Status != check.Critical || !strings.Contains(resp.Message, "not over yet") {
		t.Errorf("second probe: %s %q, %v; want a failure saying the first run is not over", resp.Status, resp.Message, err)
	}
	// End the run (and a second, were there one): KILL its group, as the grace would have.
	b, _ := os.ReadFile(pidFile)
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	<-first
	if b, _ := os.ReadFile(runs); string(b) != "run\n" {
		t.Errorf("the command ran %q, want once", b)
	}
}

func TestRunsAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	if _, err := exec.LookPath("id"); err != nil {
		t.Skip("no id command")
	}
	c := sdktest.ServeCheck(t, newExecer())
	resp := probe(t, c, 5*time.Second, params("command", []string{"id", "-u"}, "user", "nobody"))
	if resp.Status != check.OK || resp.Message != "65534" {
		t.Fatalf("got %s %q, want OK with uid 65534 (nobody)", resp.Status, resp.Message)
	}
}

func TestConfigureErrors(t *testing.T) {
	c := sdktest.ServeCheck(t, newExecer())
	writable := writeScript(t, "exit 0")
	os.Chmod(writable, 0o777)
	for _, tc := range []struct {
		name string
		ps   []check.Param
		want string
	}{
		{"no command", nil, "command is required"},
		{"bad mode", params("command", "/bin/true", "mode", "icinga"), `mode "icinga"`},
		{"dynamic outside misc", params("command", "/bin/true", "dynamic", "yes"), "misc_check only"},
		{"unknown user", params("command", "/bin/true", "user", "no-such-user-vigil"), `user "no-such-user-vigil"`},
		{"unknown param", params("command", "/bin/true", "interval", "2"), `unknown param "interval"`},
		{"insecure script", params("command", writable, "secure", "yes"), "writable by group or others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Configure(context.Background(), check.ConfigureRequest{Name: "chk", Params: tc.ps, ValidateOnly: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Configure = %v, want an error with %q", err, tc.want)
			}
		})
	}
	// A missing program is a warning, and then every probe fails, as in keepalived.
	resp, err := c.Configure(context.Background(), check.ConfigureRequest{Name: "gone", Params: params("command", "/nonexistent/vigil-check")})
	if err != nil || len(resp.Warnings) != 1 {
		t.Fatalf("missing program: %v, warnings %v; want one warning", err, resp.Warnings)
	}
	r, err := c.Check(context.Background(), check.CheckRequest{Name: "gone"})
	if err != nil || r.Status != check.Critical {
		t.Fatalf("probe of a missing program: %+v, %v", r, err)
	}
}

func TestBinary(t *testing.T) {
	c := sdktest.LaunchCheck(t, sdktest.Build(t, "."))
	if resp := probe(t, c, 5*time.Second, params("command", writeScript(t, "exit 0"))); resp.Status != check.OK {
		t.Fatalf("built plugin: %s %q", resp.Status, resp.Message)
	}
	if resp := probe(t, c, 5*time.Second, params("command", writeScript(t, "exit 1"))); resp.Status != check.Critical {
		t.Fatalf("built plugin: %s %q", resp.Status, resp.Message)
	}
}

func TestPerfdata(t *testing.T) {
	got := perfdata(" 'db lag'=1.5s;5;10 conns=12 bad=x ratio=0.25%;;;0;100 ")
	want := map[string]float64{"db lag": 1.5, "conns": 12, "ratio": 0.25}
	if len(got) != len(want) {
		t.Fatalf("perfdata = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
