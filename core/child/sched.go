package child

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/core/config"
)

// PriorityCaps are the capabilities a process needs to apply p and to undo it: CAP_SYS_NICE
// for any nice value (a positive one takes it to go back down, RLIMIT_NICE being 0) or a
// real-time priority, CAP_IPC_LOCK to lock its memory. Core keeps them in
// its bounding set for its children when the configuration asks for them, and each child
// keeps them permitted so that a reload can change or undo what it applied.
func PriorityCaps(p ...config.Process) []int {
	var nice, lock bool
	for _, q := range p {
		nice = nice || q.Nice != 0 || q.RTPriority > 0
		lock = lock || q.NoSwap
	}
	var caps []int
	if nice {
		caps = append(caps, unix.CAP_SYS_NICE)
	}
	if lock {
		caps = append(caps, unix.CAP_IPC_LOCK)
	}
	return caps
}

// scheduling applies one process's scheduling settings (config.Process) and undoes them when
// a reload removes them, the way keepalived's set_process_priorities does for its vrrp and
// checker processes, with these differences for a Go process:
//
//   - Nice value and policy are per thread on Linux (setpriority(PRIO_PROCESS, 0) and
//     sched_setscheduler(0) change the calling thread only), and a Go process has several
//     threads that the runtime creates at will. Each thread of /proc/self/task is set; a new
//     thread inherits from the thread that creates it, so once all are set, later ones follow.
//     A thread created during a pass by a thread not yet set is found by the next pass: the
//     passes go on until one finds every thread as wanted.
//   - keepalived sets SCHED_RESET_ON_FORK with SCHED_RR, and resets its script children's
//     priority before exec, so that they never run real-time. Go's os/exec has no hook there,
//     so the flag has to do it; but the kernel applies it to every clone, new threads
//     included: with it, a thread the runtime creates later runs SCHED_OTHER at nice 0. So a
//     process that starts programs (the check process: scripts and plugins) sets the flag and
//     sets each new thread again (watchThreads, every second, for as long as a setting is
//     applied); one that starts none (the vrrp process) leaves it off, and its new threads
//     inherit the settings at once. Threads left with mixed settings by a refusal part-way
//     are set again by watchThreads in either.
//   - When the kernel refuses SCHED_RR (no CAP_SYS_NICE, or a cgroup without real-time
//     runtime), the nice value is applied instead, if there is one; keepalived then applies
//     neither. Nothing refused stops the process: it is logged, naming the keyword.
//   - RLIMIT_RTTIME: see setRTLimit.
type scheduling struct {
	log    hclog.Logger
	prefix string // the keywords' prefix: "vrrp" or "checker"
	// spawns: the process starts programs, which must not inherit a raised priority.
	spawns bool

	mu        sync.Mutex
	applied   bool            // threads were changed, so that a reload without settings undoes it
	orig      int             // the nice value before
	target    *unix.SchedAttr // what every thread must have now; nil: nothing
	mixed     bool            // the last pass failed part-way: threads differ until one succeeds
	undoing   bool            // target is the settings from before: once every thread has it, nothing is left to undo
	stopped   bool            // stop was called: a late apply changes nothing and starts no goroutine
	watch     chan struct{}   // closed to end watchThreads; nil: it does not run
	watchFail bool            // watchThreads warned of a failed pass, not yet of a good one
	rttime    *unix.Rlimit    // RLIMIT_RTTIME before, when it was changed
	locked    bool            // mlockall done
	xcpu      chan os.Signal  // SIGXCPU, once setRTLimit asked for it
	xcpuEnd   chan struct{}   // closed to end warnXCPU
	soft      uint64          // the SIGXCPU threshold set, for warnXCPU to re-arm
	rearm     time.Duration   // how long without SIGXCPU before warnXCPU re-arms the threshold
}

func newScheduling(log hclog.Logger, prefix string, spawns bool) *scheduling {
	return &scheduling{log: log, prefix: prefix, spawns: spawns, rearm: time.Minute}
}

