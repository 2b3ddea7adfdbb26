package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/proc"
)

// taskCPU is the CPU time of each thread of a process, from /proc/PID/task/TID/schedstat,
// which counts nanoseconds where /proc/PID/stat counts 10 ms ticks.
func taskCPU(pid int) map[string]time.Duration {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil
	}
	out := make(map[string]time.Duration, len(tasks))
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			out[t.Name()] = time.Duration(ns)
		}
	}
	return out
}

// cpuSnap is a process's CPU time at one moment, precise per thread and coarse in total.
type cpuSnap struct {
	tasks map[string]time.Duration
	ticks uint64
}

func snap(pid int) cpuSnap {
	if pid == 0 {
		return cpuSnap{}
	}
	s, _ := proc.ReadStat(pid)
	return cpuSnap{tasks: taskCPU(pid), ticks: s.Ticks}
}

// cpuSince is the CPU time pid used since before: the sum over its threads of their
// schedstat growth (a thread born since counts whole). A thread that ended in between takes
// what it used with it, which only the tick count still holds; then, and when the ticks say
// more than 20 ms beyond the threads' sum, the tick count is the answer.
func cpuSince(pid int, before cpuSnap) (d time.Duration, exited int) {
	if pid == 0 {
		return 0, 0
	}
	after := snap(pid)
	for tid, t := range after.tasks {
		d += t - before.tasks[tid]
	}
	for tid := range before.tasks {
		if _, ok := after.tasks[tid]; !ok {
			exited++
		}
	}
	coarse := time.Duration(after.ticks-before.ticks) * time.Second / time.Duration(clockTicks)
	if exited > 0 && coarse > d || coarse > d+20*time.Millisecond {
		return coarse, exited
	}
	return d, exited
}

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var clockTicks = func() int {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && v > 0 {
			return v
		}
	}
	return 100
}()

// stopTree ends a daemon and everything it started: SIGTERM to its leader (vigil and
// keepalived then resign and remove their addresses), and after grace SIGKILL to each
// process group of the tree as it was before the signal (vigil's plugins run in groups of
// their own). It waits until none of those processes is left.
func stopTree(pid int, grace time.Duration) {
	tree := proc.Tree(pid)
	if len(tree) == 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	alive := func() bool {
		for _, s := range tree {
			if st, err := proc.ReadStat(s.PID); err == nil && st.PPID == s.PPID && !st.Zombie {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && alive() {
		time.Sleep(20 * time.Millisecond)
	}
	if !alive() {
		return
	}
	groups := map[int]bool{}
	for _, s := range tree {
		groups[s.Pgrp] = true
	}
	for g := range groups {
		if g > 1 && g != syscall.Getpgrp() {
			_ = syscall.Kill(-g, syscall.SIGKILL)
		}
	}
	for _, s := range tree {
		// Only a process that is still the one we saw (same parent and group): its PID
		// may have been reused since.
		if st, err := proc.ReadStat(s.PID); err == nil && st.PPID == s.PPID && st.Pgrp == s.Pgrp {
			_ = syscall.Kill(s.PID, syscall.SIGKILL)
		}
	}
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && alive() {
		time.Sleep(20 * time.Millisecond)
	}
}
