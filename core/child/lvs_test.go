package child

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/ipvs"
	"github.com/vigil-ha/vigil/core/lvs"
)

// lvsConfig has two virtual servers: one with ha_suspend on VI_1's address and omega, one
// that starts below its quorum (a real server's checker with alpha starts failed; its
// plugin is not in pluginDir, so it stays failed) and puts its sorry server in.
func lvsConfig(pluginDir string, weight int) string {
	return `global_defs {
    plugin_dir ` + pluginDir + `
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100/24
    }
}
virtual_server 192.0.2.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    ha_suspend
    omega
    real_server 192.0.2.11 80 {
        weight ` + strconv.Itoa(weight) + `
    }
}
virtual_server 192.0.2.101 443 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    quorum 2
    sorry_server 192.0.2.13 443
    real_server 192.0.2.12 443 {
        weight 1
    }
    real_server 192.0.2.14 443 {
        weight 1
        TCP_CHECK {
            alpha
            connect_timeout 1
        }
    }
}
`
}

// noIPVS skips a test on a kernel that has IPVS: the test is about the load balancer
// running on without one, and must never program the host's own table.
func noIPVS(t *testing.T) {
	c, err := ipvs.Open()
	if err == nil {
		c.Close()
		t.Skip("this kernel has IPVS; the test is for one without (the VM tests program a kernel's table)")
	}
	if !errors.Is(err, ipvs.ErrNoIPVS) {
		t.Skipf("IPVS cannot be asked here: %v", err)
	}
}

