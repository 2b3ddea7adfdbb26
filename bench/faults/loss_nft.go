package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"

	"github.com/vigil-ha/vigil/internal/lab"
)

// Packet loss without netem (this kernel has none): nftables in the node's own namespace
// drops a random share of VRRP packets (IP protocol 112) in both directions of its link,
// with numgen random, and counts what it saw and what it dropped, so that the report can
// show the loss that was really applied.

// lossTable is the nftables table the loss lives in; the namespace is the lab's, so the
// name needs to be unique only there.
const lossTable = "vigil_faults_loss"

// lossRuleset is the nft script that drops pct % of VRRP packets entering and leaving.
func lossRuleset(pct int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", lossTable)
	for _, c := range []struct{ name, hook string }{{"in", "input"}, {"out", "output"}} {
		// The first rule counts every VRRP packet, the second drops pct % of them: raw IP
		// sockets (vigil's and keepalived's) send through the output hook and receive after
		// the input hook, so both daemons see the same loss.
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority 0; policy accept;\n", c.name, c.hook)
		fmt.Fprintf(&b, "\t\tip protocol vrrp counter\n")
		fmt.Fprintf(&b, "\t\tip protocol vrrp numgen random mod 100 < %d counter drop\n\t}\n", pct)
	}
	b.WriteString("}\n")
	return b.String()
}

// addLoss makes nd drop pct % of the VRRP packets on its link (1..99).
func addLoss(ctx context.Context, nd *lab.Node, pct int) error {
	if pct < 1 || pct > 99 {
		return fmt.Errorf("loss of %d %%: want 1..99", pct)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("packet loss needs nft (Debian package nftables): %w", err)
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", nd.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(lossRuleset(pct))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %w: %s", nd.NS, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeLoss deletes the loss table from nd (no error when it is not there).
func removeLoss(ctx context.Context, nd *lab.Node) error {
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", nd.NS, "nft", "delete", "table", "inet", lossTable).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such file") {
		return fmt.Errorf("nft delete table in %s: %w: %s", nd.NS, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// lossCounts is what the loss table counted in one direction.
type lossCounts struct {
	Seen, Dropped uint64 // VRRP packets
}

// Rate is the share of packets dropped, in %.
func (c lossCounts) Rate() float64 {
	if c.Seen == 0 {
		return 0
	}
	return float64(c.Dropped) / float64(c.Seen) * 100
}

// readLoss reads the loss table's counters on nd: packets in and out.
func readLoss(ctx context.Context, nd *lab.Node) (in, out lossCounts, err error) {
	b, err := exec.CommandContext(ctx, "ip", "netns", "exec", nd.NS, "nft", "-j", "list", "table", "inet", lossTable).Output()
	if err != nil {
		return in, out, fmt.Errorf("nft list table in %s: %w", nd.NS, err)
	}
	return parseLoss(b)
}

// parseLoss reads `nft -j list table` output of lossRuleset: per chain, the counter of the
// rule without a verdict is what was seen, that of the rule with drop what was dropped.
func parseLoss(b []byte) (in, out lossCounts, err error) {
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Chain string                       `json:"chain"`
				Expr  []map[string]json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return in, out, fmt.Errorf("nft -j: %w", err)
	}
	rules := 0
	for _, it := range doc.Nftables {
		r := it.Rule
		if r == nil {
			continue
		}
		var c *lossCounts
		switch r.Chain {
		case "in":
			c = &in
		case "out":
			c = &out
		default:
			continue
		}
		var packets uint64
		counted, drops := false, false
		for _, e := range r.Expr {
			if raw, ok := e["counter"]; ok {
				var ctr struct{ Packets uint64 }
				if err := json.Unmarshal(raw, &ctr); err != nil {
					return in, out, fmt.Errorf("nft -j counter: %w", err)
				}
				packets, counted = ctr.Packets, true
			}
			if _, ok := e["drop"]; ok {
				drops = true
			}
		}
		if !counted {
			continue
		}
		rules++
		if drops {
			c.Dropped = packets
		} else {
			c.Seen = packets
		}
	}
	if rules != 4 {
		return in, out, fmt.Errorf("nft -j: %d counted rules in table %s, want 4", rules, lossTable)
	}
	return in, out, nil
}
