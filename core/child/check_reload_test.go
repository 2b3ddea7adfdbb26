package child

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// buildCheckPlugins builds the plugin host's test plugin (core/plugin/testdata; it logs
// "configured" for each Configure and answers with its pid as a metric) and the real exec
// plugin into a private directory, as plugin_dir.
func buildCheckPlugins(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "plugins")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "../plugin/testdata/vigil-check-test", "../../plugins/vigil-check-exec")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building plugins: %v\n%s", err, out)
	}
	return dir
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// reloadConfig is a configuration for the check child. The checks probe every 50 ms, each
// with a 10 s timeout: the script's default, its interval, is shorter than a fork and exec
// of a shell on a loaded machine, and a probe that times out changes the check's message,
// which the test takes for a state sent when none should be.
//
//	s_keep    a vrrp_script (through the exec plugin) that always fails and counts its runs
//	c_keep    a vrrp_check of the test plugin, unchanged by every reload
//	c_exec    a vrrp_check of the exec plugin whose command writes its argument to a file
//	c_change  a vrrp_check of the test plugin with weight param cw
//	c_remove  present when remove is set
//	c_add     present with mode addMode when addMode is set
func reloadConfig(plugins, dir string, scriptWeight, cw int, remove bool, execArg, addMode string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    plugin_dir %s\n}\n", plugins)
	fmt.Fprintf(&b, "vrrp_script s_keep {\n    script \"%s/count.sh\"\n    interval 0.05\n    timeout 10\n    fall 2\n    weight %d\n}\n", dir, scriptWeight)
	check := func(name, plugin string, params ...string) {
		fmt.Fprintf(&b, "vrrp_check %s {\n    plugin %s\n    interval 0.05\n    timeout 10\n    params {\n", name, plugin)
		for _, p := range params {
			fmt.Fprintf(&b, "        %s\n", p)
		}
		b.WriteString("    }\n}\n")
	}
	tracked := []string{"s_keep", "c_keep", "c_exec", "c_change"}
	check("c_keep", "test", "mode ok")
	check("c_exec", "exec", fmt.Sprintf("command %s/record.sh %s", dir, execArg))
	check("c_change", "test", "mode ok", "weight "+strconv.Itoa(cw))
	if remove {
		check("c_remove", "test", "mode ok")
		tracked = append(tracked, "c_remove")
	}
	if addMode != "" {
		check("c_add", "test", "mode "+addMode, "weight 9")
		tracked = append(tracked, "c_add")
	}
	fmt.Fprintf(&b, `vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.1/32
    }
    track_script {
        %s
    }
}
`, strings.Join(tracked, "\n        "))
	return b.String()
}

