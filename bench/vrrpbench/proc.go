package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat is what /proc/PID/stat says about one process (all its threads together).
type procStat struct {
	pid, ppid, pgrp int
	ticks           uint64 // utime + stime, in clock ticks
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// comm (field 2) may hold spaces and parentheses: the fields after it follow the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	// f[0] is field 3 (state): field k is f[k-3].
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return procStat{pid: pid, ppid: ppid, pgrp: pgrp, ticks: ut + st}, nil
}

func allStats() []procStat {
	ents, _ := os.ReadDir("/proc")
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readStat(pid); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// processTree is root and all its descendants.
func processTree(root int) []int {
	kids := map[int][]int{}
	for _, s := range allStats() {
		kids[s.ppid] = append(kids[s.ppid], s.pid)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", root)); err != nil {
		return nil
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

// processGroup lists the live processes of process group pgid (zombies excluded).
func processGroup(pgid int) []int {
	var out []int
	for _, s := range allStats() {
		if s.pgrp == pgid {
			if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid)); bytes.Contains(st, []byte(") Z ")) {
				continue
			}
			out = append(out, s.pid)
		}
	}
	return out
}

// cpuTicks sums utime+stime over pids.
func cpuTicks(pids []int) (uint64, error) {
	var sum uint64
	for _, p := range pids {
		s, err := readStat(p)
		if err != nil {
			return 0, err
		}
		sum += s.ticks
	}
	return sum, nil
}

// memKB sums a "Key: N kB" line of /proc/PID/status (VmRSS) or /proc/PID/smaps_rollup (Pss).
func memKB(pids []int, file, key string) (uint64, error) {
	var sum uint64
	for _, p := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/%s", p, file))
		if err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 2 && fs[0] == key+":" {
				v, _ := strconv.ParseUint(fs[1], 10, 64)
				sum += v
				break
			}
		}
		f.Close()
	}
	return sum, nil
}

// threads counts the threads of pids.
func threads(pids []int) int {
	n := 0
	for _, p := range pids {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		n += len(ents)
	}
	return n
}
