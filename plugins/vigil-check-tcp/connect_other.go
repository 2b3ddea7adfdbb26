//go:build !linux

package main

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// connector is Linux's (connect.go); elsewhere no probe takes it (target.PlainAddr never allows it).
type connector struct{}

func (*connector) connectOnly(context.Context, time.Time, netip.AddrPort) error {
	return errors.ErrUnsupported
}
