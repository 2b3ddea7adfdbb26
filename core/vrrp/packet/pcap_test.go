package packet

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
)

func TestBuildIPPacket(t *testing.T) {
	payload := mustHex(t, v3v4Hex)
	p := BuildIPPacket(src4, IPv4Group, 255, payload)
	// Header by hand: 45 c0 0020 0000 0000 ff 70 18f2 c0a80101 e0000012. Checksum words:
	// 45c0+0020+0000+0000+ff70+c0a8+0101+e000+0012 = 0x2e70b, fold 0xe70d, complement 0x18f2.
	want := "45c0002000000000ff7018f2c0a80101e0000012" + v3v4Hex
	if got := hex.EncodeToString(p); got != want {
		t.Errorf("IPv4 packet\n got %s\nwant %s", got, want)
	}
	if fold(sum(0, p[:20])) != 0 {
		t.Error("IPv4 header checksum does not verify")
	}

	p6 := BuildIPPacket(src6, IPv6Group, 255, mustHex(t, v3v6Hex))
	if len(p6) != 40+24 || p6[0]>>4 != 6 || binary.BigEndian.Uint16(p6[4:]) != 24 || p6[6] != Protocol || p6[7] != 255 {
		t.Errorf("IPv6 header %x", p6[:40])
	}
	if netip.AddrFrom16([16]byte(p6[8:24])) != src6 || netip.AddrFrom16([16]byte(p6[24:40])) != IPv6Group {
		t.Errorf("IPv6 addresses %x", p6[8:40])
	}
}

func TestWritePcap(t *testing.T) {
	var buf bytes.Buffer
	pkts := [][]byte{{0x45, 1, 2}, {0x60}}
	if err := WritePcap(&buf, pkts); err != nil {
		t.Fatal(err)
	}
	want := "d4c3b2a1" + "0200" + "0400" + "00000000" + "00000000" + "ffff0000" + "65000000" +
		"00000000" + "00000000" + "03000000" + "03000000" + "450102" +
		"01000000" + "00000000" + "01000000" + "01000000" + "60"
	if got := hex.EncodeToString(buf.Bytes()); got != want {
		t.Errorf("pcap\n got %s\nwant %s", got, want)
	}
	if err := WritePcap(failWriter{}, pkts); !errors.Is(err, errFail) {
		t.Errorf("write error not wrapped: %v", err)
	}
}

var errFail = errors.New("disk full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errFail }