// apply makes the process run as p says, or as it ran before when p is zero and an earlier
// apply changed it. Problems are logged, never returned: a process that cannot raise its
// priority still does its work, as keepalived's does.
func (s *scheduling) apply(p config.Process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		// A reload racing the process's shutdown: starting watchThreads or warnXCPU again
		// now would leave them running past stop.
		return
	}
	if s.applied || p.Nice != 0 || p.RTPriority != 0 {
		s.setThreads(p)
	}
	s.setNoSwap(p)
	switch {
	case s.needsWatch() && s.watch == nil:
		s.watch = make(chan struct{})
		go s.watchThreads(time.Second, s.watch)
	case !s.needsWatch():
		s.stopWatch()
	}
}

// needsWatch: threads must be set again, the new ones of a process with reset-on-fork or
// those that a failed pass left behind.
func (s *scheduling) needsWatch() bool { return s.target != nil && (s.spawns || s.mixed) }

// stopWatch ends watchThreads, if it runs. Its warning state goes with it: a later watch
// warns of its own first failure.
func (s *scheduling) stopWatch() {
	if s.watch != nil {
		close(s.watch)
		s.watch = nil
	}
	s.watchFail = false
}

// stop ends the goroutines that apply started (watchThreads, warnXCPU), for a process that
// shuts down; the settings stay as they are.
func (s *scheduling) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	s.stopWatch()
	s.stopXCPU()
}

// current is what the process runs with now, for the capabilities that undoing it needs.
func (s *scheduling) current() config.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p config.Process
	if s.applied {
		p.Nice = -1 // anything that needs CAP_SYS_NICE to undo
	}
	p.NoSwap = s.locked
	return p
}

// setThreads gives every thread the nice value or the real-time priority of p.
func (s *scheduling) setThreads(p config.Process) {
	if !s.applied {
		// The nice value before, to go back to. (The raw getpriority system call answers
		// 20 minus it; sched_getattr answers it.)
		if cur, err := unix.SchedGetAttr(0, 0); err == nil {
			s.orig = int(cur.Nice)
		}
		s.applied = true
	}
	var flags uint64
	if s.spawns {
		// SCHED_OTHER keeps the flag once it was set: clearing it needs CAP_SYS_NICE, and it
		// only spares children a raised priority.
		flags = unix.SCHED_FLAG_RESET_ON_FORK
	}
	other := unix.SchedAttr{Policy: unix.SCHED_NORMAL, Flags: flags, Nice: int32(s.orig)}
	if p.Nice != 0 {
		other.Nice = int32(p.Nice)
	}
	rrChanged := 0 // threads set to SCHED_RR before the kernel refused it for another
	if p.RTPriority > 0 {
		rr := unix.SchedAttr{Policy: unix.SCHED_RR, Flags: flags, Priority: uint32(p.RTPriority)}
		n, err := setAllThreads(rr)
		if err == nil {
			s.target, s.mixed, s.undoing = &rr, false, false
			s.log.Info("real-time scheduling set", "keyword", s.prefix+"_rt_priority", "policy", "SCHED_RR", "priority", p.RTPriority, "threads_changed", n)
			s.setRTLimit(p.RLimitRTTime)
			return
		}
		s.log.Warn(s.prefix+"_rt_priority not applied: the kernel refused SCHED_RR", "place", s.place(p, "_rt_priority"),
			"priority", p.RTPriority, "error", err,
			"hint", "needs CAP_SYS_NICE, and real-time runtime in the cgroup (cpu.rt_runtime_us) where the kernel has CONFIG_RT_GROUP_SCHED")
		// Threads set before a refusal go back to SCHED_OTHER below.
		rrChanged = n
	}
	n, err := setAllThreads(other)
	if err == nil {
		// Only now is no thread left real-time (one set by an earlier apply, or before the
		// refusal above): until then the soft limit still warns of a runaway one.
		s.restoreRTLimit()
	}
	s.target, s.mixed, s.undoing = nil, false, false
	switch {
	case err != nil && (rrChanged > 0 || n > 0):
		// Some threads have SCHED_RR or the new nice value and others not: watchThreads goes
		// on setting them until a pass succeeds (it says so), rather than leave them so.
		// Without a nice value, the target is the settings from before: when that pass
		// succeeds, the undo is done (watchThreads).
		s.target, s.mixed, s.undoing = &other, true, p.Nice == 0
		s.log.Warn("threads left with mixed scheduling: setting them again every second", "keyword", s.prefix+"_priority",
			"place", s.place(p, "_priority"), "nice", other.Nice, "threads_changed", n, "after_sched_rr_refused_part_way", rrChanged > 0, "error", err,
			"hint", "a negative nice value needs CAP_SYS_NICE")
	case err != nil && p.Nice != 0:
		s.log.Warn(s.prefix+"_priority not applied: the kernel refused the nice value", "place", s.place(p, "_priority"),
			"nice", p.Nice, "error", err, "hint", "a negative nice value needs CAP_SYS_NICE")
	case err != nil:
		s.log.Warn("scheduling not reset", "nice", s.orig, "error", err)
	case p.Nice != 0:
		s.target = &other
		s.log.Info("nice value set", "keyword", s.prefix+"_priority", "nice", p.Nice, "threads_changed", n)
	default:
		// Undone: nothing is left to undo, nor a capability needed for it (see current).
		s.applied = false
		if n > 0 {
			s.log.Info("scheduling reset", "nice", s.orig, "threads_changed", n)
		}
	}
}

