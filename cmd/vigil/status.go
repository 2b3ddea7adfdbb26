package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/control"
	"github.com/vigil-ha/vigil/core/supervisor"
)

// statusCmd is `vigil status [--json] [--control PATH]`.
func statusCmd(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("vigil status", stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	socket := fs.String("control", control.DefaultSocket, "the daemon's control socket")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := control.Get(ctx, *socket, "/status")
	if err != nil {
		fmt.Fprintf(stderr, "vigil status: %v\n", err)
		return exitInternal
	}
	if *asJSON {
		stdout.Write(body)
		return exitOK
	}
	var st supervisor.Status
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "vigil status: unreadable answer: %v\n", err)
		return exitInternal
	}
	printStatus(stdout, st)
	return exitOK
}

// reloadCmd is `vigil reload [--json] [--control PATH]`: the daemon reloads its file (as on
// SIGHUP or a change of the file) and answers with the result; exit 1 when it was refused.
func reloadCmd(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("vigil reload", stderr)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	socket := fs.String("control", control.DefaultSocket, "the daemon's control socket")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	body, err := control.Post(ctx, *socket, "/reload")
	if err != nil {
		fmt.Fprintf(stderr, "vigil reload: %v\n", err)
		return exitInternal
	}
	var st supervisor.ReloadStatus
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "vigil reload: unreadable answer: %v\n", err)
		return exitInternal
	}
	if *asJSON {
		stdout.Write(body)
	} else {
		printReload(stdout, st)
	}
	if !st.OK {
		return exitConfig
	}
	return exitOK
}

