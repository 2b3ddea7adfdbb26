package plugin

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// A loaded machine makes a plugin slow; only a stuck one is hung. Telling them apart from
// the host's side needs more than a deadline: on a machine whose CPUs are saturated (the
// IPVS benchmark's qemu guest ran at load 7 on two emulated CPUs) a plugin serving a thousand
// checks can miss any fixed deadline while it works as hard as the kernel lets it. The kernel
// knows the difference: a plugin that runs, or waits on a run queue for a CPU, is busy or
// starved; one that neither runs nor waits to (stopped, blocked for good) makes no progress.
// schedOf reads that from /proc, and the host uses it to judge a missed health ping (ping),
// a start and a configuration replay (watchStall).

// sched is what the kernel accounted to a process's threads so far: the time they ran and
// the time they waited, runnable, for a CPU.
type sched struct {
	run, wait time.Duration
	ok        bool // read; false when /proc had nothing (the process is gone)
}

// schedOf sums /proc/PID/task/*/schedstat over the threads of pid (a Go plugin works on
// several). Without schedstat (a kernel without CONFIG_SCHED_INFO) it falls back to the
// CPU time in /proc/PID/stat, which has no wait time and a resolution of a clock tick, and
// counts a runnable process (state R) as a tick of waiting.
func schedOf(pid int) sched {
	if pid <= 0 {
		return sched{}
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	var s sched
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := bytes.Fields(b)
		if len(f) < 2 {
			continue
		}
		run, err1 := strconv.ParseInt(string(f[0]), 10, 64)
		wait, err2 := strconv.ParseInt(string(f[1]), 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		s.run += time.Duration(run)
		s.wait += time.Duration(wait)
		s.ok = true
	}
	if err == nil && s.ok {
		return s
	}
	return statOf(pid)
}

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

func statOf(pid int) sched {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return sched{}
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return sched{}
	}
	f := bytes.Fields(b[i+1:])
	// After comm: state is field 0, utime field 11, stime field 12.
	if len(f) < 13 {
		return sched{}
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return sched{}
	}
	s := sched{run: time.Duration(ut+st) * clockTick, ok: true}
	if string(f[0]) == "R" {
		s.wait = clockTick
	}
	return s
}

// progressed reports whether a process did real work between two samples taken span
// apart: ran or waited for a CPU for at least 1% of it (2 ms at least). A process that is
// stopped, or blocked with nothing to do, accrues next to nothing: the Go runtime of an idle
// plugin wakes a few times a second for microseconds.
func progressed(before, after sched, span time.Duration) bool {
	if !before.ok || !after.ok {
		return false
	}
	return after.run+after.wait-before.run-before.wait >= max(span/100, 2*time.Millisecond)
}

// late reports whether the goroutine that waited span for something it gave timeout woke
// up late by a quarter of timeout or more: the host itself could not run then (its CPU
// taken, or the whole process stopped), so a reply the plugin sent in time may just not have
// been read in time, and a miss proves nothing about the plugin.
//
// It is the lateness of the goroutine doing the waiting, not the wait time the kernel
// accounted to the host's threads: the check process has many threads, and on a loaded
// machine their small waits for a CPU add up past any share of span while each runs soon
// enough; a sum (or even one thread's wait: a busy thread waits while the ping's thread does
// not) made every missed ping look like the host's fault, and a frozen plugin was then killed
// only by the busyPings bound, after a minute, instead of after pingMisses pings.
func late(timeout, span time.Duration) bool {
	return span-timeout >= timeout/4
}

// watchStall calls stalled, once, when the process pid() has made no progress (progressed)
// and the host has seen no work done (work() unchanged: configurations answered, say) for a
// whole window, with busy false; or, with busy true, when no work was done for limit
// whatever the process did (limit 0: no such bound): a process that spins without answering
// serves nobody. It returns when done is closed. pid() may be 0 while the process is not
// started yet: that is no progress, but the windows only run from the first look.
func watchStall(done <-chan struct{}, window, limit time.Duration, pid func() int, work func() int64, stalled func(quiet time.Duration, busy bool)) {
	step := max(window/8, 10*time.Millisecond)
	tick := time.NewTicker(step)
	defer tick.Stop()
	last, lastWork := schedOf(pid()), work()
	lastAt, quietSince, idleSince := time.Now(), time.Now(), time.Now()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		now := time.Now()
		s, w := schedOf(pid()), work()
		if w != lastWork {
			idleSince = now
		}
		switch {
		case w != lastWork, progressed(last, s, now.Sub(lastAt)):
			quietSince = now
		case now.Sub(quietSince) >= window:
			stalled(now.Sub(quietSince), false)
			return
		}
		if limit > 0 && now.Sub(idleSince) >= limit {
			stalled(now.Sub(idleSince), true)
			return
		}
		last, lastWork, lastAt = s, w, now
	}
}
