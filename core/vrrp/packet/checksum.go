package packet

import "net/netip"

// The VRRP checksum is the Internet checksum (RFC 1071). Which bytes it covers depends on the
// version and family, and this is where implementations disagree:
//
//   - v2 (RFC 3768 5.3.8): the VRRP message only, including the 8 authentication bytes.
//   - v3 over IPv6 (RFC 5798 5.2.8): the message plus the RFC 2460 8.1 pseudo-header with next
//     header 112. keepalived leaves this to the kernel (IPV6_CHECKSUM), which does the same.
//   - v3 over IPv4: RFC 5798 only cites the IPv6 pseudo-header; keepalived, Wireshark and RFC
//     9568 use the IPv4 pseudo-header (src, dst, zero, protocol 112, VRRP length). Some vendors
//     leave the pseudo-header out; keepalived's v3_checksum_as_v2 talks to them, and so does
//     Options.V3ChecksumAsV2.

// Checksum is the Internet checksum (RFC 1071) of b: 0 over data, such as an IPv4 header,
// whose checksum field is right. The VRRP checksum below is the same sum over more bytes.
func Checksum(b []byte) uint16 { return fold(sum(0, b)) }

// sum adds b to acc as big-endian 16-bit words, a trailing odd byte padded with zero.
func sum(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// fold reduces a 32-bit accumulator to the one's complement of the 16-bit one's complement sum.
func fold(acc uint32) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return ^uint16(acc)
}

// pseudoSum returns the partial sum of the IPv4 (RFC 768 style) or IPv6 (RFC 2460 8.1)
// pseudo-header for a VRRP message of length n. Word order does not matter for a one's
// complement sum, so the fields are added without laying the header out in memory.
func pseudoSum(src, dst netip.Addr, n int) uint32 {
	var acc uint32
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		acc = sum(acc, s[:])
		acc = sum(acc, d[:])
	} else {
		s, d := src.As16(), dst.As16()
		acc = sum(acc, s[:])
		acc = sum(acc, d[:])
		acc += uint32(n >> 16) // IPv6 upper-layer length is 32 bits
	}
	acc += uint32(n & 0xffff)
	acc += Protocol
	return acc
}

// checksum computes the VRRP checksum of msg (whose checksum field must be zero, or hold the
// received value when verifying: then a correct packet yields 0).
func checksum(msg []byte, version int, src, dst netip.Addr, opt Options) uint16 {
	if version == 2 || (src.Is4() && opt.V3ChecksumAsV2) {
		return fold(sum(0, msg))
	}
	if src.Is4() && opt.OldUnicastChecksum {
		dst = IPv4Group
	}
	return fold(sum(pseudoSum(src, dst, len(msg)), msg))
}

// verify reports whether a received message's checksum is correct. With V3ChecksumAsV2 the RFC
// form is accepted too (see Options).
func verify(msg []byte, version int, src, dst netip.Addr, opt Options) bool {
	if checksum(msg, version, src, dst, opt) == 0 {
		return true
	}
	if version == 3 && src.Is4() && opt.V3ChecksumAsV2 {
		rfc := opt
		rfc.V3ChecksumAsV2 = false
		return checksum(msg, version, src, dst, rfc) == 0
	}
	return false
}
