package lane

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk/internal/pb"
)

// accept runs ln.Accept in the background.
func accept(ln *Listener) <-chan result {
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept(context.Background())
		ch <- result{c, err}
	}()
	return ch
}

type result struct {
	c   *Conn
	err error
}

// connected makes a lane and returns its two ends, closed when the test ends.
func connected(t *testing.T) (host, plugin *Conn) {
	t.Helper()
	ln, o, err := Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	acc := accept(ln)
	host, err = Dial(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	r := <-acc
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return host, r.c
}

func TestRoundTrip(t *testing.T) {
	ln, o, err := Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Dir(o.Address)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("lane directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	acc := accept(ln)
	host, err := Dial(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	r := <-acc
	if r.err != nil {
		t.Fatal(r.err)
	}
	plugin := r.c
	defer plugin.Close()
	// Once connected, nothing is left on disk for anybody else to connect to.
	if _, err := os.Stat(filepath.Dir(o.Address)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lane directory after accept: %v; want it removed", err)
	}

	for i := range 3 {
		in := &pb.ProbeBatch{Probes: []*pb.Probe{{Id: uint64(i), Name: strings.Repeat("x", i*40000)}}, Cancel: []uint64{7}}
		if err := host.Send(in); err != nil {
			t.Fatal(err)
		}
		var got pb.ProbeBatch
		if err := plugin.Recv(&got); err != nil {
			t.Fatal(err)
		}
		if got.Probes[0].GetId() != uint64(i) || len(got.Probes[0].GetName()) != i*40000 || got.Cancel[0] != 7 {
			t.Fatalf("frame %d: id %d, name of %d bytes, cancel %v", i, got.Probes[0].GetId(), len(got.Probes[0].GetName()), got.Cancel)
		}
		if err := plugin.Send(&pb.ResultBatch{Results: []*pb.ProbeResult{{Id: uint64(i)}}}); err != nil {
			t.Fatal(err)
		}
		var rb pb.ResultBatch
		if err := host.Recv(&rb); err != nil || rb.Results[0].GetId() != uint64(i) {
			t.Fatalf("result %d: %v, %v", i, &rb, err)
		}
	}
	host.Close()
	if err := plugin.Recv(&pb.ProbeBatch{}); !errors.Is(err, io.EOF) {
		t.Errorf("after the host closed: %v; want EOF", err)
	}
}

// TestWrongToken: a client that reaches the socket but did not get the token over gRPC is
// turned away, and the lane is gone.
func TestWrongToken(t *testing.T) {
	ln, o, err := Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	acc := accept(ln)
	bad := o
	bad.Token = make([]byte, tokenLen)
	c, err := Dial(context.Background(), bad)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := <-acc
	if r.err == nil || !strings.Contains(r.err.Error(), "did not show the lane's token") {
		t.Fatalf("accept with a wrong token: %v", r.err)
	}
	if _, err := Dial(context.Background(), o); err == nil {
		t.Error("a second connection reached the lane")
	}
}

// TestWrongCertificate: the host trusts only the certificate offered with the lane.
func TestWrongCertificate(t *testing.T) {
	ln, o, err := Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go ln.Accept(context.Background())
	other, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	o.Certificate = other.Certificate[0]
	c, err := Dial(context.Background(), o)
	if err == nil {
		// TLS 1.3: the client may learn of the failure at its first read.
		err = c.Recv(&pb.ResultBatch{})
	}
	var ce *tls.CertificateVerificationError
	if !errors.As(err, &ce) {
		t.Fatalf("dial with another certificate: %v; want a verification error", err)
	}
}

// TestFrameLimit: a length over MaxFrame fails the read without allocating it.
func TestFrameLimit(t *testing.T) {
	host, plugin := connected(t)
	// Garbage of a legal size is a bad message, not a panic.
	if err := host.sendFrame([]byte{0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	if err := plugin.Recv(&pb.ProbeBatch{}); err == nil || !strings.Contains(err.Error(), "bad message") {
		t.Fatalf("garbage frame: %v", err)
	}
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], MaxFrame+1)
	if _, err := host.c.Write(h[:]); err != nil {
		t.Fatal(err)
	}
	if err := plugin.Recv(&pb.ProbeBatch{}); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("oversized frame: %v", err)
	}
}

// TestNobodyConnects: an offered lane that nobody takes is withdrawn after acceptTimeout.
func TestNobodyConnects(t *testing.T) {
	ln, o, err := Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := ln.Accept(ctx); err == nil || !strings.Contains(err.Error(), "nobody connected") {
		t.Fatalf("accept: %v", err)
	}
	if _, err := os.Stat(o.Address); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after the timeout: %v; want it removed", err)
	}
}
