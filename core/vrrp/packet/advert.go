// Package packet encodes and decodes VRRP advertisements: version 2 (RFC 3768, IPv4 only) and
// version 3 (RFC 5798, IPv4 and IPv6), byte-compatible with keepalived.
//
// It deals only with the VRRP message that follows the IP header. The IP header (TTL, source,
// destination) is the socket layer's; CheckTTL and the src/dst arguments bring in what the codec
// needs from it. Parse decides whether bytes are a well-formed advert; Advert.Check decides
// whether a well-formed advert is acceptable to a given virtual router.
package packet

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Protocol is the IP protocol number of VRRP.
const Protocol = 112

// The multicast groups adverts are sent to (RFC 3768 5.2.2, RFC 5798 5.1.2.2).
var (
	IPv4Group = netip.MustParseAddr("224.0.0.18")
	IPv6Group = netip.MustParseAddr("ff02::12")
)

// Wire layout (RFC 3768 5.1, RFC 5798 5.1):
//
//	v2: |ver 2|type 1| VRID | priority | count | auth type | adver int (s)  | checksum |
//	    | count × IPv4 address | 8 bytes authentication data |
//	v3: |ver 3|type 1| VRID | priority | count | rsvd(4) max adver int (cs, 12) | checksum |
//	    | count × IPv4 or IPv6 address |
const (
	headerLen  = 8
	authLen    = 8 // v2 only, present whatever the auth type (keepalived sends zeros for none)
	typeAdvert = 1
	maxAddrs   = 255 // the count field is one byte

	// ethPadLimit is the most a VRRP message plus Ethernet padding can span: a frame carries at
	// least 46 bytes of payload, of which an IPv4 header takes at least 20. Only IPv4 packets can
	// be that short, so only they can arrive padded.
	ethPadLimit = 46 - 20
)

// Auth types of VRRPv2 (RFC 2338 5.3.6; RFC 3768 keeps 1 and 2 reserved for compatibility).
const (
	AuthNone = 0 // no authentication
	AuthPass = 1 // simple text password, in AuthData (keepalived auth_type PASS)
	AuthAH   = 2 // IPsec AH, carried in an AH header: not supported
)

// Advert is one VRRP advertisement, version 2 or 3, without the IP header.
type Advert struct {
	Version  int           // 2 or 3
	VRID     uint8         // 1..255
	Priority uint8         // 0 (master stepping down), 1..254, 255 (address owner)
	Interval time.Duration // v2: whole seconds 1..255; v3: centiseconds 1..4095 (Max Adver Int)
	AuthType uint8         // v2 only: AuthNone or AuthPass; AuthAH is reported as unsupported
	AuthData [8]byte       // v2 AuthPass: the password, zero padded (keepalived truncates to 8)
	Addrs    []netip.Addr  // the virtual addresses, all of the family of the IP header
}

// Options select interoperability variants. The zero value is RFC/keepalived default behaviour.
type Options struct {
	// V3ChecksumAsV2 computes VRRPv3-over-IPv4 checksums without the pseudo-header, as
	// keepalived's v3_checksum_as_v2 does for some other vendors' peers (RFC 9568 background).
	// On receive both forms are then accepted: keepalived with this flag checks no v3 checksum
	// at all, and accepting both keeps peers of either kind during a migration.
	V3ChecksumAsV2 bool

	// OldUnicastChecksum uses the IPv4 group 224.0.0.18 instead of the real (unicast)
	// destination in the VRRPv3-over-IPv4 pseudo-header, as keepalived before 2.0 did for
	// unicast peers (keepalived's old_unicast_checksum; newer keepalived switches to it by
	// itself when it receives such a checksum). For multicast it changes nothing.
	OldUnicastChecksum bool
}

// Len returns the length of the encoded advert: the size of the buffer Marshal needs.
func (a *Advert) Len() int {
	return msgLen(a.Version, len(a.Addrs), addrLen(a.family()))
}

func (a *Advert) family() netip.Addr {
	if len(a.Addrs) > 0 {
		return a.Addrs[0]
	}
	return netip.Addr{}
}

