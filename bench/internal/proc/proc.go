// Package proc reads what the benchmarks need to know about processes from /proc: parents,
// process groups and CPU ticks, for the process trees of the daemons they compare.
package proc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Stat is what /proc/PID/stat says about one process (all its threads together).
type Stat struct {
	PID, PPID, Pgrp int
	Ticks           uint64 // utime + stime of its threads, live and exited, in clock ticks
	ChildTicks      uint64 // cutime + cstime: its children that ended and that it waited for
	Zombie          bool
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	// comm (field 2) may hold spaces and parentheses: the fields after it follow the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	// f[0] is field 3 (state): field k is f[k-3].
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	cut, _ := strconv.ParseUint(f[13], 10, 64)
	cst, _ := strconv.ParseUint(f[14], 10, 64)
	return Stat{PID: pid, PPID: ppid, Pgrp: pgrp, Ticks: ut + st, ChildTicks: cut + cst, Zombie: f[0] == "Z"}, nil
}

// All reads every process's stat; processes that end meanwhile are left out.
func All() []Stat {
	ents, _ := os.ReadDir("/proc")
	var out []Stat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := ReadStat(pid); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// Tree is root and all its descendants, root first; nil when root is gone.
func Tree(root int) []Stat {
	all := All()
	kids := map[int][]Stat{}
	var top *Stat
	for i, s := range all {
		kids[s.PPID] = append(kids[s.PPID], s)
		if s.PID == root {
			top = &all[i]
		}
	}
	if top == nil {
		return nil
	}
	out := []Stat{*top}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i].PID]...)
	}
	return out
}

// PIDs are the process ids of ss.
func PIDs(ss []Stat) []int {
	out := make([]int, len(ss))
	for i, s := range ss {
		out[i] = s.PID
	}
	return out
}

// Tick is the length of a clock tick, the unit of Stat's times (getconf CLK_TCK; 10 ms
// when that fails, the value on every Linux this runs on).
var Tick = sync.OnceValue(func() time.Duration {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && v > 0 {
			return time.Second / time.Duration(v)
		}
	}
	fmt.Fprintln(os.Stderr, "getconf CLK_TCK failed; assuming 100 ticks a second")
	return 10 * time.Millisecond
})

// MemKB sums a "Key: N kB" line over pids: of /proc/PID/status (file "status", key "VmRSS")
// or /proc/PID/smaps_rollup (file "smaps_rollup", key "Pss").
func MemKB(pids []int, file, key string) (uint64, error) {
	var sum uint64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", p, file))
		if err != nil {
			return 0, err
		}
		v, ok := field(b, key)
		if !ok {
			return 0, fmt.Errorf("/proc/%d/%s: no %s", p, file, key)
		}
		sum += v
	}
	return sum, nil
}

// field is the number after "Key:" in a /proc file of "Key: value [kB]" lines.
func field(b []byte, key string) (uint64, bool) {
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == key+":" {
			v, err := strconv.ParseUint(f[1], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// Threads counts the threads of pids (those that are gone count none).
func Threads(pids []int) int {
	n := 0
	for _, p := range pids {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		n += len(ents)
	}
	return n
}

// Usage is what one process holds at one moment: the figures a leak makes grow.
type Usage struct {
	RSSKB   uint64 // VmRSS
	Threads int
	FDs     int // open file descriptors (sockets, pipes and files alike)
}

// ReadUsage reads pid's Usage from /proc/PID/status and /proc/PID/fd.
func ReadUsage(pid int) (Usage, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, err
	}
	rss, _ := field(b, "VmRSS") // a zombie has none
	th, _ := field(b, "Threads")
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return Usage{}, err
	}
	return Usage{RSSKB: rss, Threads: int(th), FDs: len(fds)}, nil
}

// TicksOf reads each pid's ticks; a process gone meanwhile is left out (its time with it).
func TicksOf(pids []int) map[int]uint64 {
	m := map[int]uint64{}
	for _, p := range pids {
		if s, err := ReadStat(p); err == nil {
			m[p] = s.Ticks
		}
	}
	return m
}

// SumTicks sums Ticks over pids; an error when one of them is gone (its time with it).
func SumTicks(pids []int) (uint64, error) {
	var sum uint64
	for _, p := range pids {
		s, err := ReadStat(p)
		if err != nil {
			return 0, err
		}
		sum += s.Ticks
	}
	return sum, nil
}

// Group lists the live processes of process group pgid (zombies excluded).
func Group(pgid int) []int {
	var out []int
	for _, s := range All() {
		if s.Pgrp == pgid && !s.Zombie {
			out = append(out, s.PID)
		}
	}
	return out
}

// Cmdline is the argument vector of process pid; nil when it is gone.
func Cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// MachineTicks is the time all CPUs of this machine spent busy, from /proc/stat's first line:
// user, nice, system, irq and softirq, in clock ticks. It counts what no process is charged
// for alone: a packet's processing in softirq is charged to whichever process the CPU was
// running (or to none when it was idle), so two daemons that do the same network work can
// show different process times for it; the machine's total does not depend on who ran.
func MachineTicks() (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: first line %q is not the cpu total", line)
	}
	var sum uint64
	// cpu user nice system idle iowait irq softirq ...
	for _, i := range []int{1, 2, 3, 6, 7} {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
		sum += n
	}
	return sum, nil
}
