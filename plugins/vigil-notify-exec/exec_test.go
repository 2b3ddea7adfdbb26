package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/script"
	"github.com/vigil-ha/vigil/sdk/notify"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// writeScript writes an executable shell script into a fresh directory.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func params(kv ...any) []notify.Param {
	var ps []notify.Param
	for i := 0; i < len(kv); i += 2 {
		var vals []string
		switch v := kv[i+1].(type) {
		case string:
			vals = []string{v}
		case []string:
			vals = v
		}
		ps = append(ps, notify.Param{Key: kv[i].(string), Values: vals})
	}
	return ps
}

var ev = notify.Event{Node: "lb1", Instance: "VI 1", Group: "G1", OldState: "BACKUP", NewState: "MASTER", Priority: 150,
	Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), VIPs: []string{"192.0.2.10/24"}}

func TestArguments(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	sh := writeScript(t, `for a in "$@"; do printf '[%s]' "$a"; done >> `+out+`; echo " $VIGIL_OLD_STATE $VIGIL_VIPS" >> `+out)
	group := ev
	group.Instance, group.NewState = "", "FAULT"
	for _, tc := range []struct {
		name    string
		generic string
		argv    []string
		ev      notify.Event
		want    string
	}{
		{"specific script as configured", "no", []string{sh, "master", "a b"}, ev, "[master][a b] BACKUP 192.0.2.10/24\n"},
		{"generic instance", "yes", []string{sh}, ev, "[INSTANCE][VI 1][MASTER][150] BACKUP 192.0.2.10/24\n"},
		{"generic with own args", "yes", []string{sh, "x"}, ev, "[x][INSTANCE][VI 1][MASTER][150] BACKUP 192.0.2.10/24\n"},
		{"generic group has priority 0", "yes", []string{sh}, group, "[GROUP][G1][FAULT][0] BACKUP 192.0.2.10/24\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(out)
			n := sdktest.ServeNotifier(t, newExecer())
			ctx := context.Background()
			if _, err := n.Configure(ctx, notify.ConfigureRequest{Name: "s", Params: params("command", tc.argv, "generic", tc.generic)}); err != nil {
				t.Fatal(err)
			}
			if _, err := n.Notify(ctx, notify.NotifyRequest{Name: "s", Event: tc.ev}); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(out)
			if string(b) != tc.want {
				t.Errorf("script saw %q, want %q", b, tc.want)
			}
		})
	}
}

func TestStatesFilterAndFailure(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	sh := writeScript(t, `echo "$VIGIL_STATE" >> `+out+`; [ "$VIGIL_STATE" != FAULT ] || { echo disk full; exit 3; }`)
	n := sdktest.ServeNotifier(t, newExecer())
	ctx := context.Background()
	if _, err := n.Configure(ctx, notify.ConfigureRequest{Name: "s", Params: params("command", sh, "states", []string{"master", "FAULT"})}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"BACKUP", "MASTER", "FAULT"} {
		e := ev
		e.NewState = st
		_, err := n.Notify(ctx, notify.NotifyRequest{Name: "s", Event: e})
		if st == "FAULT" {
			if err == nil || !strings.Contains(err.Error(), "disk full") {
				t.Errorf("FAULT: error %v, want the script's exit and its output", err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", st, err)
		}
	}
	if b, _ := os.ReadFile(out); string(b) != "MASTER\nFAULT\n" {
		t.Errorf("ran for %q, want MASTER and FAULT only", b)
	}
}

// TestDeadlineKillsGroup: a script that hangs, with a child of its own, is killed with its
// whole process group when the call's deadline passes.
func TestDeadlineKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	sh := writeScript(t, "sleep 1000 &\necho $! > "+pidFile+"\nwait")
	n := sdktest.ServeNotifier(t, newExecer())
	ctx := context.Background()
	if _, err := n.Configure(ctx, notify.ConfigureRequest{Name: "s", Params: params("command", sh)}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err := n.Notify(cctx, notify.NotifyRequest{Name: "s", Event: ev})
	if err == nil {
		t.Fatal("a hung script returned no error")
	}
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatalf("the script did not start: %v", rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the script's child %d outlived the deadline", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunTimeoutError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := script.Run(ctx, []string{"/bin/sleep", "1000"}, nil, nil)
	if !errors.Is(err, script.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v, want ErrTimeout wrapping the deadline", err)
	}
}

func TestRunsAsUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to switch users")
	}
	// t.TempDir's parent is private to root: nobody needs a directory it can reach.
	dir, err := os.MkdirTemp("", "vigil-notify-exec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	out := filepath.Join(dir, "out")
	sh := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(sh, []byte("#!/bin/sh\nid -un > "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	n := sdktest.ServeNotifier(t, newExecer())
	ctx := context.Background()
	if _, err := n.Configure(ctx, notify.ConfigureRequest{Name: "s", Params: params("command", sh, "user", "nobody")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(ctx, notify.NotifyRequest{Name: "s", Event: ev}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != "nobody" {
		t.Errorf("ran as %q, want nobody", b)
	}
}

func TestConfigureErrors(t *testing.T) {
	n := sdktest.ServeNotifier(t, newExecer())
	for _, tc := range []struct {
		ps   []notify.Param
		want string
	}{
		{nil, "command is required"},
		{params("command", "/bin/true", "states", "UP"), `"UP" is not a state`},
		{params("command", "/bin/true", "generic", "maybe"), "not yes or no"},
		{params("command", "/bin/true", "user", "no-such-user-vigil"), "no-such-user-vigil"},
		{params("command", "/bin/true", "colour", "red"), `unknown param "colour"`},
	} {
		_, err := n.Configure(context.Background(), notify.ConfigureRequest{Name: "s", Params: tc.ps, ValidateOnly: true})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Configure(%v) = %v, want %q", tc.ps, err, tc.want)
		}
	}
	if _, err := n.Notify(context.Background(), notify.NotifyRequest{Name: "other", Event: ev}); err == nil {
		t.Error("Notify of an unconfigured name succeeded")
	}
}

// TestBinary runs the built plugin the way vigil starts it.
func TestBinary(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	sh := writeScript(t, `echo "$@" > `+out)
	n := sdktest.LaunchNotifier(t, sdktest.Build(t, "."))
	ctx := context.Background()
	if _, err := n.Configure(ctx, notify.ConfigureRequest{Name: "s", Params: params("command", sh, "generic", "yes")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(ctx, notify.NotifyRequest{Name: "s", Event: ev}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "INSTANCE VI 1 MASTER 150\n" {
		t.Errorf("script saw %q", b)
	}
}

// TestSecure: with secure on, a script that others can change is refused at Configure, one
// that only root can change runs.
func TestSecure(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: the safe script must be owned by root")
	}
	n := sdktest.ServeNotifier(t, newExecer())
	safe := writeScript(t, "exit 0")
	unsafe := writeScript(t, "exit 0")
	os.Chmod(unsafe, 0o777)
	if _, err := n.Configure(context.Background(), notify.ConfigureRequest{Name: "s", Params: params("command", safe, "secure", "yes")}); err != nil {
		t.Errorf("safe script refused: %v", err)
	}
	_, err := n.Configure(context.Background(), notify.ConfigureRequest{Name: "s", Params: params("command", unsafe, "secure", "yes")})
	if err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("Configure of a world-writable script = %v", err)
	}
}
