package procrun

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sh is a Cmd that runs body with /bin/sh.
func sh(body string) Cmd { return Cmd{Args: []string{"/bin/sh", "-c", body}} }

// waitFile waits for a file to hold a line, without a time bound of its own: the test's
// deadline bounds it.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	for {
		if b, err := os.ReadFile(path); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gone waits until process pid has ended (a zombie counts: it runs no more), up to a bound far
// beyond what a kill takes even on a loaded machine.
func gone(t *testing.T, pid int) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("process %d still runs: %s", pid, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExitStatusAndOutput(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		outcome    Outcome
		code       int
		sig        syscall.Signal
		out        string
	}{
		{"success", "echo fine; exit 0", Exited, 0, 0, "fine\n"},
		{"failure with output", "echo replication stopped >&2; exit 3", Exited, 3, 0, "replication stopped\n"},
		{"killed by a signal of its own", "echo bye; kill -USR1 $$", Signaled, -1, syscall.SIGUSR1, "bye\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Run(context.Background(), sh(tc.body))
			if r.Outcome != tc.outcome || r.ExitCode != tc.code || r.Signal != tc.sig || string(r.Output) != tc.out {
				t.Errorf("got %v code %d signal %v output %q, want %v %d %v %q", r.Outcome, r.ExitCode, r.Signal, r.Output, tc.outcome, tc.code, tc.sig, tc.out)
			}
			if r.Success() != (tc.outcome == Exited && tc.code == 0) {
				t.Errorf("Success() = %v", r.Success())
			}
		})
	}
}

func TestNotStarted(t *testing.T) {
	for _, c := range []Cmd{{}, {Args: []string{"/nonexistent/vigil-procrun"}}, {Args: []string{"no-such-program-vigil"}}} {
		r := Run(context.Background(), c)
		if r.Outcome != NotStarted || r.Err == nil || r.Success() {
			t.Errorf("%v: got %v (%v), want NotStarted with a reason", c.Args, r.Outcome, r.Err)
		}
	}
}

// TestDeadlineTermThenKill: at the deadline the group gets TERM first, and KILL only after
// the grace, when something in it outlived the TERM. A script that obeys TERM is not KILLed.
// No case depends on how fast the machine is: the one that must see TERM has an hour of
// grace, the one that must be KILLed ignores TERM.
func TestDeadlineTermThenKill(t *testing.T) {
	dir := t.TempDir()
	ready, trapped := filepath.Join(dir, "ready"), filepath.Join(dir, "trapped")

	// TERM comes first: the trap records it and exits; the KILL an hour later never comes.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() {
		c := sh("trap 'echo TERM > " + trapped + "; exit 0' TERM; echo ready > " + ready + "; while :; do sleep 1; done")
		c.Grace = time.Hour
		done <- Run(ctx, c)
	}()
	waitFile(t, ready)
	cancel()
	r := <-done
	if b, _ := os.ReadFile(trapped); string(b) != "TERM\n" {
		t.Errorf("the script's trap saw no TERM before its end (%s)", r.Describe())
	}
	if r.Outcome != TimedOut || r.Killed {
		t.Errorf("got %v killed=%v, want TimedOut by TERM alone (an exit after the deadline is no verdict)", r.Outcome, r.Killed)
	}
	if r.Err != context.Canceled {
		t.Errorf("Err = %v, want the context's", r.Err)
	}

	// A script that ignores TERM is KILLed after the grace.
	ctx, cancel = context.WithCancel(context.Background())
	os.Remove(ready)
	go func() {
		c := sh("trap '' TERM; echo ready > " + ready + "; while :; do sleep 1; done")
		c.Grace = 100 * time.Millisecond
		done <- Run(ctx, c)
	}()
	waitFile(t, ready)
	cancel()
	r = <-done
	if r.Outcome != TimedOut || !r.Killed || r.Signal != syscall.SIGKILL {
		t.Errorf("got %v killed=%v signal %v, want TimedOut, KILLed after the grace", r.Outcome, r.Killed, r.Signal)
	}

	// A script that dies of the TERM: no KILL needed.
	ctx, cancel = context.WithCancel(context.Background())
	os.Remove(ready)
	go func() { done <- Run(ctx, sh("echo ready > "+ready+"; sleep 60")) }()
	waitFile(t, ready)
	cancel()
	r = <-done
	if r.Outcome != TimedOut || r.Killed || r.Signal != syscall.SIGTERM {
		t.Errorf("got %v killed=%v signal %v, want TimedOut by TERM alone", r.Outcome, r.Killed, r.Signal)
	}
	if !strings.Contains(r.Describe(), "timed out") {
		t.Errorf("Describe() = %q", r.Describe())
	}
}

