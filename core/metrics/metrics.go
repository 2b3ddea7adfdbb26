// Package metrics is vigil's Prometheus side: each process's registry (its own metrics and
// the Go and process collectors), the encoding a child answers core's Metrics call with,
// the gatherer that merges core's registry with its children's (each labelled by role), and
// the read-only HTTP listener (--metrics-listen, global_defs metrics_listen) that serves
// them beside /status, /healthz and /readyz.
//
// No child listens on the network: core asks them over the gRPC channel it already has.
package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// Namespace prefixes every metric of vigil's own.
const Namespace = "vigil"

// RoleLabel names the process a sample comes from: core, check or vrrp.
const RoleLabel = "role"

// NewRegistry is a process's registry, with the Go runtime's and the process's collectors
// (go_*, process_*): every role has its own, and core labels each by role when it merges them.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(RuntimeCollectors()...)
	return reg
}

// RuntimeCollectors are the Go runtime's and the process's collectors (go_*, process_*).
func RuntimeCollectors() []prometheus.Collector {
	return []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
}

// Encode gathers g and writes its families in the length-delimited protobuf exposition
// format: what a child's Metrics call answers with.
func Encode(g prometheus.Gatherer) ([]byte, error) {
	fams, err := g.Gather()
	if err != nil && len(fams) == 0 {
		return nil, fmt.Errorf("gather metrics: %w", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, f := range fams {
		if eerr := enc.Encode(f); eerr != nil {
			return nil, fmt.Errorf("encode metric family %s: %w", f.GetName(), eerr)
		}
	}
	// A collector that failed is missing, the rest is served: as promhttp serves a
	// registry that gathered in part (ContinueOnError).
	return buf.Bytes(), nil
}

// maxFamilies bounds what core decodes of one child's answer: a child that sends more is
// broken, and its metrics are missing rather than core's memory.
const maxFamilies = 10000

// Decode reads what Encode wrote, and labels every metric role=role (replacing a role label
// the child set itself): core owns that label, so that a child cannot pass its samples off
// as another process's.
func Decode(b []byte, role string) ([]*dto.MetricFamily, error) {
	dec := expfmt.NewDecoder(bytes.NewReader(b), expfmt.NewFormat(expfmt.TypeProtoDelim))
	var out []*dto.MetricFamily
	for {
		f := &dto.MetricFamily{}
		err := dec.Decode(f)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode the %s process's metrics: %w", role, err)
		}
		if len(out) == maxFamilies {
			return nil, fmt.Errorf("the %s process sent more than %d metric families", role, maxFamilies)
		}
		for _, m := range f.GetMetric() {
			m.Label = withLabel(m.GetLabel(), RoleLabel, role)
		}
		out = append(out, f)
	}
}

// withLabel returns labels with name=value set, sorted by name as the exposition wants.
func withLabel(labels []*dto.LabelPair, name, value string) []*dto.LabelPair {
	labels = slices.DeleteFunc(labels, func(l *dto.LabelPair) bool { return l.GetName() == name })
	labels = append(labels, &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)})
	slices.SortFunc(labels, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	return labels
}
