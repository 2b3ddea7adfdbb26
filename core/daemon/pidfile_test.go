package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writePidFile refuses to start beside a live vigil, named by its pid file, and takes over a
// pid file that a dead or an unrelated process left.
func TestWritePidFile(t *testing.T) {
	dir := t.TempDir()
	// A live process whose name says vigil: a copy of sleep, as a second vigil would be.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skipf("no sleep program to stand in for a running vigil: %v", err)
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "vigil")
	if err := os.WriteFile(fake, b, 0o755); err != nil {
		t.Fatal(err)
	}
	live := exec.Command(fake, "600")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })
	// A process that ended: its pid is free (or another program's).
	dead := exec.Command(sleep, "0")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	unrelated := exec.Command(sleep, "600")
	if err := unrelated.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unrelated.Process.Kill(); unrelated.Wait() })

	for _, c := range []struct {
		name   string
		before string // the pid file's content; "" for none
		refuse bool
	}{
		{"none", "", false},
		{"live vigil", strconv.Itoa(live.Process.Pid), true},
		{"dead process", strconv.Itoa(dead.Process.Pid), false},
		{"live other program", strconv.Itoa(unrelated.Process.Pid), false},
		{"own pid", strconv.Itoa(os.Getpid()), false},
		{"garbage", "not a pid", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "run", "vigil.pid")
			if c.before != "" {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(c.before+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := writePidFile(path)
			got, _ := os.ReadFile(path)
			if c.refuse {
				if err == nil || !strings.Contains(err.Error(), "vigil is already running (pid "+c.before+", pid file "+path+")") {
					t.Errorf("writePidFile = %v, want a refusal naming pid %s and the file", err, c.before)
				}
				if strings.TrimSpace(string(got)) != c.before {
					t.Errorf("the pid file reads %q after a refusal, want the running vigil's %s", got, c.before)
				}
				return
			}
			if err != nil {
				t.Fatalf("writePidFile = %v, want the file taken over", err)
			}
			if want := strconv.Itoa(os.Getpid()) + "\n"; string(got) != want {
				t.Errorf("pid file %q, want %q", got, want)
			}
		})
	}
}
