package child

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/internal/lab"
)

// inLabEnv marks a test binary that a test re-ran inside a lab namespace (see inLab).
const inLabEnv = "VIGIL_CHILD_TEST_IN_LAB"

// inLab runs the calling test again, in a fresh process inside a namespace of a one-node lab
// (eth0 with 192.0.2.11/24), and reports whether the caller is that run. The outer run
// returns false once the inner one passed; it fails with the inner one's output otherwise.
// A test that runs a VRRP engine does so in the namespace: the engine sends adverts and adds
// addresses, which must never reach the machine's own network.
func inLab(t *testing.T, name string) bool {
	t.Helper()
	if os.Getenv(inLabEnv) != "" {
		return true
	}
	if err := lab.Available(); err != nil {
		t.Skipf("skipping namespace test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.New(ctx, name, 1, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv(inLabEnv, "1") // the process below inherits it
	p, err := l.Nodes[0].Start(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	if err != nil {
		t.Fatal(err)
	}
	err = p.Wait(2 * time.Minute)
	out := p.Output()
	if err != nil || !strings.Contains(out, "--- PASS: "+t.Name()) {
		t.Fatalf("the run inside namespace %s: %v\n%s", l.Nodes[0].NS, err, out)
	}
	return false
}

// checkChild is a check child's server as core starts it, with epoch and with its wall
// clock at now; emit passes one change through it (forward) and returns the state it sent.
type checkChild struct {
	s       *checkServer
	q       *queue[*childpb.CheckState]
	changes chan checksched.Change
}

func newCheckChild(t *testing.T, ctx context.Context, epoch uint64, now time.Time) *checkChild {
	s := newCheckServer(hclog.NewNullLogger(), Options{})
	s.epoch, s.now = epoch, func() time.Time { return now }
	c := &checkChild{s: s, q: s.out.subscribe(nil), changes: make(chan checksched.Change)}
	go s.forward(ctx, c.changes)
	return c
}

func (c *checkChild) emit(t *testing.T, ch checksched.Change) *childpb.CheckState {
	t.Helper()
	c.changes <- ch
	select {
	case <-c.q.ready:
	case <-time.After(15 * time.Second):
		t.Fatalf("the check child sent nothing for %v", ch)
	}
	sent, _ := c.q.take()
	if len(sent) != 1 {
		t.Fatalf("the check child sent %v for one change", sent)
	}
	return sent[0]
}

// TestCheckStateOrderSurvivesClockStepBack: the check child restarts after the wall clock
// stepped back (NTP, a VM restored from a snapshot), so its states carry earlier times than
// those of the child before it. The vrrp child must still apply them (the failure takes the
// priority down at once), and must not let a late state of the earlier child, or core
// replaying an older state, undo them.
// waitPriority waits until the effective priority of vs's first instance is one of want,
// and returns it. The bound only ends a test whose priority never gets there.
func waitPriority(t *testing.T, ctx context.Context, vs *vrrpServer, want ...int32) int32 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := vs.Status(ctx, &childpb.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		p := st.Instances[0].EffectivePriority
		if slices.Contains(want, p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("effective priority %d, want one of %v", p, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCheckStateOrderSurvivesClockStepBack(t *testing.T) {
	if !inLab(t, "clkback") {
		return
	}
	conf := `vrrp_script chk {
    script "/bin/true"
    weight -20
}
vrrp_script marker {
    script "/bin/true"
    weight -5
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/32
    }
    track_script {
        chk
        marker
    }
}
`
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	vs := newVRRPServer(hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Info}), Options{})
	if _, err := vs.Start(ctx, &childpb.StartRequest{ConfigName: "clock.conf", ConfigText: conf}); err != nil {
		t.Fatalf("vrrp Start: %v", err)
	}
	defer vs.shutdown()
	set := func(st *childpb.CheckState) {
		t.Helper()
		if _, err := vs.SetCheck(ctx, st); err != nil {
			t.Fatalf("SetCheck(%v): %v", st, err)
		}
	}
	prio := func(want ...int32) int32 { t.Helper(); return waitPriority(t, ctx, vs, want...) }
	up := func(name string) checksched.Change { return checksched.Change{Name: name, Up: true, Msg: "ok"} }
	down := func(name string) checksched.Change {
		return checksched.Change{Name: name, Up: false, Msg: "exit status 1"}
	}

	base := time.Now()
	// The first check child's clock is an hour ahead of the second's.
	first := newCheckChild(t, ctx, 1, base.Add(time.Hour))
	set(first.emit(t, checksched.Change{Name: "chk", Up: true, Msg: "initial state", Initial: true}))
	set(first.emit(t, checksched.Change{Name: "marker", Up: true, Msg: "initial state", Initial: true}))
	prio(100)
	set(first.emit(t, down("chk")))
	prio(80)
	lastOfFirst := first.emit(t, up("chk"))
	set(lastOfFirst)
	prio(100)

	// The check child restarts; the clock stepped back meanwhile.
	second := newCheckChild(t, ctx, 2, base)
	set(second.emit(t, checksched.Change{Name: "chk", Up: true, Msg: "initial state", Initial: true}))
	set(second.emit(t, checksched.Change{Name: "marker", Up: true, Msg: "initial state", Initial: true}))
	chkDown := second.emit(t, down("chk"))
	if chkDown.UnixNano >= lastOfFirst.UnixNano {
		t.Fatalf("the test's clock did not step back: %d after %d", chkDown.UnixNano, lastOfFirst.UnixNano)
	}
	set(chkDown)
	prio(80) // the failure counts, though its time is an hour before chk's last state

	// The first child's last state arrives late (still on its way from its stream), then
	// core replays the second child's initial state: neither is newer than chkDown. The
	// marker's failure, applied after them in the same order, shows whether they were
	// taken: 75 if not, 95 if chk came up again.
	set(lastOfFirst)
	set(&childpb.CheckState{Name: "chk", Up: true, Message: "initial state", Initial: true, Epoch: 2, Seq: 1, UnixNano: base.UnixNano()})
	set(second.emit(t, down("marker")))
	if p := prio(75, 95); p != 75 {
		t.Errorf("effective priority %d after stale states of chk: an older state undid its failure", p)
	}
	// Core replaying the newest state again (after a reload) is taken again.
	set(chkDown)
	set(second.emit(t, up("marker")))
	if p := prio(80, 100); p != 80 {
		t.Errorf("effective priority %d after chk's newest state was replayed", p)
	}
}

// TestChangesSlowCoreGetsLatestState: core stops reading the check child's stream for a
// while (a loaded machine) while the checks keep changing, far more than any buffer holds.
// Once core reads again it must get the newest state of every check: an older state last
// would leave VRRP on a stale one until that check changes again.
func TestChangesSlowCoreGetsLatestState(t *testing.T) {
	s := newCheckServer(hclog.NewNullLogger(), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changes := make(chan checksched.Change)
	go s.forward(ctx, changes)

	// The check child's real gRPC service on a unix socket, and core's client, with HTTP/2
	// windows of a fixed 64 KiB so that a client that does not read holds the server back
	// soon (left to itself, gRPC grows them up to 16 MiB).
	sock := filepath.Join(t.TempDir(), "check.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	childpb.RegisterCheckServer(gs, s)
	go gs.Serve(lis)
	defer gs.Stop()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := childpb.NewCheckClient(conn).Changes(ctx, &childpb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	// The stream is served once the first state arrives.
	changes <- checksched.Change{Name: "c0", Up: true, Msg: "initial state"}
	if st, err := stream.Recv(); err != nil || st.Name != "c0" {
		t.Fatalf("first state: %v, %v", st, err)
	}

	// Core does not read while 3 checks change 6000 times, each state about 300 bytes.
	const checks, rounds = 3, 2000
	pad := strings.Repeat("x", 300)
	final := map[string]string{}
	for i := range rounds {
		for c := range checks {
			name := fmt.Sprintf("c%d", c)
			msg := fmt.Sprintf("%s probe %d %s", name, i, pad)
			changes <- checksched.Change{Name: name, Up: i%2 == 0, Msg: msg}
			final[name] = msg
		}
	}
	// forward has taken every change (changes is unbuffered, so the last send returned
	// when it was taken); core reads again, until it has the newest state of every check.
	got := map[string]string{}
	n := 0
	for len(got) < checks {
		st, err := stream.Recv()
		if err != nil {
			// With the newest states lost, nothing more comes: ctx ends the wait.
			t.Fatalf("core received %d states, then %v, and not the newest state of every check: only of %v", n, err, short(got, final))
		}
		n++
		if st.Message == final[st.Name] {
			got[st.Name] = st.Message
		}
	}
	t.Logf("core received %d states for %d changes and the newest state of each of the %d checks", n, checks*rounds, checks)
}

// short names the checks whose newest state got holds.
func short(got, final map[string]string) []string {
	var out []string
	for name := range final {
		if got[name] != "" {
			out = append(out, name)
		}
	}
	return out
}

// TestQueueKeepsNewestOfEachKey: a queue keeps every value up to its limit, then lets a new
// value supersede the pending one of its key; what is taken is in publishing order and ends
// with the newest value of every key.
func TestQueueKeepsNewestOfEachKey(t *testing.T) {
	type v struct{ key, val string }
	f := newFanout(func(x v) string { return x.key }, 3)
	q := f.subscribe(nil)
	for _, x := range []v{{"a", "a1"}, {"b", "b1"}, {"a", "a2"}, {"a", "a3"}, {"c", "c1"}, {"b", "b2"}, {"a", "a4"}} {
		f.publish(x)
	}
	got, left := q.take()
	// a1 b1 a2 kept as they came (the limit); then each new value supersedes the oldest
	// pending one of its key (a3 a1, b2 b1, a4 a2), so that what is left of a key is its
	// newest values, in order; c1 is new.
	want := []v{{"a", "a3"}, {"c", "c1"}, {"b", "b2"}, {"a", "a4"}}
	if fmt.Sprint(got) != fmt.Sprint(want) || left != 3 {
		t.Errorf("took %v (%d left out), want %v (3 left out)", got, left, want)
	}
	f.publish(v{"b", "b3"})
	if got, left := q.take(); fmt.Sprint(got) != fmt.Sprint([]v{{"b", "b3"}}) || left != 0 {
		t.Errorf("then took %v (%d left out)", got, left)
	}
	f.unsubscribe(q)
	f.publish(v{"b", "b4"})
	if got, _ := q.take(); len(got) != 0 {
		t.Errorf("took %v after unsubscribing", got)
	}
}
