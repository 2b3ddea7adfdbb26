//go:build linux

package main

import (
	"context"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// connectOnly opens one TCP connection to ap by ctx's deadline and closes it: the whole of a
// TCP_CHECK without send or expect, which is what a load balancer with many real servers runs
// most (keepalived's default checker), a thousand times a second at 1,000 servers.
//
// It costs about half the system calls of net.Dialer's connection: socket, connect, the
// poller's registration (fcntl, epoll_ctl), getpeername once connected, epoll_ctl and close,
// where net.Dialer adds TCP_NODELAY, four keep-alive options, getsockname and getsockopt for
// a connection that carries nothing. Most of a probe's CPU is in those calls (perf, through
// bench/checkcpu). What the server sees is the same: a handshake, then FIN.
//
// A cancelled ctx ends the wait at once; the error is then ctx's.
func connectOnly(ctx context.Context, ap netip.AddrPort) error {
	family, sa := sockaddr(ap)
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return opError(ap, os.NewSyscallError("socket", err))
	}
	switch err := syscall.Connect(fd, sa); err {
	case nil, syscall.EISCONN:
		syscall.Close(fd)
		return nil
	case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
	default:
		syscall.Close(fd)
		return opError(ap, os.NewSyscallError("connect", err))
	}
	// Registered with the runtime's poller after connect, as net does: a registration
	// reports the socket's state at that moment, so a handshake that is already over is
	// not missed.
	f := os.NewFile(uintptr(fd), "tcp")
	defer f.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := f.SetWriteDeadline(dl); err != nil {
			return opError(ap, err)
		}
	}
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return opError(ap, err)
	}
	var cerr error
	waited := false
	err = rc.Write(func(fd uintptr) bool {
		if !waited {
			// connect has just said "in progress": wait for the socket to be writable
			// before asking anything.
			waited = true
			return false
		}
		// The poller may wake us before the handshake is over (golang.org/issue/14548):
		// connected only when the kernel knows the peer, failed when SO_ERROR says so.
		if _, err := syscall.Getpeername(int(fd)); err == nil {
			return true
		}
		n, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		switch {
		case err != nil:
			cerr = os.NewSyscallError("getsockopt", err)
		case n == 0, syscall.Errno(n) == syscall.EINPROGRESS, syscall.Errno(n) == syscall.EALREADY, syscall.Errno(n) == syscall.EINTR:
			return false // not yet
		default:
			cerr = os.NewSyscallError("connect", syscall.Errno(n))
		}
		return true
	})
	switch {
	case err != nil && ctx.Err() != nil:
		return opError(ap, ctx.Err())
	case err != nil:
		return opError(ap, err)
	}
	if cerr != nil {
		return opError(ap, cerr)
	}
	return nil
}

// opError words a failure as net.Dialer does, so that target.Reason reads both alike.
func opError(ap netip.AddrPort, err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
}

func sockaddr(ap netip.AddrPort) (int, syscall.Sockaddr) {
	a := ap.Addr()
	if a.Is4() || a.Is4In6() {
		return syscall.AF_INET, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	}
	return syscall.AF_INET6, &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
}

// plainAddr is the target's address when connectOnly can reach it: an IP literal without a
// zone (a link-local address needs its interface's index, which net resolves).
func plainAddr(address string) (netip.AddrPort, bool) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, false
	}
	return ap, true
}
