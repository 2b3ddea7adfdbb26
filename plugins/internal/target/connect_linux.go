//go:build linux

package target

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// A probe's connection to an IP address, without net.Dialer. A load balancer runs such
// probes a thousand times a second, and most of their CPU is in system calls and in the
// dialer's own work: net.Dialer resolves even an IP literal, makes contexts, and spends 13
// system calls on a connection (TCP_NODELAY, keep-alive options, getsockname, getsockopt,
// the runtime poller's fcntl and two epoll_ctl). This path makes a non-blocking socket,
// connects, puts it on the runtime's poller as an *os.File and asks the kernel once whether
// it is connected. What the server sees is the same.
//
// It also keeps the rule that a stall of the plugin is not the server's failure (keepalived
// counts a handshake or a reply that came in time): Go fails a read, a write or a wait for
// a connect whose deadline has passed before it asks the socket, so on a busy machine, where
// the plugin runs late, a reply that came long before the deadline would fail the probe as a
// timeout. Here the socket is asked once more when the deadline is found passed.

// PlainAddr is address when it is an IP literal without a zone (a link-local address needs
// its interface's index, which net resolves): what StartConnect can take.
func PlainAddr(address string) (netip.AddrPort, bool) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, false
	}
	return ap, true
}

// StartConnect starts a connect to ap on a new non-blocking socket and returns it; done says
// the connect is already over (connected: on loopback the handshake may end within the call).
func StartConnect(ap netip.AddrPort) (fd int, done bool, err error) {
	family, sa := sockaddr(ap)
	fd, err = syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, false, ConnectError(ap, os.NewSyscallError("socket", err))
	}
	switch err := syscall.Connect(fd, sa); err {
	case nil, syscall.EISCONN:
		return fd, true, nil
	case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
		return fd, false, nil
	default:
		syscall.Close(fd)
		return -1, false, ConnectError(ap, os.NewSyscallError("connect", err))
	}
}

// Connected reports whether the connect on fd has ended, and how (nil: connected).
func Connected(fd int) (bool, error) {
	// A poller may report a socket before its handshake is over (golang.org/issue/14548):
	// connected only when the kernel knows the peer, failed when SO_ERROR says so.
	if _, err := syscall.Getpeername(fd); err == nil {
		return true, nil
	}
	n, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
	switch {
	case err != nil:
		return true, os.NewSyscallError("getsockopt", err)
	case n == 0, syscall.Errno(n) == syscall.EINPROGRESS, syscall.Errno(n) == syscall.EALREADY, syscall.Errno(n) == syscall.EINTR:
		return false, nil // not yet
	}
	return true, os.NewSyscallError("connect", syscall.Errno(n))
}

// ConnectError words a failed connect as net.Dialer does, so that Reason reads both alike.
func ConnectError(ap netip.AddrPort, err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
}

// ConnectFile waits for the connect in progress on fd through the runtime's poller, by dl
// (none when zero) or until ctx ends, and closes fd.
func ConnectFile(ctx context.Context, dl time.Time, ap netip.AddrPort, fd int) error {
	f := os.NewFile(uintptr(fd), "tcp")
	defer f.Close()
	if !dl.IsZero() {
		if err := f.SetWriteDeadline(dl); err != nil {
			return ConnectError(ap, err)
		}
	}
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return ConnectError(ap, err)
	}
	return waitConnect(ctx, ap, rc)
}

// waitConnect waits, by rc's write deadline, for the connect in progress on rc to end.
func waitConnect(ctx context.Context, ap netip.AddrPort, rc syscall.RawConn) error {
	var cerr error
	err := rc.Write(func(fd uintptr) bool {
		// Asked first before any wait: the poller forgets what it saw before this call
		// (a handshake over between connect and os.NewFile), so the socket must say it.
		done, err := Connected(int(fd))
		cerr = err
		return done
	})
	if err != nil {
		// The deadline passed, or ctx ended: the socket first, since the wait fails
		// without asking it when the deadline was over before the plugin got here.
		var done bool
		if rc.Control(func(fd uintptr) { done, cerr = Connected(int(fd)) }) != nil || !done {
			if ctx.Err() != nil {
				return ConnectError(ap, ctx.Err())
			}
			return ConnectError(ap, err)
		}
	}
	if cerr != nil {
		return ConnectError(ap, cerr)
	}
	return nil
}