func printReload(w io.Writer, st supervisor.ReloadStatus) {
	result := "applied"
	if !st.OK {
		result = "REFUSED: the running configuration stays"
		if st.Report != nil {
			result = "applied in part"
		}
	}
	fmt.Fprintf(w, "reload (%s) at %s: %s\n", st.Trigger, st.Time.Format(time.RFC3339), result)
	for _, e := range st.Errors {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if r := st.Report; r != nil {
		for _, part := range []struct {
			what string
			c    supervisor.ChildReload
		}{{"instances", r.VRRP}, {"checks", r.Checks}} {
			c := part.c
			fmt.Fprintf(w, "  %s: %d kept, changed %v, added %v, removed %v, restarted %v\n", part.what, len(c.Kept), c.Changed, c.Added, c.Removed, c.Restarted)
		}
	}
}

func printStatus(w io.Writer, st supervisor.Status) {
	if st.LastReload != nil {
		printReload(w, *st.LastReload)
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tSTATE\tUPTIME\tRESTARTS\tLAST ERROR")
	for _, p := range st.Processes {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", p.Role, p.PID, p.State, (time.Duration(p.UptimeSec * float64(time.Second))).Round(time.Second), p.Restarts, p.LastError)
	}
	for _, p := range st.Processes {
		if p.Unanswered != "" {
			// The check states are core's own and shown anyway; the vrrp child's instances are not.
			what := "its goroutine count is unknown"
			if p.Role == string(child.RoleVRRP) {
				what = "the instances are not shown"
			}
			fmt.Fprintf(tw, "\n%s (pid %d) did not answer: %s; %s\n", p.Role, p.PID, p.Unanswered, what)
		}
	}
	if len(st.Instances) > 0 {
		fmt.Fprintln(tw, "\nINSTANCE\tINTERFACE\tVRID\tSTATE\tPRIORITY\tMASTER\tVIPS")
		for _, in := range st.Instances {
			prio := strconv.Itoa(int(in.EffectivePriority))
			if in.EffectivePriority != in.Priority {
				prio += fmt.Sprintf(" (configured %d)", in.Priority)
			}
			state := in.State
			if in.Demoted != nil {
				state += " (demoted)"
			}
			if in.Fault != "" {
				state += " (" + in.Fault + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", in.Name, in.Interface, in.VRID, state, prio, in.Master, strings.Join(in.VIPs, " "))
		}
		printDemoted(tw, st.Instances)
	}
	if len(st.Checks) > 0 {
		fmt.Fprintln(tw, "\nCHECK\tSTATE\tSINCE\tDETAIL")
		for _, c := range st.Checks {
			state := "down"
			if c.Up {
				state = "up"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, state, c.Since.Format(time.RFC3339), c.Message)
		}
	}
	if l := st.LVS; l != nil {
		printLVS(tw, l)
	}
	if b := st.BGP; b != nil {
		printBGP(tw, b)
	}
	tw.Flush()
}

// printBGP shows the BGP speaker: its process, each session with its flaps and the reason
// it last failed, and the routes announced.
func printBGP(w io.Writer, b *supervisor.BGPStatus) {
	fmt.Fprintf(w, "\nBGP speaker: %s", b.State)
	if b.PID != 0 {
		fmt.Fprintf(w, " (pid %d)", b.PID)
	}
	if b.LocalAS != 0 {
		fmt.Fprintf(w, ", AS %d, router ID %s", b.LocalAS, b.RouterID)
	}
	if b.Restarts > 0 {
		fmt.Fprintf(w, ", %d restarts, last: %s", b.Restarts, b.LastError)
	}
	fmt.Fprintln(w)
	if b.Unanswered != "" {
		fmt.Fprintf(w, "sessions and routes unknown: %s\n", b.Unanswered)
		return
	}
	if len(b.Peers) > 0 {
		fmt.Fprintln(w, "NEIGHBOR\tAS\tSTATE\tSINCE\tFLAPS\tSENT\tLAST ERROR")
		for _, p := range b.Peers {
			state := p.State
			if p.BFD != "" {
				state += " (BFD " + p.BFD + ")"
			}
			since := ""
			if !p.Since.IsZero() {
				since = p.Since.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%d\t%s\n", p.Address, p.RemoteAS, state, since, p.Flaps, p.RoutesSent, p.LastError)
		}
	}
	if len(b.Routes) > 0 {
		fmt.Fprintln(w, "\nROUTE\tINSTANCE\tATTRIBUTES")
		for _, r := range b.Routes {
			var attrs []string
			if r.MED != nil {
				attrs = append(attrs, fmt.Sprintf("med %d", *r.MED))
			}
			if r.LocalPref != nil {
				attrs = append(attrs, fmt.Sprintf("local-pref %d", *r.LocalPref))
			}
			attrs = append(attrs, r.Communities...)
			if r.GracefulShutdown {
				attrs = append(attrs, "graceful-shutdown")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.Prefix, r.Instance, strings.Join(attrs, " "))
		}
	} else {
		fmt.Fprintln(w, "no route announced")
	}
}

// printLVS shows the load balancer: each virtual server, then its real servers with their
// weight, state, checks and the kernel's counters.
func printLVS(w io.Writer, l *supervisor.LVSStatus) {
	state := "programmed in IPVS"
	switch {
	case !l.Running:
		state = "NOT RUNNING: " + l.Error
	case l.Error != "":
		state += "; the kernel refused: " + l.Error
	}
	fmt.Fprintf(w, "\nLOAD BALANCER: %s", state)
	fmt.Fprintln(w)
	if l.SyncRole != "" && l.SyncRole != "none" || len(l.SyncDaemons) > 0 {
		var running []string
		for _, d := range l.SyncDaemons {
			running = append(running, fmt.Sprintf("%s on %s (id %d)", d.State, d.Interface, d.SyncID))
		}
		fmt.Fprintf(w, "sync daemon: wanted %s; running: %s\n", l.SyncRole, strings.Join(running, ", "))
	}
	up := func(b bool) string {
		if b {
			return "up"
		}
		return "down"
	}
	counters := func(c *supervisor.IPVSCounters) string {
		if c == nil {
			return "-"
		}
		return fmt.Sprintf("%d conns (%d active), %d B in, %d B out", c.Conns, c.ActiveConns, c.InBytes, c.OutBytes)
	}
	for _, vs := range l.VirtualServers {
		extra := ""
		if vs.SorryIn {
			extra += ", sorry server " + vs.Sorry + " in"
		}
		if vs.Suspended {
			extra += ", suspended (ha_suspend)"
		}
		// No tab: the virtual server's line is not a row of its real servers' table. Its
		// IPVS services are listed when they say more than its ID: a group's.
		services := ""
		if len(vs.Services) != 1 || !sameService(vs.ID, vs.Services[0]) {
			services = strings.Join(vs.Services, ", ") + ", "
		}
		fmt.Fprintf(w, "\nVIRTUAL SERVER %s (%sat %s): quorum %s (live weight %d, quorum %d)%s; %s\n", vs.ID, services,
			vs.At, up(vs.QuorumUp), vs.LiveWeight, vs.Quorum, extra, counters(vs.Counters))
		if vs.Error != "" {
			fmt.Fprintf(w, "  kernel refused: %s\n", vs.Error)
		}
		fmt.Fprintln(w, "  REAL SERVER\tMETHOD\tSTATE\tWEIGHT\tIN TABLE\tCHECKS\tCOUNTERS")
		for _, rs := range vs.RealServers {
			weight := strconv.FormatInt(rs.Weight, 10)
			if rs.Weight != rs.ConfiguredWeight {
				weight += fmt.Sprintf(" (configured %d)", rs.ConfiguredWeight)
			}
			in := "no"
			if rs.InTable {
				in = fmt.Sprintf("weight %d", rs.TableWeight)
			}
			var checks []string
			for _, c := range rs.Checks {
				s := up(c.Up)
				if !c.HasRun {
					// The check process reports a checker when it crosses rise or fall, so
					// one that is as it started (up, or down with alpha) has reported
					// nothing: that says no more than that.
					s += " (as at start)"
				}
				checks = append(checks, c.Name+" "+s)
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", rs.Address, rs.Method, up(rs.Alive), weight, in, strings.Join(checks, "; "), counters(rs.Counters))
		}
	}
}

// sameService says whether an IPVS service as ipvsadm writes it ("TCP  192.0.2.100:80",
// "FWM  7 IPv6") is the virtual server of that ID ("TCP 192.0.2.100:80", "fwmark 7 inet6").
func sameService(id, service string) bool {
	f := strings.Fields(service)
	if len(f) > 0 && f[0] == "FWM" {
		f[0] = "fwmark"
		if f[len(f)-1] == "IPv6" {
			f[len(f)-1] = "inet6"
		}
	}
	return strings.Join(f, " ") == id
}

func flagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