// watchThreads gives threads that the runtime created since the last pass the settings of
// the others, in a process with SCHED_RESET_ON_FORK (see scheduling), or those that a failed
// pass left behind, until end is closed. The runtime keeps the threads it made and makes new
// ones only when all are busy or blocked, mostly soon after start, so a pass a second finds
// few, and costs a directory read and a system call a thread. A failure is logged once, until
// a pass succeeds.
func (s *scheduling) watchThreads(every time.Duration, end chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-end:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if s.watch != end { // stopped meanwhile (and maybe started again)
			s.mu.Unlock()
			return
		}
		n, err := setAllThreads(*s.target)
		switch {
		case err != nil && !s.watchFail:
			s.watchFail = true
			s.log.Warn("threads kept their scheduling", "error", err, "note", "retried every second; logged again once it succeeds")
		case err == nil && s.watchFail:
			s.watchFail = false
			s.log.Info("every thread has the process's scheduling again", "threads_changed", n)
		case err == nil && n > 0:
			s.log.Debug("new threads given the process's scheduling", "threads", n)
		}
		if err == nil && s.mixed {
			s.mixed = false
			if s.target.Policy != unix.SCHED_RR {
				s.restoreRTLimit()
			}
			if s.undoing {
				// Every thread is back as it was: nothing is left to undo, nor a capability
				// needed for it (current), as after an undo that succeeded at once.
				s.target, s.undoing, s.applied = nil, false, false
				s.log.Info("scheduling reset", "nice", s.orig, "threads_changed", n)
			}
			if !s.needsWatch() {
				s.stopWatch()
			}
		}
		s.mu.Unlock()
	}
}

func (s *scheduling) place(p config.Process, suffix string) string {
	if pos, ok := p.Places[s.prefix+suffix]; ok {
		return pos.String()
	}
	return s.prefix + suffix
}

// maxPasses bounds the passes over the threads: the runtime creates threads now and then,
// not without end; a process that keeps creating them faster than they are set has a bug.
const maxPasses = 100

// setAllThreads gives every thread of this process the scheduling attributes want, and
// returns how many it had to change. It re-reads /proc/self/task until a pass changes
// nothing, so that no thread is left out: one created meanwhile by a thread not yet set
// inherited the old settings, and the next pass finds it.
func setAllThreads(want unix.SchedAttr) (int, error) {
	changed := 0
	for range maxPasses {
		tids, err := threadIDs()
		if err != nil {
			return changed, err
		}
		n := 0
		for _, tid := range tids {
			cur, err := unix.SchedGetAttr(tid, 0)
			if errors.Is(err, unix.ESRCH) {
				continue // the thread ended
			}
			if err != nil {
				return changed + n, fmt.Errorf("read the scheduling of thread %d: %w", tid, err)
			}
			if sameScheduling(cur, &want) {
				continue
			}
			attr := want
			if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
				if errors.Is(err, unix.ESRCH) {
					continue
				}
				return changed + n, fmt.Errorf("thread %d: %w", tid, err)
			}
			n++
		}
		changed += n
		if n == 0 {
			return changed, nil
		}
	}
	return changed, fmt.Errorf("threads still changing after %d passes over /proc/self/task", maxPasses)
}

