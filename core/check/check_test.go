package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestThreshold(t *testing.T) {
	th := NewThreshold(2, 3, false)
	steps := []struct {
		ok      bool
		changed bool
		up      bool
	}{
		{false, false, true}, {false, false, true}, {true, false, true}, // a success resets the run
		{false, false, true}, {false, false, true}, {false, true, false}, // three failures: down
		{true, false, false}, {true, true, true}, // two successes: up
	}
	for i, s := range steps {
		if got := th.Add(s.ok); got != s.changed || th.Up() != s.up {
			t.Fatalf("step %d: Add(%v) = %v, up %v; want %v, up %v", i, s.ok, got, th.Up(), s.changed, s.up)
		}
	}
	if NewThreshold(1, 1, true).Up() {
		t.Error("init_fail starts up")
	}
}

func TestScriptProbe(t *testing.T) {
	ctx := context.Background()
	if r := (Script{Argv: []string{"true"}}).Probe(ctx); !r.OK {
		t.Errorf("true: %+v", r)
	}
	if r := (Script{Argv: []string{"sh", "-c", "exit 3"}}).Probe(ctx); r.OK || r.Msg != "exit status 3" {
		t.Errorf("exit 3: %+v", r)
	}
	// A script that starts a child and hangs: the whole process group dies at the deadline.
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := (Script{Argv: []string{"sh", "-c", "sleep 30 & echo $! > " + pidFile + "; wait"}}).Probe(tctx)
	if r.OK || r.Msg != "timed out" || time.Since(start) > 5*time.Second {
		t.Fatalf("hung script: %+v after %s", r, time.Since(start))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, c := range string(b) {
		if c >= '0' && c <= '9' {
			pid = pid*10 + int(c-'0')
		}
	}
	time.Sleep(100 * time.Millisecond)
	// Gone, or a zombie waiting for init to reap it: either way no longer running.
	if st, err := os.ReadFile("/proc/" + itoa(pid) + "/stat"); err == nil && !strings.Contains(string(st), ") Z ") {
		t.Errorf("the script's child %d survived the timeout: %s", pid, st)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestRunReportsChanges(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "ok")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	changes := make(chan Change, 10)
	go Run(ctx, []Spec{{Name: "f", Prober: Script{Argv: []string{"test", "-e", flag}}, Interval: 20 * time.Millisecond, Rise: 2, Fall: 2}}, changes)
	next := func() Change {
		select {
		case c := <-changes:
			return c
		case <-ctx.Done():
			t.Fatal("no change reported")
		}
		return Change{}
	}
	if c := next(); !c.Up || c.Name != "f" {
		t.Fatalf("initial: %+v", c)
	}
	os.Remove(flag)
	if c := next(); c.Up {
		t.Fatalf("after removing the file: %+v", c)
	}
	os.WriteFile(flag, nil, 0o644)
	if c := next(); !c.Up {
		t.Fatalf("after restoring the file: %+v", c)
	}
}
