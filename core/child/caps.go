package child

import (
	"fmt"
	"os"
	"slices"
	"syscall"
	"unsafe"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// What each of vigil's processes keeps of root's capabilities. The effective and permitted
// sets are what the process itself uses. The bounding set is the most that any program the
// process starts as root may have: a program exec'd by root gets its whole bounding set.
var (
	// vrrpCaps are all the vrrp process needs: addresses, routes and links (CAP_NET_ADMIN),
	// and raw VRRP and ARP sockets bound to a device (CAP_NET_RAW). It starts nothing.
	vrrpCaps = []int{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW}

	// ScriptCaps are what a process that runs scripts and plugins as other users needs for
	// that: switching to the user (CAP_SETUID, CAP_SETGID) and killing the script's process
	// group at its deadline (CAP_KILL). Core runs notify scripts, the check process runs
	// vrrp_scripts; a check process that runs as script_user has no capability at all.
	ScriptCaps = []int{unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_KILL}

	// CoreCaps are what core uses itself: ScriptCaps, and CAP_DAC_OVERRIDE to connect to
	// the socket of a check process that runs as script_user (go-plugin's socket belongs to
	// the child, and only its owner may write to it).
	CoreCaps = append([]int{unix.CAP_DAC_OVERRIDE}, ScriptCaps...)

	// CoreBounding is core's bounding set when no script runs as root: CoreCaps, the vrrp
	// process's, which it gets by being started as root, and CAP_SETPCAP, which only lets a
	// process drop capabilities from its own bounding set, as the vrrp process does.
	CoreBounding = append(append([]int{unix.CAP_SETPCAP}, CoreCaps...), vrrpCaps...)
)

// LimitCapabilities leaves this process only the capabilities in effective as its effective
// set, on every thread, and, when bounding is not nil, removes every capability not in it
// from the bounding set, so that no program the process starts can have it. The permitted
// set becomes the bounding set (or stays as it is when bounding is nil), not less: a program
// started as root gets the whole bounding set as its permitted set, and the kernel clears the
// parent-death signal of a program that gets more than its starter had, which would let
// vigil's children and plugins outlive their parent. It needs a binary built without cgo (Go
// can change every thread at once only then); otherwise, as in `go test -race`, it changes
// nothing and says so.
func LimitCapabilities(effective, bounding []int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	if bounding != nil {
		in := map[int]bool{}
		for _, c := range bounding {
			in[c] = true
		}
		for c := 0; c <= unix.CAP_LAST_CAP; c++ {
			if in[c] {
				continue
			}
			// What is not there needs no dropping (nor CAP_SETPCAP to drop it).
			if r, _, errno := syscall.Syscall(unix.SYS_PRCTL, unix.PR_CAPBSET_READ, uintptr(c), 0); errno == 0 && r == 0 {
				continue
			}
			if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); errno != 0 {
				if errno == syscall.EINVAL {
					continue // a capability this kernel does not know
				}
				return fmt.Errorf("drop capability %d from the bounding set: %w", c, errno)
			}
		}
		var prm [2]uint32
		for _, c := range bounding {
			prm[c/32] |= 1 << (uint(c) % 32)
		}
		for i := range data {
			data[i].Permitted &= prm[i]
			data[i].Inheritable = 0
		}
	}
	var eff [2]uint32
	for _, c := range effective {
		eff[c/32] |= 1 << (uint(c) % 32)
	}
	for i := range data {
		if eff[i]&^data[i].Permitted != 0 {
			return fmt.Errorf("capabilities %#x are to be effective but are not permitted", eff[i]&^data[i].Permitted)
		}
		data[i].Effective = eff[i]
	}
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); errno != 0 {
		return fmt.Errorf("set capabilities: %w", errno)
	}
	return nil
}

// dropCapabilities keeps only the given capabilities, and nothing more in the bounding set:
// for a process that starts nothing that needs more.
func dropCapabilities(keep []int) error { return LimitCapabilities(keep, keep) }

// limitCheckCaps leaves a check process that runs as root only ScriptCaps as effective. The
// permitted and bounding sets stay as core left them: a vrrp_script without a user runs as root, with what
// root's scripts get under keepalived (see core's daemon). A check process that runs as
// script_user has nothing to drop: the kernel cleared its capabilities when it started.
func limitCheckCaps(log hclog.Logger) {
	if os.Geteuid() != 0 {
		return
	}
	if err := LimitCapabilities(ScriptCaps, nil); err != nil {
		log.Warn("the check process keeps all of root's capabilities", "reason", err)
	}
}

// raiseCheckCaps makes the capabilities that checker_priority and the like need effective in
// the check process as well, when core left them permitted (child.PriorityCaps), so that
// Start and each reload can apply and undo them; those not in extra are no longer effective.
func raiseCheckCaps(log hclog.Logger, extra []int) {
	if os.Geteuid() != 0 {
		return
	}
	extra = permitted(extra)
	if err := LimitCapabilities(append(slices.Clone(ScriptCaps), extra...), nil); err != nil {
		log.Debug("check process capabilities unchanged", "reason", err)
	}
}

// permitted returns those of caps that this process may make effective.
func permitted(caps []int) []int {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil
	}
	var out []int
	for _, c := range caps {
		if data[c/32].Permitted&(1<<(uint(c)%32)) != 0 {
			out = append(out, c)
		}
	}
	return out
}
