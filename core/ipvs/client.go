package ipvs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"

	lib "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoIPVS is what Open returns (wrapped) when the kernel has no IPVS: the
// ip_vs module is not loaded, or not built. The VRRP part of vigil goes on
// without it.
var ErrNoIPVS = errors.New("the kernel has no IPVS (generic netlink family \"IPVS\" not found)")

// Client is vigil's connection to the kernel's IPVS table, over generic
// netlink. Services and destinations go through github.com/cloudflare/ipvs;
// what it lacks (the persistence engine, the sync daemon) goes through a
// generic netlink connection of our own to the same family (cloudflare/ipvs
// keeps its connection unexported). A Client is safe for concurrent use.
type Client struct {
	mu     sync.Mutex
	lib    lib.Client
	closer io.Closer
	conn   *genetlink.Conn // ours: persistence engine and sync daemon
	family uint16
}

// Open connects to the kernel's IPVS. Without IPVS in the kernel the error
// wraps ErrNoIPVS and says what to do.
func Open() (*Client, error) {
	conn, err := genetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("ipvs: open generic netlink: %w", err)
	}
	fam, err := conn.GetFamily(familyName)
	if err != nil {
		conn.Close()
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("ipvs: %w: load it with \"modprobe ip_vs\" (and the schedulers' modules, ip_vs_rr ...); "+
				"load balancing is off, VRRP goes on", ErrNoIPVS)
		}
		return nil, fmt.Errorf("ipvs: look up generic netlink family %q: %w", familyName, err)
	}
	l, err := lib.New()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ipvs: open: %w", err)
	}
	c := &Client{lib: l, conn: conn, family: fam.ID}
	// cloudflare/ipvs's Client interface has no Close, its implementation does.
	if cl, ok := l.(io.Closer); ok {
		c.closer = cl
	}
	return c, nil
}

// Close releases the netlink sockets; the kernel's table stays as it is.
func (c *Client) Close() error {
	var errs []error
	if c.closer != nil {
		errs = append(errs, c.closer.Close())
	}
	errs = append(errs, c.conn.Close())
	return errors.Join(errs...)
}

// Read is the kernel's whole table and its counters. vigil manages part of
// it: pass table.Only(...) to Diff.
func (c *Client) Read() (Table, map[ServiceKey]ServiceStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	svcs, err := c.lib.Services()
	if err != nil && !errors.Is(err, os.ErrNotExist) { // an empty table is ErrNotExist
		return nil, nil, fmt.Errorf("ipvs: read services: %w", err)
	}
	pes, err := c.peNames()
	if err != nil {
		return nil, nil, err
	}
	t := make(Table, len(svcs))
	stats := make(map[ServiceKey]ServiceStats, len(svcs))
	for _, ls := range svcs {
		s := fromLibService(ls.Service)
		s.PE = pes[s.Key]
		dests, err := c.lib.Destinations(ls.Service)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("ipvs: read destinations of %v: %w", s.Key, err)
		}
		v := Virtual{Service: s, Dests: make(map[DestKey]Destination, len(dests))}
		st := ServiceStats{Stats: stats64(ls.Stats, ls.Stats64), Dests: make(map[DestKey]DestStats, len(dests))}
		for _, ld := range dests {
			d := fromLibDest(ld.Destination)
			v.Dests[d.Key] = d
			st.Dests[d.Key] = DestStats{
				Stats:         stats64(ld.Stats, ld.Stats64),
				ActiveConns:   ld.ActiveConnections,
				InactiveConns: ld.InactiveConnections,
				PersistConns:  ld.PersistentConnections,
			}
		}
		t[s.Key] = v
		stats[s.Key] = st
	}
	return t, stats, nil
}

// OpError is a kernel's refusal of one Op.
type OpError struct {
	Op  Op
	Err error
}

func (e *OpError) Error() string {
	msg := fmt.Sprintf("ipvs: %v: %v", e.Op, e.Err)
	if h := e.hint(); h != "" {
		msg += " (" + h + ")"
	}
	return msg
}

func (e *OpError) Unwrap() error { return e.Err }

