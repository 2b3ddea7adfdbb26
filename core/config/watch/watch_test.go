package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

const (
	debounce = 50 * time.Millisecond
	// fires is how long a test waits for a reload that must come: generous, for a loaded CI.
	fires = 5 * time.Second
	// quiet is how long a test waits to be sure that no reload comes: many debounces.
	quiet = 10 * debounce
)

// testLog sends the watcher's log to the test's.
func testLog(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "watch", Level: hclog.Debug, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// started is a running Watcher and what each of its reloads read from the file it was asked to
// record.
type started struct {
	w       *Watcher
	reloads chan string
}

// start runs a Watcher on files until the test ends; each reload records the content that
// record (through its path) has at that moment, or "<missing>".
func start(t *testing.T, files []string, record string) started {
	t.Helper()
	w, err := New(files, debounce, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	reloads := make(chan string, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, func() {
			b, err := os.ReadFile(record)
			if err != nil {
				reloads <- "<missing>"
				return
			}
			reloads <- string(b)
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return started{w: w, reloads: reloads}
}

// reload waits for the next reload and returns what it read.
func (s started) reload(t *testing.T) string {
	t.Helper()
	select {
	case got := <-s.reloads:
		return got
	case <-time.After(fires):
		t.Fatalf("no reload within %v", fires)
		return ""
	}
}

// noReload fails if a reload comes within quiet.
func (s started) noReload(t *testing.T) {
	t.Helper()
	select {
	case got := <-s.reloads:
		t.Fatalf("unexpected reload (file read %q)", got)
	case <-time.After(quiet):
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInPlaceWriteReloadsOnce(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "vigil.conf")
	write(t, conf, "one\n")
	s := start(t, []string{conf}, conf)

	write(t, conf, "two\n")
	if got := s.reload(t); got != "two\n" {
		t.Errorf("reload read %q, want %q", got, "two\n")
	}
	s.noReload(t)
}

func TestRenameOverReloads(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "vigil.conf")
	write(t, conf, "one\n")
	s := start(t, []string{conf}, conf)

	// Twice: after the first rename the original inode is gone, and the watch must not be.
	for _, content := range []string{"two\n", "three\n"} {
		tmp := filepath.Join(dir, ".vigil.conf.swp")
		write(t, tmp, content)
		if err := os.Rename(tmp, conf); err != nil {
			t.Fatal(err)
		}
		if got := s.reload(t); got != content {
			t.Errorf("reload read %q, want %q", got, content)
		}
	}
	s.noReload(t)
}

// kubeUpdate does what the kubelet does to a ConfigMap volume: a new timestamped directory, a
// ..data_tmp symlink to it renamed over ..data, and the old directory removed.
func kubeUpdate(t *testing.T, dir, stamp, content, old string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, stamp), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, stamp, "vigil.conf"), content)
	if err := os.Symlink(stamp, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKubernetesSymlinkSwapReloads(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "..2026_a"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "..2026_a", "vigil.conf"), "a\n")
	if err := os.Symlink("..2026_a", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "vigil.conf")
	if err := os.Symlink("..data/vigil.conf", conf); err != nil {
		t.Fatal(err)
	}
	s := start(t, []string{conf}, conf)

	kubeUpdate(t, dir, "..2026_b", "b\n", "")
	if got := s.reload(t); got != "b\n" {
		t.Errorf("reload read %q, want %q", got, "b\n")
	}
	// The kubelet then removes the old directory: not a change of content.
	if err := os.RemoveAll(filepath.Join(dir, "..2026_a")); err != nil {
		t.Fatal(err)
	}
	s.noReload(t)
	// A second update follows the new chain.
	kubeUpdate(t, dir, "..2026_c", "c\n", "..2026_b")
	if got := s.reload(t); got != "c\n" {
		t.Errorf("second reload read %q, want %q", got, "c\n")
	}
	s.noReload(t)
}

func TestSymlinkTargetWrittenInPlaceReloads(t *testing.T) {
	etc, srv := t.TempDir(), t.TempDir()
	real := filepath.Join(srv, "real.conf")
	write(t, real, "one\n")
	conf := filepath.Join(etc, "vigil.conf")
	if err := os.Symlink(real, conf); err != nil {
		t.Fatal(err)
	}
	s := start(t, []string{conf}, conf)

	write(t, real, "two\n")
	if got := s.reload(t); got != "two\n" {
		t.Errorf("reload read %q, want %q", got, "two\n")
	}
	s.noReload(t)
}

func TestUnrelatedFileDoesNotReload(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "vigil.conf")
	write(t, conf, "one\n")
	s := start(t, []string{conf}, conf)

	other := filepath.Join(dir, "hosts")
	write(t, other, "127.0.0.1 localhost\n")
	write(t, other, "127.0.0.1 localhost here\n")
	if err := os.Rename(other, other+".bak"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(other + ".bak"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.noReload(t)
}

func TestTouchDoesNotReload(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "vigil.conf")
	write(t, conf, "one\n")
	s := start(t, []string{conf}, conf)

	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(conf, later, later); err != nil {
		t.Fatal(err)
	}
	s.noReload(t)
	// A write of the same bytes is an event that matters, but the content is the same.
	write(t, conf, "one\n")
	s.noReload(t)
}

// TestBurstConvergesOnLastContent: a burst of writes closer together than the debounce
// gives few reloads, the last of them with the last content. How few depends on the writer:
// each pause of a debounce or more between two writes (a loaded machine descheduling this
// goroutine) lets the watcher reload, as it should. So the bound counts those pauses instead
// of assuming the machine is idle: without debouncing, 100 writes would give about 100.
func TestBurstConvergesOnLastContent(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "vigil.conf")
	write(t, conf, "initial\n")
	s := start(t, []string{conf}, conf)

	const writes = 100
	final := fmt.Sprintf("edit %d\n", writes-1)
	pauses := 0
	last := time.Now()
	for i := range writes {
		// A pause counts from the end of one write to the end of the next: a reload can
		// also read the file between the truncation and the write of os.WriteFile.
		write(t, conf, fmt.Sprintf("edit %d\n", i))
		if now := time.Now(); now.Sub(last) >= debounce {
			pauses++
		}
		last = time.Now()
		time.Sleep(10 * time.Millisecond)
	}
	var got []string
	for len(got) == 0 || got[len(got)-1] != final {
		got = append(got, s.reload(t))
	}
	s.noReload(t)
	t.Logf("%d writes with %d pauses of %s or more gave %d reloads", writes, pauses, debounce, len(got))
	// The last write's reload, one per pause, and one for a pause the writer did not see
	// whole (the watcher's timer started before the write that ended it).
	if limit := 2*pauses + 2; len(got) > limit {
		t.Errorf("%d writes with %d pauses gave %d reloads, want at most %d: %q", writes, pauses, len(got), limit, got)
	}
}

