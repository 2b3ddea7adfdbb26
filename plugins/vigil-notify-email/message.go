package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/sdk/notify"
)

// what says in words what a state means for the addresses, for the mail's first line.
var what = map[string]string{
	"MASTER":  "now holds its virtual addresses",
	"BACKUP":  "no longer holds its virtual addresses; another node does",
	"FAULT":   "is in FAULT and does not hold its virtual addresses",
	"STOP":    "is stopping: vigil is shutting down on this node",
	"DELETED": "was removed by a configuration reload",
}

// Subject is the mail's subject: the node, what changed state, and the new state. A load
// balancer's mail has keepalived's subject ("[lb1] Realserver [192.0.2.11]:tcp:80 of virtual
// server [192.0.2.100]:tcp:80 - DOWN", "[lb1] Virtualserver [192.0.2.100]:tcp:80 - UP"), which
// mail filters written for keepalived match.
func Subject(ev notify.Event) string {
	switch {
	case ev.RealServer != "":
		return fmt.Sprintf("[%s] Realserver %s of virtual server %s - %s", nodeName(ev), ev.RealServer, ev.VirtualServer, ev.NewState)
	case ev.VirtualServer != "":
		return fmt.Sprintf("[%s] Virtualserver %s - %s", nodeName(ev), ev.VirtualServer, ev.NewState)
	}
	return fmt.Sprintf("[%s] %s is %s", nodeName(ev), source(ev), ev.NewState)
}

func nodeName(ev notify.Event) string {
	if ev.Node == "" {
		return "vigil"
	}
	return ev.Node
}

func source(ev notify.Event) string {
	switch {
	case ev.RealServer != "":
		return "real server " + ev.RealServer + " of virtual server " + ev.VirtualServer
	case ev.VirtualServer != "":
		return "virtual server " + ev.VirtualServer
	case ev.Instance == "":
		return "VRRP sync group " + ev.Group
	}
	return "VRRP instance " + ev.Instance
}

// lbWhat says in words what a load balancer's new state means.
func lbWhat(ev notify.Event) string {
	up := ev.NewState == "UP"
	switch {
	case ev.RealServer != "" && up:
		return "is up: it gets new connections"
	case ev.RealServer != "":
		return "is down: it gets no new connections"
	case up:
		return "has its quorum"
	}
	return "lost its quorum"
}

// compose builds the message: headers and a plain-text body with the whole event.
func compose(s *settings, ev notify.Event, now time.Time) []byte {
	var b strings.Builder
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", s.from)
	hdr("To", strings.Join(s.to, ", "))
	// Encoded when needed: instance names may hold any character.
	hdr("Subject", mime.QEncoding.Encode("utf-8", Subject(ev)))
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+messageID()+"@"+s.helo+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	hdr("X-Mailer", "vigil-notify-email")
	b.WriteString("\r\n")
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	meaning := what[ev.NewState]
	if meaning == "" {
		meaning = "changed state"
	}
	if ev.VirtualServer != "" {
		meaning = lbWhat(ev)
	}
	line("On %s, %s %s.", nodeName(ev), source(ev), meaning)
	line("")
	if ev.VirtualServer != "" {
		line("%s", orDash(ev.Detail))
		line("")
		line("State:          %s", ev.NewState)
		line("Virtual server: %s", ev.VirtualServer)
		if ev.RealServer != "" {
			line("Real server:    %s", ev.RealServer)
		}
	} else {
		line("State:     %s -> %s", orDash(ev.OldState), ev.NewState)
		if ev.Instance != "" {
			line("Priority:  %d", ev.Priority)
			if ev.Group != "" {
				line("Group:     %s", ev.Group)
			}
		}
		line("Addresses: %s", orDash(strings.Join(ev.VIPs, " ")))
	}
	t := ev.Time
	if t.IsZero() {
		t = now
	}
	label := "Time:      "
	if ev.VirtualServer != "" {
		label = "Time:           "
	}
	line("%s%s", label, t.UTC().Format(time.RFC3339Nano))
	line("")
	line("-- ")
	line("vigil on %s", s.helo)
	return []byte(b.String())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func messageID() string {
	var r [12]byte
	rand.Read(r[:])
	return hex.EncodeToString(r[:])
}