// addrLen returns 16 for IPv6 and 4 otherwise (an advert without addresses has no family).
func addrLen(fam netip.Addr) int {
	if fam.Is6() {
		return 16
	}
	return 4
}

func msgLen(version, count, alen int) int {
	n := headerLen + count*alen
	if version == 2 {
		n += authLen
	}
	return n
}

// Marshal encodes the advert payload (what follows the IP header) for the given source and
// destination addresses (needed for the v3 pseudo-header checksum).
func (a *Advert) Marshal(src, dst netip.Addr, opt Options) ([]byte, error) {
	return a.AppendMarshal(make([]byte, 0, a.Len()), src, dst, opt)
}

// AppendMarshal is like Marshal but appends to b, so a sender can reuse one buffer; it does not
// allocate when b has room for Len() more bytes. On error b is returned unchanged.
func (a *Advert) AppendMarshal(b []byte, src, dst netip.Addr, opt Options) ([]byte, error) {
	src, dst = src.Unmap(), dst.Unmap()
	if err := a.validate(src, dst); err != nil {
		return b, err
	}
	n := a.Len()
	start := len(b)
	b = grow(b, n)
	msg := b[start : start+n]

	msg[0] = byte(a.Version)<<4 | typeAdvert
	msg[1] = a.VRID
	msg[2] = a.Priority
	msg[3] = byte(len(a.Addrs))
	if a.Version == 2 {
		msg[4] = a.AuthType
		msg[5] = byte(a.Interval / time.Second)
	} else {
		// Rsvd (top 4 bits) is zero on transmission (RFC 5798 5.2.6).
		binary.BigEndian.PutUint16(msg[4:], uint16(a.Interval/(10*time.Millisecond)))
	}
	msg[6], msg[7] = 0, 0
	off := headerLen
	for _, ip := range a.Addrs {
		if src.Is4() {
			v := ip.As4()
			off += copy(msg[off:], v[:])
		} else {
			v := ip.As16()
			off += copy(msg[off:], v[:])
		}
	}
	if a.Version == 2 {
		// RFC 3768 5.3.10: zero unless a (RFC 2338) password is in use; keepalived likewise.
		var auth [authLen]byte
		if a.AuthType == AuthPass {
			auth = a.AuthData
		}
		copy(msg[off:], auth[:])
	}
	binary.BigEndian.PutUint16(msg[6:], checksum(msg, a.Version, src, dst, opt))
	return b, nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// validate rejects adverts Parse would not accept, so what we send is what we would receive.
func (a *Advert) validate(src, dst netip.Addr) error {
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return invalid("source %v and destination %v must be addresses of one family", src, dst)
	}
	if a.VRID == 0 {
		return invalid("VRID 0 (must be 1..255)")
	}
	if len(a.Addrs) > maxAddrs {
		return invalid("%d addresses (at most %d fit the count field)", len(a.Addrs), maxAddrs)
	}
	for _, ip := range a.Addrs {
		if !ip.IsValid() || ip.Is4() != src.Is4() {
			return invalid("address %v is not of the family of source %v", ip, src)
		}
	}
	switch a.Version {
	case 2:
		if !src.Is4() {
			return invalid("VRRPv2 is IPv4 only (RFC 3768); use version 3 for IPv6")
		}
		if a.Interval%time.Second != 0 || a.Interval < time.Second || a.Interval > 255*time.Second {
			return invalid("v2 interval %v (must be whole seconds 1s..255s)", a.Interval)
		}
		switch a.AuthType {
		case AuthNone:
			if a.AuthData != [8]byte{} {
				return invalid("auth data set with auth type none")
			}
		case AuthPass:
		default:
			return invalid("v2 auth type %d (only 0 none and 1 PASS are supported)", a.AuthType)
		}
	case 3:
		cs := 10 * time.Millisecond
		if a.Interval%cs != 0 || a.Interval < cs || a.Interval > 4095*cs {
			return invalid("v3 interval %v (must be whole centiseconds 10ms..40.95s)", a.Interval)
		}
		if a.AuthType != AuthNone || a.AuthData != [8]byte{} {
			return invalid("VRRPv3 has no authentication (RFC 5798)")
		}
	default:
		return invalid("version %d (must be 2 or 3)", a.Version)
	}
	return nil
}

