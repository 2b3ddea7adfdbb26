package ipvs

import (
	"context"
	"fmt"

	"github.com/mdlayher/netlink"
)

// The kernel's IPVS connection timeouts (ipvsadm --set, keepalived's lvs_timeouts). They
// belong to the network namespace, not to a service. cloudflare/ipvs has Config and
// SetConfig, but its SetConfig always sends the three values; these go on the Client's own
// connection, as the sync daemon's commands do, so that a zero is not sent at all. The
// numbers are the Linux UAPI's (include/uapi/linux/ip_vs.h).

const (
	cmdSetConfig = 12
	cmdGetConfig = 13

	cmdAttrTimeoutTCP    = 4 // u32, seconds: established TCP
	cmdAttrTimeoutTCPFin = 5 // u32, seconds: TCP after a FIN
	cmdAttrTimeoutUDP    = 6 // u32, seconds
)

// Timeouts are the connection timeouts in seconds. A zero field is one the kernel leaves as
// it is when set, and reads as zero only for a protocol it lacks.
type Timeouts struct {
	TCP    uint32
	TCPFin uint32
	UDP    uint32
}

func (t Timeouts) String() string {
	return fmt.Sprintf("tcp %d tcpfin %d udp %d", t.TCP, t.TCPFin, t.UDP)
}

// IsZero says whether t sets nothing.
func (t Timeouts) IsZero() bool { return t == Timeouts{} }

// Timeouts reads the kernel's connection timeouts.
func (c *Client) Timeouts(ctx context.Context) (Timeouts, error) {
	if err := ctx.Err(); err != nil {
		return Timeouts{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs, err := c.execute(cmdGetConfig, 0, func(*netlink.AttributeEncoder) {})
	if err != nil {
		return Timeouts{}, fmt.Errorf("ipvs: read timeouts: %w", err)
	}
	var t Timeouts
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return Timeouts{}, fmt.Errorf("ipvs: read timeouts: %w", err)
		}
		for ad.Next() {
			switch ad.Type() {
			case cmdAttrTimeoutTCP:
				t.TCP = ad.Uint32()
			case cmdAttrTimeoutTCPFin:
				t.TCPFin = ad.Uint32()
			case cmdAttrTimeoutUDP:
				t.UDP = ad.Uint32()
			}
		}
		if err := ad.Err(); err != nil {
			return Timeouts{}, fmt.Errorf("ipvs: read timeouts: %w", err)
		}
	}
	return t, nil
}

// SetTimeouts sets the timeouts of t that are not zero; the others stay as they are. The
// kernel refuses (EINVAL) a value past INT_MAX jiffies: 99 days at HZ 250, 24 at HZ 1000.
func (c *Client) SetTimeouts(ctx context.Context, t Timeouts) error {
	if t.IsZero() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.execute(cmdSetConfig, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		for _, a := range []struct {
			typ uint16
			v   uint32
		}{{cmdAttrTimeoutTCP, t.TCP}, {cmdAttrTimeoutTCPFin, t.TCPFin}, {cmdAttrTimeoutUDP, t.UDP}} {
			if a.v != 0 {
				ae.Uint32(a.typ, a.v)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("ipvs: set timeouts %v: %w", t, err)
	}
	return nil
}
