package packet

import (
	"errors"
	"fmt"
)

// Reason names why a received advert was dropped. Reasons are stable strings so callers can use
// them as metric labels and as rate-limit keys for logs (one log line per reason, as keepalived
// does with its rlflags).
type Reason string

// Reasons produced by Parse (the advert is malformed or not one we can understand).
const (
	ReasonFamilyMismatch  Reason = "family_mismatch"  // src/dst of different families, or invalid
	ReasonTooShort        Reason = "too_short"        // shorter than the 8-byte fixed header
	ReasonBadVersion      Reason = "bad_version"      // version is neither 2 nor 3
	ReasonBadType         Reason = "bad_type"         // type is not 1 (advertisement)
	ReasonV2OverIPv6      Reason = "v2_over_ipv6"     // VRRPv2 is IPv4 only (RFC 3768)
	ReasonBadLength       Reason = "bad_length"       // length disagrees with the address count
	ReasonBadChecksum     Reason = "bad_checksum"     // checksum does not verify
	ReasonBadVRID         Reason = "bad_vrid"         // VRID 0 (valid VRIDs are 1..255)
	ReasonZeroInterval    Reason = "zero_interval"    // advertisement interval of 0
	ReasonBadAuthType     Reason = "bad_auth_type"    // v2 auth type other than 0, 1, 2
	ReasonAuthUnsupported Reason = "auth_unsupported" // v2 auth type 2 (IPsec AH), not implemented
)

// Reasons produced by Check and CheckTTL (a well-formed advert this instance must not accept).
const (
	ReasonBadTTL           Reason = "bad_ttl"
	ReasonVersionMismatch  Reason = "version_mismatch"
	ReasonVRIDMismatch     Reason = "vrid_mismatch"
	ReasonAuthMismatch     Reason = "auth_mismatch"
	ReasonIntervalMismatch Reason = "interval_mismatch"
	ReasonBadAddrCount     Reason = "bad_addr_count" // count differs from the configured VIPs
	ReasonAddrMismatch     Reason = "addr_mismatch"  // same count, different addresses
	ReasonForeignAddrs     Reason = "foreign_addrs"  // none of our addresses: another virtual router
)

// Advisory reports whether a reason is a configuration disagreement that a caller may choose to
// accept: a list that shares at least one address with ours, as while a reload that adds or
// removes a VIP reaches one node before the other. RFC 3768/5798 section 7.1 say to log such an
// advert and drop it unless the sender is the address owner (priority 255); keepalived 2.2.7
// drops it whatever the priority, unless skip_check_adv_addr and the master is unchanged. Check
// reports them last, so a caller that gets an advisory reason knows every other check passed.
// A list with none of our addresses (foreign_addrs) is not advisory: it is another virtual
// router that uses the same VRID on the segment, and accepting its adverts would hand our
// addresses to nobody (a higher priority) or make our master answer a stranger.
func (r Reason) Advisory() bool {
	return r == ReasonBadAddrCount || r == ReasonAddrMismatch
}

// DropError is returned for every advert that must not reach the state machine.
type DropError struct {
	Reason Reason
	Detail string
}

func (e *DropError) Error() string {
	if e.Detail == "" {
		return "vrrp: drop: " + string(e.Reason)
	}
	return "vrrp: drop: " + string(e.Reason) + ": " + e.Detail
}

// Is makes errors.Is(err, &DropError{Reason: r}) match any drop with reason r, whatever its Detail.
func (e *DropError) Is(target error) bool {
	t, ok := target.(*DropError)
	return ok && t.Reason == e.Reason
}

// ReasonOf returns the drop reason carried by err, or "" if err is not (or does not wrap) a
// *DropError.
func ReasonOf(err error) Reason {
	var d *DropError
	if errors.As(err, &d) {
		return d.Reason
	}
	return ""
}

func drop(r Reason, format string, args ...any) *DropError {
	return &DropError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ErrInvalidAdvert is wrapped by every Marshal error: the Advert cannot be put on the wire.
var ErrInvalidAdvert = errors.New("vrrp: invalid advert")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidAdvert, fmt.Sprintf(format, args...))
}
