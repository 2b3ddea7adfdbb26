package netif

import (
	"encoding/binary"
	"testing"
	"unsafe"
)

// TestHtons: the value's bytes in memory are in network order, whatever the machine's.
func TestHtons(t *testing.T) {
	for _, v := range []uint16{0x0003, 0x0800, 0x86dd, 0xffff, 0} {
		h := Htons(v)
		mem := unsafe.Slice((*byte)(unsafe.Pointer(&h)), 2)
		if got := binary.BigEndian.Uint16(mem); got != v {
			t.Errorf("Htons(%#04x) lies in memory as %#04x", v, got)
		}
	}
}
