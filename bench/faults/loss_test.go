package main

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// TestLossDropsAShareOfVRRP sends VRRP-protocol datagrams out of a node whose link drops
// 30 % of them: the table counts every one, drops some and not all, and passes other
// protocols untouched.
func TestLossDropsAShareOfVRRP(t *testing.T) {
	if err := lab.Available(); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (Debian package nftables)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lab.New(ctx, "loss", 2, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if err := addLoss(ctx, n1, 30); err != nil {
		t.Fatal(err)
	}
	c, err := n1.DialContext(ctx, "ip4:112", n2.Addr4.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sent = 1000
	for range sent {
		// A raw socket's write fails with EPERM when nftables drops the datagram: the drop
		// is what is being tested, so the error says nothing.
		_, _ = c.Write([]byte("not a VRRP advert, only its protocol number"))
	}
	in, out, err := readLoss(ctx, n1)
	if err != nil {
		t.Fatal(err)
	}
	if out.Seen != sent {
		t.Errorf("seen leaving: %d, want %d", out.Seen, sent)
	}
	// 30 % of 1000: 300 on average, 14.5 standard deviation; 0 or all would be a broken rule.
	if out.Dropped == 0 || out.Dropped >= sent {
		t.Errorf("dropped leaving: %d of %d", out.Dropped, sent)
	}
	if in.Seen != 0 || in.Dropped != 0 {
		t.Errorf("entering: %+v, want nothing", in)
	}
	if _, err := n1.Exec(ctx, "ping", "-c", "3", "-i", "0.2", "-W", "5", n2.Addr4.Addr().String()); err != nil {
		t.Errorf("ping through the loss table: %v", err)
	}
	if err := removeLoss(ctx, n1); err != nil {
		t.Fatal(err)
	}
	if err := removeLoss(ctx, n1); err != nil {
		t.Errorf("removing twice: %v", err)
	}
	if _, _, err := readLoss(ctx, n1); err == nil {
		t.Error("the table is still there")
	}
}

func TestLossRulesetRefusesNonsense(t *testing.T) {
	for _, pct := range []int{0, 100, -5} {
		if err := addLoss(context.Background(), nil, pct); err == nil {
			t.Errorf("loss of %d %% accepted", pct)
		}
	}
}