// hint says what an errno means for the op, in the operator's terms.
func (e *OpError) hint() string {
	s := e.Op.Service
	switch {
	case errors.Is(e.Err, unix.ENOENT) && (e.Op.Kind == AddService || e.Op.Kind == UpdateService):
		h := fmt.Sprintf("no scheduler %q in this kernel: load it with \"modprobe ip_vs_%s\"", s.Scheduler, s.Scheduler)
		if s.PE != "" {
			h += fmt.Sprintf(", or no persistence engine %q: \"modprobe ip_vs_pe_%s\"", s.PE, s.PE)
		}
		return h
	case errors.Is(e.Err, unix.EEXIST) && e.Op.Kind == AddService:
		return "the service exists already"
	case errors.Is(e.Err, unix.EEXIST) && e.Op.Kind == AddDest:
		return "the destination exists already"
	case errors.Is(e.Err, unix.ESRCH):
		return "no such service in the kernel"
	case errors.Is(e.Err, unix.ENOENT) && e.Op.IsDest():
		return "no such destination in the kernel"
	case errors.Is(e.Err, unix.EAFNOSUPPORT):
		return "this kernel's IPVS lacks IPv6 (CONFIG_IP_VS_IPV6), or the method cannot cross address families"
	case errors.Is(e.Err, unix.EPERM):
		return "needs CAP_NET_ADMIN"
	}
	return ""
}

// ApplyError lists the ops the kernel refused; the others were applied.
type ApplyError struct {
	Failed []*OpError
}

func (e *ApplyError) Error() string {
	var b strings.Builder
	for i, f := range e.Failed {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see every failure.
func (e *ApplyError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f
	}
	return out
}

// Apply does ops in order. An op the kernel refuses does not stop the others
// (one bad virtual_server must not keep the rest from being programmed),
// except the destination ops of a service whose addition failed, which
// would only fail again. The error is an *ApplyError naming each refused
// op, so that a caller can name the virtual_server behind it; ctx stops
// Apply between ops.
func (c *Client) Apply(ctx context.Context, ops []Op) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var failed []*OpError
	notAdded := map[ServiceKey]bool{}
	for _, op := range ops {
		if err := ctx.Err(); err != nil {
			failed = append(failed, &OpError{Op: op, Err: err})
			break
		}
		if op.IsDest() && notAdded[op.Service.Key] {
			continue
		}
		if err := c.apply(op); err != nil {
			failed = append(failed, &OpError{Op: op, Err: err})
			if op.Kind == AddService {
				notAdded[op.Service.Key] = true
			}
		}
	}
	if len(failed) > 0 {
		return &ApplyError{Failed: failed}
	}
	return nil
}

func (c *Client) apply(op Op) error {
	ls := toLibService(op.Service)
	ld := toLibDest(op.Dest)
	switch op.Kind {
	case AddService:
		if op.Service.PE != "" {
			return c.setService(cmdNewService, op.Service)
		}
		return c.lib.CreateService(ls)
	case UpdateService:
		// cloudflare/ipvs sends no persistence engine, which the kernel reads
		// as "none": right for a service without one.
		if op.Service.PE != "" {
			return c.setService(cmdSetService, op.Service)
		}
		return c.lib.UpdateService(ls)
	case DelService:
		return c.lib.RemoveService(ls)
	case AddDest:
		return c.lib.CreateDestination(ls, ld)
	case UpdateDest:
		return c.lib.UpdateDestination(ls, ld)
	case DelDest:
		return c.lib.RemoveDestination(ls, ld)
	}
	return fmt.Errorf("unknown op kind %v", op.Kind)
}

// Flush deletes the services named (with their destinations) and leaves the
// rest of the kernel's table alone: vigil's stop removes what it added, not
// what others did. A service already gone is no error.
func (c *Client) Flush(ctx context.Context, keys []ServiceKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var failed []*OpError
	for _, k := range keys {
		op := Op{Kind: DelService, Service: Service{Key: k}}
		if err := ctx.Err(); err != nil {
			failed = append(failed, &OpError{Op: op, Err: err})
			break
		}
		if err := c.lib.RemoveService(toLibService(op.Service)); err != nil && !errors.Is(err, unix.ESRCH) {
			failed = append(failed, &OpError{Op: op, Err: err})
		}
	}
	if len(failed) > 0 {
		return &ApplyError{Failed: failed}
	}
	return nil
}

// --- conversions to and from cloudflare/ipvs ---------------------------------------------

