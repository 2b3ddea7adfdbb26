package plugin

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/notify"
)

// pluginDir holds the plugins TestMain builds: the test plugins in testdata and the example
// third-party plugin, each with the name the host looks for.
var pluginDir string

func TestMain(m *testing.M) {
	flag.Parse()
	for _, name := range []string{"test.fuzz", "test.list", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			// Listing and fuzzing (make fuzz runs no test beside it) need no plugin, and each
			// fuzz worker runs TestMain again: building the plugins would cost each a minute.
			os.Exit(m.Run())
		}
	}
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "vigil-plugins-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		// CheckSecure walks up from the plugin: a private temporary directory under a sticky
		// /tmp passes, as it would in production under /usr/lib.
		cmd := exec.Command("go", "build", "-o", dir+"/",
			"./testdata/vigil-check-test", "./testdata/vigil-check-future", "./testdata/vigil-check-old", "./testdata/vigil-check-noisy", "./testdata/vigil-notify-test",
			"../../examples/check-hello")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building test plugins:", err)
			return 1
		}
		if err := os.Rename(filepath.Join(dir, "check-hello"), filepath.Join(dir, "vigil-check-hello")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		old, err := os.ReadFile(filepath.Join(dir, "vigil-check-old"))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "vigil-check-v1"), old, 0o755)
		}
		if err == nil {
			err = os.Rename(filepath.Join(dir, "vigil-check-old"), filepath.Join(dir, "vigil-check-v2"))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		pluginDir = dir
		code := m.Run()
		if kids := children(); len(kids) > 0 && code == 0 {
			fmt.Fprintf(os.Stderr, "processes left behind by the tests: %v\n", kids)
			return 1
		}
		return code
	}())
}

// newHost returns a host on the test plugins whose log goes to the test log (unless opts has
// a Logger); it is closed,
// and checked to have left no child process behind, when the test ends.
func newHost(t *testing.T, opts Options) *Host {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = pluginDir
	}
	if opts.Logger == nil {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Name: "vigil", Output: &syncWriter{t: t}, Level: hclog.Debug})
	}
	h := New(opts)
	t.Cleanup(func() {
		h.Close()
		if kids := children(); len(kids) > 0 {
			t.Errorf("child processes left after Close: %v", kids)
		}
	})
	return h
}

type syncWriter struct {
	mu sync.Mutex
	t  *testing.T
}

func (w *syncWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// children lists the processes whose parent is this test process (zombies included).
func children() []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			out = append(out, e.Name()+" "+s[strings.IndexByte(s, '(')+1:strings.LastIndexByte(s, ')')]+" "+f[0])
		}
	}
	return out
}

// running reports whether pid is a live process: not gone, not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func configure(t *testing.T, h *Host, plugin, name string, params ...string) {
	t.Helper()
	var ps []check.Param
	for i := 0; i+1 < len(params); i += 2 {
		ps = append(ps, check.Param{Key: params[i], Values: []string{params[i+1]}})
	}
	if _, err := h.ConfigureCheck(ctxFor(t, 20*time.Second), plugin, check.ConfigureRequest{Name: name, Params: ps}); err != nil {
		t.Fatalf("configure %s on %s: %v", name, plugin, err)
	}
}

// probeOK probes a check that must pass and returns the pid of the plugin that answered.
func probeOK(t *testing.T, h *Host, name string) int {
	t.Helper()
	resp, err := h.Check(ctxFor(t, 10*time.Second), "test", check.CheckRequest{Name: name})
	if err != nil || resp.Status != check.OK || resp.Message != name {
		t.Fatalf("probe %s: %+v, %v", name, resp, err)
	}
	return int(resp.Metrics["pid"])
}

func TestExamplePluginThroughHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "HELLO vigil\r\n")
			c.Close()
		}
	}()
	h := newHost(t, Options{})
	ctx := ctxFor(t, 20*time.Second)

	info, err := h.Describe(ctx, sdk.KindCheck, "hello")
	if err != nil || info.Name != "hello" || info.Kind != sdk.KindCheck || info.ProtocolVersion != sdk.ProtocolVersion || len(info.Params) != 2 {
		t.Fatalf("Describe: %+v, %v", info, err)
	}

	// Through the configuration model and the scheduler's Prober, as vigil runs it.
	pc := &config.PluginCheck{Name: "chk_hello", Plugin: "hello", Pos: config.Pos{File: "vigil.conf", Line: 3, Col: 1},
		Params: []config.Param{{Key: "address", Values: []string{ln.Addr().String()}}, {Key: "expect", Values: []string{"HELLO"}}}}
	spec, err := h.CheckSpec(ctx, pc, false)
	if err != nil {
		t.Fatal(err)
	}
	if r := spec.Prober.Probe(ctx); !r.OK || r.Msg != "ok: HELLO vigil" {
		t.Fatalf("Probe: %+v", r)
	}
	// reverse does not turn the probe's result around: rise and fall count what the plugin
	// said, and the vrrp process alone applies reverse (fsm.Effective).
	pc.Reverse = true
	spec, _ = h.CheckSpec(ctx, pc, false)
	if r := spec.Prober.Probe(ctx); !r.OK {
		t.Fatalf("Probe of a check tracked with reverse: %+v; want the plugin's own OK", r)
	}

	// Bad params fail with the plugin's message and the check's position (vigil -t).
	pc.Params = []config.Param{{Key: "adress", Values: []string{"x:1"}}}
	_, err = h.CheckSpec(ctx, pc, true)
	if err == nil || !strings.Contains(err.Error(), `vigil.conf:3:1: vrrp_check chk_hello: plugin hello: unknown param "adress"`) {
		t.Fatalf("bad params: %v", err)
	}
}

func TestResponseFields(t *testing.T) {
	h := newHost(t, Options{})
	configure(t, h, "test", "good", "mode", "ok")
	resp, err := h.Check(ctxFor(t, 10*time.Second), "test", check.CheckRequest{Name: "good"})
	if err != nil || resp.Weight == nil || *resp.Weight != 7 || resp.Metrics["pid"] == 0 {
		t.Fatalf("Check: %+v, %v", resp, err)
	}
	// The scheduler's Prober passes weight and metrics on. It knows nothing of reverse: that
	// is the vrrp process's alone. A weight beyond what a VRRP priority can move is a bug in
	// the plugin: that answer is a failure that names the plugin, and its weight is not taken
	// (it once was, capped to -253, and moved the priority as far as it goes).
	configure(t, h, "test", "heavy", "mode", "ok", "weight", "-900")
	if r := (Prober{Host: h, Plugin: "test", Check: "good"}).Probe(ctxFor(t, 10*time.Second)); !r.OK || r.Weight == nil || *r.Weight != 7 || r.Metrics["pid"] == 0 {
		t.Errorf("Probe good: %+v; want OK, weight 7, metric pid", r)
	}
	if r := (Prober{Host: h, Plugin: "test", Check: "heavy"}).Probe(ctxFor(t, 10*time.Second)); r.OK || r.Weight != nil || !strings.Contains(r.Msg, "plugin test answered weight -900") {
		t.Errorf("Probe heavy: %+v; want a failure without a weight, naming plugin test and weight -900", r)
	}
	_, err = h.ConfigureCheck(ctxFor(t, 10*time.Second), "test", check.ConfigureRequest{Name: "bad", Params: []check.Param{{Key: "mode", Values: []string{"dance"}}}})
	var pe *sdk.PluginError
	if !errors.As(err, &pe) || pe.Msg != `mode "dance": want ok, crash, hang, stop or barrier` {
		t.Fatalf("Configure rejected: %v", err)
	}
}

func TestCrashRestart(t *testing.T) {
	h := newHost(t, Options{})
	configure(t, h, "test", "good", "mode", "ok")
	configure(t, h, "test", "hang", "mode", "hang")
	configure(t, h, "test", "boom", "mode", "crash")
	pid := probeOK(t, h, "good")

	// A probe in flight when the plugin dies fails at once, not at its deadline.
	inflight := make(chan error, 1)
	go func() {
		_, err := h.Check(ctxFor(t, 30*time.Second), "test", check.CheckRequest{Name: "hang"})
		inflight <- err
	}()
	time.Sleep(200 * time.Millisecond)
	_, err := h.Check(ctxFor(t, 10*time.Second), "test", check.CheckRequest{Name: "boom"})
	if !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("probe that crashed the plugin: %v; want ErrUnavailable", err)
	}
	select {
	case err := <-inflight:
		if err == nil {
			t.Fatal("in-flight probe succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight probe still waiting after the plugin died")
	}
	// The next probe restarts the plugin, which got its configuration again.
	if pid2 := probeOK(t, h, "good"); pid2 == pid {
		t.Fatalf("still pid %d after the crash", pid)
	}
	if running(pid) {
		t.Errorf("crashed plugin %d still running", pid)
	}
}

