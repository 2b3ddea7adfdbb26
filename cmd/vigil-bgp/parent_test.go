package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// vigil-bgp exits once its parent is gone. Its parent here is a shell that starts it in the
// background and exits at once, as a vrrp process that dies would leave it.
func TestExitsWhenParentIsGone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds vigil-bgp")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: cannot build vigil-bgp")
	}
	bin := filepath.Join(t.TempDir(), "vigil-bgp")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build vigil-bgp: %v\n%s", err, out)
	}
	// The handshake's cookie (core/internal/bgppb) lets it serve. The shell exits once
	// go-plugin's handshake line is in the file, which vigil-bgp writes after it noted its
	// parent; a file and not a pipe, so that vigil-bgp is not ended by a closed pipe.
	hs := filepath.Join(t.TempDir(), "handshake")
	sh := exec.Command("sh", "-c", `"$0" >"$1" 2>/dev/null </dev/null & pid=$!
while [ ! -s "$1" ] && kill -0 $pid 2>/dev/null; do sleep 0.05; done
echo $pid`, bin, hs)
	sh.Env = append(os.Environ(), "VIGIL_BGP_SPEAKER=the-vrrp-process-started-me")
	out, err := sh.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("pid of vigil-bgp: %q: %v", out, err)
	}
	t.Cleanup(func() {
		if alive(pid, bin) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid, bin) {
		if time.Now().After(deadline) {
			t.Fatalf("vigil-bgp (pid %d) still runs 30 s after its parent exited", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alive says whether pid is still bin, running (a zombie waiting for its new parent to reap
// it has ended).
func alive(pid int, bin string) bool {
	if exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err != nil || exe != bin {
		return false
	}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if st, ok := strings.CutPrefix(sc.Text(), "State:"); ok {
			return !strings.HasPrefix(strings.TrimSpace(st), "Z")
		}
	}
	return false
}
