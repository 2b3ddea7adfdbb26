//go:build !linux

package main

import (
	"context"
	"errors"
	"net/netip"
)

// connectOnly is Linux's (connect.go); elsewhere every probe dials through net.
func connectOnly(context.Context, netip.AddrPort) error { return errors.ErrUnsupported }

func plainAddr(string) (netip.AddrPort, bool) { return netip.AddrPort{}, false }
