package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestOpenWithoutIPVS: on a kernel without IPVS (this repository's CI
// machine), Open says so and what to do. With IPVS it must open.
func TestOpenWithoutIPVS(t *testing.T) {
	c, err := Open()
	if err == nil {
		c.Close()
		t.Skip("this kernel has IPVS; the VM tests cover it")
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		t.Skipf("no permission for generic netlink: %v", err)
	}
	if !errors.Is(err, ErrNoIPVS) {
		t.Fatalf("Open: %v, want ErrNoIPVS", err)
	}
	for _, want := range []string{"modprobe ip_vs", "VRRP goes on"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open: %q lacks %q", err, want)
		}
	}
}

func TestLibRoundTrip(t *testing.T) {
	for _, s := range sampleTable() {
		for _, svc := range []Service{s.Service, {Key: s.Service.Key, Scheduler: "rr", Netmask: 1}} {
			if got := fromLibService(toLibService(svc)); got != svc {
				t.Errorf("service: got %+v, want %+v", got, svc)
			}
		}
		for _, d := range s.Dests {
			if got := fromLibDest(toLibDest(d)); got != d {
				t.Errorf("destination: got %+v, want %+v", got, d)
			}
		}
	}
	full := Service{Key: vip6, Scheduler: "rr", Netmask: 128}
	if got := fromLibService(toLibService(full)); got.Netmask != 0 {
		t.Errorf("a /128 netmask reads back as %d, want 0 (the default)", got.Netmask)
	}
}

func TestNetmaskAttr(t *testing.T) {
	host := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
	for _, c := range []struct {
		s    Service
		want []byte
	}{
		{Service{Key: vip4}, []byte{255, 255, 255, 255}},
		{Service{Key: vip4, Netmask: 24}, []byte{255, 255, 255, 0}},
		{Service{Key: fwm4, Netmask: 1}, []byte{128, 0, 0, 0}},
		{Service{Key: vip6}, host(128)},
		{Service{Key: fwm6, Netmask: 64}, host(64)},
	} {
		if got := netmaskAttr(c.s); string(got) != string(c.want) {
			t.Errorf("%v /%d: got %v, want %v", c.s.Key, c.s.Netmask, got, c.want)
		}
	}
}

// TestServicePEDecode: what setService encodes for a key, peNames decodes
// back to the same key, for each kind of key.
func TestServicePEDecode(t *testing.T) {
	for _, k := range []ServiceKey{vip4, vip4u, vip6, fwm4, fwm6} {
		ae := netlink.NewAttributeEncoder()
		encodeServiceKey(ae, k)
		ae.String(svcAttrPEName, "sip")
		b, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			t.Fatal(err)
		}
		gk, pe := decodeServicePE(ad)
		if gk != k || pe != "sip" {
			t.Errorf("got %v %q, want %v sip", gk, pe, k)
		}
	}
}

func TestDaemonAttrs(t *testing.T) {
	for _, d := range []Daemon{
		{State: Master, Interface: "eth0", SyncID: 51},
		{State: Backup, Interface: "bond0.7", SyncID: 255, MaxLen: 1400, Port: 9000, TTL: 4, Group: netip.MustParseAddr("239.1.2.3")},
		{State: Master, Interface: "eth1", Group: netip.MustParseAddr("ff02::8848")},
	} {
		if err := d.Validate(); err != nil {
			t.Fatal(err)
		}
		ae := netlink.NewAttributeEncoder()
		encodeDaemon(ae, d)
		b, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeDaemon(ad); got != d {
			t.Errorf("got %+v, want %+v", got, d)
		}
	}
	for _, d := range []Daemon{
		{State: 3, Interface: "eth0"},
		{State: Master},
		{State: Master, Interface: "eth0", Group: netip.MustParseAddr("192.0.2.1")},
	} {
		if d.Validate() == nil {
			t.Errorf("%+v: no error", d)
		}
	}
}

func TestOpErrorHints(t *testing.T) {
	mh := Service{Key: vip4, Scheduler: "mh", PE: "sip"}
	for _, c := range []struct {
		op   Op
		err  error
		want string
	}{
		{Op{Kind: AddService, Service: mh}, unix.ENOENT, `modprobe ip_vs_mh", or no persistence engine "sip": "modprobe ip_vs_pe_sip"`},
		{Op{Kind: UpdateDest, Service: mh, Dest: Destination{Key: rs1}}, unix.ENOENT, "no such destination"},
		{Op{Kind: AddService, Service: mh}, unix.EEXIST, "exists already"},
		{Op{Kind: DelService, Service: mh}, unix.ESRCH, "no such service"},
	} {
		err := &ApplyError{Failed: []*OpError{{Op: c.op, Err: fmt.Errorf("netlink: %w", c.err)}}}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %q lacks %q", c.op, err, c.want)
		}
		var oe *OpError
		if !errors.Is(err, c.err) || !errors.As(err, &oe) || oe.Op != c.op {
			t.Errorf("%v: errors.Is/As do not see the op's error", c.op)
		}
	}
}
