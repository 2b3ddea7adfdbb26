package notify

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/plugin"
	sdk "github.com/vigil-ha/vigil/sdk/notify"
)

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, ds := config.Parse("test.conf", []byte(text), config.Options{})
	if ds.HasErrors() {
		t.Fatalf("config: %v", ds.Errors())
	}
	return cfg
}

// instance is a vrrp_instance block with extra lines.
func instance(name string, vrid int, extra string) string {
	return fmt.Sprintf("vrrp_instance %s {\n interface lo\n virtual_router_id %d\n priority 100\n virtual_ipaddress {\n  192.0.2.%d/24\n }\n%s}\n", name, vrid, vrid, extra)
}

// writer is a script that appends its name and arguments to out, one line per run.
func writer(t *testing.T, dir, name, out string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	body := "#!/bin/sh\necho " + name + " \"$@\" >> " + out + "\n"
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func lines(path string) []string {
	b, _ := os.ReadFile(path)
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testLog(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Debug, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestScriptsInOrderUnderBurst: a burst of transitions reaches keepalived's scripts in the
// order it happened, the notify_STATE script before the generic one each time, with
// keepalived's arguments. The scripts run from core (no exec plugin installed).
func TestScriptsInOrderUnderBurst(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := parse(t, instance("VI_1", 1, fmt.Sprintf(" notify_master \"%s m\"\n notify_backup %s\n notify_fault %s\n notify %s\n",
		writer(t, dir, "master", out), writer(t, dir, "backup", out), writer(t, dir, "fault", out), writer(t, dir, "generic", out))))
	d := New(cfg, Options{Log: testLog(t), QueueLen: 100})
	defer d.Close()
	states := []string{"BACKUP", "MASTER", "FAULT"}
	var want []string
	from := "INIT"
	for i := range 30 {
		to := states[i%3]
		d.Transition(Transition{Instance: "VI_1", From: from, To: to, Priority: 100 + i})
		from = to
		specific := map[string]string{"MASTER": "master m", "BACKUP": "backup", "FAULT": "fault"}[to]
		want = append(want, specific, fmt.Sprintf("generic INSTANCE VI_1 %s %d", to, 100+i))
	}
	waitFor(t, "every script to run", func() bool { return len(lines(out)) >= len(want) })
	if got := lines(out); !slices.Equal(got, want) {
		t.Errorf("scripts ran as\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// recorder is a Plugins that records what it is asked, and can hold calls of a notifier
// until released.
type recorder struct {
	mu      sync.Mutex
	configs []sdk.ConfigureRequest
	got     []sdk.NotifyRequest
	hold    map[string]chan struct{}
	started chan string
	fail    error
	// configHold, when set, holds every Configure until closed.
	configHold chan struct{}
}

func newRecorder() *recorder {
	return &recorder{hold: map[string]chan struct{}{}, started: make(chan string, 100)}
}

func (r *recorder) ConfigureNotifier(ctx context.Context, plugin string, req sdk.ConfigureRequest) (sdk.ConfigureResponse, error) {
	if r.configHold != nil {
		select {
		case <-r.configHold:
		case <-ctx.Done():
			return sdk.ConfigureResponse{}, ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.configs = append(r.configs, req)
	return sdk.ConfigureResponse{}, nil
}

func (r *recorder) Notify(ctx context.Context, plugin string, req sdk.NotifyRequest) error {
	r.mu.Lock()
	hold := r.hold[req.Name]
	r.mu.Unlock()
	r.started <- req.Name + " " + req.Event.NewState
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, req)
	return r.fail
}

func (r *recorder) events(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, g := range r.got {
		if g.Name == name {
			who := g.Event.Instance
			if who == "" {
				who = "group " + g.Event.Group
			}
			out = append(out, who+" "+g.Event.OldState+">"+g.Event.NewState)
		}
	}
	return out
}

func all(string) bool { return true }

// TestQueueFullDropsOldest: an action that is stuck while events pile up sees, once it
// moves again, the event it was on, then the latest QueueLen events, the first of them
// taking over the old state of those dropped.
func TestQueueFullDropsOldest(t *testing.T) {
	cfg := parse(t, "vrrp_notify hook {\n plugin rec\n}\n"+instance("VI_1", 1, " notify_action hook\n"))
	r := newRecorder()
	release := make(chan struct{})
	r.hold["hook"] = release
	d := New(cfg, Options{Plugins: r, Installed: all, Log: testLog(t), QueueLen: 2})
	defer d.Close()
	seq := []string{"INIT", "BACKUP", "MASTER", "BACKUP", "MASTER", "FAULT", "BACKUP"}
	d.Transition(Transition{Instance: "VI_1", From: seq[0], To: seq[1]})
	if got := <-r.started; got != "hook BACKUP" {
		t.Fatalf("first call %q", got)
	}
	for i := 2; i < len(seq); i++ {
		d.Transition(Transition{Instance: "VI_1", From: seq[i-1], To: seq[i]})
	}
	close(release)
	want := []string{"VI_1 INIT>BACKUP", "VI_1 BACKUP>FAULT", "VI_1 FAULT>BACKUP"}
	waitFor(t, "the queue to drain", func() bool { return len(r.events("hook")) >= len(want) })
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want = append(want, "VI_1 BACKUP>STOP")
	if got := r.events("hook"); !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
}

// TestHungActionDoesNotDelayOthers: VI_1's notify script hangs; VI_2's scripts, VI_1's own
// FIFO line and VI_1's other action go on while it hangs, and the hung script is killed, with
// its process group, at its deadline.
func TestHungActionDoesNotDelayOthers(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	pidFile := filepath.Join(dir, "hung.pid")
	hung := filepath.Join(dir, "hung")
	os.WriteFile(hung, []byte("#!/bin/sh\nsleep 1000 &\necho $! > "+pidFile+"\nwait\n"), 0o755)
	fifoPath := filepath.Join(dir, "fifo")
	cfg := parse(t, "global_defs {\n notify_fifo "+fifoPath+"\n}\nvrrp_notify hook {\n plugin rec\n}\n"+
		instance("VI_1", 1, " notify_master "+hung+"\n notify_action hook\n")+
		instance("VI_2", 2, " notify_master "+writer(t, dir, "vi2", out)+"\n"))
	r := newRecorder()
	d := New(cfg, Options{Plugins: r, Installed: func(n string) bool { return n == "rec" }, Log: testLog(t), ScriptTimeout: 3 * time.Second})
	defer d.Close()
	reader := readFIFO(t, fifoPath)

	d.Transition(Transition{Instance: "VI_1", From: "BACKUP", To: "MASTER", Priority: 100})
	waitFor(t, "the hung script to start", func() bool { _, err := os.Stat(pidFile); return err == nil })
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	d.Transition(Transition{Instance: "VI_2", From: "BACKUP", To: "MASTER", Priority: 100})
	waitFor(t, "VI_2's script", func() bool { return len(lines(out)) == 1 })
	waitFor(t, "VI_1's other action", func() bool { return len(r.events("hook")) == 1 })
	if syscall.Kill(pid, 0) != nil {
		t.Fatal("the hung script ended before the others ran: this test proves nothing")
	}
	for _, want := range []string{`INSTANCE "VI_1" MASTER 100`, `INSTANCE "VI_2" MASTER 100`} {
		if got := reader.next(t); got != want {
			t.Errorf("FIFO line %q, want %q", got, want)
		}
	}
	// The deadline: the script and its child go.
	waitFor(t, "the hung script's process group to be killed", func() bool { return !running(pid) })
	if err := d.Stop(context.Background()); err != nil {
		t.Errorf("Stop after the hung call was cancelled: %v", err)
	}
}

// running says whether pid is a process that has not ended. A killed process whose parent
// died too is a zombie until init reaps it, which a busy machine may take its time over:
// for this test it has ended.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state is the field after the command, which is in parentheses and may hold any.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

type fifoReader struct{ lines chan string }

func readFIFO(t *testing.T, path string) *fifoReader {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r := &fifoReader{lines: make(chan string, 1000)}
	go func() {
		s := bufio.NewScanner(f)
		for s.Scan() {
			r.lines <- s.Text()
		}
	}()
	return r
}

func (r *fifoReader) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-r.lines:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line on the FIFO")
		return ""
	}
}

// TestFIFOLinesAndGroups: a reader of notify_fifo sees keepalived's lines for instances and
// for their sync group, whose state follows its members; STOP comes last for all.
func TestFIFOLinesAndGroups(t *testing.T) {
	dir := t.TempDir()
	fifoPath := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifoPath, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	cfg := parse(t, "global_defs {\n vrrp_notify_fifo "+fifoPath+"\n}\n"+instance("VI_1", 1, "")+instance("VI_2", 2, "")+
		"vrrp_sync_group G1 {\n group {\n  VI_1\n  VI_2\n }\n notify "+writer(t, dir, "group", out)+"\n}\n")
	d := New(cfg, Options{Log: testLog(t)})
	defer d.Close()
	reader := readFIFO(t, fifoPath)
	for _, tr := range []Transition{
		{Instance: "VI_1", From: "INIT", To: "BACKUP", Priority: 100},
		{Instance: "VI_2", From: "INIT", To: "BACKUP", Priority: 90},
		{Instance: "VI_1", From: "BACKUP", To: "MASTER", Priority: 100},
		{Instance: "VI_2", From: "BACKUP", To: "MASTER", Priority: 90},
		{Instance: "VI_2", From: "MASTER", To: "FAULT", Priority: 0},
	} {
		d.Transition(tr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`INSTANCE "VI_1" BACKUP 100`,
		`INSTANCE "VI_2" BACKUP 90`, `GROUP "G1" BACKUP 0`,
		`INSTANCE "VI_1" MASTER 100`,
		`INSTANCE "VI_2" MASTER 90`, `GROUP "G1" MASTER 0`,
		`INSTANCE "VI_2" FAULT 0`, `GROUP "G1" FAULT 0`,
		`INSTANCE "VI_1" STOP 100`, `INSTANCE "VI_2" STOP 0`, `GROUP "G1" STOP 0`,
	} {
		if got := reader.next(t); got != want {
			t.Errorf("FIFO line %q, want %q", got, want)
		}
	}
	want := []string{"group GROUP G1 BACKUP 0", "group GROUP G1 MASTER 0", "group GROUP G1 FAULT 0", "group GROUP G1 STOP 0"}
	if got := lines(out); !slices.Equal(got, want) {
		t.Errorf("group script ran as %q, want %q", got, want)
	}
}

// TestFIFONeverBlocks: with nobody reading (a reader that went away), writing goes on
// without blocking, and lines are dropped once the pipe is full.
func TestFIFONeverBlocks(t *testing.T) {
	dir := t.TempDir()
	fifoPath := filepath.Join(dir, "fifo")
	cfg := parse(t, "global_defs {\n notify_fifo "+fifoPath+"\n}\n"+instance("VI_1", 1, ""))
	d := New(cfg, Options{Log: testLog(t)})
	defer d.Close()
	// A reader that reads one line and goes away.
	r := readFIFO(t, fifoPath)
	d.Transition(Transition{Instance: "VI_1", From: "INIT", To: "BACKUP", Priority: 100})
	if got := r.next(t); got != `INSTANCE "VI_1" BACKUP 100` {
		t.Fatalf("FIFO line %q", got)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// 20000 lines of ~28 bytes are far more than a pipe holds (64 KiB).
		states := []string{"MASTER", "BACKUP"}
		for i := range 20000 {
			d.Transition(Transition{Instance: "VI_1", From: states[(i+1)%2], To: states[i%2], Priority: 100})
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Transition blocked on a FIFO nobody reads")
	}
	if fi, err := os.Stat(fifoPath); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("notify_fifo was not created as a FIFO: %v %v", fi, err)
	}
}

// TestFIFONotAFIFO: a regular file at the path is left alone, with an error logged, and the
// other actions still run.
func TestFIFONotAFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	os.WriteFile(path, []byte("keep me\n"), 0o644)
	fifos := openFIFOs(config.Global{NotifyFIFO: &config.FIFO{Path: path}}, testLog(t))
	if len(fifos.fifos) != 0 {
		t.Error("a regular file was opened as a FIFO")
	}
	if _, err := openFIFO(path); err == nil || !strings.Contains(err.Error(), "not a FIFO") {
		t.Errorf("openFIFO = %v", err)
	}
}

// TestSMTPAlertAndActions: smtp_alert goes to the email plugin's smtp_alert notifier
// configured from global_defs, once per new state, not for FAULT with no_email_faults; a
// vrrp_notify action gets every event and its params.
func TestSMTPAlertAndActions(t *testing.T) {
	cfg := parse(t, `global_defs {
 router_id lb1
 notification_email {
  ops@example.com
 }
 notification_email_from vigil@example.com
 smtp_server 127.0.0.1 2525
 smtp_alert
 no_email_faults
}
vrrp_notify hook {
 plugin webhook
 timeout 3
 params {
  url http://127.0.0.1:1/hook
 }
}
`+instance("VI_1", 1, " notify_action hook\n"))
	r := newRecorder()
	d := New(cfg, Options{Plugins: r, Installed: all, Log: testLog(t)})
	defer d.Close()
	for _, tr := range [][2]string{{"INIT", "BACKUP"}, {"BACKUP", "MASTER"}, {"MASTER", "FAULT"}, {"FAULT", "BACKUP"}} {
		d.Transition(Transition{Instance: "VI_1", From: tr[0], To: tr[1], Priority: 100})
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.events("smtp_alert"), []string{"VI_1 INIT>BACKUP", "VI_1 BACKUP>MASTER", "VI_1 FAULT>BACKUP", "VI_1 BACKUP>STOP"}; !slices.Equal(got, want) {
		t.Errorf("smtp_alert got %q, want %q", got, want)
	}
	if got, want := r.events("hook"), []string{"VI_1 INIT>BACKUP", "VI_1 BACKUP>MASTER", "VI_1 MASTER>FAULT", "VI_1 FAULT>BACKUP", "VI_1 BACKUP>STOP"}; !slices.Equal(got, want) {
		t.Errorf("hook got %q, want %q", got, want)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	params := map[string]string{}
	for _, c := range r.configs {
		for _, p := range c.Params {
			params[c.Name+"."+p.Key] = strings.Join(p.Values, " ")
		}
	}
	for k, v := range map[string]string{"smtp_alert.server": "127.0.0.1", "smtp_alert.port": "2525", "smtp_alert.to": "ops@example.com",
		"smtp_alert.from": "vigil@example.com", "smtp_alert.tls": "none", "hook.url": "http://127.0.0.1:1/hook"} {
		if params[k] != v {
			t.Errorf("configured %s = %q, want %q (all: %v)", k, params[k], v, params)
		}
	}
	for _, g := range r.got {
		if g.Event.Node != "lb1" || !slices.Equal(g.Event.VIPs, []string{"192.0.2.1/24"}) {
			t.Errorf("event %+v lacks the node or the VIPs", g.Event)
		}
	}
}

// TestStopIsBounded: Stop waits for a hung action only until its context ends, and says
// which action it left.
func TestStopIsBounded(t *testing.T) {
	cfg := parse(t, "vrrp_notify hook {\n plugin rec\n timeout 3600\n}\n"+instance("VI_1", 1, " notify_action hook\n"))
	r := newRecorder()
	r.hold["hook"] = make(chan struct{})
	d := New(cfg, Options{Plugins: r, Installed: all, Log: testLog(t)})
	d.Transition(Transition{Instance: "VI_1", From: "INIT", To: "MASTER"})
	<-r.started
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := d.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "vrrp_notify hook of instance VI_1") {
		t.Errorf("Stop = %v", err)
	}
	// Close cancels the held call: it returns.
	d.Close()
	d.Transition(Transition{Instance: "VI_1", From: "MASTER", To: "BACKUP"})
	if n := len(r.started); n != 0 {
		t.Errorf("%d calls after Close", n)
	}
}

// TestScriptsThroughExecPlugin: with vigil-notify-exec installed, keepalived's scripts run
// through it (the plugin's process runs them, as script_user), in order.
func TestScriptsThroughExecPlugin(t *testing.T) {
	pluginDir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "vigil-notify-exec"), "github.com/vigil-ha/vigil/plugins/vigil-notify-exec")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	host := plugin.New(plugin.Options{Dir: pluginDir, Logger: testLog(t)})
	defer host.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	// The script says which process ran it: its parent must be the plugin, not this test.
	sh := filepath.Join(dir, "who")
	os.WriteFile(sh, []byte("#!/bin/sh\necho \"$(cat /proc/$PPID/comm) $*\" >> "+out+"\n"), 0o755)
	cfg := parse(t, instance("VI_1", 1, " notify_master \""+sh+" m\"\n notify "+sh+"\n"))
	d := New(cfg, Options{Plugins: host, Installed: func(n string) bool {
		_, err := os.Stat(filepath.Join(pluginDir, "vigil-notify-"+n))
		return err == nil
	}, Log: testLog(t)})
	defer d.Close()
	d.Transition(Transition{Instance: "VI_1", From: "INIT", To: "BACKUP", Priority: 100})
	d.Transition(Transition{Instance: "VI_1", From: "BACKUP", To: "MASTER", Priority: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"vigil-notify-ex INSTANCE VI_1 BACKUP 100", "vigil-notify-ex m", "vigil-notify-ex INSTANCE VI_1 MASTER 100", "vigil-notify-ex INSTANCE VI_1 STOP 100"}
	if got := lines(out); !slices.Equal(got, want) {
		t.Errorf("scripts ran as %q, want %q", got, want)
	}
}

// TestFIFOScript: notify_fifo_script is started with the FIFO's path and reads the lines;
// Close stops it.
func TestFIFOScript(t *testing.T) {
	dir := t.TempDir()
	fifoPath := filepath.Join(dir, "fifo")
	out := filepath.Join(dir, "out")
	reader := filepath.Join(dir, "reader.sh")
	os.WriteFile(reader, []byte("#!/bin/sh\nwhile read -r line; do echo \"$line\" >> "+out+"; done < \"$1\"\n"), 0o755)
	cfg := parse(t, "global_defs {\n notify_fifo "+fifoPath+"\n notify_fifo_script "+reader+"\n}\n"+instance("VI_1", 1, ""))
	d := New(cfg, Options{Log: testLog(t)})
	d.Transition(Transition{Instance: "VI_1", From: "INIT", To: "BACKUP", Priority: 100})
	d.Transition(Transition{Instance: "VI_1", From: "BACKUP", To: "MASTER", Priority: 100})
	waitFor(t, "the FIFO script to read both lines", func() bool { return len(lines(out)) == 2 })
	if got, want := lines(out), []string{`INSTANCE "VI_1" BACKUP 100`, `INSTANCE "VI_1" MASTER 100`}; !slices.Equal(got, want) {
		t.Errorf("the FIFO script read %q, want %q", got, want)
	}
	pid := d.fifos.scripts[0].Process.Pid
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the FIFO script to end at Close", func() bool { return syscall.Kill(pid, 0) != nil })
}

// TestDeleteOnlyRemoved: a reload that removes VI_2 delivers DELETED to VI_2's actions
// (notify_deleted, the generic script) and nothing to VI_1's.
func TestDeleteOnlyRemoved(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	scripts := fmt.Sprintf(" notify_deleted %s\n notify %s\n", writer(t, dir, "deleted", out), writer(t, dir, "generic", out))
	cfg := parse(t, instance("VI_1", 1, scripts)+instance("VI_2", 2, scripts))
	d := New(cfg, Options{Log: testLog(t)})
	defer d.Close()
	d.Transition(Transition{Instance: "VI_2", From: "INIT", To: "BACKUP", Priority: 90})
	if err := d.Delete(context.Background(), func(group bool, name string) bool { return !group && name == "VI_1" }); err != nil {
		t.Fatal(err)
	}
	d.Transition(Transition{Instance: "VI_1", From: "INIT", To: "MASTER", Priority: 100})
	want := []string{"generic INSTANCE VI_2 BACKUP 90", "deleted", "generic INSTANCE VI_2 DELETED 90"}
	if got := lines(out); !slices.Equal(got, want) {
		t.Errorf("scripts ran as %q, want %q", got, want)
	}
}

// TestQueueFlapCoalesces: a flap that piles up behind a busy action (BACKUP→MASTER,
// MASTER→BACKUP, BACKUP→MASTER with room for two) reaches it as the one change that matters:
// BACKUP→MASTER.
func TestQueueFlapCoalesces(t *testing.T) {
	cfg := parse(t, "vrrp_notify hook {\n plugin rec\n}\n"+instance("VI_1", 1, " notify_action hook\n"))
	r := newRecorder()
	release := make(chan struct{})
	r.hold["hook"] = release
	d := New(cfg, Options{Plugins: r, Installed: all, Log: testLog(t), QueueLen: 2})
	defer d.Close()
	d.Transition(Transition{Instance: "VI_1", From: "INIT", To: "BACKUP"})
	<-r.started
	for _, tr := range [][2]string{{"BACKUP", "MASTER"}, {"MASTER", "BACKUP"}, {"BACKUP", "MASTER"}} {
		d.Transition(Transition{Instance: "VI_1", From: tr[0], To: tr[1]})
	}
	close(release)
	want := []string{"VI_1 INIT>BACKUP", "VI_1 BACKUP>MASTER"}
	waitFor(t, "the queue to drain", func() bool { return len(r.events("hook")) >= len(want) })
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want = append(want, "VI_1 MASTER>STOP")
	if got := r.events("hook"); !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
}

// TestRestartedChildNotifiesNothingNew: a vrrp child that stops (to INIT) and comes back in
// the same state notifies nothing; back in another state, the change from the known one.
func TestRestartedChildNotifiesNothingNew(t *testing.T) {
	cfg := parse(t, "vrrp_notify hook {\n plugin rec\n}\n"+instance("VI_1", 1, " notify_action hook\n"))
	r := newRecorder()
	d := New(cfg, Options{Plugins: r, Installed: all, Log: testLog(t)})
	defer d.Close()
	for _, tr := range [][2]string{{"INIT", "BACKUP"}, {"BACKUP", "INIT"}, {"INIT", "BACKUP"}, {"BACKUP", "INIT"}, {"INIT", "MASTER"}} {
		d.Transition(Transition{Instance: "VI_1", From: tr[0], To: tr[1]})
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.events("hook"), []string{"VI_1 INIT>BACKUP", "VI_1 BACKUP>MASTER", "VI_1 MASTER>STOP"}; !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
}

// TestScriptSecurity: with enable_script_security, a notify script that others can change
// is not run from core (and the error says why); a safe one is.
func TestScriptSecurity(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: the safe script must be owned by root")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	safe := writer(t, dir, "safe", out)
	unsafe := writer(t, dir, "unsafe", out)
	os.Chmod(unsafe, 0o777)
	cfg := parse(t, "global_defs {\n enable_script_security\n}\n"+instance("VI_1", 1, " notify_master "+safe+"\n notify_backup "+unsafe+"\n"))
	var logs strings.Builder
	var mu sync.Mutex
	log := hclog.New(&hclog.LoggerOptions{Output: writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	})})
	d := New(cfg, Options{Log: log})
	defer d.Close()
	d.Transition(Transition{Instance: "VI_1", From: "INIT", To: "BACKUP"})
	d.Transition(Transition{Instance: "VI_1", From: "BACKUP", To: "MASTER"})
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := lines(out); !slices.Equal(got, []string{"safe"}) {
		t.Errorf("scripts ran: %q, want the safe one only", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "writable by group or others") {
		t.Errorf("no word of the refused script in the log:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestScriptsDoNotWaitForPlugins: while a notify plugin is still being configured (slow to
// start), keepalived's scripts run from core go on; the plugin's action gets its events once
// configured, in order.
func TestScriptsDoNotWaitForPlugins(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := parse(t, "vrrp_notify hook {\n plugin rec\n}\n"+instance("VI_1", 1, " notify_action hook\n notify_master "+writer(t, dir, "master", out)+"\n"))
	r := newRecorder()
	r.configHold = make(chan struct{})
	d := New(cfg, Options{Plugins: r, Installed: func(n string) bool { return n == "rec" }, Log: testLog(t)})
	defer d.Close()
	d.Transition(Transition{Instance: "VI_1", From: "INIT", To: "BACKUP"})
	d.Transition(Transition{Instance: "VI_1", From: "BACKUP", To: "MASTER"})
	waitFor(t, "notify_master while the plugin is being configured", func() bool { return len(lines(out)) == 1 })
	if n := len(r.started); n != 0 {
		t.Fatalf("%d plugin calls before the plugin was configured", n)
	}
	close(r.configHold)
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.events("hook"), []string{"VI_1 INIT>BACKUP", "VI_1 BACKUP>MASTER", "VI_1 MASTER>STOP"}; !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
}

// TestAdoptAndRxLowerPri: a dispatcher that replaces another on reload knows the states its
// actions heard (a kept master's next change reports MASTER as the old state, and a repeat of
// a known state notifies nothing); MASTER_RX_LOWER_PRI runs only its own script, leaves the
// state alone, and reaches the generic script not at all.
func TestAdoptAndRxLowerPri(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	text := instance("VI_1", 1, fmt.Sprintf(" notify %s\n notify_master_rx_lower_pri %s\n",
		writer(t, dir, "generic", out), writer(t, dir, "rxlow", out)))
	old := New(parse(t, text), Options{Log: testLog(t)})
	defer old.Close()
	old.Transition(Transition{Instance: "VI_1", From: "INIT", To: "BACKUP", Priority: 100})
	old.Transition(Transition{Instance: "VI_1", From: "BACKUP", To: "MASTER", Priority: 100})
	waitFor(t, "the old dispatcher's scripts", func() bool { return len(lines(out)) >= 2 })

	fresh := New(parse(t, text), Options{Log: testLog(t)})
	defer fresh.Close()
	fresh.Adopt(old)
	fresh.Transition(Transition{Instance: "VI_1", From: "MASTER", To: "MASTER_RX_LOWER_PRI", Priority: 100})
	fresh.Transition(Transition{Instance: "VI_1", From: "INIT", To: "MASTER", Priority: 100}) // known: nothing
	fresh.Transition(Transition{Instance: "VI_1", From: "BACKUP", To: "BACKUP", Priority: 90})
	want := []string{"generic INSTANCE VI_1 BACKUP 100", "generic INSTANCE VI_1 MASTER 100", "rxlow", "generic INSTANCE VI_1 BACKUP 90"}
	waitFor(t, "every script", func() bool { return len(lines(out)) >= len(want) })
	time.Sleep(200 * time.Millisecond)
	if got := lines(out); !slices.Equal(got, want) {
		t.Errorf("scripts ran as\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
