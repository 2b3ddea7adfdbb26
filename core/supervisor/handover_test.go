package supervisor_test

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// vigilCmd runs a vigil subcommand against n's control socket and returns its exit code,
// stdout and stderr.
func (n *node) vigilCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(vigilBin, append(args, "--control", n.sock())...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("vigil %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errOut.String()
}

// newChanges is what n logged since it had logged before (changes).
func newChanges(n *node, before []string) []string {
	return slices.Clone(n.changes()[len(before):])
}

// stays checks for a while that cond keeps holding: the handover must not bounce back. The
// time is no bound on speed: three Master_Down_Intervals (0.66 s each) and more, in which a
// node that was going to take over would have.
func stays(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		if !cond() {
			t.Fatalf("no longer true: %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestDemotePromote: vigil demote on the master hands the VIP over with one transition on
// each node (the master resigns with a priority 0 advert, so the backup takes over after
// Skew_Time), the demoted node stays backup through a reload and a restart of its vrrp
// process, vigil promote gives it back (higher priority, preemption on), and demote --for
// ends by itself.
func TestDemotePromote(t *testing.T) {
	ctx, n, _ := n1Master(t)
	a, b := n[0], n[1]
	aHolds := func() bool { return a.holds(t, ctx) && !b.holds(t, ctx) }
	bHolds := func() bool { return b.holds(t, ctx) && !a.holds(t, ctx) }

	// An unknown instance is refused, naming it and the known ones.
	if code, _, stderr := a.vigilCmd(t, "demote", "VI_9"); code != 1 || !strings.Contains(stderr, `"VI_9"`) || !strings.Contains(stderr, "VI_1") {
		t.Errorf("demote VI_9: exit %d, %q", code, stderr)
	}
	if code, _, _ := a.vigilCmd(t, "demote"); code != 2 {
		t.Errorf("demote without a name: exit %d, want 2", code)
	}

	beforeA, beforeB := a.changes(), b.changes()
	if code, out, stderr := a.vigilCmd(t, "demote", "VI_1"); code != 0 || !strings.Contains(out, "demoted VI_1, until vigil promote") {
		t.Fatalf("demote: exit %d, %q %q", code, out, stderr)
	}
	waitFor(t, 10*time.Second, "n2 takes the VIP over", bHolds)
	stays(t, ctx, "n2 alone holds the VIP while n1 is demoted", bHolds)
	if got := newChanges(a, beforeA); !slices.Equal(got, []string{"VI_1 MASTER>BACKUP"}) {
		t.Errorf("n1's transitions: %v, want exactly MASTER>BACKUP", got)
	}
	if got := newChanges(b, beforeB); !slices.Equal(got, []string{"VI_1 BACKUP>MASTER"}) {
		t.Errorf("n2's transitions: %v, want exactly BACKUP>MASTER", got)
	}
	// The takeover came from the resignation, not from n1's adverts stopping.
	if !strings.Contains(b.proc.Output(), "master resigned (priority 0 advert)") {
		t.Errorf("n2 did not take over on a priority 0 advert")
	}
	st := a.status(t)
	if len(st.Instances) != 1 || st.Instances[0].Demoted == nil || !st.Instances[0].Demoted.Applied || st.Instances[0].Demoted.Until != nil ||
		st.Instances[0].State != "BACKUP" {
		t.Fatalf("status after demote: %+v", st.Instances)
	}
	if _, out, _ := a.vigilCmd(t, "status"); !strings.Contains(out, "BACKUP (demoted)") || !strings.Contains(out, "DEMOTED") {
		t.Errorf("vigil status does not show the demotion:\n%s", out)
	}

	// A reload with a changed priority keeps it demoted; so does a restart of its vrrp child.
	beforeA = a.changes()
	a.writeConf(t, conf(160, ""))
	if code, out, stderr := a.vigilCmd(t, "reload"); code != 0 {
		t.Fatalf("reload: exit %d, %q %q", code, out, stderr)
	}
	stays(t, ctx, "n2 keeps the VIP after n1's reload", bHolds)
	pid := a.childPID(t, "vrrp")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n1's vrrp child restarted", func() bool { p := a.childPID(t, "vrrp"); return p != 0 && p != pid })
	stays(t, ctx, "n2 keeps the VIP after n1's vrrp child restarted", bHolds)
	for _, c := range newChanges(a, beforeA) {
		if strings.HasSuffix(c, ">MASTER") {
			t.Errorf("demoted n1 went MASTER: %v", newChanges(a, beforeA))
		}
	}
	if st := a.status(t); st.Instances[0].Demoted == nil || !st.Instances[0].Demoted.Applied {
		t.Errorf("status after reload and restart: %+v", st.Instances)
	}

	// Promote: n1 has the higher priority and preempts.
	beforeA, beforeB = a.changes(), b.changes()
	if code, out, stderr := a.vigilCmd(t, "promote", "VI_1"); code != 0 || !strings.Contains(out, "promoted VI_1") {
		t.Fatalf("promote: exit %d, %q %q", code, out, stderr)
	}
	waitFor(t, 10*time.Second, "n1 takes the VIP back", aHolds)
	stays(t, ctx, "n1 keeps the VIP after promote", aHolds)
	if got := newChanges(a, beforeA); !slices.Equal(got, []string{"VI_1 BACKUP>MASTER"}) {
		t.Errorf("n1's transitions on promote: %v", got)
	}
	if got := newChanges(b, beforeB); !slices.Equal(got, []string{"VI_1 MASTER>BACKUP"}) {
		t.Errorf("n2's transitions on promote: %v", got)
	}
	if st := a.status(t); st.Instances[0].Demoted != nil {
		t.Errorf("still demoted after promote: %+v", st.Instances[0].Demoted)
	}

	// demote --for ends by itself.
	if code, out, stderr := a.vigilCmd(t, "demote", "--all", "--for", "2s"); code != 0 || !strings.Contains(out, "demoted VI_1, until ") {
		t.Fatalf("demote --for: exit %d, %q %q", code, out, stderr)
	}
	if st := a.status(t); st.Instances[0].Demoted == nil || st.Instances[0].Demoted.Until == nil {
		t.Errorf("status does not say until when: %+v", st.Instances[0].Demoted)
	}
	waitFor(t, 10*time.Second, "n2 takes the VIP over for the demotion", bHolds)
	waitFor(t, 20*time.Second, "n1 takes the VIP back when the demotion ends", aHolds)
	if st := a.status(t); st.Instances[0].Demoted != nil {
		t.Errorf("still demoted after --for ran out: %+v", st.Instances[0].Demoted)
	}
}

// TestDemotedNodeAloneWaits: the node that took over stops; the demoted node does not take
// the VIP (it is demoted: the operator wants it out), status says that nobody is master, and
// vigil promote makes it master at once.
func TestDemotedNodeAloneWaits(t *testing.T) {
	ctx, n, _ := n1Master(t)
	a, b := n[0], n[1]
	if code, out, stderr := a.vigilCmd(t, "demote", "VI_1"); code != 0 {
		t.Fatalf("demote: exit %d, %q %q", code, out, stderr)
	}
	waitFor(t, 10*time.Second, "n2 takes the VIP over", func() bool { return b.holds(t, ctx) && !a.holds(t, ctx) })
	if err := b.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := b.proc.Wait(10 * time.Second); err != nil {
		t.Fatalf("n2's exit: %v", err)
	}
	waitFor(t, 10*time.Second, "n1's status says nobody is master", func() bool {
		st := a.status(t)
		return len(st.Instances) == 1 && st.Instances[0].Demoted != nil && st.Instances[0].Demoted.NoMasterSince != nil
	})
	stays(t, ctx, "nobody holds the VIP while n1 is demoted", func() bool { return !a.holds(t, ctx) && !b.holds(t, ctx) })
	if _, out, _ := a.vigilCmd(t, "status"); !strings.Contains(out, "NO MASTER since") {
		t.Errorf("vigil status does not warn:\n%s", out)
	}
	if !strings.Contains(a.proc.Output(), "no master: the virtual addresses are served by nobody") {
		t.Errorf("n1 did not log the warning")
	}
	if code, out, stderr := a.vigilCmd(t, "promote", "VI_1"); code != 0 {
		t.Fatalf("promote: exit %d, %q %q", code, out, stderr)
	}
	waitFor(t, 10*time.Second, "n1 takes the VIP once promoted", func() bool { return a.holds(t, ctx) })
	if !strings.Contains(a.proc.Output(), "promoted by the operator (vigil promote) with no master heard") {
		t.Errorf("n1 did not take over on the promote itself")
	}
}
