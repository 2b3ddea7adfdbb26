package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Conf is the keepalived.conf that every VRRP node runs, both implementations alike; only
// priority and initial state differ from node to node.
type Conf struct {
	// Instances is the number of vrrp_instances VI_1 .. VI_N: VRID 50+i, VIP VIP(i-1)/24 on
	// eth0. 0 means 1; at most 150.
	Instances int
	// Advert is advert_int; 0 means 1 s.
	Advert time.Duration
	// Version is the VRRP version, 2 or 3; 0 means 3.
	Version int
	// Priority is each node's priority (n1 first); missing entries default to 150 for n1,
	// then 100, 50, 40, 30 ...
	Priority []int
	// State is each node's initial state; missing entries default to MASTER for n1, BACKUP
	// for the others.
	State []string
	// NoNotify leaves out the notify script (Env.Transitions then sees nothing).
	NoNotify bool
	// Global holds extra lines inside global_defs.
	Global string
	// Instance holds extra lines inside every vrrp_instance (track_script, nopreempt ...).
	Instance string
	// Top comes after global_defs, before the instances: the vrrp_scripts they track
	// (keepalived ignores a track_script whose vrrp_script comes later in the file).
	Top string
	// Extra is appended after the instances (vrrp_script, vrrp_check, vrrp_sync_group ...).
	Extra string
	// IPv6 makes every instance advertise VIP6(i)/64 (VRRPv3 over IPv6: from eth0's
	// link-local address to ff02::12) and hold VIP(i)/24 as virtual_ipaddress_excluded, which
	// the master adds and no advert carries: Holders and the client work as over IPv4.
	IPv6 bool
}

// VIP is the virtual address of instance i (0-based): 192.0.2.100 + i.
func VIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)})
}

// VIP6 is the IPv6 virtual address of instance i (0-based) with Conf.IPv6: 2001:db8::100 + i.
func VIP6(i int) netip.Addr {
	b := netip.MustParseAddr("2001:db8::100").As16()
	b[15] += byte(i)
	return netip.AddrFrom16(b)
}

// VRID is the virtual router id of instance i (0-based).
func VRID(i int) int { return 51 + i }

func (c Conf) withDefaults() Conf {
	if c.Instances <= 0 {
		c.Instances = 1
	}
	if c.Advert <= 0 {
		c.Advert = time.Second
	}
	if c.Version == 0 {
		c.Version = 3
	}
	return c
}

func (c Conf) priority(node int) int {
	if node < len(c.Priority) {
		return c.Priority[node]
	}
	switch node {
	case 0:
		return 150
	case 1:
		return 100
	default:
		return max(1, 70-10*node)
	}
}

func (c Conf) state(node int) string {
	if node < len(c.State) && c.State[node] != "" {
		return c.State[node]
	}
	if node == 0 {
		return "MASTER"
	}
	return "BACKUP"
}

// text is the configuration of node (0-based, named name); notify is the notify script's path.
func (c Conf) text(node int, name, notify string) string {
	c = c.withDefaults()
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	// script_user root with enable_script_security: what a script run as root needs to pass
	// keepalived -t; vigil reads the same lines.
	w("global_defs {\n    router_id %s\n    script_user root\n    enable_script_security\n", name)
	if c.Global != "" {
		w("%s\n", indent(c.Global, "    "))
	}
	w("}\n")
	if c.Top != "" {
		w("%s\n", c.Top)
	}
	for i := range c.Instances {
		w("vrrp_instance VI_%d {\n", i+1)
		w("    state %s\n    interface eth0\n    virtual_router_id %d\n    priority %d\n", c.state(node), VRID(i), c.priority(node))
		w("    advert_int %s\n    version %d\n", seconds(c.Advert), c.Version)
		if !c.NoNotify {
			// The node's name first: the script appends "NODE INSTANCE STATE TIME".
			w("    notify \"%s %s\"\n", notify, name)
		}
		if c.Instance != "" {
			w("%s\n", indent(c.Instance, "    "))
		}
		if c.IPv6 {
			w("    virtual_ipaddress {\n        %s/64\n    }\n", VIP6(i))
			w("    virtual_ipaddress_excluded {\n        %s/24\n    }\n}\n", VIP(i))
			continue
		}
		w("    virtual_ipaddress {\n        %s/24\n    }\n}\n", VIP(i))
	}
	if c.Extra != "" {
		w("%s\n", c.Extra)
	}
	return b.String()
}

// notifyScript is the one notify script of a run: called as SCRIPT NODE TYPE NAME STATE
// PRIORITY (keepalived's arguments after the node's name from the configuration), it
// appends "NODE NAME STATE UNIXTIME" to file. Both implementations run it as root.
func notifyScript(file string) string {
	return fmt.Sprintf("#!/bin/sh\necho \"$1 $3 $4 $(date +%%s.%%N)\" >> %s\n", file)
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n")
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