func TestCrashLoopBacksOff(t *testing.T) {
	h := newHost(t, Options{})
	configure(t, h, "test", "boom", "mode", "crash")
	// Each crash (the replayed config makes no difference: only probes crash) doubles the wait.
	h.Check(ctxFor(t, 10*time.Second), "test", check.CheckRequest{Name: "boom"})
	h.Check(ctxFor(t, 10*time.Second), "test", check.CheckRequest{Name: "boom"}) // restarted at once, crashes again
	_, err := h.Check(ctxFor(t, 10*time.Second), "test", check.CheckRequest{Name: "boom"})
	if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "restarting in") {
		t.Fatalf("third probe: %v; want a backoff", err)
	}
}

func TestHangCancelledAtDeadline(t *testing.T) {
	h := newHost(t, Options{})
	configure(t, h, "test", "good", "mode", "ok")
	configure(t, h, "test", "hang", "mode", "hang")
	pid := probeOK(t, h, "good")
	// The plugin's hang never ends: a host that ignored the deadline would never return, so
	// the bound below only has to be finite, and generous enough for a loaded machine.
	start := time.Now()
	done := make(chan error, 1)
	ctx := ctxFor(t, 300*time.Millisecond)
	go func() {
		_, err := h.Check(ctx, "test", check.CheckRequest{Name: "hang"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hung probe: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("hung probe still waiting %s after its 300ms deadline", time.Since(start))
	}
	// The plugin still answers pings: it is busy, not hung, and keeps serving.
	time.Sleep(500 * time.Millisecond)
	if pid2 := probeOK(t, h, "good"); pid2 != pid {
		t.Fatalf("a responsive plugin was restarted (%d -> %d)", pid, pid2)
	}
}

func TestUnresponsiveKilledWithChildren(t *testing.T) {
	h := newHost(t, Options{PingTimeout: 500 * time.Millisecond})
	pidfile := filepath.Join(t.TempDir(), "sleeper")
	configure(t, h, "test", "good", "mode", "ok")
	configure(t, h, "test", "stop", "mode", "stop", "pidfile", pidfile)
	pid := probeOK(t, h, "good")
	resp, err := h.Check(ctxFor(t, 500*time.Millisecond), "test", check.CheckRequest{Name: "stop"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("probe of a stopped plugin: %+v, %v", resp, err)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	sleeper, _ := strconv.Atoi(string(b))
	deadline := time.Now().Add(10 * time.Second)
	for running(pid) || running(sleeper) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: plugin %d running %v, its child %d running %v", pid, running(pid), sleeper, running(sleeper))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pid2 := probeOK(t, h, "good"); pid2 == pid {
		t.Fatal("no new plugin process")
	}
}

// TestNoCallToASuspectPlugin: once a probe has passed its deadline and the host pings the
// plugin, the next probe waits for the ping's verdict and goes to the process that is
// current then (here a new one: the old one is frozen), instead of to a process that may
// never answer. The check of a frozen plugin lost a probe more so, one more than fall 3
// allows (the fault suite's plugin-hang on a loaded machine).
func TestNoCallToASuspectPlugin(t *testing.T) {
	h := newHost(t, Options{PingTimeout: 2 * time.Second})
	pidfile := filepath.Join(t.TempDir(), "sleeper")
	configure(t, h, "test", "good", "mode", "ok")
	configure(t, h, "test", "stop", "mode", "stop", "pidfile", pidfile)
	pid := probeOK(t, h, "good")
	if _, err := h.Check(ctxFor(t, 300*time.Millisecond), "test", check.CheckRequest{Name: "stop"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("probe of a stopping plugin: %v", err)
	}
	// At once, while the ping is out: it must not go to the frozen process.
	if pid2 := probeOK(t, h, "good"); pid2 == pid {
		t.Fatalf("the probe was answered by the frozen process %d", pid)
	}
}

func TestRefused(t *testing.T) {
	sum, err := sha256File(filepath.Join(pluginDir, "vigil-check-test"))
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("0", 64)

	writable := t.TempDir()
	copyPlugin(t, filepath.Join(writable, "vigil-check-test"), 0o775)
	openDir := filepath.Join(t.TempDir(), "open")
	os.Mkdir(openDir, 0o755)
	os.Chmod(openDir, 0o777)
	copyPlugin(t, filepath.Join(openDir, "vigil-check-test"), 0o755)

	for _, tc := range []struct {
		name   string
		opts   Options
		plugin string
		is     error
		msg    string
	}{
		{"checksum mismatch", Options{Checksums: map[string]string{"vigil-check-test": wrong}}, "test", ErrChecksum,
			"check plugin test: " + filepath.Join(pluginDir, "vigil-check-test") + " has SHA-256 " + sum + ", but plugin_sha256 vigil-check-test in global_defs expects " + wrong},
		{"writable plugin", Options{Dir: writable}, "test", ErrInsecure,
			"plugin " + filepath.Join(writable, "vigil-check-test") + " is group- or world-writable (mode 0775): run chmod go-w " + filepath.Join(writable, "vigil-check-test")},
		{"writable directory", Options{Dir: openDir}, "test", ErrInsecure,
			"directory " + openDir + " above plugin " + filepath.Join(openDir, "vigil-check-test") + " is group- or world-writable (mode 0777): run chmod go-w " + openDir},
		{"protocol mismatch", Options{}, "future", ErrProtocol,
			fmt.Sprintf("vigil-check-future speaks vigil plugin protocol %d, this vigil speaks 1 to %d", sdk.ProtocolVersion+1, sdk.ProtocolVersion)},
		{"not found", Options{}, "nope", ErrNotFound, "no check plugin nope"},
		{"bad name", Options{}, "../test", ErrNotFound, "is not a plugin name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, tc.opts)
			_, err := h.Check(ctxFor(t, 20*time.Second), tc.plugin, check.CheckRequest{Name: "x"})
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v\nwant %v containing %q", err, tc.is, tc.msg)
			}
			t.Log(err)
		})
	}

	t.Run("checksum match", func(t *testing.T) {
		h := newHost(t, Options{Checksums: map[string]string{"vigil-check-test": sum}})
		configure(t, h, "test", "good", "mode", "ok")
		probeOK(t, h, "good")
	})
}

func copyPlugin(t *testing.T, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pluginDir, "vigil-check-test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dst, mode) // past the umask
}

// TestConcurrentProbes: 1,000 probes at once all run at the same moment in one plugin
// process. Check "gate" answers only once all 1,000 are inside the plugin's Check together, so
// a host or SDK that ran a process's probes one (or a few) at a time would fail every probe at
// its deadline.
func TestConcurrentProbes(t *testing.T) {
	h := newHost(t, Options{})
	const n = 1000
	configure(t, h, "test", "good", "mode", "ok")
	configure(t, h, "test", "gate", "mode", "barrier", "count", strconv.Itoa(n))
	pid := probeOK(t, h, "good")
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			resp, err := h.Check(ctxFor(t, 30*time.Second), "test", check.CheckRequest{Name: "gate"})
			switch {
			case err != nil:
				errs <- err
			case resp.Status != check.OK || resp.Message != "gate" || int(resp.Metrics["pid"]) != pid:
				errs <- fmt.Errorf("%+v; want OK from pid %d", resp, pid)
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 5 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d probes failed", failed, n)
	}
}

// TestNewPluginOldHost: a plugin built with this SDK serves a host that speaks only protocol
// 1 (a Check call per probe), as an older vigil would start it.
func TestNewPluginOldHost(t *testing.T) {
	hs := sdk.Handshake()
	hs.ProtocolVersion = 1
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]goplugin.PluginSet{1: check.VersionedPlugins()[1]},
		Cmd:              exec.Command(filepath.Join(pluginDir, "vigil-check-test")),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     20 * time.Second,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "old-vigil", Output: &syncWriter{t: t}, Level: hclog.Debug}),
	})
	t.Cleanup(client.Kill)
	proto, err := client.Client()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if v := client.NegotiatedVersion(); v != 1 {
		t.Fatalf("negotiated protocol %d, want 1", v)
	}
	raw, err := proto.Dispense(string(sdk.KindCheck))
	if err != nil {
		t.Fatal(err)
	}
	c, ok := raw.(check.Checker)
	if !ok {
		t.Fatalf("dispensed %T, not a check.Checker", raw)
	}
	ctx := ctxFor(t, 20*time.Second)
	if info, err := c.Describe(ctx); err != nil || info.Name != "test" || info.Kind != sdk.KindCheck {
		t.Fatalf("Describe: %+v, %v", info, err)
	}
	if _, err := c.Configure(ctx, check.ConfigureRequest{Name: "good", Params: []check.Param{{Key: "mode", Values: []string{"ok"}}}}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	pid := client.ReattachConfig().Pid
	for range 3 {
		resp, err := c.Check(ctx, check.CheckRequest{Name: "good"})
		if err != nil || resp.Status != check.OK || resp.Message != "good" || resp.Weight == nil || *resp.Weight != 7 || int(resp.Metrics["pid"]) != pid {
			t.Fatalf("Check: %+v, %v; want OK from pid %d", resp, err, pid)
		}
	}
	// What the plugin rejects still comes back as its message.
	_, err = c.Configure(ctx, check.ConfigureRequest{Name: "bad", Params: []check.Param{{Key: "mode", Values: []string{"dance"}}}})
	var pe *sdk.PluginError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.Msg, `mode "dance"`) {
		t.Fatalf("Configure rejected: %v", err)
	}
}

