package lane

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk/internal/pb"
)

// pair connects two unix sockets through a listener in a temporary directory.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// polled lists the files (by inode) that this process's epoll instances watch (the runtime
// has one), from /proc/self/fdinfo. By inode, not descriptor: a duplicate of a watched
// descriptor is watched too.
func polled(t *testing.T) map[uint64]bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	out := map[uint64]bool{}
	for _, e := range fds {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l != "anon_inode:[eventpoll]" {
			continue
		}
		b, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != "tfd:" {
				continue
			}
			for _, kv := range f {
				if v, ok := strings.CutPrefix(kv, "ino:"); ok {
					if n, err := strconv.ParseUint(v, 16, 64); err == nil {
						out[n] = true
					}
				}
			}
		}
	}
	return out
}

func fdOf(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	rc.Control(func(u uintptr) { fd = int(u) })
	return fd
}

func inode(t *testing.T, fd int) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestWriteEndOutOfPoller: the reason for two connections (duplex.go) holds only if the
// socket a process writes is not in its poller and the one it reads is.
func TestWriteEndOutOfPoller(t *testing.T) {
	a, _ := pair(t)
	b, _ := pair(t)
	d, err := newDuplex(a, b)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w, ok := d.w.(*rawWriter)
	if !ok {
		t.Fatalf("write end is a %T, want *rawWriter", d.w)
	}
	in := polled(t)
	if in[inode(t, w.fd)] {
		t.Errorf("the write end (fd %d) is in the poller", w.fd)
	}
	if r := fdOf(t, a); !in[inode(t, r)] {
		t.Errorf("the read end (fd %d) is not in the poller: %v", r, in)
	}
}

// fill writes to w until the socket is full, with its peer not reading, and returns how
// many bytes went in.
func fill(t *testing.T, w *rawWriter) int {
	t.Helper()
	w.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	defer w.SetWriteDeadline(time.Time{})
	chunk := make([]byte, 64<<10)
	total := 0
	for range 1000 {
		n, err := w.Write(chunk)
		total += n
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return total
			}
			t.Fatal(err)
		}
	}
	t.Fatal("64 MB went into a unix socket nobody reads")
	return 0
}

// TestWriterWaitsForRoom: a write to a full socket completes once the peer reads, byte
// for byte; a deadline and Close end the wait.
func TestWriterWaitsForRoom(t *testing.T) {
	c, s := pair(t)
	we, err := detach(c)
	if err != nil {
		t.Fatal(err)
	}
	w := we.(*rawWriter)
	defer w.Close()
	filled := fill(t, w)

	// A message that does not repeat, so that a byte lost, doubled or moved shows.
	msg := make([]byte, 500000)
	for i := range msg {
		msg[i] = byte(i * 7 / 3)
	}
	done := make(chan error, 1)
	go func() { _, err := w.Write(msg); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("write to a full socket returned at once: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	// Read exactly what fill left (zeros), then msg.
	got := make([]byte, filled+len(msg))
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got[:filled], make([]byte, filled)) || !bytes.Equal(got[filled:], msg) {
		t.Fatal("the bytes read differ from those written")
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if n, err := s.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%d bytes more than were written (%v)", n, err)
	}

	// A deadline that has passed fails a write even when there is room.
	w.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := w.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after its deadline, with room: %v", err)
	}
	w.SetWriteDeadline(time.Time{})

	fill(t, w)
	w.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := w.Write(msg); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past its deadline: %v", err)
	}
	w.SetWriteDeadline(time.Time{})
	go func() { _, err := w.Write(msg); done <- err }()
	time.Sleep(20 * time.Millisecond)
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write during Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a write waiting for room")
	}
}

// TestPeerGone: writing to a lane whose peer closed is EPIPE, and no SIGPIPE is raised (a
// program that asked for SIGPIPE with signal.Notify would get it otherwise).
func TestPeerGone(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	c, s := pair(t)
	we, err := detach(c)
	if err != nil {
		t.Fatal(err)
	}
	defer we.Close()
	s.Close()
	var werr error
	for range 10 {
		if _, werr = we.Write([]byte("x")); werr != nil {
			break
		}
	}
	if !errors.Is(werr, syscall.EPIPE) {
		t.Fatalf("write to a closed peer: %v; want EPIPE", werr)
	}
	select {
	case sig := <-sigs:
		t.Fatalf("writing to a closed peer raised %v", sig)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestReadEnd: the read end reports EOF when the peer closes, and honours its deadline.
func TestReadEnd(t *testing.T) {
	c, s := pair(t)
	r := quiet(c)
	if _, ok := r.(*quietConn); !ok {
		t.Fatalf("quiet gave a %T", r)
	}
	r.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := r.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	r.SetReadDeadline(time.Time{})
	s.Write([]byte("abc"))
	s.Close()
	buf := make([]byte, 8)
	if n, err := r.Read(buf); n != 3 || err != nil || string(buf[:3]) != "abc" {
		t.Fatalf("read = %d %q, %v", n, buf[:n], err)
	}
	if _, err := r.Read(buf); err != io.EOF {
		t.Fatalf("read after the peer closed: %v; want io.EOF", err)
	}
}

// TestOneConnectionOnly: a host that opens one connection (as before the lane had two) gets
// no lane, and the plugin gives up after its accept timeout instead of waiting forever.
func TestOneConnectionOnly(t *testing.T) {
	ln, o, err := Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", o.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := ln.Accept(ctx); err == nil || !strings.Contains(err.Error(), "nobody connected") {
		t.Fatalf("accept with one connection: %v", err)
	}
}

// TestBigFrames: frames larger than the sockets hold go through while both ends work, in
// both directions at once; the host takes up to MaxAnswer from its plugin.
func TestBigFrames(t *testing.T) {
	host, plugin := connected(t)
	big := strings.Repeat("y", 8<<20)
	answer := strings.Repeat("y", MaxAnswer-64)
	errs := make(chan error, 2)
	go func() { errs <- host.Send(&pb.ProbeBatch{Probes: []*pb.Probe{{Id: 1, Name: big}}}) }()
	go func() { errs <- plugin.Send(&pb.ResultBatch{Results: []*pb.ProbeResult{{Id: 2, Error: answer}}}) }()
	var pbIn pb.ProbeBatch
	if err := plugin.Recv(&pbIn); err != nil || pbIn.Probes[0].GetName() != big {
		t.Fatalf("plugin got %d bytes, %v", len(pbIn.GetProbes()), err)
	}
	var rbIn pb.ResultBatch
	if err := host.Recv(&rbIn); err != nil || rbIn.Results[0].GetError() != answer {
		t.Fatalf("host got %v", err)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestAnswerLimit: a plugin's frame over MaxAnswer fails the host's read, as a gRPC message
// over that size would: a buggy plugin cannot make its host hold 16 MiB for an answer.
func TestAnswerLimit(t *testing.T) {
	host, plugin := connected(t)
	go plugin.Send(&pb.ResultBatch{Results: []*pb.ProbeResult{{Id: 2, Error: strings.Repeat("y", MaxAnswer)}}})
	var rb pb.ResultBatch
	if err := host.Recv(&rb); err == nil || !strings.Contains(err.Error(), "over the 4194304 limit") {
		t.Fatalf("host took an answer over MaxAnswer: %v", err)
	}
}
