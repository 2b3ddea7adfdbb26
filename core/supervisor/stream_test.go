package supervisor

import (
	"context"
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