// sameScheduling compares what setAllThreads sets: policy, reset-on-fork, and the priority
// of a real-time policy or the nice value of the others.
func sameScheduling(cur, want *unix.SchedAttr) bool {
	if cur.Policy != want.Policy || cur.Flags&unix.SCHED_FLAG_RESET_ON_FORK != want.Flags&unix.SCHED_FLAG_RESET_ON_FORK {
		return false
	}
	if want.Policy == unix.SCHED_RR || want.Policy == unix.SCHED_FIFO {
		return cur.Priority == want.Priority
	}
	return cur.Nice == want.Nice
}

// threadIDs lists this process's threads.
func threadIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// setRTLimit sets RLIMIT_RTTIME for a real-time process: keepalived sets the soft limit to
// half of PREFIX_rlimit_rttime (the kernel then sends SIGXCPU, which it logs) and the hard
// limit to all of it (the kernel then kills the process). vigil sets the soft limit the same
// way and logs the warning, but leaves the hard limit as it is (unlimited, normally), for
// these reasons:
//
//   - The limit counts the CPU time a real-time thread uses without a blocking system call.
//     A Go thread runs goroutine after goroutine without one as long as there is work: a
//     burst of packets and timers, a reload's parse, the garbage collector's marking; with
//     keepalived's default of 10 ms a busy but healthy vrrp process would be killed, and
//     that kill is a failover, the very thing a real-time priority is set to prevent.
//   - Go ignores SIGXCPU unless asked for it (the runtime's signal table marks it
//     notify-only), so the soft limit harms nothing: vigil asks and logs it. At each signal
//     the kernel raises the soft limit by a second, which spaces the signals of a thread that
//     keeps running; vigil leaves it raised (setting it back at once would bring a signal, and
//     a prlimit call, at every tick) and sets the threshold again at the next apply, or after
//     a minute without a signal (warnXCPU).
//   - A thread that spins for ever is still bounded by the kernel's real-time throttling
//     (kernel.sched_rt_runtime_us: 95 % of each second by default) and by Go's own
//     preemption, which keeps the process's other goroutines, and core's health pings,
//     served.
func (s *scheduling) setRTLimit(limit int) {
	if limit < 2 {
		return
	}
	if s.rttime == nil {
		var old unix.Rlimit
		if err := unix.Prlimit(0, unix.RLIMIT_RTTIME, nil, &old); err != nil {
			s.log.Warn(s.prefix+"_rlimit_rttime not applied", "error", err)
			return
		}
		s.rttime = &old
	}
	soft := uint64(limit / 2)
	lim := unix.Rlimit{Cur: soft, Max: s.rttime.Max}
	if lim.Max != unix.RLIM_INFINITY && lim.Cur > lim.Max {
		lim.Cur = lim.Max
	}
	if err := unix.Prlimit(0, unix.RLIMIT_RTTIME, &lim, nil); err != nil {
		s.log.Warn(s.prefix+"_rlimit_rttime not applied", "error", err)
		return
	}
	s.soft = lim.Cur
	if s.xcpu == nil {
		s.xcpu, s.xcpuEnd = make(chan os.Signal, 1), make(chan struct{})
		signal.Notify(s.xcpu, syscall.SIGXCPU)
		go s.warnXCPU(s.xcpu, s.xcpuEnd)
	}
}

// stopXCPU ends warnXCPU and stops asking for SIGXCPU, which Go then ignores again.
func (s *scheduling) stopXCPU() {
	if s.xcpu != nil {
		signal.Stop(s.xcpu)
		close(s.xcpuEnd)
		s.xcpu, s.xcpuEnd = nil, nil
	}
}

// restoreRTLimit puts back RLIMIT_RTTIME as it was before setRTLimit.
func (s *scheduling) restoreRTLimit() {
	s.stopXCPU()
	if s.rttime == nil {
		return
	}
	if err := unix.Prlimit(0, unix.RLIMIT_RTTIME, s.rttime, nil); err != nil {
		s.log.Warn("RLIMIT_RTTIME not restored", "error", err)
		return
	}
	s.rttime, s.soft = nil, 0
}

