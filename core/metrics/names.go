package metrics

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// descName finds a descriptor's name in its String(): client_golang exports no accessor.
var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Names lists the names of every metric that the collectors, core's own metrics
// (vigil_child_up, reloads, notify, plugins) and the runtime's collectors describe, sorted:
// what a dashboard may name (core/child's Collectors gives the children's).
func Names(collectors ...prometheus.Collector) ([]string, error) {
	core := NewCore()
	all := append(slices.Clone(collectors), PluginCollector(nil))
	all = append(all, RuntimeCollectors()...)
	ch := make(chan *prometheus.Desc)
	go func() {
		defer close(ch)
		for _, c := range all {
			c.Describe(ch)
		}
		for _, c := range []prometheus.Collector{core.reloads, core.reloadTime, core.reloadDuration, core.reloadOK, core.notified, core.notifyDuration} {
			c.Describe(ch)
		}
	}()
	names := []string{Namespace + "_child_up"}
	var err error
	for d := range ch {
		m := descName.FindStringSubmatch(d.String())
		if m == nil {
			err = fmt.Errorf("no name in descriptor %s", d)
			continue
		}
		names = append(names, m[1])
	}
	slices.Sort(names)
	return slices.Compact(names), err
}