// TestPluginLogs: what a plugin logs with log/slog reaches the host's logger named after the
// plugin's executable, at the level the plugin logged it, with its fields.
func TestPluginLogs(t *testing.T) {
	var log syncBuffer
	h := newHost(t, Options{Logger: hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Trace})})
	configure(t, h, "test", "loud", "mode", "ok", "warn", "the disk is on fire")
	// The plugin's stderr is read on its own: the line may come after Configure's answer.
	want := map[string]*regexp.Regexp{
		"warn": regexp.MustCompile(`^\S+ \[WARN\] +vigil-check-test: the disk is on fire: (.* )?check=loud( |$)`),
		"info": regexp.MustCompile(`^\S+ \[INFO\] +vigil-check-test: configured: (.* )?check=loud( |$)`),
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		missing := []string{}
		for what, re := range want {
			found := false
			for _, l := range strings.Split(log.String(), "\n") {
				found = found || re.MatchString(l)
			}
			if !found {
				missing = append(missing, what)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s the host's log lacks the plugin's %v line(s):\n%s", missing, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(log.String(), "[DEBUG] vigil-check-test: {") {
		t.Errorf("a plugin's JSON log line passed through unparsed:\n%s", log.String())
	}
}

func TestNotifyThroughHost(t *testing.T) {
	h := newHost(t, Options{})
	file := filepath.Join(t.TempDir(), "events")
	ctx := ctxFor(t, 20*time.Second)
	if _, err := h.ConfigureNotifier(ctx, "test", notify.ConfigureRequest{Name: "rec", Params: []notify.Param{{Key: "file", Values: []string{file}}}}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range [][2]string{{"BACKUP", "MASTER"}, {"MASTER", "FAULT"}} {
		err := h.Notify(ctx, "test", notify.NotifyRequest{Name: "rec", Event: notify.Event{
			Node: "lb1", Instance: "VI_1", OldState: s[0], NewState: s[1], Priority: 100, Time: at, VIPs: []string{"192.0.2.10/24"},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(file)
	want := "lb1 VI_1 BACKUP>MASTER 100 192.0.2.10/24 03:04:05\nlb1 VI_1 MASTER>FAULT 100 192.0.2.10/24 03:04:05\n"
	if string(b) != want {
		t.Fatalf("events:\n%s\nwant:\n%s", b, want)
	}
}

func TestList(t *testing.T) {
	var log bytes.Buffer
	found, err := List(ctxFor(t, 60*time.Second), Options{Dir: pluginDir, Logger: hclog.New(&hclog.LoggerOptions{Output: &log})})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range found {
		s := fmt.Sprintf("%s %s %s v%s p%d", f.Kind, f.Name, f.Info.Name, f.Info.Version, f.Info.ProtocolVersion)
		if f.Err != nil {
			s = fmt.Sprintf("%s %s: %v", f.Kind, f.Name, errors.Is(f.Err, ErrProtocol))
		}
		got = append(got, s)
	}
	want := []string{"check future: true", "check hello hello v0.1.0 p3", "check noisy noisy v0.1.0 p3", "check test test v1.0.0 p3", "check v1 old v0.1.0 p1", "check v2 old v0.1.0 p2", "notify test test v1.0.0 p3"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("List:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if kids := children(); len(kids) > 0 {
		t.Errorf("List left processes: %v", kids)
	}
}

// TestProtocolVersions: a plugin of the current SDK gets its probes on the probe lane
// (protocol 3); those that speak only protocol 1 or 2 still work, with a Check call per probe
// or on the Probes stream.
func TestProtocolVersions(t *testing.T) {
	h := newHost(t, Options{})
	configure(t, h, "test", "good", "mode", "ok")
	configure(t, h, "v1", "old")
	configure(t, h, "v2", "old")
	for _, tc := range []struct {
		plugin, check string
		version       int
	}{{"test", "good", sdk.ProtocolVersion}, {"v1", "old", 1}, {"v2", "old", 2}} {
		for range 3 {
			resp, err := h.Check(ctxFor(t, 10*time.Second), tc.plugin, check.CheckRequest{Name: tc.check})
			if err != nil || resp.Status != check.OK || resp.Message != tc.check {
				t.Fatalf("%s: %+v, %v", tc.plugin, resp, err)
			}
		}
		if v := h.procs[key{sdk.KindCheck, tc.plugin}].cur.version; v != tc.version {
			t.Errorf("%s: negotiated protocol %d, want %d", tc.plugin, v, tc.version)
		}
	}
}

// TestChecksumFromConfig: plugin_sha256 in global_defs reaches the host; a mismatch is refused
// naming the plugin, its file and both checksums, and the pinned plugin runs when they match.
func TestChecksumFromConfig(t *testing.T) {
	path := filepath.Join(pluginDir, "vigil-check-test")
	sum, err := sha256File(path)
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		pin  string
		want string // in the error; "" for none
	}{
		{wrong, fmt.Sprintf("plugin checksum mismatch: check plugin test: %s has SHA-256 %s, but plugin_sha256 vigil-check-test in global_defs expects %s", path, sum, wrong)},
		{strings.ToUpper(sum), ""},
	} {
		text := fmt.Sprintf("global_defs {\n    plugin_dir %s\n    plugin_sha256 vigil-check-test %s\n}\n", pluginDir, tc.pin)
		cfg, ds := config.Parse("vigil.conf", []byte(text), config.Options{})
		if ds.HasErrors() {
			t.Fatalf("config:\n%v", ds)
		}
		opts := ConfigOptions(cfg.Global, nil)
		h := newHost(t, opts)
		_, err := h.ConfigureCheck(ctxFor(t, 20*time.Second), "test", check.ConfigureRequest{Name: "good", Params: []check.Param{{Key: "mode", Values: []string{"ok"}}}})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("pinned with the right checksum: %v", err)
		case tc.want != "" && (!errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("got %v\nwant %v containing %q", err, ErrChecksum, tc.want)
		}
	}
}

// TestStdoutNoise: a plugin that prints to stdout before its handshake still starts; the
// noise is logged under the plugin's name, not taken for the handshake.
func TestStdoutNoise(t *testing.T) {
	var log syncBuffer
	h := New(Options{Dir: pluginDir, Logger: hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Debug})})
	defer h.Close()
	ctx := ctxFor(t, 20*time.Second)
	if _, err := h.ConfigureCheck(ctx, "noisy", check.ConfigureRequest{Name: "n"}); err != nil {
		t.Fatalf("configure: %v\n%s", err, log.String())
	}
	resp, err := h.Check(ctx, "noisy", check.CheckRequest{Name: "n"})
	if err != nil || resp.Status != check.OK || resp.Message != "n" {
		t.Fatalf("probe: %+v, %v", resp, err)
	}
	out := log.String()
	for _, want := range []string{
		`plugin=vigil-check-noisy line="noisy: hello from init"`,
		`line="1|2|not a handshake"`,
		`line="xxxxxxxx`,
		`lines ignored: plugin=vigil-check-noisy count=3`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
