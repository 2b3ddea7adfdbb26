package ipvs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The kernel's connection synchronisation daemon: the master sends the
// state of the director's connections to a multicast group, the backup
// applies what it hears, so that established connections survive a director
// failover. cloudflare/ipvs has no commands for it; these go on the Client's
// own generic netlink connection. The numbers are the Linux UAPI's
// (include/uapi/linux/ip_vs.h).

const (
	cmdNewDaemon = 9
	cmdDelDaemon = 10
	cmdGetDaemon = 11

	cmdAttrDaemon = 3

	daemonAttrState       = 1 // u32: IP_VS_STATE_MASTER or _BACKUP
	daemonAttrMcastIfn    = 2 // NUL-terminated interface name
	daemonAttrSyncID      = 3 // u32
	daemonAttrSyncMaxlen  = 4 // u16
	daemonAttrMcastGroup  = 5 // IPv4 address, network order
	daemonAttrMcastGroup6 = 6 // IPv6 address
	daemonAttrMcastPort   = 7 // u16, host order
	daemonAttrMcastTTL    = 8 // u8
)

// DaemonState is the role of a sync daemon; a director may run one of each.
type DaemonState uint32

// The roles.
const (
	Master DaemonState = 1
	Backup DaemonState = 2
)

func (s DaemonState) String() string {
	switch s {
	case Master:
		return "master"
	case Backup:
		return "backup"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// Daemon is a sync daemon's settings, keepalived's lvs_sync_daemon. A zero
// MaxLen, Port, TTL or Group leaves the kernel's default (MTU-derived, 8848,
// 1, 224.0.0.81).
type Daemon struct {
	State     DaemonState
	Interface string
	SyncID    uint8 // the kernel keeps a u32, the sync protocol carries 8 bits
	MaxLen    uint16
	Port      uint16
	TTL       uint8
	Group     netip.Addr // a multicast address, IPv4 or IPv6
}

// Validate says what is wrong with d, if anything.
func (d Daemon) Validate() error {
	if d.State != Master && d.State != Backup {
		return fmt.Errorf("sync daemon: state %v is neither master nor backup", d.State)
	}
	if d.Interface == "" || len(d.Interface) >= unix.IFNAMSIZ {
		return fmt.Errorf("sync daemon: interface name %q is empty or longer than %d bytes", d.Interface, unix.IFNAMSIZ-1)
	}
	if d.Group.IsValid() && !d.Group.IsMulticast() {
		return fmt.Errorf("sync daemon: group %v is not a multicast address", d.Group)
	}
	return nil
}

// StartDaemon starts a sync daemon. One of the same state running already is
// an error (unix.EEXIST): stop it first to change its settings.
func (c *Client) StartDaemon(ctx context.Context, d Daemon) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.execute(cmdNewDaemon, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Nested(cmdAttrDaemon, func(ae *netlink.AttributeEncoder) error {
			encodeDaemon(ae, d)
			return nil
		})
	})
	if err != nil {
		hint := ""
		switch {
		case errors.Is(err, unix.EEXIST):
			hint = fmt.Sprintf(" (a %v sync daemon runs already)", d.State)
		case errors.Is(err, unix.ENODEV):
			hint = fmt.Sprintf(" (no interface %q)", d.Interface)
		case errors.Is(err, unix.EINVAL):
			hint = " (the kernel refuses sync with a service whose destinations mix address families, or a setting is out of range)"
		}
		return fmt.Errorf("ipvs: start %v sync daemon on %s, id %d: %w%s", d.State, d.Interface, d.SyncID, err, hint)
	}
	return nil
}

// StopDaemon stops the sync daemon in state s; one not running is no error.
func (c *Client) StopDaemon(ctx context.Context, s DaemonState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.execute(cmdDelDaemon, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Nested(cmdAttrDaemon, func(ae *netlink.AttributeEncoder) error {
			ae.Uint32(daemonAttrState, uint32(s))
			return nil
		})
	})
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("ipvs: stop %v sync daemon: %w", s, err)
	}
	return nil
}

// Daemons are the sync daemons running, master first.
func (c *Client) Daemons(ctx context.Context) ([]Daemon, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs, err := c.execute(cmdGetDaemon, netlink.Dump, func(*netlink.AttributeEncoder) {})
	if err != nil {
		return nil, fmt.Errorf("ipvs: read sync daemons: %w", err)
	}
	var out []Daemon
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return nil, fmt.Errorf("ipvs: read sync daemons: %w", err)
		}
		for ad.Next() {
			if ad.Type() == cmdAttrDaemon {
				var d Daemon
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					d = decodeDaemon(nad)
					return nil
				})
				out = append(out, d)
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("ipvs: read sync daemons: %w", err)
		}
	}
	return out, nil
}

func encodeDaemon(ae *netlink.AttributeEncoder, d Daemon) {
	ae.Uint32(daemonAttrState, uint32(d.State))
	ae.String(daemonAttrMcastIfn, d.Interface)
	ae.Uint32(daemonAttrSyncID, uint32(d.SyncID))
	if d.MaxLen != 0 {
		ae.Uint16(daemonAttrSyncMaxlen, d.MaxLen)
	}
	if d.Port != 0 {
		ae.Uint16(daemonAttrMcastPort, d.Port)
	}
	if d.TTL != 0 {
		ae.Uint8(daemonAttrMcastTTL, d.TTL)
	}
	switch g := d.Group.Unmap(); {
	case g.Is4():
		ae.Bytes(daemonAttrMcastGroup, g.AsSlice())
	case g.Is6():
		ae.Bytes(daemonAttrMcastGroup6, g.AsSlice())
	}
}

func decodeDaemon(ad *netlink.AttributeDecoder) Daemon {
	var d Daemon
	for ad.Next() {
		switch ad.Type() {
		case daemonAttrState:
			d.State = DaemonState(ad.Uint32())
		case daemonAttrMcastIfn:
			d.Interface = ad.String()
		case daemonAttrSyncID:
			d.SyncID = uint8(ad.Uint32())
		case daemonAttrSyncMaxlen:
			d.MaxLen = ad.Uint16()
		case daemonAttrMcastPort:
			d.Port = ad.Uint16()
		case daemonAttrMcastTTL:
			d.TTL = ad.Uint8()
		case daemonAttrMcastGroup, daemonAttrMcastGroup6:
			if a, ok := netip.AddrFromSlice(ad.Bytes()); ok {
				d.Group = a
			}
		}
	}
	return d
}
