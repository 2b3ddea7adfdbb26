package packet

import (
	"crypto/subtle"
	"net/netip"
	"time"
)

// Expect is what a receiving instance requires of a peer's advert beyond well-formedness.
type Expect struct {
	Version  int
	VRID     uint8
	AuthType uint8
	AuthData [8]byte
	// Interval: v2 must match (RFC 3768 7.1; keepalived drops the advert); v3 is not checked
	// (backups adopt the master's, RFC 5798 6.4.2).
	Interval time.Duration
	// Addrs are compared as a set unless SkipAddrCheck. A list with none of them is
	// foreign_addrs; otherwise a different count is bad_addr_count, the same count with
	// different members addr_mismatch, both Advisory (see Reason.Advisory).
	// keepalived's skip_check_adv_addr skips the comparison only while the master is unchanged:
	// the caller decides per advert whether to set SkipAddrCheck.
	Addrs         []netip.Addr
	SkipAddrCheck bool
}

// Check returns a *DropError if the advert must not be accepted by an instance expecting e.
// Checks run in the order keepalived applies them, and the advisory address checks last.
func (a *Advert) Check(e Expect) error {
	if a.Version != e.Version {
		return drop(ReasonVersionMismatch, "version %d, expected %d", a.Version, e.Version)
	}
	if a.VRID != e.VRID {
		// Several instances can share a socket; the caller normally demultiplexes by VRID first.
		return drop(ReasonVRIDMismatch, "VRID %d, expected %d", a.VRID, e.VRID)
	}
	if a.Version == 2 {
		if a.AuthType != e.AuthType {
			return drop(ReasonAuthMismatch, "auth type %d, expected %d", a.AuthType, e.AuthType)
		}
		// Constant time, as keepalived, so the password cannot be guessed byte by byte.
		if a.AuthType == AuthPass && subtle.ConstantTimeCompare(a.AuthData[:], e.AuthData[:]) != 1 {
			return drop(ReasonAuthMismatch, "wrong password")
		}
		if a.Interval != e.Interval {
			return drop(ReasonIntervalMismatch, "interval %v, expected %v", a.Interval, e.Interval)
		}
	}
	if e.SkipAddrCheck {
		return nil
	}
	// Another virtual router with the same VRID (another cluster on the segment, or a forger
	// that names addresses of its own): not a peer that disagrees with us about a VIP, so never
	// advisory. keepalived 2.2.7 drops it too (it drops every list that differs).
	if len(a.Addrs) > 0 && len(e.Addrs) > 0 && !sharesAddr(a.Addrs, e.Addrs) {
		return drop(ReasonForeignAddrs, "none of the %d addresses is ours", len(a.Addrs))
	}
	if len(a.Addrs) != len(e.Addrs) {
		return drop(ReasonBadAddrCount, "%d addresses, expected %d", len(a.Addrs), len(e.Addrs))
	}
	// Both directions, so duplicates on either side cannot hide a difference. n <= 255, and a
	// quadratic scan avoids allocating on every received advert.
	for _, ip := range e.Addrs {
		if !containsAddr(a.Addrs, ip) {
			return drop(ReasonAddrMismatch, "%v missing from advert", ip)
		}
	}
	for _, ip := range a.Addrs {
		if !containsAddr(e.Addrs, ip) {
			return drop(ReasonAddrMismatch, "%v in advert is not configured", ip)
		}
	}
	return nil
}

// sharesAddr reports whether the lists have an address in common.
func sharesAddr(a, b []netip.Addr) bool {
	for _, ip := range a {
		if containsAddr(b, ip) {
			return true
		}
	}
	return false
}

// containsAddr compares without zones: the wire carries none, configured link-local VIPs may.
func containsAddr(set []netip.Addr, ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	for _, s := range set {
		if s.WithZone("").Unmap() == ip {
			return true
		}
	}
	return false
}

// CheckTTL applies the TTL/hop-limit rule. Multicast adverts must arrive with 255 (RFC 3768
// 7.1, RFC 5798 7.1), which proves they were not routed. Unicast adverts must fall in
// [min, max], keepalived's unicast_peer min_ttl/max_ttl; min = max = 0 means no range is
// configured and, as in keepalived (whose defaults are 0..255), any value is accepted — a
// keepalived IPv6 unicast peer without unicast_ttl sends the kernel's default hop limit (64).
// A negative ttl means the socket did not report one; like keepalived, it is not checked.
func CheckTTL(ttl int, unicast bool, min, max int) error {
	switch {
	case ttl < 0:
		return nil
	case !unicast:
		if ttl != 255 {
			return drop(ReasonBadTTL, "multicast TTL/hop limit %d, must be 255", ttl)
		}
	case min == 0 && max == 0:
	case ttl < min || ttl > max:
		return drop(ReasonBadTTL, "unicast TTL/hop limit %d not in [%d, %d]", ttl, min, max)
	}
	return nil
}
