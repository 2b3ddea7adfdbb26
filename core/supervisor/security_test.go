package supervisor_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadRechecksScriptSecurity: under enable_script_security, a vrrp_script that became
// writable by others while the daemon runs stops running at the next reload, although the
// file did not change: the check fails with a message naming the file and what to do, and the
// instance tracking it (weight 0) goes to FAULT and gives up the VIP. keepalived 2.2.7 also
// disables the script on a reload ("Unsafe permissions found for script ... - disabling"); it
// then drops the track_script from the instance, where vigil fails the check, as it does for
// such a script at start. Both ways the script runs: the check process itself, and the exec
// plugin.
func TestReloadRechecksScriptSecurity(t *testing.T) {
	for _, viaPlugin := range []bool{false, true} {
		name := map[bool]string{false: "check process", true: "exec plugin"}[viaPlugin]
		t.Run(name, func(t *testing.T) {
			ctx, n := newLab(t, 1)
			global := "global_defs {\n    enable_script_security\n"
			if viaPlugin {
				plugins := buildPlugin(t, n[0].dir, "vigil-check-exec", "github.com/vigil-ha/vigil/plugins/vigil-check-exec")
				global += "    plugin_dir " + plugins + "\n"
			}
			global += "}\n"
			runs := filepath.Join(n[0].dir, "runs")
			chk := filepath.Join(n[0].dir, "chk.sh")
			if err := os.WriteFile(chk, []byte("#!/bin/sh\necho run >> "+runs+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			script := fmt.Sprintf("vrrp_script chk {\n    script %q\n    interval 0.1\n}\n", chk)
			n[0].start(t, conf(150, global+script))
			waitFor(t, 10*time.Second, "n1 holds the VIP with its script up", func() bool {
				return n[0].holds(t, ctx) && len(lines(runs)) > 0
			})

			if err := os.Chmod(chk, 0o777); err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			n[0].proc.Signal(syscall.SIGHUP)
			if r := n[0].lastReload(t, before); !r.OK {
				t.Fatalf("reload: %+v", r)
			}
			want := chk + " is not safe to run: the program is writable by group or others (mode -rwxrwxrwx); run chmod go-w " + chk
			waitFor(t, 10*time.Second, "the check fails, saying why", func() bool {
				st, err := n[0].tryStatus()
				return err == nil && len(st.Checks) == 1 && !st.Checks[0].Up && strings.Contains(st.Checks[0].Message, want)
			})
			waitFor(t, 10*time.Second, "VI_1 in FAULT without the VIP", func() bool {
				st, err := n[0].tryStatus()
				return err == nil && len(st.Instances) == 1 && st.Instances[0].State == "FAULT" && !n[0].holds(t, ctx)
			})
			// The script is no longer run: no new line over ten of its intervals (a slow
			// machine can only make fewer runs, never more).
			count := len(lines(runs))
			time.Sleep(time.Second)
			if got := len(lines(runs)); got != count {
				t.Errorf("the unsafe script still runs after the reload: %d runs, then %d", count, got)
			}
			if out := n[0].proc.Output(); !strings.Contains(out, want) {
				t.Errorf("the log does not say %q", want)
			}
		})
	}
}

// capSets reads the effective, permitted and bounding capability sets of pid.
func capSets(t *testing.T, pid int) (eff, prm, bnd string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":\t")
		switch k {
		case "CapEff":
			eff = v
		case "CapPrm":
			prm = v
		case "CapBnd":
			bnd = v
		}
	}
	return eff, prm, bnd
}

// TestCapabilities: each of the three processes uses only what it needs of root's
// capabilities. Core's effective set: CAP_SETUID, CAP_SETGID (the check process and notify
// scripts as script_user), CAP_KILL (their process groups) and CAP_DAC_OVERRIDE (the socket of
// a check process running as script_user), 0xe2. Its bounding set, what any program it starts
// as root can have, is those, the vrrp process's two and CAP_SETPCAP (0x31e2) when every
// script runs as script_user; when scripts run as root it stays root's, as keepalived's
// scripts have all of root's powers. Its permitted set is its bounding set: a child that got
// more than core has would lose its parent-death signal (TestKillCoreTakesChildrenAlong). The
// vrrp process: CAP_NET_ADMIN and CAP_NET_RAW, 0x3000, in all three sets; a check process
// that runs as script_user: nothing; one that runs as root: core's first three as effective,
// for its scripts' users and process groups. And the daemon still works with that: the VIP is
// held and a failing script moves the instance to FAULT.
func TestCapabilities(t *testing.T) {
	_, _, full := capSets(t, os.Getpid())
	for _, tc := range []struct {
		name       string
		scriptUser string
		check      [3]string // effective, permitted, bounding of the check process
		coreBnd    string
	}{
		{"script_user nobody", "nobody", [3]string{"0000000000000000", "0000000000000000", "00000000000031e2"}, "00000000000031e2"},
		{"scripts as root", "", [3]string{"00000000000000e0", full, full}, full},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, n := newLab(t, 1)
			// The script's directory must be reachable by nobody.
			flag := nobodyFlag(t)
			global := ""
			if tc.scriptUser != "" {
				global = "global_defs {\n    script_user " + tc.scriptUser + "\n}\n"
			}
			n[0].start(t, conf(150, global+checkScript(flag)))
			waitFor(t, 10*time.Second, "n1 holds the VIP", func() bool { return n[0].holds(t, ctx) })
			var checkPID, vrrpPID int
			waitFor(t, 5*time.Second, "children running", func() bool {
				checkPID, vrrpPID = n[0].childPID(t, "check"), n[0].childPID(t, "vrrp")
				return checkPID != 0 && vrrpPID != 0
			})
			b, err := os.ReadFile(n[0].pidFile())
			if err != nil {
				t.Fatal(err)
			}
			corePID, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []struct {
				role string
				pid  int
				want [3]string
			}{
				{"core", corePID, [3]string{"00000000000000e2", tc.coreBnd, tc.coreBnd}},
				{"vrrp", vrrpPID, [3]string{"0000000000003000", "0000000000003000", "0000000000003000"}},
				{"check", checkPID, tc.check},
			} {
				eff, prm, bnd := capSets(t, p.pid)
				if got := [3]string{eff, prm, bnd}; got != p.want {
					t.Errorf("%s (pid %d): CapEff/CapPrm/CapBnd %v, want %v", p.role, p.pid, got, p.want)
				}
			}
			// With them, the script still runs and still moves the instance.
			os.Remove(flag)
			waitFor(t, 10*time.Second, "VI_1 in FAULT without the VIP once the script fails", func() bool {
				st, err := n[0].tryStatus()
				return err == nil && len(st.Instances) == 1 && st.Instances[0].State == "FAULT" && !n[0].holds(t, ctx)
			})
		})
	}
}
