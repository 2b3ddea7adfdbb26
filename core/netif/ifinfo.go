package netif

import (
	"errors"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A new master adds its addresses and announces them while clients wait, so that path asks
// the kernel for an interface's index, flags and MAC with three ioctls on the handle's
// packet socket (a few microseconds) instead of a netlink link query per address and per
// announcement, whose reply the library decodes in full (tens of microseconds each).

// ifreqHW is struct ifreq as SIOCGIFHWADDR fills it: the name, then a struct sockaddr.
type ifreqHW struct {
	name   [unix.IFNAMSIZ]byte
	family uint16
	data   [14]byte
	_      [8]byte // the union is 24 bytes
}

// quickLink returns the index, raw flags and hardware address of ifname, read with ioctls
// in the handle's namespace. ErrNoLink if there is no such interface.
func (n *Netif) quickLink(ifname string) (Link, uint32, error) {
	if len(ifname) >= unix.IFNAMSIZ {
		return Link{}, 0, fmt.Errorf("interface %s: %w", ifname, ErrNoLink)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	fd, err := n.packetSocket(&n.arpFD)
	if err != nil {
		return Link{}, 0, err
	}
	fail := func(what string, err error) (Link, uint32, error) {
		if errors.Is(err, unix.ENODEV) {
			return Link{}, 0, fmt.Errorf("interface %s: %w", ifname, ErrNoLink)
		}
		return Link{}, 0, fmt.Errorf("interface %s: %s: %w", ifname, what, err)
	}
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return fail("name", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return fail("SIOCGIFINDEX", err)
	}
	l := Link{Name: ifname, Index: int(ifr.Uint32())}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fail("SIOCGIFFLAGS", err)
	}
	flags := uint32(ifr.Uint16())
	const upRunning = unix.IFF_UP | unix.IFF_RUNNING
	l.Up = flags&upRunning == upRunning
	var hw ifreqHW
	copy(hw.name[:], ifname)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCGIFHWADDR, uintptr(unsafe.Pointer(&hw))); errno != 0 {
		return fail("SIOCGIFHWADDR", errno)
	}
	if hw.family == unix.ARPHRD_ETHER {
		l.MAC = net.HardwareAddr(append([]byte(nil), hw.data[:6]...))
	}
	return l, flags, nil
}
