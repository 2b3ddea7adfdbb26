package netif

import "encoding/binary"

// Htons puts v in network byte order, as a packet socket wants its protocol (socket(2),
// sockaddr_ll): the bytes of big-endian v, read back in the machine's own order, so that
// it holds on big-endian machines too.
func Htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