// TestLoadBalancerWithoutIPVS runs the check child's load balancer where the kernel has no
// IPVS, through the child's real gRPC service: it says why it does not program anything and
// what to do, decides on anyway (status, notifications), follows the VRRP instance states
// core gives it (ha_suspend), takes a reload, and at stop sends the shutdown's notifications
// (omega) and then ends the stream.
func TestLoadBalancerWithoutIPVS(t *testing.T) {
	noIPVS(t)
	s := newCheckServer(hclog.NewNullLogger(), Options{})
	t.Cleanup(s.shutdown)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.Start(ctx, &childpb.StartRequest{ConfigName: "lvs.conf", ConfigText: lvsConfig(dir, 3)}); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(dir, "check.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	childpb.RegisterCheckServer(gs, s)
	go gs.Serve(lis)
	defer gs.Stop()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := childpb.NewCheckClient(conn)

	// Core subscribes after Start: the start's notifications wait for it.
	stream, err := c.LVSEvents(ctx, &childpb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	// What the stream brings, in its order: events, then the error that ended it.
	type recv struct {
		ev  *childpb.LVSEvent
		err error
	}
	got := make(chan recv, 64)
	go func() {
		for {
			ev, err := stream.Recv()
			got <- recv{ev, err}
			if err != nil {
				return
			}
		}
	}()
	next := func(what string) *childpb.LVSEvent {
		t.Helper()
		r := <-got
		if r.err != nil {
			t.Fatalf("waiting for %s: stream ended: %v", what, r.err)
		}
		return r.ev
	}
	up := next("the first virtual server's quorum")
	down := next("the second virtual server's quorum")
	if up.GetKind() != childpb.LVSEvent_QUORUM_UP || up.GetService() != "TCP 192.0.2.100:80" || !up.GetInit() || up.GetSeq() != 1 ||
		down.GetKind() != childpb.LVSEvent_QUORUM_DOWN || down.GetService() != "TCP 192.0.2.101:443" || !down.GetInit() || down.GetSeq() != 2 {
		t.Fatalf("start's notifications: %v, %v", up, down)
	}

	lvsStatus := func() *childpb.LVSStatus {
		st, err := c.Status(ctx, &childpb.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		return st.GetLvs()
	}
	st := lvsStatus()
	if st == nil || st.GetRunning() || !strings.Contains(st.GetError(), "modprobe ip_vs") {
		t.Fatalf("status without IPVS: %v", st)
	}
	if len(st.GetServices()) != 2 {
		t.Fatalf("virtual servers: %v", st.GetServices())
	}
	vs1, vs2 := st.GetServices()[0], st.GetServices()[1]
	if !vs1.GetSuspended() || vs1.GetPos() != "lvs.conf:13" || len(vs1.GetReals()) != 1 || !vs1.GetReals()[0].GetAlive() ||
		vs1.GetReals()[0].GetConfiguredWeight() != 3 || vs1.GetReals()[0].GetAddress() != "192.0.2.11:80" || vs1.GetCounters() != nil {
		t.Errorf("first virtual server: %v", vs1)
	}
	if vs2.GetQuorumUp() || !vs2.GetSorryIn() || vs2.GetSorry() != "192.0.2.13:443" || vs2.GetQuorum() != 2 || vs2.GetLiveWeight() != 1 ||
		vs2.GetReals()[0].GetMethod() != "DR" || vs2.GetReals()[1].GetAlive() || len(vs2.GetReals()[1].GetCheckers()) != 1 {
		t.Errorf("second virtual server: %v", vs2)
	}

	// VI_1 becomes master: its address is up here, ha_suspend lets the service's checkers go.
	if _, err := c.SetInstance(ctx, &childpb.InstanceState{Instance: "VI_1", State: "MASTER"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the first virtual server is resumed", func() bool { return !lvsStatus().GetServices()[0].GetSuspended() })
	if _, err := c.SetInstance(ctx, &childpb.InstanceState{Instance: "VI_1", State: "BACKUP"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the first virtual server is suspended again", func() bool { return lvsStatus().GetServices()[0].GetSuspended() })

	// A weight edit: the real server keeps its state, nothing is notified.
	if _, err := s.Reload(ctx, &childpb.StartRequest{ConfigName: "lvs.conf", ConfigText: lvsConfig(dir, 5)}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new weight", func() bool { return lvsStatus().GetServices()[0].GetReals()[0].GetConfiguredWeight() == 5 })

	// Stop: omega's real server down and quorum down, then the stream ends.
	s.shutdown()
	rs := next("the shutdown's real server down")
	if rs.GetKind() != childpb.LVSEvent_REAL_DOWN || rs.GetService() != "TCP 192.0.2.100:80" || rs.GetReal() != "192.0.2.11:80" ||
		!rs.GetStopping() || rs.GetSeq() != 3 {
		t.Fatalf("shutdown's first notification: %v (a reload's weight edit must notify nothing)", rs)
	}
	stop := next("the shutdown's quorum down")
	if stop.GetKind() != childpb.LVSEvent_QUORUM_DOWN || stop.GetService() != "TCP 192.0.2.100:80" || !stop.GetStopping() || stop.GetSeq() != 4 {
		t.Fatalf("shutdown's second notification: %v", stop)
	}
	if r := <-got; r.ev != nil || !errors.Is(r.err, io.EOF) {
		t.Fatalf("after the shutdown's notifications: %v, %v; want the end of the stream", r.ev, r.err)
	}
}

// TestNoLoadBalancerWithoutVirtualServers: a configuration without virtual_server and
// lvs_sync_daemon opens no IPVS at all, and its status has no load-balancer part.
func TestNoLoadBalancerWithoutVirtualServers(t *testing.T) {
	s := newCheckServer(hclog.NewNullLogger(), Options{})
	t.Cleanup(s.shutdown)
	ctx := context.Background()
	conf := `vrrp_script chk {
    script "/bin/true"
    interval 60
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk
    }
}
`
	if _, err := s.Start(ctx, &childpb.StartRequest{ConfigName: "vrrp.conf", ConfigText: conf}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx, &childpb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	b := s.lvs
	s.mu.Unlock()
	if st.GetLvs() != nil || b != nil {
		t.Fatalf("a load balancer without virtual servers: %v", st.GetLvs())
	}
}

// fakeKernel is an IPVS table in memory behind the loop's kernel interface, counting what
// the loop asks of it.
type fakeKernel struct {
	mu      sync.Mutex
	table   ipvs.Table
	reads   int
	applies int
	lastOps []ipvs.Op
	// refuse, when set, is asked about each op: an error refuses it.
	refuse func(ipvs.Op) error
	// hold, when set, makes the next Apply say so on entered and wait for release.
	hold             bool
	entered, release chan struct{}
	daemons          []ipvs.Daemon
}

func newFakeKernel() *fakeKernel { return &fakeKernel{table: ipvs.Table{}} }

func (k *fakeKernel) Read() (ipvs.Table, map[ipvs.ServiceKey]ipvs.ServiceStats, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reads++
	return k.table.Clone(), map[ipvs.ServiceKey]ipvs.ServiceStats{}, nil
}

func (k *fakeKernel) Apply(_ context.Context, ops []ipvs.Op) error {
	k.mu.Lock()
	if k.hold {
		k.hold = false
		k.mu.Unlock()
		k.entered <- struct{}{}
		<-k.release
		k.mu.Lock()
	}
	defer k.mu.Unlock()
	k.applies++
	k.lastOps = slices.Clone(ops)
	var failed []*ipvs.OpError
	for _, op := range ops {
		if k.refuse != nil {
			if err := k.refuse(op); err != nil {
				failed = append(failed, &ipvs.OpError{Op: op, Err: err})
				continue
			}
		}
		switch op.Kind {
		case ipvs.AddService, ipvs.UpdateService:
			k.table.Add(op.Service)
		case ipvs.DelService:
			delete(k.table, op.Service.Key)
		case ipvs.AddDest, ipvs.UpdateDest:
			if err := k.table.AddDest(op.Service.Key, op.Dest); err != nil {
				failed = append(failed, &ipvs.OpError{Op: op, Err: err})
			}
		case ipvs.DelDest:
			delete(k.table[op.Service.Key].Dests, op.Dest.Key)
		}
	}
	if len(failed) > 0 {
		return &ipvs.ApplyError{Failed: failed}
	}
	return nil
}

func (k *fakeKernel) Flush(_ context.Context, keys []ipvs.ServiceKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, key := range keys {
		delete(k.table, key)
	}
	return nil
}

func (k *fakeKernel) Daemons(context.Context) ([]ipvs.Daemon, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.daemons), nil
}

func (k *fakeKernel) StartDaemon(_ context.Context, d ipvs.Daemon) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.daemons = append(k.daemons, d)
	return nil
}

func (k *fakeKernel) StopDaemon(_ context.Context, st ipvs.DaemonState) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.daemons = slices.DeleteFunc(k.daemons, func(d ipvs.Daemon) bool { return d.State == st })
	return nil
}

func (k *fakeKernel) Close() error { return nil }

// counts are the kernel reads and applies so far, and the destinations of every service.
func (k *fakeKernel) counts() (reads, applies, dests int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, v := range k.table {
		dests += len(v.Dests)
	}
	return k.reads, k.applies, dests
}

func (k *fakeKernel) hasDest(svc ipvs.ServiceKey, d ipvs.DestKey) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.table[svc].Dests[d]
	return ok
}

// bigLVSConfig has vs virtual servers of rs real servers (plus extra in the first), each
// with a TCP_CHECK (with alpha: starting failed).
func bigLVSConfig(t *testing.T, vs, rs, extra int, alpha bool) *config.Config {
	t.Helper()
	var b strings.Builder
	a := ""
	if alpha {
		a = "            alpha\n"
	}
	for i := range vs {
		fmt.Fprintf(&b, "virtual_server 192.0.2.100 %d {\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n", 80+i)
		n := rs
		if i == 0 {
			n += extra
		}
		for j := range n {
			fmt.Fprintf(&b, "    real_server 198.51.%d.%d 8080 {\n        weight 1\n        TCP_CHECK {\n%s            connect_timeout 1\n        }\n    }\n", 100+j/200, 1+j%200, a)
		}
		b.WriteString("}\n")
	}
	cfg, ds := config.Parse("lvs.conf", []byte(b.String()), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	return cfg
}

// startFake runs a balancer for cfg on k with the periods given.
func startFake(t *testing.T, cfg *config.Config, k *fakeKernel, timing loopTiming) *balancer {
	t.Helper()
	b := startBalancer(hclog.NewNullLogger(), cfg, nil, false, func() (kernel, error) { return k, nil },
		func(*childpb.LVSEvent) {}, timing)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b.stop(ctx)
	})
	return b
}

func checkNames(cfg *config.Config) []string {
	var names []string
	for _, rc := range checksched.RealServerChecks(cfg) {
		names = append(names, rc.Name)
	}
	return names
}

// TestBalancerKeepsTheTable: the loop reads the kernel once at start; batches that leave
// Desired as it was touch the kernel no more, and a change is one apply, without a read.
func TestBalancerKeepsTheTable(t *testing.T) {
	cfg := bigLVSConfig(t, 2, 3, 0, false)
	k := newFakeKernel()
	b := startFake(t, cfg, k, loopTiming{verify: time.Hour, gather: gatherEvery})
	ctx := context.Background()
	if r, a, d := k.counts(); r != 1 || a != 1 || d != 6 {
		t.Fatalf("after start: %d reads, %d applies, %d destinations; want 1, 1, 6", r, a, d)
	}
	names := checkNames(cfg)
	for range 50 {
		for _, n := range names {
			b.check(n, lvs.Result{Up: true})
		}
		b.check(names[0], lvs.Result{Up: true, Initial: true})
		b.instance("VI_1", false)
		b.settled(ctx)
	}
	if r, a, _ := k.counts(); r != 1 || a != 1 {
		t.Fatalf("after 50 batches that change nothing: %d reads, %d applies; want 1, 1", r, a)
	}
	// One real server fails: one apply of one op, no read.
	b.check(names[0], lvs.Result{Up: false})
	b.settled(ctx)
	for range 10 {
		b.check(names[0], lvs.Result{Up: false})
		b.settled(ctx)
	}
	r, a, d := k.counts()
	if r != 1 || a != 2 || d != 5 || len(k.lastOps) != 1 || k.lastOps[0].Kind != ipvs.DelDest {
		t.Fatalf("after a failure: %d reads, %d applies (last %v), %d destinations; want 1, 2 (one delete), 5", r, a, k.lastOps, d)
	}
	// Status still says what the director holds (the snapshot is made when asked).
	st := b.status(ctx)
	if st.GetServices()[0].GetReals()[0].GetAlive() || !st.GetServices()[0].GetReals()[1].GetAlive() {
		t.Fatalf("status after the failure: %v", st.GetServices()[0])
	}
	// The status's counters were one read; the stop reads once more, and removes what
	// vigil added.
	b.stop(ctx)
	if r, _, d := k.counts(); r != 3 || len(k.table) != 0 || d != 0 {
		t.Fatalf("after the stop: %d reads, %d services left; want 3, 0", r, len(k.table))
	}
}

// TestBalancerBatchesABurst: the first results of a thousand checkers that come while the
// loop applies the first are one batch, one apply.
func TestBalancerBatchesABurst(t *testing.T) {
	cfg := bigLVSConfig(t, 10, 100, 0, true)
	k := newFakeKernel()
	b := startFake(t, cfg, k, loopTiming{verify: time.Hour, gather: gatherEvery})
	if r, a, d := k.counts(); r != 1 || a != 1 || d != 0 || len(k.table) != 10 {
		t.Fatalf("after start (alpha: every real server down): %d reads, %d applies, %d services, %d destinations; want 1, 1, 10, 0", r, a, len(k.table), d)
	}
	names := checkNames(cfg)
	k.mu.Lock()
	k.hold, k.entered, k.release = true, make(chan struct{}), make(chan struct{})
	k.mu.Unlock()
	b.check(names[0], lvs.Result{Up: true})
	<-k.entered // the loop applies the first result
	for _, n := range names[1:] {
		b.check(n, lvs.Result{Up: true})
	}
	close(k.release)
	b.settled(context.Background())
	if r, a, d := k.counts(); r != 1 || a != 3 || d != 1000 {
		t.Fatalf("after 1000 first results: %d reads, %d applies, %d destinations; want 1, 3 (start, the first, the other 999), 1000", r, a, d)
	}
}

// TestBalancerVerifiesTheKernel: a destination deleted by hand stays deleted while the
// cache is trusted, and comes back at the verification.
func TestBalancerVerifiesTheKernel(t *testing.T) {
	cfg := bigLVSConfig(t, 1, 2, 0, false)
	svc := ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.100:80"))
	dest := ipvs.DestKey{Addr: netip.MustParseAddr("198.51.100.1"), Port: 8080}
	names := checkNames(cfg)
	ctx := context.Background()

	k := newFakeKernel()
	b := startFake(t, cfg, k, loopTiming{verify: time.Hour, gather: gatherEvery})
	k.mu.Lock()
	delete(k.table[svc].Dests, dest) // ipvsadm -d
	k.mu.Unlock()
	for range 5 {
		b.check(names[1], lvs.Result{Up: true})
		b.settled(ctx)
	}
	if r, _, _ := k.counts(); r != 1 || k.hasDest(svc, dest) {
		t.Fatalf("without a verification: %d reads, deleted destination back %v; want 1, false", r, k.hasDest(svc, dest))
	}

	k = newFakeKernel()
	startFake(t, cfg, k, loopTiming{verify: 100 * time.Millisecond, gather: gatherEvery})
	k.mu.Lock()
	delete(k.table[svc].Dests, dest)
	k.mu.Unlock()
	waitUntil(t, "the verification puts the destination back", func() bool { return k.hasDest(svc, dest) })
	if r, _, _ := k.counts(); r < 2 {
		t.Fatalf("%d reads; the verification is one more", r)
	}
}

// TestBalancerRereadsAfterARefusal: an apply the kernel refused in part leaves the cache
// uncertain: the next apply reads first, and then does what is missing.
func TestBalancerRereadsAfterARefusal(t *testing.T) {
	cfg := bigLVSConfig(t, 1, 3, 0, false)
	svc := ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.100:80"))
	refused := ipvs.DestKey{Addr: netip.MustParseAddr("198.51.100.2"), Port: 8080}
	k := newFakeKernel()
	once := true
	k.refuse = func(op ipvs.Op) error {
		if op.Kind == ipvs.AddDest && op.Dest.Key == refused && once {
			once = false
			return errors.New("refused once")
		}
		return nil
	}
	b := startFake(t, cfg, k, loopTiming{verify: time.Hour, gather: gatherEvery})
	if r, a, d := k.counts(); r != 1 || a != 1 || d != 2 {
		t.Fatalf("after start with a refusal: %d reads, %d applies, %d destinations; want 1, 1, 2", r, a, d)
	}
	// A change: read first (the refusal left the cache unsure), then the refused
	// destination is added with the change.
	b.check(checkNames(cfg)[2], lvs.Result{Up: false})
	b.settled(context.Background())
	if r, a, d := k.counts(); r != 2 || a != 2 || d != 2 || !k.hasDest(svc, refused) {
		t.Fatalf("after the next change: %d reads, %d applies, %d destinations, refused one in %v; want 2, 2, 2, true", r, a, d, k.hasDest(svc, refused))
	}
}

// TestBalancerReloadReadsOnce: a reload adding a real server to a thousand is one read and
// one apply of one op; the checkers of the others keep their state.
func TestBalancerReloadReadsOnce(t *testing.T) {
	cfg := bigLVSConfig(t, 10, 100, 0, false)
	k := newFakeKernel()
	b := startFake(t, cfg, k, loopTiming{verify: time.Hour, gather: gatherEvery})
	ctx := context.Background()
	b.check(checkNames(cfg)[5], lvs.Result{Up: false})
	b.settled(ctx)
	b.reload(bigLVSConfig(t, 10, 100, 1, false))
	b.settled(ctx)
	r, a, d := k.counts()
	if r != 2 || a != 3 || d != 1000 || len(k.lastOps) != 1 || k.lastOps[0].Kind != ipvs.AddDest ||
		k.lastOps[0].Dest.Key != (ipvs.DestKey{Addr: netip.MustParseAddr("198.51.100.101"), Port: 8080}) {
		t.Fatalf("after the reload: %d reads, %d applies (last %v), %d destinations; want 2, 3 (one add), 1000", r, a, k.lastOps, d)
	}
}

// TestLoadBalancerReloadTakenBack: a reload's load-balancer part is taken before the checks
// are configured; a reload that the checks then refuse (a vrrp_check whose plugin is not
// installed) is taken back, and the director has the servers it had.
func TestLoadBalancerReloadTakenBack(t *testing.T) {
	noIPVS(t)
	s := newCheckServer(hclog.NewNullLogger(), Options{})
	t.Cleanup(s.shutdown)
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := s.Start(ctx, &childpb.StartRequest{ConfigName: "lvs.conf", ConfigText: lvsConfig(dir, 3)}); err != nil {
		t.Fatal(err)
	}
	reals := func() string {
		st, err := s.Status(ctx, &childpb.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, vs := range st.GetLvs().GetServices() {
			for _, r := range vs.GetReals() {
				out = append(out, fmt.Sprintf("%s/%d", r.GetAddress(), r.GetConfiguredWeight()))
			}
		}
		return strings.Join(out, " ")
	}
	const before = "192.0.2.11:80/3 192.0.2.12:443/1 192.0.2.14:443/1"
	if got := reals(); got != before {
		t.Fatalf("after start: %s; want %s", got, before)
	}
	bad := strings.Replace(lvsConfig(dir, 7), "    virtual_ipaddress {", "    track_script {\n        chk\n    }\n    virtual_ipaddress {", 1) + `vrrp_check chk {
    plugin missing
}
`
	if _, err := s.Reload(ctx, &childpb.StartRequest{ConfigName: "lvs.conf", ConfigText: bad}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("reload with a missing plugin: %v; want InvalidArgument", err)
	}
	s.mu.Lock()
	b := s.lvs
	s.mu.Unlock()
	b.settled(ctx)
	if got := reals(); got != before {
		t.Fatalf("after a refused reload: %s; want %s (taken back)", got, before)
	}
	if _, err := s.Reload(ctx, &childpb.StartRequest{ConfigName: "lvs.conf", ConfigText: lvsConfig(dir, 7)}); err != nil {
		t.Fatal(err)
	}
	b.settled(ctx)
	if got, want := reals(), "192.0.2.11:80/7 192.0.2.12:443/1 192.0.2.14:443/1"; got != want {
		t.Fatalf("after a reload: %s; want %s", got, want)
	}
}
