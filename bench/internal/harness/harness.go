// Package harness holds what every benchmark run needs around the measurements: where the
// module is (to build vigil from it), and what a run left behind when it ended.
package harness

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/proc"
	"github.com/vigil-ha/vigil/internal/lab"
)

// ModuleRoot is the directory of the vigil module the benchmark tool runs in.
func ModuleRoot(tool string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run %s inside the vigil module", tool)
	}
	return filepath.Dir(mod), nil
}

// Leftovers lists the network namespaces whose names start with nsPrefix and the processes
// whose command line leftover says are the run's, as "namespace NAME" and "process PID
// CMDLINE", joined by "; "; empty when nothing is left.
func Leftovers(nsPrefix string, leftover func(pid int, cmdline string) bool) string {
	var probs []string
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, nsPrefix) {
				probs = append(probs, "namespace "+strings.Fields(line)[0])
			}
		}
	}
	for _, s := range proc.All() {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", s.PID))
		c := strings.ReplaceAll(string(cmd), "\x00", " ")
		if leftover(s.PID, c) {
			probs = append(probs, fmt.Sprintf("process %d %s", s.PID, c))
		}
	}
	return strings.Join(probs, "; ")
}

// Logf writes one progress line to stderr, with the time of day, as every bench does.
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// CleanupOnSignal runs cleanup and exits 130 when the bench is interrupted (SIGINT,
// SIGTERM): what a run built (namespaces, daemons) must not outlive it.
func CleanupOnSignal(cleanup func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		Logf("%s: cleaning up", s)
		cleanup()
		os.Exit(130)
	}()
}

// Fatalf writes tool's error to stderr and exits 1.
func Fatalf(tool, format string, args ...any) {
	fmt.Fprintf(os.Stderr, tool+": "+format+"\n", args...)
	os.Exit(1)
}

// LabBench is what a bench that runs vigil beside keepalived in namespaces starts from.
type LabBench struct {
	Keepalived string // the keepalived binary
	Root       string // the module's root (for git and go build)
	Work       string // a fresh work directory
}

// SetupLab checks that namespaces can be made, finds keepalived and the module root, and
// makes tool's work directory; cleanup removes it unless keep (then it is logged).
func SetupLab(tool, keepalived string, keep bool) (LabBench, func(), error) {
	var b LabBench
	if err := lab.Available(); err != nil {
		return b, nil, err
	}
	var err error
	if b.Keepalived, err = exec.LookPath(keepalived); err != nil {
		return b, nil, fmt.Errorf("keepalived: %w", err)
	}
	if b.Root, err = ModuleRoot(tool); err != nil {
		return b, nil, err
	}
	if b.Work, err = os.MkdirTemp("", tool+"-"); err != nil {
		return b, nil, err
	}
	cleanup := func() { os.RemoveAll(b.Work) }
	if keep {
		Logf("work directory (kept): %s", b.Work)
		cleanup = func() {}
	}
	return b, cleanup, nil
}

// KeepalivedArgs runs keepalived in the foreground, logging to the console (its log file), VRRP
// only, on conf, with pid files of its own in dir, so that several keepalived in several
// namespaces do not collide.
func KeepalivedArgs(conf, dir string) []string {
	return []string{"-n", "-l", "-G", "-P", "-f", conf,
		"-p", filepath.Join(dir, "keepalived.pid"),
		"-r", filepath.Join(dir, "vrrp.pid"),
		"-c", filepath.Join(dir, "checkers.pid"),
		"-b", filepath.Join(dir, "bfd.pid")}
}
