package lane

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// quietConn is a unix socket whose reads bypass the runtime's system call bookkeeping (and
// rawWriter's writes do too). A probe makes each of the two processes read and write once
// after being idle, and a system call made the ordinary way from an idle Go process wakes
// the runtime's monitor thread (sysmon), which then polls every 20 µs for a millisecond: on
// the 2-core VM of BENCHMARKS.md that was about a tenth of a probe's CPU. The socket is
// non-blocking, so a raw call never blocks the thread; when it would, the function returns
// false and the runtime's poller waits, deadlines included. (What the race detector learns
// from syscall.Read and Write, race_on.go tells it.)
//
// The read that finds the socket empty (EAGAIN) before each wait cannot be skipped, even
// after a short read: the runtime forgets earlier readiness when a read begins
// (internal/poll's prepareRead), so a message that came in between would wait forever.
type quietConn struct {
	*net.UnixConn
	rc syscall.RawConn
}

// quiet wraps c when it is a unix socket; other connections are returned as they are.
func quiet(c net.Conn) net.Conn {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return c
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return c
	}
	return &quietConn{UnixConn: uc, rc: rc}
}

func (c *quietConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if e == syscall.EINTR {
				continue
			}
			if e == syscall.EAGAIN {
				return false
			}
			n, errno = int(r), e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, err // already a *net.OpError (closed, deadline)
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "unix", Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	case n == 0:
		return 0, io.EOF
	}
	raceAcquireIO()
	return n, nil
}

// rawWriter is the write end of a lane on Linux: a socket outside the runtime's poller (see
// duplex.go). Writes are raw and non-blocking; a full socket, which a probe lane meets only
// with thousands of results at once, waits in poll(2) on the writing thread.
type rawWriter struct {
	mu       sync.RWMutex // Write holds it shared and Close exclusively, so that fd is not reused under a call
	fd       int          // -1 once closed
	closed   atomic.Bool
	deadline atomic.Int64 // Unix nanoseconds; 0: none
	addr     net.Addr
	cleanup  runtime.Cleanup // closes fd if the writer is dropped unclosed; stopped by Close
}

// detach takes c's socket out of the poller: it keeps a duplicate of the descriptor, which
// the runtime never saw, and closes c.
func detach(c net.Conn) (writeEnd, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var dupErr error
	if err := rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			dupErr = e
			return
		}
		nfd = int(r)
	}); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, fmt.Errorf("probe lane: duplicate the write end: %w", dupErr)
	}
	w := &rawWriter{fd: nfd, addr: c.RemoteAddr()}
	// A lane dropped without Close must still end, or its peer would wait for EOF forever.
	w.cleanup = runtime.AddCleanup(w, func(fd int) { syscall.Close(fd) }, nfd)
	c.Close() // also takes the socket out of the poller; the duplicate keeps it open
	return w, nil
}

func (w *rawWriter) Write(p []byte) (int, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.fd < 0 {
		return 0, w.opError("write", net.ErrClosed)
	}
	if w.expired() {
		return 0, w.opError("write", os.ErrDeadlineExceeded)
	}
	n := 0
	for n < len(p) {
		raceReleaseIO()
		// unix.SYS_SENDTO: the syscall package has none on 386.
		r, _, e := syscall.RawSyscall6(unix.SYS_SENDTO, uintptr(w.fd), uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n),
			syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			if err := w.waitWritable(); err != nil {
				return n, w.opError("write", err)
			}
		default:
			return n, w.opError("write", os.NewSyscallError("sendto", e))
		}
	}
	return n, nil
}

// waitWritable waits until the socket has room, in slices of at most 100 ms so that Close
// and a deadline are noticed: closing a descriptor does not wake a poll(2) on it.
func (w *rawWriter) waitWritable() error {
	for {
		if w.closed.Load() {
			return net.ErrClosed
		}
		timeout := 100 * time.Millisecond
		if dl := w.deadline.Load(); dl != 0 {
			left := time.Until(time.Unix(0, dl))
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			timeout = min(timeout, left)
		}
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, int(timeout.Milliseconds())+1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return nil // writable, or an error the next write reports
		}
	}
}

// expired reports whether the write deadline has passed.
func (w *rawWriter) expired() bool {
	dl := w.deadline.Load()
	return dl != 0 && time.Now().UnixNano() >= dl
}

func (w *rawWriter) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		w.deadline.Store(0)
	} else {
		w.deadline.Store(t.UnixNano())
	}
	return nil
}

func (w *rawWriter) Close() error {
	if w.closed.Swap(true) {
		return w.opError("close", net.ErrClosed)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cleanup.Stop()
	err := syscall.Close(w.fd)
	w.fd = -1
	if err != nil {
		return w.opError("close", os.NewSyscallError("close", err))
	}
	return nil
}

func (w *rawWriter) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "unix", Addr: w.addr, Err: err}
}
