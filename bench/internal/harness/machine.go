package harness

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine is what a report says about the machine and the code a run measured.
type Machine struct {
	NProc, Kernel, CPU, GoVersion string
	VigilRev                      string // the commit, and whether vigil's code had changes beside it
	Keepalived                    string // keepalived -v's first line
	Date                          time.Time
	LoadBefore, LoadAfter         string // /proc/loadavg's three figures
}

// CollectMachine reads the machine, the module's commit at root and keepalived's version
// (kaBin), and the load average now (LoadBefore).
func CollectMachine(root, kaBin string) Machine {
	m := Machine{Date: time.Now().UTC(), GoVersion: runtime.Version(), LoadBefore: Loadavg()}
	m.NProc = cmdLine("nproc")
	m.Kernel = cmdLine("uname", "-r")
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	m.VigilRev = cmdLine("git", "-C", root, "rev-parse", "--short", "HEAD")
	if st := cmdLine("git", "-C", root, "status", "--porcelain", "--", "cmd", "core", "go.mod", "go.sum", ":(exclude)*_test.go"); st != "" && st != "?" {
		m.VigilRev += " (with uncommitted changes to vigil's code)"
	}
	if kaBin != "" {
		out, _ := exec.Command(kaBin, "-v").CombinedOutput()
		m.Keepalived = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	return m
}

func cmdLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// Loadavg is the 1, 5 and 15 minute load averages, or "?".
func Loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
