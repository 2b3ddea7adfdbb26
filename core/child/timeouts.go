package child

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/ipvs"
)

// ipvsTimeouts applies lvs_timeouts to the kernel's IPVS as keepalived 2.2.7's checker
// process does. That process runs once the file has a virtual_server, and then through
// every reload, with or without one; at its start and at each reload (changed or not) it
// sets the timeouts the file sets, and gives those the file leaves out the values the
// kernel had before its first change; a reload without lvs_timeouts puts those values back,
// and so does the stop (with --dont-release-ipvs too: keepalived's ipvs_stop). The kernel's
// values are read once, before the first change, and kept for the life of the process.
type ipvsTimeouts struct {
	log  hclog.Logger
	open func() (*ipvs.Client, error)

	mu sync.Mutex
	// on: a configuration with a virtual_server came (keepalived's checker process runs).
	on   bool
	orig *ipvs.Timeouts // the kernel's before vigil's first change; nil until then
}

// wantedTimeouts are cfg's lvs_timeouts in seconds (zero: not set).
func wantedTimeouts(cfg *config.Config) ipvs.Timeouts {
	lt := cfg.Global.LVSTimeouts
	sec := func(d time.Duration) uint32 { return uint32(d / time.Second) }
	return ipvs.Timeouts{TCP: sec(lt.TCP), TCPFin: sec(lt.TCPFin), UDP: sec(lt.UDP)}
}

// apply brings the kernel's timeouts to cfg's, at start and at each reload. A failure is
// logged with lvs_timeouts' place (keepalived logs it and goes on); it is tried again at the
// next reload. The check process has CAP_NET_ADMIN from the first virtual_server on (caps).
func (t *ipvsTimeouts) apply(cfg *config.Config) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.on = t.on || len(cfg.VirtualServers) > 0
	if !t.on {
		return
	}
	want := wantedTimeouts(cfg)
	if want.IsZero() && t.orig == nil {
		return // nothing set, nothing changed before: the kernel is not touched
	}
	at := cfg.Global.LVSTimeouts.Pos.String()
	if want.IsZero() {
		at = "(lvs_timeouts removed by a reload)"
	}
	c, err := t.open()
	if err != nil {
		t.log.Warn("lvs_timeouts not applied", "at", at, "error", err)
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if t.orig == nil {
		cur, err := c.Timeouts(ctx)
		if err != nil {
			t.log.Warn("lvs_timeouts not applied: the kernel's timeouts cannot be read, so they could not be put back", "at", at, "error", err)
			return
		}
		t.orig = &cur
	}
	full := *t.orig
	if want.TCP != 0 {
		full.TCP = want.TCP
	}
	if want.TCPFin != 0 {
		full.TCPFin = want.TCPFin
	}
	if want.UDP != 0 {
		full.UDP = want.UDP
	}
	if err := c.SetTimeouts(ctx, full); err != nil {
		t.log.Warn("lvs_timeouts not applied", "at", at, "error", err)
		return
	}
	t.log.Info("IPVS timeouts set", "tcp", full.TCP, "tcpfin", full.TCPFin, "udp", full.UDP)
}

// restore puts back the kernel's timeouts of before vigil's first change, if it made one.
func (t *ipvsTimeouts) restore() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.orig == nil {
		return
	}
	c, err := t.open()
	if err != nil {
		t.log.Warn("the kernel's IPVS timeouts could not be put back", "want", t.orig.String(), "error", err)
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := c.SetTimeouts(ctx, *t.orig); err != nil {
		t.log.Warn("the kernel's IPVS timeouts could not be put back", "want", t.orig.String(), "error", err)
		return
	}
	t.log.Info("IPVS timeouts put back", "tcp", t.orig.TCP, "tcpfin", t.orig.TCPFin, "udp", t.orig.UDP)
}
