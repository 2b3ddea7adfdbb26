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
// after the window so that the window's figures are not disturbed), which splits the
// daemon's CPU between the kernel and its own code. A probe's kernel work is the same system
// calls for both implementations (socket, connect, close, with the handshake's packets
// processed within them); what runs in user space (the daemon's code, its runtime, for vigil
// the messages between its check process and the plugin) is what an implementation adds.
// Self time is used, not the call graph: the VM's unwinding loses frames, so that callers'
// shares do not add up, while each sample has exactly one place.

// perfSeconds is how long perf records.
const perfSeconds = 6

// kernelShare is one implementation's profile: shares of the daemon's own samples (its
// processes only), in percent.
type kernelShare struct {
	Kernel float64 // samples in the kernel ([k]): system calls, the packets they process, faults
	User   float64 // samples in user space ([.]): the daemon's code and its runtime
}

// profile records the whole VM for perfSeconds and reads the daemon's share of it: comms
// are its processes' names as the kernel has them (at most 15 characters). The report is
// left in work as perf-TAG.txt.
func profile(work, tag string, comms []string) (kernelShare, error) {
	data := filepath.Join(os.TempDir(), "perf-"+tag+".data")
	defer os.Remove(data)
	if out, err := exec.Command("perf", "record", "-a", "-o", data, "--", "sleep", strconv.Itoa(perfSeconds)).CombinedOutput(); err != nil {
		return kernelShare{}, fmt.Errorf("perf record: %w: %s", err, strings.TrimSpace(string(out)))
	}
	out, err := exec.Command("perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "sym",
		"--comms", strings.Join(comms, ","), "--percentage", "relative").Output()
	if err != nil {
		return kernelShare{}, fmt.Errorf("perf report: %w", err)
	}
	// Kept for -logs: the whole report says more than the table.
	_ = os.WriteFile(filepath.Join(work, "perf-"+tag+".txt"), out, 0o644)
	return parseReport(string(out)), nil
}

// parseReport sums perf report's lines "self% [k] symbol" and "self% [.] symbol".
func parseReport(text string) kernelShare {
	var k kernelShare
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		switch f[1] {
		case "[k]":
			k.Kernel += pct
		case "[.]":
			k.User += pct
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
