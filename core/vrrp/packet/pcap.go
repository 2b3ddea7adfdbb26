package packet

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
)

// These helpers let tests (this package's, and later the lab and interop tiers) hand vigil's
// packets to real dissectors such as tshark without a capture library.

// linktypeRaw is LINKTYPE_RAW: each record is an IPv4 or IPv6 packet, no link-layer header.
const linktypeRaw = 101

// WritePcap writes packets (complete IP packets, e.g. from BuildIPPacket) as a classic
// microsecond pcap file with link type LINKTYPE_RAW. Record i is stamped i seconds after the
// epoch so that the output is reproducible.
func WritePcap(w io.Writer, packets [][]byte) error {
	var hdr [24]byte
	le := binary.LittleEndian
	le.PutUint32(hdr[0:], 0xa1b2c3d4) // magic: microsecond timestamps, writer's byte order
	le.PutUint16(hdr[4:], 2)          // version 2.4
	le.PutUint16(hdr[6:], 4)
	// thiszone and sigfigs stay zero
	le.PutUint32(hdr[16:], 65535) // snaplen
	le.PutUint32(hdr[20:], linktypeRaw)
	if _, err := w.Write(hdr[:]); err != nil {
		return fmt.Errorf("pcap header: %w", err)
	}
	for i, p := range packets {
		var rec [16]byte
		le.PutUint32(rec[0:], uint32(i)) // ts_sec
		le.PutUint32(rec[8:], uint32(len(p)))
		le.PutUint32(rec[12:], uint32(len(p)))
		if _, err := w.Write(rec[:]); err != nil {
			return fmt.Errorf("pcap record %d: %w", i, err)
		}
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("pcap record %d: %w", i, err)
		}
	}
	return nil
}

// BuildIPPacket wraps a VRRP payload in an IPv4 or IPv6 header (by the family of src) with
// protocol/next header 112 and the given TTL or hop limit, as keepalived would send it: for
// IPv4 TOS 0xc0 (internetwork control), no options, no fragmentation, a correct header checksum.
func BuildIPPacket(src, dst netip.Addr, ttl int, payload []byte) []byte {
	src, dst = src.Unmap(), dst.Unmap()
	be := binary.BigEndian
	if src.Is4() {
		p := make([]byte, 20+len(payload))
		p[0] = 0x45 // version 4, IHL 5 words
		p[1] = 0xc0
		be.PutUint16(p[2:], uint16(len(p)))
		p[8] = byte(ttl)
		p[9] = Protocol
		s, d := src.As4(), dst.As4()
		copy(p[12:], s[:])
		copy(p[16:], d[:])
		be.PutUint16(p[10:], fold(sum(0, p[:20])))
		copy(p[20:], payload)
		return p
	}
	p := make([]byte, 40+len(payload))
	p[0] = 0x60 // version 6, traffic class and flow label zero
	be.PutUint16(p[4:], uint16(len(payload)))
	p[6] = Protocol
	p[7] = byte(ttl)
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	copy(p[40:], payload)
	return p
}