func TestIncludedFileInOtherDirectoryReloads(t *testing.T) {
	etc, confd := t.TempDir(), t.TempDir()
	conf := filepath.Join(etc, "vigil.conf")
	inc := filepath.Join(confd, "vrrp.conf")
	write(t, conf, "include "+inc+"\n")
	write(t, inc, "one\n")
	s := start(t, []string{conf, inc}, inc)

	write(t, filepath.Join(confd, "unrelated.conf"), "x\n")
	s.noReload(t)
	write(t, inc, "two\n")
	if got := s.reload(t); got != "two\n" {
		t.Errorf("reload read %q, want %q", got, "two\n")
	}
	s.noReload(t)
}

func TestSetFilesAddsAndRemovesWatches(t *testing.T) {
	etc, confd := t.TempDir(), t.TempDir()
	conf := filepath.Join(etc, "vigil.conf")
	inc := filepath.Join(confd, "vrrp.conf")
	write(t, conf, "one\n")
	write(t, inc, "inc one\n")
	s := start(t, []string{conf}, inc)

	write(t, inc, "inc two\n")
	s.noReload(t)
	if slices.Contains(s.w.fsw.WatchList(), confd) {
		t.Fatalf("%s watched before SetFiles", confd)
	}

	if err := s.w.SetFiles([]string{conf, inc}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.w.fsw.WatchList(), confd) {
		t.Fatalf("%s not watched after SetFiles: %q", confd, s.w.fsw.WatchList())
	}
	// The new file's fingerprint is taken now: the write before SetFiles is not a change.
	s.noReload(t)
	write(t, inc, "inc three\n")
	if got := s.reload(t); got != "inc three\n" {
		t.Errorf("reload read %q, want %q", got, "inc three\n")
	}

	// conf keeps its fingerprint through SetFiles: a change not yet seen still reloads.
	if err := s.w.SetFiles([]string{conf}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(s.w.fsw.WatchList(), confd) {
		t.Errorf("%s still watched after SetFiles without it: %q", confd, s.w.fsw.WatchList())
	}
	write(t, inc, "inc four\n")
	s.noReload(t)
	write(t, conf, "two\n")
	if got := s.reload(t); got != "inc four\n" {
		t.Errorf("reload read %q, want %q", got, "inc four\n")
	}
}

func TestMissingDirectoryIsWatchedForCreation(t *testing.T) {
	base := t.TempDir()
	confd := filepath.Join(base, "conf.d")
	inc := filepath.Join(confd, "vrrp.conf")
	s := start(t, []string{inc}, inc)

	if err := os.Mkdir(confd, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, inc, "one\n")
	if got := s.reload(t); got != "one\n" {
		t.Errorf("reload read %q, want %q", got, "one\n")
	}
	// And the directory is watched now.
	write(t, inc, "two\n")
	if got := s.reload(t); got != "two\n" {
		t.Errorf("reload read %q, want %q", got, "two\n")
	}
}

func TestDirectoryRemovedAndRecreated(t *testing.T) {
	base := t.TempDir()
	confd := filepath.Join(base, "conf.d")
	inc := filepath.Join(confd, "vrrp.conf")
	if err := os.Mkdir(confd, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, inc, "one\n")
	s := start(t, []string{inc}, inc)

	if err := os.RemoveAll(confd); err != nil {
		t.Fatal(err)
	}
	if got := s.reload(t); got != "<missing>" {
		t.Errorf("reload read %q, want the file missing", got)
	}
	if err := os.Mkdir(confd, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, inc, "two\n")
	if got := s.reload(t); got != "two\n" {
		t.Errorf("reload read %q, want %q", got, "two\n")
	}
	write(t, inc, "three\n")
	if got := s.reload(t); got != "three\n" {
		t.Errorf("reload read %q, want %q", got, "three\n")
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "..2026_a"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "..2026_a", "vigil.conf"), "a\n")
	if err := os.Symlink("..2026_a", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/vigil.conf", filepath.Join(dir, "vigil.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop", filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path    string
		want    []string
		wantErr bool
	}{
		{"vigil.conf", []string{"vigil.conf", "..data", "..2026_a/vigil.conf"}, false},
		{"..data/./vigil.conf", []string{"..data", "..2026_a/vigil.conf"}, false},
		{"..2026_a/../vigil.conf", []string{"vigil.conf", "..data", "..2026_a/vigil.conf"}, false},
		{"missing/vigil.conf", []string{"missing"}, true},
		{"loop", slices.Repeat([]string{"loop"}, maxLinks+1), true},
	} {
		got, err := resolve(dir + "/" + tt.path)
		var want []string
		for _, w := range tt.want {
			want = append(want, filepath.Join(dir, w))
		}
		if !slices.Equal(got, want) || (err != nil) != tt.wantErr {
			t.Errorf("resolve(%q) = %q, %v; want %q, error %v", tt.path, got, err, want, tt.wantErr)
		}
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(nil, debounce, nil); err == nil {
		t.Error("New without files: no error")
	}
	if _, err := New([]string{"/etc/vigil.conf"}, 0, nil); err == nil {
		t.Error("New with a zero debounce: no error")
	}
	w, err := New([]string{filepath.Join(t.TempDir(), "vigil.conf")}, debounce, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.SetFiles([]string{"/etc/vigil.conf"}); err == nil {
		t.Error("SetFiles after Close: no error")
	}
}

// TestIncludePatternNewFile: a file that starts or stops matching an include pattern
// (include conf.d/*.conf) changes the configuration though no watched file changed; other
// names in that directory do not.
func TestIncludePatternNewFile(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "vigil.conf")
	confd := filepath.Join(dir, "conf.d")
	if err := os.WriteFile(main, []byte("include conf.d/*.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(confd, 0o755); err != nil {
		t.Fatal(err)
	}
	s := start(t, []string{main}, main)
	if err := s.w.SetPatterns([]string{filepath.Join(confd, "*.conf")}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confd, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.noReload(t)
	extra := filepath.Join(confd, "vi2.conf")
	if err := os.WriteFile(extra, []byte("vrrp_instance VI_2 {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.reload(t)
	s.noReload(t)
	// Once the reload took the new file in, SetFiles watches its content as any other's.
	if err := s.w.SetFiles([]string{main, extra}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(extra, []byte("vrrp_instance VI_2 { priority 50 }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.reload(t)
	if err := os.Remove(extra); err != nil {
		t.Fatal(err)
	}
	s.reload(t)
	s.noReload(t)
}

// TestAcceptSnapshot: content a reload already read (after a SIGHUP) does not reload again
// when the debounce ends; a write after the snapshot still does.
func TestAcceptSnapshot(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "vigil.conf")
	if err := os.WriteFile(f, []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := start(t, []string{f}, f)
	if err := os.WriteFile(f, []byte("b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.w.Accept(s.w.Snapshot()) // what a SIGHUP's reload does right after the write
	s.noReload(t)
	snap := s.w.Snapshot()
	if err := os.WriteFile(f, []byte("c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.w.Accept(snap) // the reload read b, not c
	if got := s.reload(t); got != "c\n" {
		t.Fatalf("reload read %q, want c", got)
	}
}
