package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/supervisor"
)

// fakeChildren stands in for the supervisor: it records the configurations a reload hands
// it and, with release set, holds each reload until release is closed.
type fakeChildren struct {
	entered chan *config.Config // each reload's configuration as it arrives, when set
	release chan struct{}       // when set, each reload waits for it

	mu          sync.Mutex
	got         []*config.Config
	inFlight    int
	maxInFlight int
}

func (f *fakeChildren) Reload(ctx context.Context, cfg *config.Config) (supervisor.ReloadReport, error) {
	f.mu.Lock()
	f.got = append(f.got, cfg)
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if f.entered != nil {
		f.entered <- cfg
	}
	if f.release != nil {
		<-f.release
	}
	return supervisor.ReloadReport{VRRP: supervisor.ChildReload{Changed: []string{"VI_1"}}}, nil
}

func (f *fakeChildren) ValidateChecks(context.Context, *config.Config, []child.ValidateItem) ([]supervisor.CheckVerdict, error) {
	return nil, supervisor.ErrNoCheckProcess
}

func (f *fakeChildren) reloads() []*config.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*config.Config(nil), f.got...)
}

// instance is a configuration of one instance on lo, which every host has: a reload checks
// that the interface exists.
func instance(iface string, prio int) string {
	return fmt.Sprintf(`vrrp_instance VI_1 {
    interface %s
    virtual_router_id 7
    priority %d
    virtual_ipaddress {
        192.0.2.7/32
    }
}
`, iface, prio)
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// logLines is a logger whose lines containing want are sent on the channel it returns.
func logLines(t *testing.T, want string) (hclog.Logger, <-chan string) {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				select {
				case lines <- sc.Text():
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	return hclog.New(&hclog.LoggerOptions{Output: pw, Level: hclog.Debug}), lines
}

// testReloader returns an open reloader of the file's configuration, with f as its
// children. Its notify actions have nothing to do (the file has no notify), as at start.
func testReloader(t *testing.T, file string, f *fakeChildren, log hclog.Logger, around func(string, *config.Config) func(supervisor.ReloadStatus, *config.Config)) *reloader {
	t.Helper()
	opts := config.Options{ConfigID: "test"}
	cfg, ds := config.Load(file, opts)
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	route := &notifyRoute{}
	route.start(startNotify(cfg, hclog.NewNullLogger(), nil))
	t.Cleanup(route.close)
	r := newReloader(cfg, reloaderOptions{File: file, Config: opts, Children: f, Notify: route, Log: log, Around: around})
	r.open(nil)
	return r
}

func priorityOf(cfg *config.Config) int { return int(cfg.Instances[0].Priority) }

// heldReloader is an open reloader of a file with priority 100 whose children hold every
// reload until f.release is closed, the file already rewritten with priority 150, and the
// log lines containing want.
func heldReloader(t *testing.T, want string) (r *reloader, f *fakeChildren, file string, lines <-chan string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "vigil.conf")
	writeFile(t, file, instance("lo", 100))
	f = &fakeChildren{entered: make(chan *config.Config, 4), release: make(chan struct{})}
	log, lines := logLines(t, want)
	r = testReloader(t, file, f, log, nil)
	writeFile(t, file, instance("lo", 150))
	return r, f, file, lines
}

// A good file: the children get it, it becomes the running configuration, the result says
// applied and is kept for `vigil status`; Around sees the configuration before and after.
func TestReloadApplies(t *testing.T) {
	file := filepath.Join(t.TempDir(), "vigil.conf")
	writeFile(t, file, instance("lo", 100))
	f := &fakeChildren{}
	var before, after int
	r := testReloader(t, file, f, hclog.NewNullLogger(), func(_ string, running *config.Config) func(supervisor.ReloadStatus, *config.Config) {
		before = priorityOf(running)
		return func(_ supervisor.ReloadStatus, running *config.Config) { after = priorityOf(running) }
	})
	writeFile(t, file, instance("lo", 150))

	st := r.reload(context.Background(), "SIGHUP")
	if !st.OK || len(st.Errors) > 0 || st.Trigger != "SIGHUP" || st.Report == nil || fmt.Sprint(st.Report.VRRP.Changed) != "[VI_1]" {
		t.Fatalf("reload = %+v, want applied with the children's report", st)
	}
	if got := f.reloads(); len(got) != 1 || priorityOf(got[0]) != 150 {
		t.Errorf("the children got %d configurations, want the one with priority 150", len(got))
	}
	if p := priorityOf(r.config()); p != 150 {
		t.Errorf("running priority %d after the reload, want 150", p)
	}
	if last := r.last.Load(); last == nil || last.Trigger != "SIGHUP" || !last.OK {
		t.Errorf("last reload %+v, want this one", last)
	}
	if before != 100 || after != 150 {
		t.Errorf("Around saw priority %d before and %d after, want 100 and 150", before, after)
	}
}

// A file with errors changes nothing: the children are not asked, the running
// configuration stays, and each error is reported with its place.
func TestReloadRefusesBrokenFile(t *testing.T) {
	for _, c := range []struct {
		name, body, want string
	}{
		{"unknown keyword", instance("lo", 100) + "vrrp_instanse VI_2 {\n}\n", `:9:1: error: `},
		{"priority out of range", instance("lo", 1000), `:4:`},
		{"interface missing", instance("vigil-none0", 100), `:1:1: error: vrrp_instance VI_1: interface "vigil-none0" does not exist on this host`},
		{"file gone", "", `no such file`},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "vigil.conf")
			writeFile(t, file, instance("lo", 100))
			f := &fakeChildren{}
			r := testReloader(t, file, f, hclog.NewNullLogger(), nil)
			running := r.config()
			if c.body == "" {
				os.Remove(file)
			} else {
				writeFile(t, file, c.body)
			}

			st := r.reload(context.Background(), "vigil reload")
			if st.OK || st.Report != nil || len(st.Errors) == 0 {
				t.Fatalf("reload = %+v, want refused with errors and no report", st)
			}
			if !strings.Contains(strings.Join(st.Errors, "\n"), c.want) {
				t.Errorf("errors:\n%s\nwant one containing %q", strings.Join(st.Errors, "\n"), c.want)
			}
			if c.body != "" && !strings.HasPrefix(st.Errors[0], file+":") {
				t.Errorf("error %q does not begin with the file's place", st.Errors[0])
			}
			if n := len(f.reloads()); n != 0 {
				t.Errorf("the children got %d configurations, want none", n)
			}
			if r.config() != running {
				t.Errorf("the running configuration changed")
			}
			if last := r.last.Load(); last == nil || last.OK {
				t.Errorf("last reload %+v, want this refused one", last)
			}
		})
	}
}

