package main

import (
	"context"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/daemon"
	"github.com/vigil-ha/vigil/bench/internal/many"
)

// Simultaneous start (metric 5): the measurement is many.Storm's, shared with the fault
// suite (bench/faults).

func (b *bench) stormRun(ctx context.Context, im *daemon.Impl, n int, advert, warm, window time.Duration) (many.StormResult, error) {
	n1, n2 := b.lab.Nodes[0], b.lab.Nodes[1]
	defer many.Reset(ctx, n, n1, n2)

	c1, c2 := many.Conf(n, foPrioHigh, "MASTER", advert), many.Conf(n, foPrioLow, "BACKUP", advert)
	d1, err := im.Start(ctx, n1, b.work, "storm", c1)
	if err != nil {
		return many.StormResult{}, err
	}
	defer d1.Stop()
	d2, err := im.Start(ctx, n2, b.work, "storm", c2)
	if err != nil {
		return many.StormResult{}, err
	}
	defer d2.Stop()
	return many.Storm(ctx, d1, d2, n1, n2, warm, window)
}
