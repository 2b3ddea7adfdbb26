package ipvs

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// ipvsadmTimeouts is what `ipvsadm -L --timeout` says: "Timeout (tcp tcpfin udp): 900 120 300".
func ipvsadmTimeouts(t *testing.T) Timeouts {
	t.Helper()
	out := ipvsadm(t, "-L", "--timeout")
	var to Timeouts
	_, rest, ok := strings.Cut(out, "):")
	if !ok {
		t.Fatalf("ipvsadm -L --timeout: %q", out)
	}
	if _, err := fmt.Sscan(rest, &to.TCP, &to.TCPFin, &to.UDP); err != nil {
		t.Fatalf("ipvsadm -L --timeout: %q: %v", out, err)
	}
	return to
}

// TestVMTimeouts: SetTimeouts sets the timeouts it is given and leaves those it is given as
// zero, Timeouts reads what ipvsadm reads, and a value the kernel refuses is an error that
// changes nothing.
func TestVMTimeouts(t *testing.T) {
	c := openVM(t)
	ctx := context.Background()
	orig, err := c.Timeouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ipvsadmTimeouts(t); got != orig || orig.TCP == 0 || orig.TCPFin == 0 || orig.UDP == 0 {
		t.Fatalf("Timeouts read %v, ipvsadm %v", orig, got)
	}
	t.Logf("the kernel's timeouts: %v", orig)
	t.Cleanup(func() {
		if err := c.SetTimeouts(ctx, orig); err != nil {
			t.Errorf("restore %v: %v", orig, err)
		}
	})
	for _, step := range []struct {
		set, want Timeouts
	}{
		{Timeouts{TCP: orig.TCP + 100}, Timeouts{orig.TCP + 100, orig.TCPFin, orig.UDP}},
		{Timeouts{TCPFin: 30, UDP: 40}, Timeouts{orig.TCP + 100, 30, 40}},
		{Timeouts{}, Timeouts{orig.TCP + 100, 30, 40}},
		{Timeouts{UDP: orig.UDP}, Timeouts{orig.TCP + 100, 30, orig.UDP}},
	} {
		if err := c.SetTimeouts(ctx, step.set); err != nil {
			t.Fatalf("SetTimeouts(%v): %v", step.set, err)
		}
		if got := ipvsadmTimeouts(t); got != step.want {
			t.Errorf("after SetTimeouts(%v) ipvsadm reads %v, want %v", step.set, got, step.want)
		}
		if got, err := c.Timeouts(ctx); err != nil || got != step.want {
			t.Errorf("after SetTimeouts(%v) Timeouts reads %v %v, want %v", step.set, got, err, step.want)
		}
	}
	// The kernel takes an int of jiffies: past INT_MAX it refuses the whole command.
	before := ipvsadmTimeouts(t)
	if err := c.SetTimeouts(ctx, Timeouts{TCP: 1 << 31, UDP: 7}); err == nil {
		t.Errorf("SetTimeouts with tcp 2^31 s: no error")
	} else {
		t.Logf("refused as it should be: %v", err)
	}
	if got := ipvsadmTimeouts(t); got != before {
		t.Errorf("a refused SetTimeouts changed the timeouts: %v, before %v", got, before)
	}
}