// TestDeadlineKillsChildren: at the deadline the script's background child goes with it.
func TestDeadlineKillsChildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- Run(ctx, sh("sleep 60 & echo $! > "+pidFile+"; wait")) }()
	pid, _ := strconv.Atoi(waitFile(t, pidFile))
	cancel()
	if r := <-done; r.Outcome != TimedOut {
		t.Errorf("got %v, want TimedOut", r.Outcome)
	}
	gone(t, pid)
}

// TestLeftoverKilled: a script that starts a background child and exits does not leave it
// running, and the child holding the output does not hold Run.
func TestLeftoverKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	r := Run(context.Background(), sh("sleep 60 & echo $! > "+pidFile+"; echo done; exit 0"))
	if !r.Success() || string(r.Output) != "done\n" {
		t.Fatalf("got %s %q, want exit 0 with its output", r.Describe(), r.Output)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	gone(t, pid)
}

// TestEscapedHolderKeepsOutput: a process that left the group (setsid) and holds the output
// open does not hold Run, and what the script wrote is kept. A Run that waited for the end of
// the output would wait for the hour-long sleep, past go test's own timeout.
func TestEscapedHolderKeepsOutput(t *testing.T) {
	if _, err := os.Stat("/usr/bin/setsid"); err != nil {
		t.Skip("no setsid(1)")
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	r := Run(context.Background(), sh("echo first; setsid sh -c 'echo $$ > "+pidFile+"; exec sleep 3600' & while [ ! -s "+pidFile+" ]; do sleep 0.01; done; exit 4"))
	b, _ := os.ReadFile(pidFile)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if r.Outcome != Exited || r.ExitCode != 4 || string(r.Output) != "first\n" {
		t.Errorf("got %s %q, want exit status 4 with its output", r.Describe(), r.Output)
	}
}

func TestOutputBounded(t *testing.T) {
	c := sh("i=0; while [ $i -lt 2000 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done; echo last >&2")
	c.MaxOutput = 1000
	r := Run(context.Background(), c)
	if !r.Success() || len(r.Output) != 1000 || !r.Truncated {
		t.Errorf("got %s, %d bytes kept, truncated %v; want exit 0, 1000 bytes, truncated", r.Describe(), len(r.Output), r.Truncated)
	}
	if r.FirstLine() != "0123456789012345678901234567890123456789" {
		t.Errorf("FirstLine() = %q", r.FirstLine())
	}

	c = sh("echo to stderr >&2; echo to stdout")
	c.DiscardStderr = true
	if r := Run(context.Background(), c); string(r.Output) != "to stdout\n" || r.Truncated {
		t.Errorf("DiscardStderr: output %q truncated %v", r.Output, r.Truncated)
	}
}

func TestEnvAndArgv0(t *testing.T) {
	c := Cmd{Path: "/bin/sh", Args: []string{"my-check", "-c", `echo "$0 $VIGIL_X"`}, Env: []string{"VIGIL_X=42"}}
	if r := Run(context.Background(), c); string(r.Output) != "my-check 42\n" {
		t.Errorf("output %q, want argv0 and the environment as given", r.Output)
	}
}

func TestCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a command as another user needs root")
	}
	c := Cmd{Args: []string{"/bin/sh", "-c", "id -u; id -g"}, Cred: &syscall.Credential{Uid: 65534, Gid: 65534}}
	r := Run(context.Background(), c)
	if !r.Success() || string(r.Output) != "65534\n65534\n" {
		t.Errorf("got %s %q, want uid and gid 65534 (nobody)", r.Describe(), r.Output)
	}
}

func TestDeadlineBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	r := Run(ctx, sh("touch "+filepath.Join(dir, "ran")))
	if r.Outcome != TimedOut {
		t.Errorf("got %v, want TimedOut", r.Outcome)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the command ran after its deadline")
	}
}

func TestFirstLine(t *testing.T) {
	long := strings.Repeat("é", 250)
	for in, want := range map[string]string{
		"":                       "",
		"\n  \n  two words  \nx": "two words",
		long:                     strings.Repeat("é", 200) + "…",
	} {
		if got := FirstLine([]byte(in)); got != want {
			t.Errorf("FirstLine(%q) = %q, want %q", in, got, want)
		}
	}
}
