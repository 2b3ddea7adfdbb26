package lab

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestLab(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := New(ctx, "labtest", 2, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			l.Close()
		}
	}()
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if _, err := n1.Exec(ctx, "ping", "-c1", "-W2", n2.Addr4.Addr().String()); err != nil {
		t.Fatalf("nodes cannot reach each other: %v", err)
	}
	if ok, err := n1.HasAddr(ctx, n1.Addr4.Addr()); err != nil || !ok {
		t.Fatalf("HasAddr(own address) = %v, %v", ok, err)
	}
	if err := n2.Cut(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.Exec(ctx, "ping", "-c1", "-W1", n2.Addr4.Addr().String()); err == nil {
		t.Fatal("ping crossed a cut link")
	}
	p, err := n1.Start("sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if !p.Exited() {
		t.Error("process outlived the lab")
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), l.Name) {
		t.Errorf("namespaces left behind:\n%s", out)
	}
}
