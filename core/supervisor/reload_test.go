package supervisor_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadConf is a node's configuration for the reload tests: VI_1 with the given priority
// and addresses, and, when second is set, VI_2 (VRID 52) holding 198.51.100.50.
func reloadConf(prio int, vips []string, second bool) string {
	return reloadConfNotify(prio, vips, second, "")
}

// reloadConfNotify is reloadConf with keepalived's generic notify script on both instances.
func reloadConfNotify(prio int, vips []string, second bool, notify string) string {
	line := ""
	if notify != "" {
		line = fmt.Sprintf("    notify %q\n", notify)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 0.2
    version 3
%s    virtual_ipaddress {
`, prio, line)
	for _, v := range vips {
		fmt.Fprintf(&b, "        %s\n", v)
	}
	b.WriteString("    }\n}\n")
	if second {
		fmt.Fprintf(&b, `vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority %d
    advert_int 0.2
    version 3
%s    virtual_ipaddress {
        198.51.100.50/24
    }
}
`, prio, line)
	}
	return b.String()
}

// notifyScript writes a generic notify script that records "INSTANCE name STATE" in out.
func notifyScript(t *testing.T, dir, name, out string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho \"$1 $2 $3\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func lines(path string) []string {
	b, _ := os.ReadFile(path)
	if s := strings.TrimSpace(string(b)); s != "" {
		return strings.Split(s, "\n")
	}
	return nil
}

// writeConf replaces the node's configuration as editors do: a temporary file renamed over.
func (n *node) writeConf(t *testing.T, text string) {
	t.Helper()
	path := filepath.Join(n.dir, n.Name+".conf")
	tmp := path + ".swp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

var stateChange = regexp.MustCompile(`state change: role=core instance=(\S+) from=(\S+) to=(\S+)`)

// changes lists the state changes core logged ("VI_1 BACKUP>MASTER").
func (n *node) changes() []string {
	var out []string
	for _, m := range stateChange.FindAllStringSubmatch(n.proc.Output(), -1) {
		out = append(out, m[1]+" "+m[2]+">"+m[3])
	}
	return out
}

func (n *node) has(t *testing.T, ctx context.Context, a string) bool {
	ok, err := n.HasAddr(ctx, netip.MustParseAddr(a))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// lastReload waits for a reload newer than after and returns it.
func (n *node) lastReload(t *testing.T, after time.Time) *ReloadSeen {
	t.Helper()
	var seen *ReloadSeen
	waitFor(t, 10*time.Second, n.Name+" reports a new reload", func() bool {
		st, err := n.tryStatus()
		if err != nil || st.LastReload == nil || !st.LastReload.Time.After(after) {
			return false
		}
		r := st.LastReload
		seen = &ReloadSeen{OK: r.OK, Trigger: r.Trigger, Errors: r.Errors}
		if r.Report != nil {
			seen.Changed, seen.Added, seen.Removed, seen.Kept = r.Report.VRRP.Changed, r.Report.VRRP.Added, r.Report.VRRP.Removed, r.Report.VRRP.Kept
		}
		return true
	})
	return seen
}

// ReloadSeen is the part of `vigil status`'s last reload the tests look at.
type ReloadSeen struct {
	OK                            bool
	Trigger                       string
	Errors                        []string
	Kept, Changed, Added, Removed []string
}

// TestHotReload follows the acceptance list on one two-node lab, each step on the
// state the previous one left: the file is edited (temp file renamed over) and vigil picks it
// up by itself.
func TestHotReload(t *testing.T) {
	ctx, n := newLab(t, 2)
	base := []string{"192.0.2.100/24"}
	// Node 0 notifies through script a, node 1 through b1 and, after its priority change,
	// through b2.
	dir := n[0].dir
	outA, outB1, outB2 := filepath.Join(dir, "notified-a"), filepath.Join(dir, "notified-b1"), filepath.Join(dir, "notified-b2")
	scriptA := notifyScript(t, dir, "a.sh", outA)
	scriptB1, scriptB2 := notifyScript(t, dir, "b1.sh", outB1), notifyScript(t, dir, "b2.sh", outB2)
	confA := func(vips []string, second bool) string { return reloadConfNotify(150, vips, second, scriptA) }
	n[0].start(t, confA(base, true))
	n[1].start(t, reloadConfNotify(100, base, true, scriptB1))
	waitFor(t, 15*time.Second, "node 0 holds both VIPs", func() bool {
		return n[0].holds(t, ctx) && n[0].has(t, ctx, "198.51.100.50")
	})
	// Let the start-up settle: node 1 has gone BACKUP too.
	time.Sleep(time.Second)
	before0, before1 := len(n[0].changes()), len(n[1].changes())
	noNewChanges := func(step string) {
		t.Helper()
		if c := n[0].changes(); len(c) != before0 {
			t.Errorf("%s: node 0 changed state: %v", step, c[before0:])
		}
		if c := n[1].changes(); len(c) != before1 {
			t.Errorf("%s: node 1 changed state: %v", step, c[before1:])
		}
	}

	t.Run("add a VIP on the master", func(t *testing.T) {
		start := time.Now()
		n[0].writeConf(t, confA(append(base, "192.0.2.101/24"), true))
		waitFor(t, 10*time.Second, "192.0.2.101 appears on node 0", func() bool { return n[0].has(t, ctx, "192.0.2.101") })
		r := n[0].lastReload(t, start)
		if !r.OK || r.Trigger != "file change" || strings.Join(r.Changed, ",") != "VI_1" || strings.Join(r.Kept, ",") != "VI_2" {
			t.Errorf("reload reported %+v; want OK, by file change, VI_1 changed and VI_2 kept", r)
		}
		// Node 1 still runs the old list: the master's adverts now differ from what it
		// expects, which must not make it take over (keepalived's known failure).
		time.Sleep(2 * time.Second)
		noNewChanges("after adding a VIP")
		if !n[0].holds(t, ctx) || n[1].holds(t, ctx) || n[1].has(t, ctx, "192.0.2.101") {
			t.Error("the VIPs moved")
		}
	})

	t.Run("a broken file keeps the running configuration", func(t *testing.T) {
		start := time.Now()
		n[0].writeConf(t, confA(base, true)+"vrrp_instance VI_3 {\n    interface eth0\n    virtual_router_id 300\n}\n")
		r := n[0].lastReload(t, start)
		if r.OK || len(r.Errors) == 0 || !strings.Contains(strings.Join(r.Errors, "\n"), ".conf:") {
			t.Fatalf("broken file: %+v; want refused with the error's place", r)
		}
		if !strings.Contains(n[0].proc.Output(), "reload refused") {
			t.Error("the refusal is not in the log")
		}
		time.Sleep(time.Second)
		if !n[0].has(t, ctx, "192.0.2.101") {
			t.Error("the broken file took 192.0.2.101 away")
		}
		noNewChanges("after a broken file")
		// Fixed: applied (192.0.2.101 goes, as the fixed file no longer has it).
		start = time.Now()
		n[0].writeConf(t, confA(base, true))
		if r := n[0].lastReload(t, start); !r.OK {
			t.Fatalf("fixed file: %+v", r)
		}
		waitFor(t, 5*time.Second, "192.0.2.101 removed", func() bool { return !n[0].has(t, ctx, "192.0.2.101") })
		noNewChanges("after the fix")
	})

	t.Run("remove an instance", func(t *testing.T) {
		start := time.Now()
		notes := len(lines(outA))
		n[0].writeConf(t, confA(base, false))
		r := n[0].lastReload(t, start)
		if !r.OK || strings.Join(r.Removed, ",") != "VI_2" {
			t.Fatalf("removing VI_2: %+v", r)
		}
		waitFor(t, 5*time.Second, "node 0 notifies VI_2's deletion", func() bool { return len(lines(outA)) > notes })
		time.Sleep(500 * time.Millisecond)
		if got := lines(outA)[notes:]; strings.Join(got, ",") != "INSTANCE VI_2 DELETED" {
			t.Errorf("notified on node 0 after removing VI_2: %q, want one DELETED", got)
		}
		// Node 0 resigned VI_2 (priority 0): node 1 takes it over; VI_1 stays.
		waitFor(t, 5*time.Second, "node 1 takes 198.51.100.50 over", func() bool {
			return !n[0].has(t, ctx, "198.51.100.50") && n[1].has(t, ctx, "198.51.100.50")
		})
		if !n[0].holds(t, ctx) || n[1].holds(t, ctx) {
			t.Error("VI_1 moved")
		}
		before0, before1 = len(n[0].changes()), len(n[1].changes())
	})

	t.Run("priority change hands over once", func(t *testing.T) {
		start := time.Now()
		old := len(lines(outB1))
		n[1].writeConf(t, reloadConfNotify(200, base, true, scriptB2))
		// Both of node 1's instances get the new priority (VI_2 is its alone by now).
		if r := n[1].lastReload(t, start); !r.OK || !slices.Equal(sorted(r.Changed), []string{"VI_1", "VI_2"}) {
			t.Fatalf("priority 200 on node 1: %+v", r)
		}
		waitFor(t, 5*time.Second, "node 1 takes VI_1 over", func() bool { return n[1].holds(t, ctx) && !n[0].holds(t, ctx) })
		time.Sleep(2 * time.Second)
		got0, got1 := n[0].changes()[before0:], n[1].changes()[before1:]
		if strings.Join(got0, ",") != "VI_1 MASTER>BACKUP" || strings.Join(got1, ",") != "VI_1 BACKUP>MASTER" {
			t.Errorf("state changes after the priority change: node 0 %v, node 1 %v; want one handover", got0, got1)
		}
		// The changed notify script takes the next event; the old one hears nothing more.
		waitFor(t, 5*time.Second, "node 1's new notify script runs", func() bool { return len(lines(outB2)) > 0 })
		if got := lines(outB2); strings.Join(got, ",") != "INSTANCE VI_1 MASTER" {
			t.Errorf("new notify script got %q, want INSTANCE VI_1 MASTER", got)
		}
		if got := lines(outB1)[old:]; len(got) > 0 {
			t.Errorf("the replaced notify script still ran: %q", got)
		}
		before0, before1 = len(n[0].changes()), len(n[1].changes())
	})

	t.Run("100 rapid edits converge without a flap", func(t *testing.T) {
		start := time.Now()
		var last string
		for i := range 100 {
			// Node 1 stays the strongest whatever the edit; the last edit adds 192.0.2.150.
			vips := []string{"192.0.2.100/24", fmt.Sprintf("192.0.2.%d/24", 101+i%40)}
			if i == 99 {
				vips = []string{"192.0.2.100/24", "192.0.2.150/24"}
			}
			last = reloadConf(200-i%2, vips, true)
			n[1].writeConf(t, last)
			time.Sleep(80 * time.Millisecond) // 100 edits within 10 s
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Logf("the edits took %s (a slow machine), not 10 s", d)
		}
		waitFor(t, 10*time.Second, "node 1 converges on the last file", func() bool {
			return n[1].has(t, ctx, "192.0.2.150") && !n[1].has(t, ctx, "192.0.2.140") && !n[1].has(t, ctx, "192.0.2.139")
		})
		r := n[1].lastReload(t, start)
		if !r.OK {
			t.Errorf("last reload: %+v", r)
		}
		for i := 101; i <= 140; i++ {
			if n[1].has(t, ctx, fmt.Sprintf("192.0.2.%d", i)) {
				t.Errorf("192.0.2.%d of an earlier edit is still there", i)
			}
		}
		time.Sleep(time.Second)
		noNewChanges("after 100 edits")
		reloads := strings.Count(n[1].proc.Output(), "reloaded: role=core trigger=\"file change\"")
		t.Logf("100 edits in %s: node 1 reloaded %d times in all", time.Since(start).Round(time.Millisecond), reloads)
	})

	t.Run("SIGHUP", func(t *testing.T) {
		start := time.Now()
		if err := n[1].proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if r := n[1].lastReload(t, start); !r.OK || r.Trigger != "SIGHUP" || len(r.Changed) != 0 {
			t.Errorf("SIGHUP with the file unchanged: %+v; want OK, nothing changed", r)
		}
		noNewChanges("after SIGHUP")
	})

	t.Run("vigil reload", func(t *testing.T) {
		out, err := exec.Command(vigilBin, "reload", "--control", n[1].sock()).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "reload (vigil reload)") || !strings.Contains(string(out), ": applied\n") {
			t.Errorf("vigil reload: %v\n%s", err, out)
		}
		noNewChanges("after vigil reload")
	})
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestReloadOnNewIncludedFile: a file dropped into a directory that an include pattern
// names (include conf.d/*.conf) is picked up, and removing it removes its instance.
func TestReloadOnNewIncludedFile(t *testing.T) {
	ctx, n := newLab(t, 1)
	confd := filepath.Join(n[0].dir, "conf.d")
	if err := os.Mkdir(confd, 0o755); err != nil {
		t.Fatal(err)
	}
	// VI_1 only, and VI_2 in the included directory later.
	main := strings.Replace(reloadConf(150, []string{"192.0.2.100/24"}, false), "vrrp_instance VI_1", "include "+confd+"/*.conf\nvrrp_instance VI_1", 1)
	n[0].start(t, main)
	waitFor(t, 15*time.Second, "node 0 holds VI_1's VIP", func() bool { return n[0].holds(t, ctx) })
	vi2 := reloadConf(150, []string{"192.0.2.100/24"}, true)
	vi2 = vi2[strings.Index(vi2, "vrrp_instance VI_2"):]
	start := time.Now()
	if err := os.WriteFile(filepath.Join(confd, ".vi2.tmp"), []byte(vi2), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(confd, ".vi2.tmp"), filepath.Join(confd, "vi2.conf")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "VI_2's VIP appears", func() bool { return n[0].has(t, ctx, "198.51.100.50") })
	if r := n[0].lastReload(t, start); !r.OK || strings.Join(r.Added, ",") != "VI_2" {
		t.Errorf("new included file: %+v; want VI_2 added", r)
	}
	start = time.Now()
	if err := os.Remove(filepath.Join(confd, "vi2.conf")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "VI_2's VIP goes", func() bool { return !n[0].has(t, ctx, "198.51.100.50") })
	if r := n[0].lastReload(t, start); !r.OK || strings.Join(r.Removed, ",") != "VI_2" {
		t.Errorf("included file removed: %+v; want VI_2 removed", r)
	}
	if !n[0].holds(t, ctx) {
		t.Error("VI_1 lost its VIP")
	}
}

// syncConf is reloadConf's two instances in sync group VG1 (when grouped), VI_2 with vip2.
func syncConf(prio int, vip2 []string, grouped bool) string {
	text := reloadConf(prio, []string{"192.0.2.100/24"}, true)
	if len(vip2) > 0 {
		text = strings.Replace(text, "        198.51.100.50/24\n", "        198.51.100.50/24\n        "+strings.Join(vip2, "\n        ")+"\n", 1)
	}
	if grouped {
		text = "vrrp_sync_group VG1 {\n    group {\n        VI_1\n        VI_2\n    }\n}\n" + text
	}
	return text
}

// TestHotReloadSyncGroup: a sync group whose members keep their identity and grouping keeps
// its state through a reload that changes a member's addresses; ungrouping restarts them.
func TestHotReloadSyncGroup(t *testing.T) {
	ctx, n := newLab(t, 2)
	n[0].start(t, syncConf(150, nil, true))
	n[1].start(t, syncConf(100, nil, true))
	waitFor(t, 15*time.Second, "node 0 holds both VIPs", func() bool {
		return n[0].holds(t, ctx) && n[0].has(t, ctx, "198.51.100.50")
	})
	time.Sleep(time.Second)
	before0, before1 := len(n[0].changes()), len(n[1].changes())

	start := time.Now()
	n[0].writeConf(t, syncConf(150, []string{"198.51.100.51/24"}, true))
	waitFor(t, 10*time.Second, "198.51.100.51 appears", func() bool { return n[0].has(t, ctx, "198.51.100.51") })
	r := n[0].lastReload(t, start)
	if !r.OK || strings.Join(r.Changed, ",") != "VI_2" || strings.Join(r.Kept, ",") != "VI_1" {
		t.Errorf("reload in a sync group: %+v; want VI_2 changed, VI_1 kept", r)
	}
	time.Sleep(2 * time.Second)
	if c0, c1 := n[0].changes()[before0:], n[1].changes()[before1:]; len(c0)+len(c1) > 0 {
		t.Errorf("state changes after a reload inside a sync group: node 0 %v, node 1 %v", c0, c1)
	}

	// Leaving the group changes how the instances are driven: they start again (and, being
	// the strongest, end up master again).
	start = time.Now()
	n[0].writeConf(t, syncConf(150, []string{"198.51.100.51/24"}, false))
	r = n[0].lastReload(t, start)
	if !r.OK || len(r.Added)+len(r.Removed) > 0 {
		t.Errorf("ungrouping: %+v", r)
	}
	st := n[0].status(t)
	if st.LastReload == nil || st.LastReload.Report == nil || !slices.Equal(sorted(st.LastReload.Report.VRRP.Restarted), []string{"VI_1", "VI_2"}) {
		t.Errorf("ungrouping: restarted %+v, want VI_1 and VI_2", st.LastReload)
	}
	waitFor(t, 10*time.Second, "node 0 holds every VIP again", func() bool {
		return n[0].holds(t, ctx) && n[0].has(t, ctx, "198.51.100.50") && n[0].has(t, ctx, "198.51.100.51")
	})
}

// TestReloadWatchOff: with --watch 0 an edit changes nothing until a SIGHUP asks for it.
func TestReloadWatchOff(t *testing.T) {
	ctx, n := newLab(t, 1)
	n[0].start(t, reloadConf(150, []string{"192.0.2.100/24"}, false), "--watch", "0")
	waitFor(t, 15*time.Second, "node 0 holds the VIP", func() bool { return n[0].holds(t, ctx) })
	n[0].writeConf(t, reloadConf(150, []string{"192.0.2.100/24", "192.0.2.101/24"}, false))
	time.Sleep(1500 * time.Millisecond) // five debounces of the default watch
	if n[0].has(t, ctx, "192.0.2.101") {
		t.Fatal("the edit applied without a reload although the watch is off")
	}
	if st := n[0].status(t); st.LastReload != nil {
		t.Fatalf("a reload ran: %+v", st.LastReload)
	}
	start := time.Now()
	if err := n[0].proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if r := n[0].lastReload(t, start); !r.OK || r.Trigger != "SIGHUP" {
		t.Fatalf("SIGHUP: %+v", r)
	}
	waitFor(t, 5*time.Second, "192.0.2.101 appears after SIGHUP", func() bool { return n[0].has(t, ctx, "192.0.2.101") })
}
