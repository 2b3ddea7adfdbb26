package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/core/control"
	"github.com/vigil-ha/vigil/core/supervisor"
)

// handoverCmd is `vigil demote INSTANCE...|--all [--for DURATION]` and
// `vigil promote INSTANCE...|--all`. Exit codes as `vigil reload`'s: 0 done, 1 refused by
// the daemon (no such instance), 2 a bad command line, 3 the daemon cannot be reached.
func handoverCmd(verb string, args []string, stdout, stderr io.Writer) int {
	fs := flagSet("vigil "+verb, stderr)
	all := fs.Bool("all", false, "every instance")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	socket := fs.String("control", control.DefaultSocket, "the daemon's control socket")
	var d time.Duration
	if verb == "demote" {
		fs.DurationVar(&d, "for", 0, "promote again after this long (default: until vigil promote)")
	}
	fs.Usage = func() {
		if verb == "demote" {
			fmt.Fprintf(stderr, "Usage: vigil demote INSTANCE...|--all [--for DURATION]\n\nA master resigns (priority 0 advert) and the instances stay backup, even with no other master, until vigil promote or DURATION.\nA sync group member demotes its group.\n\nFlags:\n")
		} else {
			fmt.Fprintf(stderr, "Usage: vigil promote INSTANCE...|--all\n\nLifts vigil demote: the instances act on their priority and preemption again.\n\nFlags:\n")
		}
		fs.PrintDefaults()
	}
	// Flags may come after the names: vigil demote VI_1 --for 30m.
	var names []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *all == (len(names) > 0) {
		fmt.Fprintf(stderr, "vigil %s: name the instances or give --all\n", verb)
		fs.Usage()
		return exitUsage
	}
	if d < 0 {
		fmt.Fprintf(stderr, "vigil %s: --for %s: want a positive duration\n", verb, d)
		return exitUsage
	}
	q := url.Values{}
	for _, n := range names {
		q.Add("instance", n)
	}
	if *all {
		q.Set("all", "1")
	}
	if d > 0 {
		q.Set("for", d.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body, err := control.Post(ctx, *socket, "/"+verb+"?"+q.Encode())
	if err != nil {
		var e *control.Error
		if errors.As(err, &e) && e.Code >= 400 && e.Code < 500 {
			fmt.Fprintf(stderr, "vigil %s: %s\n", verb, e.Msg)
			return exitConfig
		}
		fmt.Fprintf(stderr, "vigil %s: %v\n", verb, err)
		return exitInternal
	}
	if *asJSON {
		stdout.Write(body)
		return exitOK
	}
	var res supervisor.HandoverResult
	if err := json.Unmarshal(body, &res); err != nil {
		fmt.Fprintf(stderr, "vigil %s: unreadable answer: %v\n", verb, err)
		return exitInternal
	}
	switch {
	case verb == "demote":
		until := "until vigil promote"
		if res.Until != nil {
			until = "until " + res.Until.Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "demoted %s, %s\n", strings.Join(res.Demoted, ", "), until)
	case len(res.Promoted) == 0:
		fmt.Fprintln(stdout, "nothing to promote: none of them is demoted")
	default:
		fmt.Fprintf(stdout, "promoted %s\n", strings.Join(res.Promoted, ", "))
	}
	if res.Pending != "" {
		fmt.Fprintf(stdout, "pending: %s\n", res.Pending)
	}
	return exitOK
}

// printDemoted is `vigil status`'s DEMOTED table: since and until when each demoted instance
// is, and a warning when no router is master of it (a demoted instance does not take over).
func printDemoted(w io.Writer, instances []supervisor.InstanceStatus) {
	header := false
	for _, in := range instances {
		d := in.Demoted
		if d == nil {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nDEMOTED\tSINCE\tUNTIL\tNOTE")
			header = true
		}
		until := "vigil promote"
		if d.Until != nil {
			until = d.Until.Format(time.RFC3339)
		}
		var notes []string
		if d.Group != "" {
			notes = append(notes, "with sync group "+d.Group)
		}
		if !d.Applied {
			notes = append(notes, "not applied yet: the vrrp process is (re)starting")
		}
		if d.NoMasterSince != nil {
			notes = append(notes, fmt.Sprintf("NO MASTER since %s: nobody serves the addresses; vigil promote %s to take over", d.NoMasterSince.Format(time.RFC3339), in.Name))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", in.Name, d.Since.Format(time.RFC3339), until, strings.Join(notes, "; "))
	}
}
