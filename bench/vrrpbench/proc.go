package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/bench/internal/proc"
)

// processTree is root and all its descendants.
func processTree(root int) []int { return proc.PIDs(proc.Tree(root)) }

// processGroup lists the live processes of process group pgid (zombies excluded).
func processGroup(pgid int) []int {
	var out []int
	for _, s := range proc.All() {
		if s.Pgrp == pgid && !s.Zombie {
			out = append(out, s.PID)
		}
	}
	return out
}

// cpuTicks sums utime+stime over pids.
func cpuTicks(pids []int) (uint64, error) {
	var sum uint64
	for _, p := range pids {
		s, err := proc.ReadStat(p)
		if err != nil {
			return 0, err
		}
		sum += s.Ticks
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