// Reloads asked for at once (SIGHUP and `vigil reload`) run one after another: the second
// waits while the first is in the children, then reads the file as it is by then, and each
// caller gets its own answer. A caller that gives up while waiting gets an answer too, and
// changes nothing.
func TestConcurrentReloads(t *testing.T) {
	r, f, file, waiting := heldReloader(t, "reload waits for the one in progress")

	var first, second supervisor.ReloadStatus
	firstDone, secondDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(firstDone); first = r.reload(context.Background(), "SIGHUP") }()
	<-f.entered // the first reload is in the children, and stays there until release
	// The second reload would be refused: it must read the file only once the first is
	// over, and say so to its own caller only.
	writeFile(t, file, instance("lo", 1000))
	go func() { defer close(secondDone); second = r.reload(context.Background(), "vigil reload") }()
	select {
	case line := <-waiting:
		if !strings.Contains(line, "trigger=\"vigil reload\"") {
			t.Errorf("waiting line %q does not name the second reload's trigger", line)
		}
	case cfg := <-f.entered:
		t.Fatalf("a second reload (priority %d) reached the children while the first was there", priorityOf(cfg))
	case <-secondDone:
		t.Fatalf("the second reload ended while the first was in the children: %+v", second)
	}

	// A third caller gives up while waiting (its control connection closed): it gets an
	// answer at once, and nothing of it runs.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if st := r.reload(ctx, "vigil reload"); st.OK || len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "reload not begun: context canceled") {
		t.Errorf("a reload given up while waiting = %+v, want not begun", st)
	}

	close(f.release)
	<-firstDone
	<-secondDone
	if !first.OK || first.Trigger != "SIGHUP" {
		t.Errorf("first reload = %+v, want SIGHUP applied", first)
	}
	if second.OK || second.Trigger != "vigil reload" || second.Report != nil || !strings.Contains(strings.Join(second.Errors, "\n"), file+":4:") {
		t.Errorf("second reload = %+v, want vigil reload refused for the priority at line 4", second)
	}
	if p := priorityOf(r.config()); p != 150 {
		t.Errorf("running priority %d, want the first reload's 150", p)
	}
	if got := f.reloads(); len(got) != 1 || f.maxInFlight != 1 {
		t.Errorf("the children got %d configurations, at most %d at once; want 1", len(got), f.maxInFlight)
	}
	if last := r.last.Load(); last == nil || last.Trigger != "vigil reload" || last.OK {
		t.Errorf("last reload %+v, want the refused second one (the given-up one is not kept)", last)
	}
}

