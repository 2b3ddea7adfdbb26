package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// With -perf, each CPU case is followed by a perf profile of the whole VM (perf record -a,
// after the window so that the window's figures are not disturbed), which says where the
// daemon's CPU goes: how much of it is the kernel's work in the system calls that make a
// probe (the same calls for both implementations: socket, connect, close) and how much is
// everything else (the daemon's own code, its runtime, its other system calls). Those
// kernel calls cost what they cost whoever makes them; the rest is what an implementation
// adds.

// perfSeconds is how long perf records.
const perfSeconds = 6

// kernelShare is one implementation's profile: shares of the daemon's own samples (its
// processes only), in percent.
type kernelShare struct {
	Connect float64 // __x64_sys_connect (with the handshake's packet processing, done within)
	Close   float64 // __fput: the socket's release, which the kernel runs as the close returns
	Socket  float64 // __x64_sys_socket
}

// probeCalls is the part of a probe in its own system calls.
func (k kernelShare) probeCalls() float64 { return k.Connect + k.Close + k.Socket }

// profile records the whole VM for perfSeconds and reads the daemon's share of it: comms
// are its processes' names as the kernel has them (at most 15 characters). The report is
// left in work as perf-TAG.txt.
func profile(work, tag string, comms []string) (kernelShare, error) {
	data := filepath.Join(os.TempDir(), "perf-"+tag+".data")
	defer os.Remove(data)
	if out, err := exec.Command("perf", "record", "-a", "-g", "-o", data, "--", "sleep", strconv.Itoa(perfSeconds)).CombinedOutput(); err != nil {
		return kernelShare{}, fmt.Errorf("perf record: %w: %s", err, strings.TrimSpace(string(out)))
	}
	out, err := exec.Command("perf", "report", "-i", data, "--stdio", "--children", "--sort", "sym", "-g", "none",
		"--comms", strings.Join(comms, ","), "--percentage", "relative", "--percent-limit", "0.1").Output()
	if err != nil {
		return kernelShare{}, fmt.Errorf("perf report: %w", err)
	}
	// Kept for -logs: the whole report says more than the table.
	_ = os.WriteFile(filepath.Join(work, "perf-"+tag+".txt"), out, 0o644)
	return parseReport(string(out)), nil
}

// parseReport reads perf report's lines "children% self% [k] symbol".
func parseReport(text string) kernelShare {
	var k kernelShare
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(f[0], "#") || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		var dst *float64
		switch f[len(f)-1] {
		case "__x64_sys_connect":
			dst = &k.Connect
		case "__fput":
			dst = &k.Close
		case "__x64_sys_socket":
			dst = &k.Socket
		}
		if dst != nil && pct > *dst {
			*dst = pct
		}
	}
	return k
}

// daemonComms are the process names of an implementation's tree, as perf knows them.
func daemonComms(name string) []string {
	if name == "vigil" {
		return []string{"vigil", "vigil-check-tcp", "vigil-check-htt"}
	}
	return []string{"keepalived"}
}
