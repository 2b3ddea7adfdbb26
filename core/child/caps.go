package child

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// vrrpCaps are all the vrrp process needs: addresses, routes and links (CAP_NET_ADMIN), and
// raw VRRP and ARP sockets bound to a device (CAP_NET_RAW).
var vrrpCaps = []int{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW}

// dropCapabilities keeps only the given capabilities, on every thread of the process, and
// removes the rest from the bounding set so no exec can regain them. It needs a binary built
// without cgo (Go can only change all threads at once then); otherwise it reports that.
func dropCapabilities(keep []int) error {
	keepSet := map[int]bool{}
	for _, c := range keep {
		keepSet[c] = true
	}
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if keepSet[c] {
			continue
		}
		if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); errno != 0 {
			if errno == syscall.EINVAL {
				continue // a capability this kernel does not know
			}
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, errno)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for _, c := range keep {
		data[c/32].Effective |= 1 << (uint(c) % 32)
		data[c/32].Permitted |= 1 << (uint(c) % 32)
	}
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); errno != 0 {
		return fmt.Errorf("set capabilities: %w", errno)
	}
	return nil
}
