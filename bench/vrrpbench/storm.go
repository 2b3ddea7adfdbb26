package main

import (
	"context"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/many"
)

// Simultaneous start (metric 5): the measurement is many.Storm's, shared with the fault
// suite (bench/faults).

// stormDaemon is a daemon as many.Storm watches it.
type stormDaemon struct{ d *daemon }

func (s stormDaemon) PID() int       { return s.d.pid() }
func (s stormDaemon) Takeovers() int { return s.d.takeovers() }
func (s stormDaemon) Exited() bool   { return s.d.proc.Exited() }
func (s stormDaemon) Output() string { return s.d.proc.Output() }

func (b *bench) stormRun(ctx context.Context, im *impl, n int, advert, warm, window time.Duration) (many.StormResult, error) {
	n1, n2 := b.lab.Nodes[0], b.lab.Nodes[1]
	defer many.Reset(ctx, n, n1, n2)

	c1, c2 := many.Conf(n, foPrioHigh, "MASTER", advert), many.Conf(n, foPrioLow, "BACKUP", advert)
	d1, err := im.start(ctx, n1, b.work, "storm", c1)
	if err != nil {
		return many.StormResult{}, err
	}
	defer d1.stop()
	d2, err := im.start(ctx, n2, b.work, "storm", c2)
	if err != nil {
		return many.StormResult{}, err
	}
	defer d2.stop()
	return many.Storm(ctx, stormDaemon{d1}, stormDaemon{d2}, n1, n2, warm, window)
}
