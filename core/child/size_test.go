package child

import (
	"context"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// TestLargeConfigurationStarts: a configuration whose resolved text is over gRPC's default
// message size of 4 MiB reaches the child. Before, the child refused the Start request
// (ResourceExhausted), and core restarted it with backoff, for ever.
func TestLargeConfigurationStarts(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 5<<20; i++ {
		fmt.Fprintf(&b, "vrrp_script chk_%d {\n    script \"/bin/true\"\n    interval 1\n}\n", i)
	}
	cfg, ds := config.Parse("big.conf", []byte(b.String()), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	req := StartRequest(cfg)
	if n := proto.Size(req); n <= 4<<20 {
		t.Fatalf("the request is %d bytes, not over 4 MiB", n)
	}
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "child.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcServer(nil)
	cs := newCheckServer(hclog.NewNullLogger(), Options{})
	childpb.RegisterCheckServer(srv, cs)
	go srv.Serve(ln)
	defer srv.Stop()
	// As go-plugin dials a child: no limit on what core sends.
	conn, err := grpc.NewClient("unix:"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(math.MaxInt32)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := childpb.NewCheckClient(conn).Start(ctx, req); err != nil {
		t.Fatalf("Start with %d bytes: %v", proto.Size(req), err)
	}
	cs.shutdown()
}