// warnXCPU logs each SIGXCPU, at most one line a minute with the count in between, until end
// is closed. It leaves the threshold as the kernel raised it (by a second at each signal),
// and sets it back after s.rearm without a signal.
func (s *scheduling) warnXCPU(sigs <-chan os.Signal, end <-chan struct{}) {
	var last time.Time
	missed := 0
	quiet := time.NewTimer(s.rearm)
	quiet.Stop()
	defer quiet.Stop()
	for {
		select {
		case <-end:
			return
		case <-quiet.C:
			s.mu.Lock()
			if s.rttime != nil && s.soft > 0 {
				_ = unix.Prlimit(0, unix.RLIMIT_RTTIME, &unix.Rlimit{Cur: s.soft, Max: s.rttime.Max}, nil)
			}
			s.mu.Unlock()
			continue
		case <-sigs:
		}
		quiet.Reset(s.rearm)
		s.mu.Lock()
		soft := s.soft
		s.mu.Unlock()
		if !last.IsZero() && time.Since(last) < time.Minute {
			missed++
			continue
		}
		last = time.Now()
		s.log.Warn("a real-time thread ran longer than half of "+s.prefix+"_rlimit_rttime without blocking (SIGXCPU)",
			"threshold_us", soft, "more_since_last_warning", missed,
			"hint", "vigil only warns; raise "+s.prefix+"_rlimit_rttime if this repeats")
		missed = 0
	}
}

// setNoSwap locks the process in memory for PREFIX_no_swap, or unlocks it when a reload
// removed the keyword. MCL_ONFAULT locks pages as they are touched: the Go runtime reserves
// far more address space than it uses (VmLck then counts all of it, about 1 GiB, while the
// resident set stays as it was), and locking it all at once would commit it. With
// MCL_FUTURE every later mapping is locked too, and counted against RLIMIT_MEMLOCK unless
// the process has CAP_IPC_LOCK: a process that locked its memory must keep that capability
// effective until it unlocks, or the runtime's next mmap fails with EAGAIN and the process
// dies ("fatal error: runtime: cannot map pages in arena address space", tried).
// Without the capability mlockall fails as a whole when the reservations exceed the limit,
// but succeeds under a large finite one (systemd's LimitMEMLOCK=, a container's), and the
// process dies later, when the limit is reached: so it locks only with CAP_IPC_LOCK effective
// or no limit at all, and otherwise warns and leaves its memory as it is. (keepalived 2.2.7
// calls mlockall whatever it holds, and logs a failure at INFO: a C process gets a failed
// mmap or malloc, where the Go runtime stops the process.)
func (s *scheduling) setNoSwap(p config.Process) {
	switch {
	case p.NoSwap && !s.locked:
		if why := cannotLock(); why != "" {
			s.log.Warn(s.prefix+"_no_swap not applied: memory not locked", "place", s.place(p, "_no_swap"), "reason", why,
				"hint", "needs CAP_IPC_LOCK (kept by core only when the file it starts with asks for "+s.prefix+"_no_swap) or LimitMEMLOCK=infinity")
			return
		}
		if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT); err != nil {
			s.log.Warn(s.prefix+"_no_swap not applied: memory not locked", "place", s.place(p, "_no_swap"), "error", err,
				"hint", "needs CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK")
			return
		}
		s.locked = true
		s.log.Info("memory locked", "keyword", s.prefix+"_no_swap")
	case !p.NoSwap && s.locked:
		if err := unix.Munlockall(); err != nil {
			s.log.Warn("memory not unlocked", "error", err)
			return
		}
		s.locked = false
	}
}

// cannotLock says why this process must not lock its memory for good (MCL_FUTURE), or ""
// when it may: CAP_IPC_LOCK is effective, or RLIMIT_MEMLOCK is unlimited.
func cannotLock() string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err == nil && data[unix.CAP_IPC_LOCK/32].Effective&(1<<(unix.CAP_IPC_LOCK%32)) != 0 {
		return ""
	}
	var lim unix.Rlimit
	if err := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, nil, &lim); err != nil {
		return fmt.Sprintf("no CAP_IPC_LOCK, and RLIMIT_MEMLOCK unknown: %v", err)
	}
	if lim.Cur == unix.RLIM_INFINITY {
		return ""
	}
	return fmt.Sprintf("no CAP_IPC_LOCK and RLIMIT_MEMLOCK is %d bytes: the Go runtime would stop the process once its memory reached it", lim.Cur)
}