func toLibService(s Service) lib.Service {
	k := s.Key
	bits := k.maxBits()
	if s.Netmask != 0 {
		bits = int(s.Netmask)
	}
	ls := lib.Service{
		Family:    lib.AddressFamily(k.Family),
		Scheduler: s.Scheduler,
		Timeout:   s.Timeout,
		Flags:     lib.Flags(s.Flags &^ FlagHashed),
		Netmask:   netmask.MaskFrom(bits, k.maxBits()),
	}
	if k.IsFWMark() {
		ls.FWMark = k.FWMark
	} else {
		ls.Protocol = lib.Protocol(k.Protocol)
		ls.Address = k.Addr.Addr()
		ls.Port = k.Addr.Port()
	}
	return ls
}

// fromLibService is the service as vigil sees it. A persistence netmask that
// is no prefix (ipvsadm -M takes any mask) reads as 255, which no wanted
// service has, so that Diff replaces it.
func fromLibService(ls lib.Service) Service {
	s := Service{Scheduler: ls.Scheduler, Timeout: ls.Timeout, Flags: Flags(ls.Flags) &^ FlagHashed}
	if ls.FWMark != 0 {
		s.Key = FWMarkKey(Family(ls.Family), ls.FWMark)
	} else {
		s.Key = AddrKey(Protocol(ls.Protocol), netip.AddrPortFrom(ls.Address, ls.Port))
		s.Key.Family = Family(ls.Family)
	}
	switch bits := ls.Netmask.Bits(); {
	case !ls.Netmask.IsValid() || bits == s.Key.maxBits():
	case bits < 0:
		s.Netmask = 255
	default:
		s.Netmask = uint8(bits)
	}
	return s
}

func toLibDest(d Destination) lib.Destination {
	return lib.Destination{
		Address:        d.Key.Addr,
		Port:           d.Key.Port,
		Family:         lib.AddressFamily(familyOf(d.Key.Addr)),
		FwdMethod:      lib.ForwardType(d.Method),
		Weight:         d.Weight,
		UpperThreshold: d.UpperThreshold,
		LowerThreshold: d.LowerThreshold,
		TunnelType:     lib.TunnelType(d.TunnelType),
		TunnelPort:     d.TunnelPort,
		TunnelFlags:    lib.TunnelFlags(d.TunnelFlags),
	}
}

func fromLibDest(ld lib.Destination) Destination {
	return Destination{
		Key:            DestKey{Addr: ld.Address.Unmap(), Port: ld.Port},
		Method:         Method(ld.FwdMethod),
		Weight:         ld.Weight,
		UpperThreshold: ld.UpperThreshold,
		LowerThreshold: ld.LowerThreshold,
		TunnelType:     TunnelType(ld.TunnelType),
		TunnelPort:     ld.TunnelPort,
		TunnelFlags:    TunnelFlags(ld.TunnelFlags),
	}
}

// stats64 prefers the 64-bit counters (kernel 4.1 on) and falls back to the
// 32-bit ones of an older kernel.
func stats64(s32, s64 lib.Stats) Stats {
	s := s64
	if s == (lib.Stats{}) {
		s = s32
	}
	return Stats{
		Conns: s.Connections, InPackets: s.IncomingPackets, OutPackets: s.OutgoingPackets,
		InBytes: s.IncomingBytes, OutBytes: s.OutgoingBytes,
		CPS: s.ConnectionRate, InPPS: s.IncomingPacketRate, OutPPS: s.OutgoingPacketRate,
		InBPS: s.IncomingByteRate, OutBPS: s.OutgoingByteRate,
	}
}

// --- what cloudflare/ipvs lacks: the persistence engine ---------------------------------
//
// The numbers and layouts are the Linux UAPI's (include/uapi/linux/ip_vs.h).

const (
	familyName  = "IPVS"
	genlVersion = 1

	cmdNewService = 1
	cmdSetService = 2
	cmdGetService = 4

	cmdAttrService = 1

	svcAttrAF        = 1
	svcAttrProtocol  = 2
	svcAttrAddr      = 3
	svcAttrPort      = 4
	svcAttrFWMark    = 5
	svcAttrSchedName = 6
	svcAttrFlags     = 7
	svcAttrTimeout   = 8
	svcAttrNetmask   = 9
	svcAttrPEName    = 11
)

// execute sends one request on our own connection.
func (c *Client) execute(cmd uint8, flags netlink.HeaderFlags, attrs func(*netlink.AttributeEncoder)) ([]genetlink.Message, error) {
	ae := netlink.NewAttributeEncoder()
	attrs(ae)
	b, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return c.conn.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: genlVersion},
		Data:   b,
	}, c.family, netlink.Request|flags)
}

