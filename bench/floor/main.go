// Command floor measures the memory floor of vigil's process model and writes it into
// BENCHMARKS.md:
//
//	go run ./bench/floor -out BENCHMARKS.md
//
// vrrpbench compares vigil's resident memory with keepalived's. This program says how much
// of vigil's figure any implementation of vigil's design would hold: it builds two idle Go
// programs as vigil is built (static, CGO_ENABLED=0) and measures what each holds resident
// after it settles: empty (the Go runtime alone) and skeleton (a gRPC server on a unix
// socket, hclog, netlink: what core and every child link, without any of vigil's code). A
// master runs two such processes (core and the vrrp child; keepalived runs two as well),
// so twice the skeleton is the floor of a master before vigil's own code, heap and state.
// Nothing leaves the machine: the skeleton listens on a unix socket in a temporary
// directory and reads the link list once.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/bench/internal/proc"
)

type options struct {
	out    string
	runs   int
	settle time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "", "write the results into the floor block of this file (BENCHMARKS.md); empty: stdout only")
	flag.IntVar(&o.runs, "runs", 5, "starts of each program")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait after a start before reading its memory")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// mem is what /proc/PID/status says of one process, in KiB.
type mem struct{ rss, anon, file int }

type program struct {
	name, pkg, doc string
	size           int64
	runs           []mem
}

func run(ctx context.Context, o options) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	m := harness.CollectMachine(root, "")
	work, err := os.MkdirTemp("", "vigil-floor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	progs := []*program{
		{name: "empty", pkg: "./bench/floor/empty", doc: "the Go runtime alone"},
		{name: "skeleton", pkg: "./bench/floor/skeleton", doc: "gRPC server on a unix socket, hclog, netlink; none of vigil's code"},
		{name: "vigil", pkg: "./cmd/vigil", doc: "vigil's binary (size only: vrrpbench measures it running)"},
	}
	for _, p := range progs {
		bin := filepath.Join(work, p.name)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, p.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w\n%s", p.pkg, err, out)
		}
		st, err := os.Stat(bin)
		if err != nil {
			return err
		}
		p.size = st.Size()
		if p.name == "vigil" {
			continue
		}
		for i := 0; i < o.runs; i++ {
			mm, err := measure(ctx, bin, filepath.Join(work, fmt.Sprintf("%s-%d.sock", p.name, i)), o.settle)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", p.name, i+1, err)
			}
			fmt.Printf("%s %-8s run %d: VmRSS %5.1f MiB (anon %4.1f, file %4.1f)\n",
				time.Now().Format("15:04:05.000"), p.name, i+1, mib(mm.rss), mib(mm.anon), mib(mm.file))
			p.runs = append(p.runs, mm)
		}
	}
	m.LoadAfter = harness.Loadavg()
	ka, vg := 0.0, 0.0
	if o.out != "" {
		ka, vg = vrrpbenchRSS(o.out)
	}
	md := report(m, o, progs, ka, vg)
	if o.out == "" {
		fmt.Print(md)
		return nil
	}
	if err := harness.WriteBlock(o.out, "floor", md); err != nil {
		return err
	}
	fmt.Println("wrote", o.out)
	return nil
}

// measure starts bin, waits settle, reads its memory and stops it.
func measure(ctx context.Context, bin, sock string, settle time.Duration) (mem, error) {
	cmd := exec.CommandContext(ctx, bin, sock)
	if err := cmd.Start(); err != nil {
		return mem{}, err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	time.Sleep(settle)
	// The process is idle: three reads of its status see the same figures.
	var mm mem
	pid := []int{cmd.Process.Pid}
	for _, f := range []struct {
		key string
		to  *int
	}{{"VmRSS", &mm.rss}, {"RssAnon", &mm.anon}, {"RssFile", &mm.file}} {
		kb, err := proc.MemKB(pid, "status", f.key)
		if err != nil {
			return mem{}, err
		}
		*f.to = int(kb)
	}
	return mm, nil
}

func mib(kib int) float64 { return float64(kib) / 1024 }

func median(runs []mem, f func(mem) int) float64 {
	v := make([]int, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	sort.Ints(v)
	return mib(v[len(v)/2])
}

// vrrpbenchRSS reads keepalived's and vigil's median master RSS (MiB) from vrrpbench's row 4
// in the file, or zeros when it has none.
func vrrpbenchRSS(path string) (keepalived, vigil float64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| 4. VmRSS, master") {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) < 6 {
			return 0, 0
		}
		fmt.Sscan(strings.TrimSpace(f[3]), &vigil)
		fmt.Sscan(strings.TrimSpace(f[5]), &keepalived)
		return keepalived, vigil
	}
	return 0, 0
}

func report(m harness.Machine, o options, progs []*program, ka, vg float64) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("### The floor of vigil's process model (bench/floor)\n\n")
	w("```\ngo run ./bench/floor -out BENCHMARKS.md   # seconds; no root, no network\n```\n\n")
	w("- date: %s; machine: nproc %s, kernel %s, CPU %s; load average %s before, %s after\n",
		m.Date.Format("2006-01-02 15:04 UTC"), m.NProc, m.Kernel, m.CPU, m.LoadBefore, m.LoadAfter)
	w("- vigil %s, %s; each program started %d times, read %s after its start (medians)\n\n", m.VigilRev, m.GoVersion, o.runs, o.settle)
	w("| program | what it links | binary | VmRSS | anonymous | file pages |\n|---|---|---|---|---|---|\n")
	var skel float64
	for _, p := range progs {
		if len(p.runs) == 0 {
			w("| %s | %s | %.1f MB | — | — | — |\n", p.name, p.doc, float64(p.size)/1e6)
			continue
		}
		rss := median(p.runs, func(x mem) int { return x.rss })
		if p.name == "skeleton" {
			skel = rss
		}
		w("| %s | %s | %.1f MB | %.1f MiB | %.1f MiB | %.1f MiB |\n", p.name, p.doc, float64(p.size)/1e6,
			rss, median(p.runs, func(x mem) int { return x.anon }), median(p.runs, func(x mem) int { return x.file }))
	}
	w("\nA master runs two processes (core and the vrrp child), as keepalived's does; two skeletons hold\n")
	w("**%.1f MiB** before any of vigil's code, heap or instance state.", 2*skel)
	if ka > 0 {
		w(" vrrpbench's row 4 above: keepalived's master %.1f MiB, vigil's\n", ka)
		w("%.1f MiB. A goal of at most twice keepalived's (%.1f MiB) would leave vigil's own code, data, heap and\n", vg, 2*ka)
		w("255 instances %.1f MiB in its two processes.", 2*ka-2*skel)
	}
	w(" Most of a Go process's resident\n")
	w("memory here is file pages of its own binary (the runtime reads its tables, the initialisers of every\n")
	w("linked package run, the kernel maps around each fault): they are shared with every other process\n")
	w("running the same binary and cost the page cache once, but VmRSS counts them in each process.\n")
	return b.String()
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run from inside vigil's module")
	}
	return filepath.Dir(gomod), nil
}
