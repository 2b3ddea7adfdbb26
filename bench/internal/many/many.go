// Package many is N VRRP instances between two lab nodes, for the benchmarks and the fault
// suite: their keepalived.conf, their VIPs, the counters of the nodes' links, and the
// simultaneous start of both nodes (the flap storm of issue 14), measured the same way
// wherever it runs.
//
// n1 (priority 150) masters and n2 (priority 100) backs up VRRPv3 instances, VRIDs 1..N,
// one /32 VIP each from 198.51.100.0/24 and 203.0.113.0/24 (not on-link; nobody needs to
// reach them).
package many

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// The priorities of the two nodes.
const (
	PrioMaster = 150
	PrioBackup = 100
)

// VIP is the address of instance vrid (1..508).
func VIP(vrid int) netip.Addr {
	if vrid <= 254 {
		return netip.AddrFrom4([4]byte{198, 51, 100, byte(vrid)})
	}
	return netip.AddrFrom4([4]byte{203, 0, 113, byte(vrid - 254)})
}

// Conf is n instances on eth0 in state with priority prio, adverts every advert.
func Conf(n, prio int, state string, advert time.Duration) string {
	return ConfTracking(n, prio, state, advert, "")
}

// ConfTracking is Conf with body (a track_script block, say) in every instance.
func ConfTracking(n, prio int, state string, advert time.Duration, body string) string {
	var b strings.Builder
	for v := 1; v <= n; v++ {
		fmt.Fprintf(&b, `vrrp_instance VI_%d {
    state %s
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %s
    version 3
    virtual_ipaddress {
        %s/32
    }
%s}
`, v, state, v, prio, Seconds(advert), VIP(v), body)
	}
	return b.String()
}

// Seconds writes d as keepalived.conf wants it (0.1, 1, 0.01).
func Seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// CountVIPs counts the node's eth0 addresses from the VIP ranges; -1 when ip fails.
func CountVIPs(ctx context.Context, nd *lab.Node) int {
	out, err := exec.CommandContext(ctx, "ip", "-n", nd.NS, "-o", "-4", "addr", "show", "dev", "eth0").Output()
	if err != nil {
		return -1
	}
	return strings.Count(string(out), " 198.51.100.") + strings.Count(string(out), " 203.0.113.")
}

// Reset removes every VIP of n instances that a killed daemon left on nodes.
func Reset(ctx context.Context, n int, nodes ...*lab.Node) {
	var cmds strings.Builder
	for v := 1; v <= n; v++ {
		fmt.Fprintf(&cmds, "addr del %s/32 dev eth0\n", VIP(v))
	}
	for _, nd := range nodes {
		cmd := exec.CommandContext(ctx, "ip", "-n", nd.NS, "-force", "-batch", "-")
		cmd.Stdin = strings.NewReader(cmds.String())
		_ = cmd.Run() // -force: carries on past addresses that are not there
	}
}

// TxFrames is the number of frames the node's eth0 has sent.
func TxFrames(ctx context.Context, nd *lab.Node) uint64 {
	out, err := nd.Exec(ctx, "cat", "/sys/class/net/eth0/statistics/tx_packets")
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	return v
}

// RawDrops sums the drops column of the node's raw IPv4 sockets (the VRRP sockets; a socket
// that was closed and reopened in between would make a difference of two readings undercount).
func RawDrops(ctx context.Context, nd *lab.Node) uint64 {
	out, err := nd.Exec(ctx, "cat", "/proc/net/raw")
	if err != nil {
		return 0
	}
	var sum uint64
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 {
			continue
		}
		v, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
		sum += v
	}
	return sum
}