// setService is NEW_SERVICE or SET_SERVICE with every setting, the
// persistence engine included.
func (c *Client) setService(cmd uint8, s Service) error {
	_, err := c.execute(cmd, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Nested(cmdAttrService, func(ae *netlink.AttributeEncoder) error {
			encodeServiceKey(ae, s.Key)
			ae.String(svcAttrSchedName, s.Scheduler)
			ae.String(svcAttrPEName, s.PE)
			// struct ip_vs_flags: the flags, then the mask of those to set.
			fl := make([]byte, 8)
			binary.NativeEndian.PutUint32(fl[0:], uint32(s.Flags&^FlagHashed))
			binary.NativeEndian.PutUint32(fl[4:], ^uint32(0))
			ae.Bytes(svcAttrFlags, fl)
			ae.Uint32(svcAttrTimeout, s.Timeout)
			ae.Bytes(svcAttrNetmask, netmaskAttr(s))
			return nil
		})
	})
	return err
}

func encodeServiceKey(ae *netlink.AttributeEncoder, k ServiceKey) {
	ae.Uint16(svcAttrAF, uint16(k.Family))
	if k.IsFWMark() {
		ae.Uint32(svcAttrFWMark, k.FWMark)
		return
	}
	ae.Uint16(svcAttrProtocol, uint16(k.Protocol))
	ae.Bytes(svcAttrAddr, k.Addr.Addr().AsSlice())
	port := make([]byte, 2)
	binary.BigEndian.PutUint16(port, k.Addr.Port())
	ae.Bytes(svcAttrPort, port)
}

// netmaskAttr is the persistence netmask as the kernel takes it: an IPv4
// mask in network order, or an IPv6 prefix length as a host-order number.
func netmaskAttr(s Service) []byte {
	bits := s.Key.maxBits()
	if s.Netmask != 0 {
		bits = int(s.Netmask)
	}
	b := make([]byte, 4)
	if s.Key.Family == IPv6 {
		binary.NativeEndian.PutUint32(b, uint32(bits))
		return b
	}
	binary.BigEndian.PutUint32(b, ^uint32(0)<<(32-bits))
	if bits == 0 {
		clear(b)
	}
	return b
}

// peNames are the persistence engines of the kernel's services, by key
// (cloudflare/ipvs does not decode the attribute).
func (c *Client) peNames() (map[ServiceKey]string, error) {
	msgs, err := c.execute(cmdGetService, netlink.Dump, func(*netlink.AttributeEncoder) {})
	if err != nil {
		return nil, fmt.Errorf("ipvs: read persistence engines: %w", err)
	}
	out := map[ServiceKey]string{}
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return nil, fmt.Errorf("ipvs: read persistence engines: %w", err)
		}
		for ad.Next() {
			if ad.Type() != cmdAttrService {
				continue
			}
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				k, pe := decodeServicePE(nad)
				if pe != "" {
					out[k] = pe
				}
				return nil
			})
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("ipvs: read persistence engines: %w", err)
		}
	}
	return out, nil
}

func decodeServicePE(ad *netlink.AttributeDecoder) (ServiceKey, string) {
	var (
		fam    Family
		proto  Protocol
		addr   []byte
		port   uint16
		mark   uint32
		peName string
	)
	for ad.Next() {
		switch ad.Type() {
		case svcAttrAF:
			fam = Family(ad.Uint16())
		case svcAttrProtocol:
			proto = Protocol(ad.Uint16())
		case svcAttrAddr:
			addr = ad.Bytes()
		case svcAttrPort:
			if b := ad.Bytes(); len(b) == 2 {
				port = binary.BigEndian.Uint16(b)
			}
		case svcAttrFWMark:
			mark = ad.Uint32()
		case svcAttrPEName:
			peName = ad.String()
		}
	}
	if mark != 0 {
		return FWMarkKey(fam, mark), peName
	}
	// The kernel sends the whole 16-byte union for an IPv4 address too.
	if fam == IPv4 && len(addr) >= 4 {
		addr = addr[:4]
	}
	a, _ := netip.AddrFromSlice(addr)
	k := AddrKey(proto, netip.AddrPortFrom(a, port))
	k.Family = fam
	return k, peName
}
