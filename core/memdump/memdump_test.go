package memdump

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, "vrrp"); err != nil {
		t.Fatal(err)
	}
	checkDump(t, dir, "vrrp")
}

// checkDump checks that dir holds a dump of this process in role: a gzipped pprof profile
// and the statistics, with the runtime's and the kernel's figures filled in.
func checkDump(t *testing.T, dir, role string) {
	t.Helper()
	base := filepath.Join(dir, fmt.Sprintf("%s-%d", role, os.Getpid()))
	prof, err := os.ReadFile(base + ".heap")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(prof, []byte{0x1f, 0x8b}) {
		t.Errorf("%s.heap is not a gzipped profile: % x", base, prof[:min(len(prof), 8)])
	}
	b, err := os.ReadFile(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Role != role || st.PID != os.Getpid() || st.MemStats.HeapInuse == 0 || st.Goroutines == 0 {
		t.Errorf("stats: role %q pid %d heap in use %d goroutines %d", st.Role, st.PID, st.MemStats.HeapInuse, st.Goroutines)
	}
	for _, k := range []string{"VmRSS", "RssAnon", "RssFile", "Threads", "Pss"} {
		if st.Proc[k] == "" {
			t.Errorf("stats lack %s from /proc: %v", k, st.Proc)
		}
	}
}

// TestOnSignal: with the variable set, SIGUSR2 writes a dump (without it, the signal would
// kill the test binary: its default action).
func TestOnSignal(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(Env, dir)
	OnSignal("core", t.Errorf)
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	json := filepath.Join(dir, fmt.Sprintf("core-%d.json", os.Getpid()))
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(json); err == nil {
			break
		}
	}
	checkDump(t, dir, "core")
}