// dialPlain connects to ap by by (none when zero; DialBy has made it no later than ctx's
// deadline): DialBy's way for an IP address from no chosen source. The connection's
// deadline is left at by, and cancelling ctx interrupts it.
func dialPlain(ctx context.Context, by time.Time, ap netip.AddrPort) (net.Conn, error) {
	fd, done, err := StartConnect(ap)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "tcp")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, ConnectError(ap, err)
	}
	if !by.IsZero() {
		if err := f.SetDeadline(by); err != nil {
			f.Close()
			return nil, ConnectError(ap, err)
		}
	}
	stop := context.AfterFunc(ctx, func() { f.SetDeadline(time.Unix(1, 0)) })
	if !done {
		if err := waitConnect(ctx, ap, rc); err != nil {
			stop()
			f.Close()
			return nil, err
		}
	}
	return &fileConn{f: f, rc: rc, remote: net.TCPAddrFromAddrPort(ap), stop: stop}, nil
}

// fileConn is a connection made by dialPlain: an *os.File on the runtime's poller, read and
// written as net.Conn is, whose errors read as net.Conn's do.
type fileConn struct {
	f      *os.File
	rc     syscall.RawConn
	remote net.Addr
	stop   func() bool // stops the cancel of ctx
}

func (c *fileConn) Read(b []byte) (int, error) {
	n, err := c.f.Read(b)
	if n == 0 && len(b) > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		n, err = c.late(syscall.Read, b, err)
		if n == 0 && err == nil {
			err = io.EOF
		}
	}
	return n, c.opError("read", err)
}

func (c *fileConn) Write(b []byte) (int, error) {
	n, err := c.f.Write(b)
	if n < len(b) && errors.Is(err, os.ErrDeadlineExceeded) {
		var m int
		m, err = c.late(syscall.Write, b[n:], err)
		n += m
		if err == nil && n < len(b) {
			err = os.ErrDeadlineExceeded
		}
	}
	return n, c.opError("write", err)
}

// late tries op once without waiting, for a read or write whose deadline had passed when
// it was asked for (see the top of this file); what the socket cannot do at once stays
// failed with late, the deadline's error.
func (c *fileConn) late(op func(int, []byte) (int, error), b []byte, late error) (int, error) {
	n, err := 0, late
	if cerr := c.rc.Control(func(fd uintptr) {
		for {
			var serr error
			n, serr = op(int(fd), b)
			switch serr {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				n = 0
			case nil:
				err = nil
			default:
				n, err = 0, serr
			}
			return
		}
	}); cerr != nil {
		return 0, late
	}
	return n, err
}

// opError words err as net.Conn would, with the os package's path taken off.
func (c *fileConn) opError(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if se, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, se)
	}
	return &net.OpError{Op: op, Net: "tcp", Addr: c.remote, Err: err}
}

func (c *fileConn) Close() error {
	c.stop()
	return c.f.Close()
}

// LocalAddr asks the kernel: nothing on a probe's path needs it, so it is not kept.
func (c *fileConn) LocalAddr() net.Addr {
	var sa syscall.Sockaddr
	c.rc.Control(func(fd uintptr) { sa, _ = syscall.Getsockname(int(fd)) })
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	}
	return &net.TCPAddr{}
}

func (c *fileConn) RemoteAddr() net.Addr                  { return c.remote }
func (c *fileConn) SetDeadline(t time.Time) error         { return c.f.SetDeadline(t) }
func (c *fileConn) SetReadDeadline(t time.Time) error     { return c.f.SetReadDeadline(t) }
func (c *fileConn) SetWriteDeadline(t time.Time) error    { return c.f.SetWriteDeadline(t) }
func (c *fileConn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

func sockaddr(ap netip.AddrPort) (int, syscall.Sockaddr) {
	a := ap.Addr()
	if a.Is4() || a.Is4In6() {
		return syscall.AF_INET, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	}
	return syscall.AF_INET6, &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
}