// The stop waits for a reload in progress, then refuses every later reload cleanly: an
// answer that says why, the children not asked, the running configuration kept.
func TestReloadDuringStop(t *testing.T) {
	r, f, file, waiting := heldReloader(t, "the stop waits for the reload in progress")

	reloaded := make(chan supervisor.ReloadStatus, 1)
	go func() { reloaded <- r.reload(context.Background(), "file change") }()
	<-f.entered
	stopped := make(chan struct{})
	go func() { defer close(stopped); r.stop() }()
	// The reload in the children ends first; the stop cannot end before it.
	select {
	case <-stopped:
		t.Fatal("the stop ended while a reload was in the children")
	case <-waiting:
	}
	close(f.release)
	st := <-reloaded
	<-stopped
	if !st.OK {
		t.Errorf("the reload in progress at the stop = %+v, want applied", st)
	}
	running := r.config()

	writeFile(t, file, instance("lo", 200))
	for _, trigger := range []string{"SIGHUP", "vigil reload", "file change"} {
		st := r.reload(context.Background(), trigger)
		if st.OK || st.Report != nil || st.Trigger != trigger || len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "vigil is stopping") {
			t.Errorf("%s during the stop = %+v, want refused because vigil is stopping", trigger, st)
		}
	}
	if n := len(f.reloads()); n != 1 {
		t.Errorf("the children got %d configurations, want only the one before the stop", n)
	}
	if r.config() != running || priorityOf(running) != 150 {
		t.Errorf("the running configuration changed during the stop")
	}
	if last := r.last.Load(); last == nil || !last.OK || last.Trigger != "file change" {
		t.Errorf("last reload %+v, want the one before the stop", last)
	}
}

// Reloads queued behind the one in progress when the stop begins are refused, not run before
// the stop: a SIGTERM must not wait for a full transaction per queued `vigil reload`.
func TestStopOvertakesQueuedReloads(t *testing.T) {
	r, f, _, waits := heldReloader(t, "waits for")

	first := make(chan supervisor.ReloadStatus, 1)
	go func() { first <- r.reload(context.Background(), "file change") }()
	<-f.entered
	queued := make(chan supervisor.ReloadStatus, 2)
	for _, trigger := range []string{"SIGHUP", "vigil reload"} {
		go func() { queued <- r.reload(context.Background(), trigger) }()
	}
	<-waits
	<-waits // both wait for the turn (each says so just before it blocks)
	// Let both block on the turn before the stop queues behind them: with the queue served in
	// order, a stop that only looked at the flag in its own turn would run both first.
	time.Sleep(100 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { defer close(stopped); r.stop() }()
	<-waits // the stop waits for the reload in progress
	close(f.release)
	if st := <-first; !st.OK {
		t.Errorf("the reload in progress at the stop = %+v, want applied", st)
	}
	for range 2 {
		st := <-queued
		if st.OK || len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "vigil is stopping") {
			t.Errorf("%s queued at the stop = %+v, want refused because vigil is stopping", st.Trigger, st)
		}
	}
	<-stopped
	if n := len(f.reloads()); n != 1 {
		t.Errorf("the children got %d configurations, want only the one in progress at the stop", n)
	}
}
