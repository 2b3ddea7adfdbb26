package main

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/harness"
)

type stat struct{ med, lo, hi time.Duration }

// statOf is the median, min and max of v. A negative value (a reload that did not converge)
// is longer than any other: it sorts last.
func statOf(v []time.Duration) stat {
	v = slices.Clone(v)
	slices.SortFunc(v, func(a, b time.Duration) int {
		if (a < 0) != (b < 0) {
			if a < 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(a, b)
	})
	if len(v) == 0 {
		return stat{}
	}
	return stat{med: v[len(v)/2], lo: v[0], hi: v[len(v)-1]}
}

// ms formats d; a negative d is a reload that did not converge within the case's 2 minutes.
func ms(d time.Duration) string {
	if d < 0 {
		return "> 2 min"
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func markdown(o options, m harness.Machine, r result, took, boot time.Duration) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("### Load balancer: real server failure to IPVS removal (in a VM)\n\n")
	w("vigil and keepalived direct the same virtual server at the same time, each from a network namespace of\n")
	w("its own, in one VM. Written by `bench/lvsbench`:\n\n")
	w("```sh\ngo run ./bench/lvsbench %s   # as root; boots a VM (qemu TCG); about %s\n```\n\n", strings.Join(os.Args[1:], " "), took.Round(time.Minute))
	w("- date: %s UTC; vigil %s, %s; %s\n", m.Date.Format("2006-01-02 15:04"), m.VigilRev, m.GoVersion, m.Keepalived)
	w("- machine: nproc %s, CPU %s, host kernel %s; load average %s before, %s after. The machine is shared\n", m.NProc, m.CPU, m.Kernel, m.LoadBefore, m.LoadAfter)
	w("  (other benchmarks and a CI run with busy loops may run beside it), and the VM is qemu without KVM (TCG:\n")
	w("  every instruction emulated, booted in %s), guest kernel %s: compare the two columns, not the\n", boot.Round(time.Second), r.Kernel)
	w("  absolute figures with a real director's.\n")
	w("- configuration: `virtual_server 192.0.2.100 80`, `delay_loop 1`, rr, NAT, two real servers with `TCP_CHECK\n")
	w("  { connect_timeout 1; retry 1 }`, the same file for both. A trial: wait a random part of a second, kill the\n")
	w("  server's listener (connections refused from then on), poll the director's IPVS table (core/ipvs, generic\n")
	w("  netlink) every 10 ms until the destination is gone; then restart it and wait until it is back. %d trials\n", o.n)
	w("  per implementation, alternating which goes first.\n\n")
	v, k := statOf(r.Removal["vigil"]), statOf(r.Removal["keepalived"])
	w("| implementation | failure → removed from IPVS, median | min | max |\n|---|---:|---:|---:|\n")
	w("| vigil | %s | %s | %s |\n", ms(v.med), ms(v.lo), ms(v.hi))
	w("| keepalived | %s | %s | %s |\n", ms(k.med), ms(k.lo), ms(k.hi))
	if k.med > 0 {
		w("\nvigil / keepalived (medians): %.2f.\n", float64(v.med)/float64(k.med))
	}
	w("\nThe kill falls at a random point of the 1 s check interval and retry 1 adds one delay_before_retry (1 s),\n")
	w("so each implementation's figures spread over about a second: with %d trials, medians closer than a few\n", o.n)
	w("hundred milliseconds do not tell the two apart.\n")
	if len(r.CPU) > 0 {
		w("\n**CPU with %d real servers** (%d virtual servers × %d, `delay_loop 1`; one listener process in the\n", vsCount*rsPer, vsCount, rsPer)
		w("backends' namespace serves them all and counts the connections it accepts: the probes). Each implementation\n")
		w("runs alone; once all %d destinations are in its IPVS table (vigil: and its checks run) and 5 s more have\n", vsCount*rsPer)
		w("passed, the utime+stime of its whole process tree is read over the window (vigil: core, check process and\n")
		w("the plugin; keepalived: parent and checker process). %% is of one CPU of the (emulated) VM's two. A process\n")
		w("of the tree that ended during the window (counted in parentheses) takes its CPU with it: the total is then\n")
		w("a lower bound. \"per probe\": the CPU over the probes made in the window (a daemon whose timers lag makes\n")
		w("fewer). \"until all in IPVS\": from the daemon's start until every destination was in the table. \"until\n")
		w("checks run\": vigil programs IPVS before its checks are configured on their plugin; the window starts 5 s\n")
		w("after its log says \"checks started\" (keepalived starts its checkers with its table).\n")
		w("\"whole VM per probe\": all the VM's busy CPU over the window (user, system, irq and softirq of both CPUs:\n")
		w("the daemon, the backends' listener and the kernel's packet processing), over the probes. A packet's softirq\n")
		w("work is charged to whichever process the CPU was running, so a daemon that is busy more of the time is\n")
		w("charged more of the kernel's work on its peers' packets than one that is idle when they come; the VM's\n")
		w("total does not depend on who ran.\n")
		w("\"healthy marked down\": how many times over the whole run (start, window, reloads) the daemon took a real\n")
		w("server for down, from its log (vigil: a check changed to down, the downs among the lines a rate-limit\n")
		w("summary's `suppressed=N` stands for included; keepalived: \"Removing service\"): every backend answers all\n")
		w("the time, so each one is false.\n")
		cpuTable(w, "`TCP_CHECK { connect_timeout 1 }` (an accept-and-close listener)", r.CPU)
		perfTable(w, r.CPU)
		if len(r.HTTP) > 0 {
			cpuTable(w, "`HTTP_GET { url { path / status_code 200 } connect_timeout 1 }` (a backend that answers 200 with a fixed reply)", r.HTTP)
			perfTable(w, r.HTTP)
		}
	}
	if len(r.CPU["vigil"].Reload) > 0 && len(r.CPU["keepalived"].Reload) > 0 {
		w("\n**Reload adding one real server to %d**: right after the CPU window, the same daemon's file gets one more\n", vsCount*rsPer)
		w("real server in the first virtual server and the daemon a SIGHUP; the time until that destination is in the\n")
		w("IPVS table (polled every 10 ms). %d reloads in a row, each adding one more.\n\n", reloads)
		w("| implementation | reload → new real server in IPVS, median | min | max |\n|---|---:|---:|---:|\n")
		vr, kr := statOf(r.CPU["vigil"].Reload), statOf(r.CPU["keepalived"].Reload)
		w("| vigil | %s | %s | %s |\n| keepalived | %s | %s | %s |\n", ms(vr.med), ms(vr.lo), ms(vr.hi), ms(kr.med), ms(kr.lo), ms(kr.hi))
		if kr.med > 0 {
			w("\nvigil / keepalived (medians): %.2f.\n", float64(vr.med)/float64(kr.med))
		}
	}
	return b.String()
}

// cpuTable writes one CPU case's table: vigil beside keepalived, and their ratios.
func cpuTable(w func(string, ...any), what string, c map[string]cpuResult) {
	v, k := c["vigil"], c["keepalived"]
	w("\nWith %s:\n\n", what)
	w("| implementation | CPU over the window | %% of one CPU | of it in plugins | probes | per probe | whole VM per probe | processes (ended in the window) | until all in IPVS | until checks run | healthy marked down |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range []struct {
		n string
		c cpuResult
	}{{"vigil", v}, {"keepalived", k}} {
		pct := 0.0
		if x.c.Window > 0 {
			pct = 100 * float64(x.c.Total) / float64(x.c.Window)
		}
		checking := "with the table"
		if x.c.Checking > 0 {
			checking = x.c.Checking.Round(time.Second).String()
		}
		w("| %s | %s over %s | %.1f %% | %s | %d | %s | %s | %d (%d) | %s | %s | %d |\n", x.n, ms(x.c.Total), x.c.Window.Round(time.Second), pct, ms(x.c.Plugins),
			x.c.Probes, perProbe(x.c.Total, x.c.Probes), perProbe(x.c.Machine, x.c.Probes), x.c.Procs, x.c.Gone, x.c.Settle.Round(time.Second), checking, x.c.FalseDowns)
	}
	if k.Total > 0 {
		w("\nvigil / keepalived: CPU %.2f", float64(v.Total)/float64(k.Total))
		if v.Probes > 0 && k.Probes > 0 {
			w(", per probe %.2f", (float64(v.Total)/float64(v.Probes))/(float64(k.Total)/float64(k.Probes)))
			if v.Machine > 0 && k.Machine > 0 {
				w(", whole VM per probe %.2f", (float64(v.Machine)/float64(v.Probes))/(float64(k.Machine)/float64(k.Probes)))
			}
		}
		w(".\n")
	}
}

// perfTable writes, for a CPU case profiled with -perf, each daemon's CPU per probe split
// between the kernel and its own code.
func perfTable(w func(string, ...any), c map[string]cpuResult) {
	v, k := c["vigil"], c["keepalived"]
	if v.Perf == nil && k.Perf == nil {
		return
	}
	w("\nIn the kernel and in the daemon's own code (perf record -a for %d s after the window; the shares of the\n", perfSeconds)
	w("daemon's own samples, applied to its CPU per probe above; a profile of %d s is a sample, good to a few points):\n\n", perfSeconds)
	w("| implementation | CPU per probe | in the kernel (system calls, their packets) | in user space (own code, runtime) |\n|---|---:|---:|---:|\n")
	for _, x := range []struct {
		n string
		c cpuResult
	}{{"vigil", v}, {"keepalived", k}} {
		p := x.c.Perf
		if p == nil || x.c.Probes <= 0 || p.Kernel+p.User <= 0 {
			w("| %s | ? | no profile | |\n", x.n)
			continue
		}
		per := float64(x.c.Total.Microseconds()) / float64(x.c.Probes)
		// The shares of the samples that perf placed; the rest (none, or a few unknown) left out.
		placed := p.Kernel + p.User
		us := func(pct float64) string { return fmt.Sprintf("%.0f µs (%.0f %%)", per*pct/placed, 100*pct/placed) }
		w("| %s | %.0f µs | %s | %s |\n", x.n, per, us(p.Kernel), us(p.User))
	}
}

// perProbe is the CPU time d over probes, in µs; "?" when no probe was counted or no time read.
func perProbe(d time.Duration, probes int64) string {
	if probes <= 0 || d <= 0 {
		return "?"
	}
	return fmt.Sprintf("%d µs", (d / time.Duration(probes)).Microseconds())
}
