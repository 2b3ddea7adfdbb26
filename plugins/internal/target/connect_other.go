//go:build !linux

package target

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// PlainAddr is Linux's (connect_linux.go); elsewhere every probe dials through net.Dialer.
func PlainAddr(string) (netip.AddrPort, bool) { return netip.AddrPort{}, false }

func dialPlain(context.Context, time.Time, netip.AddrPort) (net.Conn, error) {
	return nil, errors.ErrUnsupported
}
