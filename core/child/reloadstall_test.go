package child

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// stallConfig is a virtual_server whose real servers 192.0.2.11 ... 192.0.2.(10+n) are
// checked by the test plugin.
func stallConfig(dir string, n int) string {
	var b strings.Builder
	b.WriteString("global_defs {\n    plugin_dir " + dir + "\n}\nvirtual_server 192.0.2.100 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "    real_server 192.0.2.%d 80 {\n        PLUGIN_CHECK {\n            plugin test\n            connect_timeout 5\n            delay_loop 1\n            warmup 0\n            params {\n                mode ok\n            }\n        }\n    }\n", 10+i)
	}
	b.WriteString("}\n")
	return b.String()
}

// TestReloadDoesNotWaitForBusyPlugin: while the check plugin answers no Configure (it spins
// in it), a reload that adds a real server returns with the server in the balancer's table,
// and so does a second reload started while the first runs; the new checkers are not down.
// (The check process once waited for the plugin until core's deadline, kept the next
// reload waiting behind it, and ran the new checker failing, out of the table.)
func TestReloadDoesNotWaitForBusyPlugin(t *testing.T) {
	noIPVS(t)
	dir := buildCheckPlugins(t)
	s := newCheckServer(hclog.NewNullLogger(), Options{})
	t.Cleanup(s.shutdown)
	ctx := context.Background()
	if _, err := s.Start(ctx, &childpb.StartRequest{ConfigName: "lvs.conf", ConfigText: stallConfig(dir, 1)}); err != nil {
		t.Fatal(err)
	}
	// Every Configure from now on spins in the plugin and never answers.
	spin := filepath.Join(dir, "vigil-check-test.spin-configure")
	if err := os.WriteFile(spin, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The reloads' context ends only as a failure bound: code that waits for Configure
	// returns when it ends, and the test fails on that outcome, not on a time.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bound := time.AfterFunc(90*time.Second, cancel)
	defer bound.Stop()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	first := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		close(first)
		_, errs[0] = s.Reload(rctx, &childpb.StartRequest{ConfigName: "lvs.conf", ConfigText: stallConfig(dir, 2)})
	}()
	go func() {
		defer wg.Done()
		<-first
		_, errs[1] = s.Reload(rctx, &childpb.StartRequest{ConfigName: "lvs.conf", ConfigText: stallConfig(dir, 3)})
	}()
	wg.Wait()
	if rctx.Err() != nil {
		t.Fatalf("the reloads returned only once their context ended (errors %v): they waited for the busy plugin", errs)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
	}
	// The last reload's text is the balancer's, whichever reload ran last.
	if _, err := s.Reload(rctx, &childpb.StartRequest{ConfigName: "lvs.conf", ConfigText: stallConfig(dir, 3)}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	b := s.lvs
	s.mu.Unlock()
	b.settled(ctx)
	st, err := s.Status(ctx, &childpb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	var reals []string
	for _, vs := range st.GetLvs().GetServices() {
		for _, r := range vs.GetReals() {
			reals = append(reals, fmt.Sprintf("%s in_table=%v alive=%v", r.GetAddress(), r.GetInTable(), r.GetAlive()))
		}
	}
	want := "192.0.2.11:80 in_table=true alive=true 192.0.2.12:80 in_table=true alive=true 192.0.2.13:80 in_table=true alive=true"
	if got := strings.Join(reals, " "); got != want {
		t.Fatalf("while the plugin configures nothing: %s; want %s", got, want)
	}
	for _, c := range st.GetChecks() {
		if !c.GetUp() {
			t.Errorf("check %s down while its plugin was busy: %s", c.GetName(), c.GetMessage())
		}
	}
}
