package bgp_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/bgp"
	"github.com/vigil-ha/vigil/core/internal/bgppb"
	"github.com/vigil-ha/vigil/internal/lab"
)

// buildSpeakerTo builds vigil-bgp into a directory of the test's.
func buildSpeakerTo(t *testing.T) string {
	t.Helper()
	bin, err := lab.BuildCommand(t.TempDir(), "vigil-bgp")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestHostStopsFrozenSpeaker: a speaker that is stopped (SIGSTOP: frozen, as by a cgroup
// freezer or a debugger) neither answers nor exits. Run still returns when its context
// ends, with the speaker killed: the vrrp process's stop, which waits for it before VRRP
// resigns, is not held up for ever. (go-plugin's own Kill waits for ever here.)
func TestHostStopsFrozenSpeaker(t *testing.T) {
	h := bgp.NewHost(hclog.NewNullLogger(), buildSpeakerTo(t))
	h.Configure(&bgppb.Config{LocalAs: 64513, RouterId: "192.0.2.1"})
	gen := h.SetRoutes(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{})
	go func() { defer close(ran); h.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := h.WaitApplied(wctx, gen); err != nil {
		t.Fatal(err)
	}
	pid := h.Status(wctx).PID
	if pid == 0 {
		t.Fatal("no speaker PID")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL) // should Run fail to
	cancel()
	select {
	case <-ran:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30 s after its context ended, the speaker frozen")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("frozen speaker %d still there after Run returned", pid)
	}
}

// TestHostRestartsSpeaker: the speaker process dies; the host starts another and hands it the
// configuration and the routes again, unasked. No router is needed: the one neighbor is a
// loopback address where nothing listens.
func TestHostRestartsSpeaker(t *testing.T) {
	h := bgp.NewHost(hclog.NewNullLogger(), buildSpeakerTo(t))
	h.Configure(&bgppb.Config{LocalAs: 64513, RouterId: "192.0.2.1",
		Neighbors: []*bgppb.Neighbor{{Address: "127.0.0.2", RemoteAs: 64512, ConnectRetrySec: 1}}})
	gen := h.SetRoutes([]*bgppb.Route{{Prefix: "192.0.2.10/32", Owner: "VI_1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ran := make(chan struct{})
	go func() { defer close(ran); h.Run(ctx) }()
	if err := h.WaitApplied(ctx, gen); err != nil {
		t.Fatal(err)
	}
	announced := func(st bgp.HostStatus) bool {
		return st.Speaker != nil && len(st.Speaker.Announced) == 1 && st.Speaker.Announced[0].Prefix == "192.0.2.10/32"
	}
	st := h.Status(ctx)
	if !announced(st) || st.State != "running" || st.PID == 0 {
		t.Fatalf("first speaker: %+v", st)
	}
	first := st.PID
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st = h.Status(ctx)
		if st.Restarts == 1 && st.State == "running" && st.PID != first && announced(st) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the speaker was killed: %+v (speaker %v)", st, st.Speaker)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.LastError == "" {
		t.Error("the restart has no reason")
	}
	second := st.PID
	cancel()
	<-ran
	// Run's end stops the speaker.
	if err := syscall.Kill(second, 0); err == nil {
		t.Errorf("speaker %d still runs after Run returned", second)
	}
}