// states returns the check child's current states by name.
func states(s *checkServer) map[string]*childpb.CheckState {
	m := map[string]*childpb.CheckState{}
	for _, st := range s.current() {
		m[st.Name] = st
	}
	return m
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Only a failure bound: what is waited for takes well under a second on an idle machine.
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func weightIs(st *childpb.CheckState, w int32) bool {
	return st != nil && st.Up && st.Weight != nil && *st.Weight == w
}

// lines counts the lines of a file.
func lines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// seqNow is the sequence number of the last state the check child sent.
func seqNow(s *checkServer) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// collectUntil takes what q carries until done holds for everything taken so far.
func collectUntil(t *testing.T, q *queue[*childpb.CheckState], what string, done func([]*childpb.CheckState) bool) []*childpb.CheckState {
	t.Helper()
	var out []*childpb.CheckState
	deadline := time.After(60 * time.Second)
	for !done(out) {
		select {
		case <-q.ready:
			sent, _ := q.take()
			out = append(out, sent...)
		case <-deadline:
			t.Fatalf("timed out waiting until %s; sent: %v", what, out)
		}
	}
	return out
}

// TestCheckReload runs the check child with real plugins and reloads it: unchanged checks
// keep their state (nothing is sent for them, their plugin is not configured again, the
// plugin processes keep running), a changed one restarts with its new params, a removed one
// leaves the state, a new one starts; a reload that a plugin rejects changes nothing, not
// even what the plugins hold; Reload before Start and after Stop fails.
func TestCheckReload(t *testing.T) {
	plugins := buildCheckPlugins(t)
	dir := t.TempDir()
	runs, recorded := filepath.Join(dir, "runs"), filepath.Join(dir, "recorded")
	os.WriteFile(filepath.Join(dir, "count.sh"), []byte("#!/bin/sh\necho run >> "+runs+"\nexit 1\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "record.sh"), []byte("#!/bin/sh\necho \"$1\" >> "+recorded+"\n"), 0o755)
	var log logBuffer
	s := newCheckServer(hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Debug}), Options{})
	t.Cleanup(s.shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	req := func(text string) *childpb.StartRequest {
		return &childpb.StartRequest{ConfigName: "reload.conf", ConfigText: text}
	}
	v1 := reloadConfig(plugins, dir, -20, 3, true, "old", "")
	v2 := reloadConfig(plugins, dir, -30, 5, false, "old", "ok")

	if _, err := s.Reload(ctx, req(v1)); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Reload before Start: %v, want FailedPrecondition", err)
	}
	sub := s.out.subscribe(nil)
	defer s.out.unsubscribe(sub)
	if _, err := s.Start(ctx, req(v1)); err != nil {
		t.Fatalf("Start: %v\n%s", err, log.String())
	}
	waitUntil(t, "the checks of v1 settle", func() bool {
		m := states(s)
		return len(m) == 5 && !m["s_keep"].Initial && !m["s_keep"].Up &&
			weightIs(m["c_keep"], 7) && weightIs(m["c_change"], 3) && weightIs(m["c_remove"], 7) &&
			m["c_exec"].Up && lines(t, recorded) > 0
	})
	before := states(s)
	// Every state sent so far is numbered up to seqBefore: what the reload makes the
	// checks send comes after.
	seqBefore := seqNow(s)
	pid := before["c_keep"].Metrics["pid"]
	if pid == 0 || before["c_change"].Metrics["pid"] != pid {
		t.Fatalf("test plugin pids: c_keep %v, c_change %v", pid, before["c_change"].Metrics["pid"])
	}
	// The test plugin's "configured" lines, whose fields come in any order.
	configured := func(name string) int {
		n := 0
		for _, l := range strings.Split(log.String(), "\n") {
			if strings.Contains(l, "vigil-check-test: configured:") && strings.Contains(l+" ", " check="+name+" ") {
				n++
			}
		}
		return n
	}
	if n := configured("c_keep"); n != 1 {
		t.Fatalf("c_keep configured %d times at Start; want once. Log:\n%s", n, log.String())
	}
	runsBefore := lines(t, runs)

	resp, err := s.Reload(ctx, req(v2))
	if err != nil {
		t.Fatalf("Reload: %v\n%s", err, log.String())
	}
	got := fmt.Sprintf("kept %v changed %v added %v removed %v restarted %v", resp.Kept, resp.Changed, resp.Added, resp.Removed, resp.Restarted)
	if want := "kept [s_keep c_keep c_exec] changed [] added [c_add] removed [c_remove] restarted [c_change]"; got != want {
		t.Fatalf("Reload answered %s\nwant %s", got, want)
	}
	if _, ok := states(s)["c_remove"]; ok {
		t.Error("the removed check is still in Status")
	}
	// What was sent after the reload, up to the new weights of c_add and c_change. How
	// many probes ran meanwhile depends on the machine's load, and so does how many states
	// a check sent: what must hold is the order and who sent. The changed check sends its
	// initial state once (the state it had), then what its probes find, ending with its new
	// weight; the new one, whose state nobody knows yet (checksched.Spec.FirstDecides), sends no
	// initial state: its first probe's result is its first state. Before its initial state,
	// c_change's old definition may still have sent its last change (Scheduler.Update stops
	// it first); under load its probe can even answer with the new params, which the plugin
	// has taken by then.
	newWeight := map[string]int32{"c_add": 9, "c_change": 5}
	settled := func(sent []*childpb.CheckState) bool {
		done := 0
		for name, w := range newWeight {
			initial := name == "c_add" // no initial state to wait for
			for _, st := range sent {
				if st.Name == name && st.Seq > seqBefore {
					initial = initial || st.Initial
					if initial && weightIs(st, w) {
						done++
						break
					}
				}
			}
		}
		return done == len(newWeight)
	}
	after := collectUntil(t, sub, "c_add and c_change start and send their new weights", settled)
	initials := map[string]int{}
	for _, st := range after {
		if st.Seq <= seqBefore {
			continue // sent before the reload, taken only now
		}
		switch st.Name {
		case "c_add", "c_change":
			if st.Initial {
				initials[st.Name]++
				if !st.Up || st.Weight != nil {
					t.Errorf("%s: initial state %v; want up, without a weight yet", st.Name, st)
				}
			}
		default:
			// Nothing comes from the kept or the removed checks.
			t.Errorf("sent after the reload: %v; only c_add and c_change should send", st)
		}
	}
	for name, want := range map[string]int{"c_add": 0, "c_change": 1} {
		if initials[name] != want {
			t.Errorf("%s sent %d initial states after the reload, want %d: %v", name, initials[name], want, after)
		}
	}
	m := states(s)
	for _, name := range []string{"s_keep", "c_keep", "c_exec"} {
		// The same state, not a new one that says the same: Seq numbers every state sent.
		if m[name].Seq != before[name].Seq || m[name].Up != before[name].Up || m[name].Message != before[name].Message {
			t.Errorf("%s: state %v after the reload, %v before", name, m[name], before[name])
		}
	}
	if len(m) != 5 {
		t.Errorf("states after the reload: %v", m)
	}
	if n := configured("c_keep"); n != 1 {
		t.Errorf("c_keep configured %d times after the reload; want once, at Start", n)
	}
	if p := m["c_add"].Metrics["pid"]; p != pid {
		t.Errorf("c_add answered from plugin pid %v, c_keep from %v: the plugin process was not kept", p, pid)
	}
	waitUntil(t, "s_keep keeps probing", func() bool { return lines(t, runs) >= runsBefore+4 })

	// c_exec's command changes, and c_add's new mode is one the test plugin rejects: the
	// reload fails and leaves everything as it was, c_exec's command in the exec plugin too.
	v3 := reloadConfig(plugins, dir, -30, 5, false, "new", "bogus")
	seqFailed := seqNow(s)
	_, err = s.Reload(ctx, req(v3))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `mode "bogus"`) {
		t.Fatalf("Reload with a rejected check: %v, want InvalidArgument with the plugin's message", err)
	}
	recordedBefore := lines(t, recorded)
	waitUntil(t, "c_exec runs on", func() bool { return lines(t, recorded) >= recordedBefore+4 })
	if b, _ := os.ReadFile(recorded); strings.Contains(string(b), "new") {
		t.Errorf("c_exec ran the command of the rejected configuration:\n%s", b)
	}
	// The checks have probed on since (c_exec four times at least) and found nothing new:
	// the failed reload made none of them send a state.
	if n := seqNow(s); n != seqFailed {
		sent, _ := sub.take()
		t.Errorf("a failed reload was followed by %d states: %v", n-seqFailed, sent)
	}
	if m := states(s); len(m) != 5 || !weightIs(m["c_add"], 9) {
		t.Errorf("states after a failed reload: %v", m)
	}

	// The same configuration again: everything is kept.
	resp, err = s.Reload(ctx, req(v2))
	if err != nil || len(resp.Kept) != 5 || len(resp.Added)+len(resp.Removed)+len(resp.Restarted)+len(resp.Changed) != 0 {
		t.Fatalf("Reload with the running configuration: %v, %v", resp, err)
	}

	s.shutdown()
	if _, err := s.Reload(ctx, req(v2)); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Reload after Stop: %v, want FailedPrecondition", err)
	}
	// Stopping the checks closed the plugin host, which waits for its processes.
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat"); err == nil {
		t.Errorf("the test plugin (pid %v) outlived Stop: %s", pid, st)
	}
}
