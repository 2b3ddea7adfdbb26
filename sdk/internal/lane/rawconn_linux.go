package lane

import (
	"fmt"
	"io"
	"net"
	"os"
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
// the 2-core VM of BENCHMARKS.md that was about a tenth of a probe's CPU. The socket is non-blocking, so a raw
// call never blocks the thread; when it would, the function returns false and the runtime's
// poller waits, deadlines included.
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
			var r uintptr
			var e syscall.Errno
			if raceEnabled {
				var rn int
				rn, e = rawOrRace(syscall.Read(int(fd), p))
				r = uintptr(rn)
			} else {
				r, _, e = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			}
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
		return 0, &net.OpError{Op: "read", Net: "unix", Addr: c.RemoteAddr(), Err: err}
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "unix", Addr: c.RemoteAddr(), Err: errno}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// rawOrRace turns syscall.Read's and syscall.Write's results into a raw call's, for the
// race detector's builds (race_on.go).
func rawOrRace(n int, err error) (int, syscall.Errno) {
	if err != nil {
		e, _ := err.(syscall.Errno)
		if e == 0 {
			e = syscall.EIO
		}
		return 0, e
	}
	return n, 0
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
	c.Close() // also takes the socket out of the poller; the duplicate keeps it open
	return w, nil
}

func (w *rawWriter) Write(p []byte) (int, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.fd < 0 {
		return 0, w.opError(net.ErrClosed)
	}
	n := 0
	for n < len(p) {
		var r uintptr
		var e syscall.Errno
		if raceEnabled {
			var wn int
			wn, e = rawOrRace(syscall.Write(w.fd, p[n:])) // non-blocking: the descriptor shares the original's O_NONBLOCK
			r = uintptr(wn)
		} else {
			r, _, e = syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(w.fd), uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n),
				syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
		}
		switch e {
		case 0:
			n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			if err := w.waitWritable(); err != nil {
				return n, w.opError(err)
			}
		default:
			return n, w.opError(e)
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
		return w.opError(net.ErrClosed)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	err := syscall.Close(w.fd)
	w.fd = -1
	if err != nil {
		return w.opError(err)
	}
	return nil
}

func (w *rawWriter) opError(err error) error {
	return &net.OpError{Op: "write", Net: "unix", Addr: w.addr, Err: err}
}
