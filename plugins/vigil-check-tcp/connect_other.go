//go:build !linux

package main

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// connector is Linux's (connect.go); elsewhere no probe takes it (plainAddr never allows it).
type connector struct{}

func (*connector) connectOnly(context.Context, time.Time, netip.AddrPort) error {
	return errors.ErrUnsupported
}

func plainAddr(string) (netip.AddrPort, bool) { return netip.AddrPort{}, false }
