package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// A busy host: the suite is its own load generator. Re-executed as `faults -faults-burn cpu`
// it spins one thread forever; as `faults -faults-burn mem BYTES` it is a stress(1) --vm
// worker: map BYTES of anonymous memory, write one byte to every page (each write a page
// fault that the kernel answers with a zeroed page), unmap, again. Both are started in a lab
// node, so that the lab's cleanup ends them by PID with everything else; the namespace says
// nothing about CPUs, which every namespace shares with the whole machine.

const burnFlag = "-faults-burn"

func init() {
	if len(os.Args) >= 3 && os.Args[1] == burnFlag {
		os.Exit(burnMain(os.Args[2:]))
	}
}

// burnMain runs one burner until it is killed; it returns only on bad arguments.
func burnMain(args []string) int {
	runtime.GOMAXPROCS(1)
	switch {
	case args[0] == "cpu":
		spin()
	case args[0] == "mem" && len(args) == 2:
		n, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "%s mem: bad size %q\n", burnFlag, args[1])
			return 2
		}
		for {
			if err := touchOnce(int(n)); err != nil {
				fmt.Fprintf(os.Stderr, "%s mem: %v\n", burnFlag, err)
				return 1
			}
		}
	}
	fmt.Fprintf(os.Stderr, "usage: %s cpu | mem BYTES\n", burnFlag)
	return 2
}

// spin never returns and never sleeps: a busy loop, with a result nobody reads so that
// nothing is optimised away.
func spin() {
	x := uint64(1)
	for {
		x = x*6364136223846793005 + 1442695040888963407
		if x == 0 {
			fmt.Println(x)
		}
	}
}

// touchOnce maps n bytes, dirties every page and unmaps them: one round of a memory hog.
// The mapping is the kernel's, outside the Go heap, so the runtime's GC neither sees it nor
// helps; MAP_POPULATE is not used: the point is the page faults.
func touchOnce(n int) error {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return fmt.Errorf("mmap %d bytes: %w", n, err)
	}
	page := os.Getpagesize()
	for i := 0; i < n; i += page {
		b[i] = byte(i)
	}
	return syscall.Munmap(b)
}

// burners are the load generators of a busy host.
type burners struct {
	procs []*lab.Proc
}

// startBurners starts cpu spinning processes and mem memory hogs of memBytes each in nd.
func startBurners(nd *lab.Node, cpu, mem int, memBytes int64) (*burners, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("the suite's own binary, to burn with: %w", err)
	}
	b := &burners{}
	start := func(args ...string) error {
		p, err := nd.Start(exe, append([]string{burnFlag}, args...)...)
		if err != nil {
			return fmt.Errorf("burner %v: %w", args, err)
		}
		b.procs = append(b.procs, p)
		return nil
	}
	for range cpu {
		if err := start("cpu"); err != nil {
			b.stop()
			return nil, err
		}
	}
	for range mem {
		if err := start("mem", strconv.FormatInt(memBytes, 10)); err != nil {
			b.stop()
			return nil, err
		}
	}
	return b, nil
}

// running is how many burners still run (one that exited says the load fell short).
func (b *burners) running() int {
	n := 0
	for _, p := range b.procs {
		if !p.Exited() {
			n++
		}
	}
	return n
}

// stop kills every burner (its process group) and waits for it.
func (b *burners) stop() {
	for _, p := range b.procs {
		p.Kill()
	}
}

// hogBytes is the size of each memory hog: an eighth of the memory available now, split
// among n hogs, at most 256 MiB each, so that a shared machine is loaded and never pushed
// into the OOM killer.
func hogBytes(n int) (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	avail, ok := meminfoKB(string(b), "MemAvailable")
	if !ok {
		return 0, fmt.Errorf("/proc/meminfo: no MemAvailable")
	}
	per := int64(avail) * 1024 / 8 / int64(max(n, 1))
	return min(per, 256<<20), nil
}

func meminfoKB(s, key string) (uint64, bool) {
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == key+":" {
			v, err := strconv.ParseUint(f[1], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// cpuTimes is the machine's CPU time from /proc/stat's first line, in ticks.
type cpuTimes struct {
	idle, total uint64
}

func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: %q", line)
	}
	var t cpuTimes
	for i, s := range f[1:] {
		v, _ := strconv.ParseUint(s, 10, 64)
		// user nice system idle iowait irq softirq steal (guest time is in user already).
		if i >= 8 {
			break
		}
		t.total += v
		if i == 3 || i == 4 {
			t.idle += v
		}
	}
	return t, nil
}

// idlePct is the share of the machine's CPU time left idle between a and b, in %.
func idlePct(a, b cpuTimes) float64 {
	if b.total <= a.total {
		return 0
	}
	return float64(b.idle-a.idle) / float64(b.total-a.total) * 100
}

// runqWait is the time the threads of pids have spent runnable but waiting for a CPU
// (/proc/PID/task/TID/schedstat, second field; needs schedstats, which every Debian kernel
// has). Threads that ended take theirs with them.
func runqWait(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) >= 2 {
				ns, _ := strconv.ParseInt(f[1], 10, 64)
				sum += time.Duration(ns)
			}
		}
	}
	return sum
}

// busyLoad is what the burners did to the machine during a window.
type busyLoad struct {
	idlePct float64 // machine CPU left idle (should be near 0)
	// runqPerSec is how long per second the daemon's processes waited for a CPU while
	// runnable: the delay a busy host adds to each advert and timer.
	runqPerSec time.Duration
}

// measureBusy samples the machine and pids over fn.
func measureBusy(ctx context.Context, pids []int, fn func(context.Context) error) (busyLoad, error) {
	a, err := readCPUTimes()
	if err != nil {
		return busyLoad{}, err
	}
	w0, t0 := runqWait(pids), time.Now()
	if err := fn(ctx); err != nil {
		return busyLoad{}, err
	}
	b, err := readCPUTimes()
	if err != nil {
		return busyLoad{}, err
	}
	el := time.Since(t0)
	w := runqWait(pids) - w0
	return busyLoad{idlePct: idlePct(a, b), runqPerSec: time.Duration(float64(w) / el.Seconds())}, nil
}
