package plugin

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
)

// TestVerifyCheck: a reload's second look at a running plugin's file. While the file is safe
// VerifyCheck says nothing and the plugin keeps running; once others can write to it,
// VerifyCheck names the file and the fix, and the running process is stopped. A plugin that
// is not installed is not VerifyCheck's business.
func TestVerifyCheck(t *testing.T) {
	dir, err := os.MkdirTemp("", "vigil-verify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(filepath.Join(pluginDir, "vigil-check-test"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vigil-check-test")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	h := newHost(t, Options{Dir: dir})
	if _, err := h.ConfigureCheck(ctxFor(t, 20*time.Second), "test", check.ConfigureRequest{Name: "good", Params: []check.Param{{Key: "mode", Values: []string{"ok"}}}}); err != nil {
		t.Fatal(err)
	}
	p, _ := h.proc(sdk.KindCheck, "test")
	p.mu.Lock()
	pid := p.cur.pid
	p.mu.Unlock()
	if err := h.VerifyCheck("test"); err != nil {
		t.Fatalf("safe plugin: %v", err)
	}
	if err := h.VerifyCheck("absent"); err != nil {
		t.Errorf("a plugin that is not installed: %v", err)
	}

	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	err = h.VerifyCheck("test")
	if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "run chmod go-w "+path) {
		t.Fatalf("world-writable plugin: %v", err)
	}
	p.mu.Lock()
	running := p.cur != nil
	p.mu.Unlock()
	if running || syscall.Kill(pid, 0) == nil && !exited(pid) {
		t.Errorf("the plugin process %d still runs after its file became unsafe", pid)
	}
}

// exited reports whether pid is gone or a zombie.
func exited(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || strings.Contains(string(b), ") Z ")
}