// Parse decodes and checks a payload received from src to dst. Problems are *DropError with
// a Reason, so callers can count drops by reason and log them rate-limited.
func Parse(b []byte, src, dst netip.Addr, opt Options) (*Advert, error) {
	a := new(Advert)
	if err := a.Unmarshal(b, src, dst, opt); err != nil {
		return nil, err
	}
	return a, nil
}

// Unmarshal is Parse into an existing Advert, reusing a.Addrs' storage so a receive loop need
// not allocate. On error a's contents are unspecified.
func (a *Advert) Unmarshal(b []byte, src, dst netip.Addr, opt Options) error {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return drop(ReasonFamilyMismatch, "source %v, destination %v", src, dst)
	}
	if len(b) < headerLen {
		return drop(ReasonTooShort, "%d bytes, header is %d", len(b), headerLen)
	}
	version := int(b[0] >> 4)
	if version != 2 && version != 3 {
		return drop(ReasonBadVersion, "version %d", version)
	}
	if t := b[0] & 0x0f; t != typeAdvert {
		return drop(ReasonBadType, "type %d", t)
	}
	if version == 2 && !src.Is4() {
		// keepalived refuses this configuration in strict mode and otherwise only reaches it by
		// an explicit "version 2" on an IPv6 instance; it is not a standard format.
		return drop(ReasonV2OverIPv6, "VRRPv2 advert from %v", src)
	}
	count := int(b[3])
	n := msgLen(version, count, addrLen(src))
	switch {
	case len(b) < n:
		return drop(ReasonBadLength, "%d bytes, %d addresses need %d", len(b), count, n)
	case len(b) > n && !(src.Is4() && len(b) <= ethPadLimit):
		// Longer than the message and not explainable as Ethernet padding. (A keepalived
		// built with auth_hmac appends a 28-byte trailer, which lands here.)
		return drop(ReasonBadLength, "%d bytes, %d addresses need %d", len(b), count, n)
	}
	msg := b[:n] // padding, if any, is not covered by the checksum
	if !verify(msg, version, src, dst, opt) {
		return drop(ReasonBadChecksum, "checksum 0x%04x does not verify (v%d)",
			binary.BigEndian.Uint16(msg[6:]), version)
	}
	if b[1] == 0 {
		return drop(ReasonBadVRID, "VRID 0")
	}

	var interval time.Duration
	var authType uint8
	var authData [8]byte
	if version == 2 {
		authType = b[4]
		switch authType {
		case AuthNone: // auth data is ignored on reception (RFC 3768 5.3.10)
		case AuthPass:
			copy(authData[:], msg[n-authLen:])
		case AuthAH:
			return drop(ReasonAuthUnsupported, "IPsec AH authentication (type 2)")
		default:
			return drop(ReasonBadAuthType, "auth type %d", authType)
		}
		interval = time.Duration(b[5]) * time.Second
	} else {
		// Rsvd bits are ignored on reception (RFC 5798 5.2.6).
		interval = time.Duration(binary.BigEndian.Uint16(b[4:])&0x0fff) * 10 * time.Millisecond
	}
	if interval == 0 {
		return drop(ReasonZeroInterval, "advertisement interval 0")
	}

	addrs := a.Addrs[:0]
	if cap(addrs) < count {
		addrs = make([]netip.Addr, 0, count)
	}
	alen := addrLen(src)
	for i := headerLen; i < headerLen+count*alen; i += alen {
		if alen == 4 {
			addrs = append(addrs, netip.AddrFrom4([4]byte(msg[i:i+4])))
		} else {
			addrs = append(addrs, netip.AddrFrom16([16]byte(msg[i:i+16])))
		}
	}
	*a = Advert{
		Version:  version,
		VRID:     b[1],
		Priority: b[2],
		Interval: interval,
		AuthType: authType,
		AuthData: authData,
		Addrs:    addrs,
	}
	return nil
}
