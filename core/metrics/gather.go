package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// ChildMetrics is one child's answer to core's Metrics call: Families as Encode wrote them,
// or why there are none (not running, no answer within the wait).
type ChildMetrics struct {
	Role     string
	Families []byte
	Err      error
}

// ChildWait bounds how long a scrape waits for the children, as `vigil status` waits
// (core/supervisor's childStatusWait): a stopped or overloaded child is missing from the
// scrape, and vigil_child_up says so, rather than holding it until Prometheus gives up.
const ChildWait = 2 * time.Second

// Gatherer merges core's registry with its children's metrics, each sample labelled with
// its process's role, and adds vigil_child_up. It is what /metrics serves.
type Gatherer struct {
	// Core is core's own registry (labelled role="core" here).
	Core prometheus.Gatherer
	// Children asks every child the configuration has for its metrics, within ctx.
	Children func(ctx context.Context) []ChildMetrics
	// Wait bounds Children (ChildWait when zero).
	Wait time.Duration
	Log  hclog.Logger

	// mu makes scrapes take turns: two Prometheus servers scraping at once (an HA pair) do
	// not double the calls on a busy vrrp child, and neither is refused.
	mu sync.Mutex
}

var childUpHelp = "Whether the child process of this role answered core's request for its metrics in this scrape (1) or not (0: stopped, restarting or not answering within 2 s; its own metrics are then missing)."

// Gather implements prometheus.Gatherer.
func (g *Gatherer) Gather() ([]*dto.MetricFamily, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gs := prometheus.Gatherers{labelled(g.Core, "core")}
	up := &dto.MetricFamily{Name: proto.String(Namespace + "_child_up"), Help: proto.String(childUpHelp), Type: dto.MetricType_GAUGE.Enum()}
	if g.Children != nil {
		wait := g.Wait
		if wait <= 0 {
			wait = ChildWait
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		answers := g.Children(ctx)
		cancel()
		for _, a := range answers {
			v := 0.0
			if a.Err == nil {
				fams, err := Decode(a.Families, a.Role)
				if err == nil {
					v = 1
					gs = append(gs, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return fams, nil }))
				} else {
					a.Err = err
				}
			}
			if a.Err != nil && g.Log != nil {
				g.Log.Debug("child metrics missing from this scrape", "role", a.Role, "error", a.Err)
			}
			up.Metric = append(up.Metric, &dto.Metric{
				Label: []*dto.LabelPair{{Name: proto.String(RoleLabel), Value: proto.String(a.Role)}},
				Gauge: &dto.Gauge{Value: proto.Float64(v)},
			})
		}
	}
	if len(up.Metric) > 0 {
		gs = append(gs, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return []*dto.MetricFamily{up}, nil }))
	}
	return gs.Gather()
}

// labelled gathers g with role=role on every metric.
func labelled(g prometheus.Gatherer, role string) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		fams, err := g.Gather()
		for _, f := range fams {
			for _, m := range f.GetMetric() {
				m.Label = withLabel(m.GetLabel(), RoleLabel, role)
			}
		}
		return fams, err
	})
}
