// Package memdump writes where a vigil process's memory goes, for the one debugging it: a heap
// profile and the runtime's memory statistics, on SIGUSR2, into a directory named by the
// environment. Nothing listens on the network and nothing happens unless the variable is set:
//
//	VIGIL_MEMDUMP=/tmp/vm vigil -f keepalived.conf   # core and its children inherit it
//	kill -USR2 -- -$(cat /run/vigil.pid)            # every process of the group writes
//	go tool pprof -sample_index=inuse_space /tmp/vm/vrrp-1234.heap
//
// GODEBUG=memprofilerate=1 makes the profile exact (every allocation sampled, the package
// initialisers' too) at some cost in CPU; without it the runtime samples one allocation per
// 512 KiB.
package memdump

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
)

// Env names the directory the dumps go to.
const Env = "VIGIL_MEMDUMP"

// Stats is what a dump says besides the profile: the runtime's view of the process's memory
// and the kernel's (from /proc/self/status and smaps_rollup), so that one file tells whether
// the heap, the stacks, the runtime's own structures or the mapped binary hold the RSS.
type Stats struct {
	Role       string            `json:"role"`
	PID        int               `json:"pid"`
	Goroutines int               `json:"goroutines"`
	MemStats   runtime.MemStats  `json:"memstats"`
	Proc       map[string]string `json:"proc"` // VmRSS, RssAnon, RssFile, Threads, Pss ... as the kernel writes them
}

// OnSignal starts writing a dump of this process, named by role ("core", "vrrp", "check"),
// each time it gets SIGUSR2, when Env names a directory; otherwise it does nothing (SIGUSR2
// keeps its default action). Failures go to logf.
func OnSignal(role string, logf func(format string, args ...any)) {
	dir := os.Getenv(Env)
	if dir == "" {
		return
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR2)
	go func() {
		for range sigs {
			if err := Write(dir, role); err != nil {
				logf("memdump: %v", err)
			}
		}
	}()
}

// Write writes DIR/ROLE-PID.heap (pprof, after a collection, so that in-use figures are
// current) and DIR/ROLE-PID.json (Stats, read before the profile is written). A later dump
// replaces an earlier one.
func Write(dir, role string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%d", role, os.Getpid()))
	// Statistics first: writing the profile allocates, and would count in them.
	runtime.GC()
	st := Stats{Role: role, PID: os.Getpid(), Goroutines: runtime.NumGoroutine(), Proc: map[string]string{}}
	runtime.ReadMemStats(&st.MemStats)
	for _, file := range []string{"/proc/self/status", "/proc/self/smaps_rollup"} {
		readProc(file, st.Proc)
	}
	f, err := os.Create(base + ".heap")
	if err != nil {
		return err
	}
	err = pprof.Lookup("heap").WriteTo(f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s.heap: %w", base, err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	// Renamed into place, written last: a reader that sees the JSON sees the whole dump.
	if err := os.WriteFile(base+".json.tmp", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("%s.json: %w", base, err)
	}
	return os.Rename(base+".json.tmp", base+".json")
}

// readProc adds the "Key:   value kB" lines of file to into.
func readProc(file string, into map[string]string) {
	b, err := os.ReadFile(file)
	if err != nil {
		return
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok {
			into[k] = strings.TrimSpace(v)
		}
	}
}
