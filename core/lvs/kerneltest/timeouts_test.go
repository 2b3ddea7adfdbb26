package kerneltest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/vm"
)

// timeouts is `ipvsadm -L --timeout` in ns: "TCP TCPFIN UDP" in seconds.
func timeouts(t *testing.T, ns netns) string {
	t.Helper()
	out := ns.exec(t, "ipvsadm", "-L", "--timeout")
	_, rest, ok := strings.Cut(out, "):")
	if !ok {
		t.Fatalf("ipvsadm -L --timeout: %q", out)
	}
	return strings.Join(strings.Fields(rest), " ")
}

// TestVMTimeouts: lvs_timeouts, through a start, three reloads and a stop, leave the
// kernel's timeouts (ipvsadm -L --timeout) as keepalived 2.2.7 leaves them on the same
// files: at start and at each reload the timeouts the file sets, the kernel's own values of
// before the first change for those it leaves out; a reload without lvs_timeouts and the
// stop put the kernel's values back. Each daemon runs in a namespace of its own (the
// timeouts are the namespace's).
func TestVMTimeouts(t *testing.T) {
	vm.Guest(t)
	t.Parallel()
	vs := `
virtual_server 192.0.2.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 198.51.100.11 80 {
        weight 1
    }
}
`
	files := []string{
		"global_defs {\n    lvs_timeouts tcp 1000 udp 50\n}\n" + vs,
		"global_defs {\n    lvs_timeouts tcpfin 30\n}\n" + vs,
		vs,
		"global_defs {\n    lvs_timeouts tcp 1200\n}\n" + vs,
	}
	ka, kaErr := exec.LookPath("keepalived")
	for _, impl := range []string{"keepalived", "vigil"} {
		t.Run(impl, func(t *testing.T) {
			if impl == "keepalived" && kaErr != nil {
				t.Skip("keepalived is not installed: apt-get install keepalived")
			}
			ns := newNS(t, "tmo"+impl[:1])
			orig := strings.Fields(timeouts(t, ns))
			if len(orig) != 3 {
				t.Fatalf("ipvsadm -L --timeout: %v", orig)
			}
			want := []string{
				"1000 " + orig[1] + " 50",
				orig[0] + " 30 " + orig[2],
				strings.Join(orig, " "),
				"1200 " + orig[1] + " " + orig[2],
			}
			work := t.TempDir()
			conf := filepath.Join(work, "keepalived.conf")
			write := func(i int) {
				if err := os.WriteFile(conf, []byte(files[i]), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(0)
			var (
				proc *os.Process
				done <-chan struct{}
			)
			if impl == "vigil" {
				d := startVigilFile(t, ns, conf)
				proc, done = d.cmd.Process, d.done
			} else {
				proc, done = startKeepalived(t, ns, ka, conf, work)
			}
			step := func(what, want string) {
				t.Helper()
				waitFor(t, 60*time.Second, fmt.Sprintf("%s: timeouts %q", what, want), func() bool {
					select {
					case <-done:
						t.Fatalf("%s exited", impl)
					default:
					}
					return timeouts(t, ns) == want
				})
				t.Logf("%-40s ipvsadm --timeout: %s", what, want)
			}
			step("start with "+firstLine(files[0][len("global_defs {"):]), want[0])
			for i := 1; i < len(files); i++ {
				write(i)
				if err := proc.Signal(syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
				what := "reload without lvs_timeouts"
				if strings.HasPrefix(files[i], "global_defs") {
					what = "reload with " + firstLine(files[i][len("global_defs {"):])
				}
				step(what, want[i])
			}
			if err := proc.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("%s did not stop on SIGTERM", impl)
			}
			if got := timeouts(t, ns); got != strings.Join(orig, " ") {
				t.Errorf("after the stop: timeouts %q, want the kernel's %q", got, strings.Join(orig, " "))
			}
			t.Logf("%-40s ipvsadm --timeout: %s", "stopped", timeouts(t, ns))
		})
	}
}

// startKeepalived runs keepalived's checker process (-C) on conf in ns, in the foreground,
// until the test ends.
func startKeepalived(t *testing.T, ns netns, ka, conf, work string) (*os.Process, <-chan struct{}) {
	t.Helper()
	logPath := filepath.Join(work, "keepalived.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", string(ns), ka, "-n", "-l", "-C", "-f", conf,
		"-p", filepath.Join(work, "keepalived.pid"), "-c", filepath.Join(work, "checkers.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("keepalived's log:\n%s", b)
		}
	})
	return cmd.Process, done
}
