package supervisor

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// brokenChanges is a check child whose first stream of states carries a message over core's
// size limit, and whose later streams carry a good state.
type brokenChanges struct {
	childpb.UnimplementedCheckServer
	streams atomic.Int32
}

func (b *brokenChanges) Changes(_ *childpb.Empty, srv childpb.Check_ChangesServer) error {
	st := &childpb.CheckState{Name: "chk", Up: true, Epoch: fuzzEpoch, Seq: 1}
	if b.streams.Add(1) == 1 {
		st.Message = strings.Repeat("x", maxChildMessage+1)
	}
	if err := srv.Send(st); err != nil {
		return err
	}
	<-srv.Context().Done()
	return nil
}

// TestBrokenStreamOpenedAgain: a stream of check states that breaks while the check child
// runs (here: a message over the size limit) is opened again, and the states come through.
// Before, it ended for good: no check state reached the vrrp process again until the check
// child happened to be restarted.
func TestBrokenStreamOpenedAgain(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "child.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxSendMsgSize(64 << 20))
	fake := &brokenChanges{}
	childpb.RegisterCheckServer(srv, fake)
	go srv.Serve(ln)
	defer srv.Stop()
	conn, err := grpc.NewClient("unix:"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxChildMessage)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := fuzzSupervisor(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.follow(ctx, child.RoleCheck, func(ctx context.Context) error {
			return s.watchChecks(ctx, childpb.NewCheckClient(conn), fuzzEpoch)
		})
	}()
	for {
		s.mu.Lock()
		st := s.checks["chk"]
		s.mu.Unlock()
		if st != nil {
			if !st.Up || fake.streams.Load() < 2 {
				t.Fatalf("state %v after %d streams", st, fake.streams.Load())
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no state came through after %d streams", fake.streams.Load())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	<-done
}

// bigStatus is a vrrp child with n instances, whose status answer passes 4 MiB.
type bigStatus struct {
	childpb.UnimplementedVRRPServer
	n int
}

func (b *bigStatus) Status(context.Context, *childpb.Empty) (*childpb.VRRPStatus, error) {
	st := &childpb.VRRPStatus{}
	for i := range b.n {
		st.Instances = append(st.Instances, &childpb.InstanceStatus{
			Name: fmt.Sprintf("VI_%05d_%s", i, strings.Repeat("n", 300)), State: "BACKUP", Priority: 100, Interface: "eth0", Vrid: uint32(i%255 + 1),
			Vips: []string{"192.0.2.10/32", "2001:db8::10/128"},
		})
	}
	return st, nil
}

// TestLargeStatusAnswered: a vrrp child with thousands of instances answers a status over
// gRPC's 4 MiB (maxChildMessage); core takes it on the connection the supervisor dials,
// where any other message is still held to maxChildMessage.
func TestLargeStatusAnswered(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "child.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	childpb.RegisterVRRPServer(srv, &bigStatus{n: 15000})
	go srv.Serve(ln)
	defer srv.Stop()
	conn, err := grpc.NewClient("unix:"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxChildMessage)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := childpb.NewVRRPClient(conn)
	if _, err := c.Status(ctx, &childpb.Empty{}); err == nil {
		t.Fatal("the test's answer is within maxChildMessage: it proves nothing")
	}
	st, err := c.Status(ctx, &childpb.Empty{}, statusCall())
	if err != nil {
		t.Fatalf("status of 15000 instances: %v", err)
	}
	if len(st.Instances) != 15000 {
		t.Fatalf("%d instances, want 15000", len(st.Instances))
	}
}
