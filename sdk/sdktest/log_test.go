package sdktest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder stands in for the test a pluginLog writes to.
type recorder struct {
	testing.TB
	failed bool
	lines  []string
}

func (r *recorder) Log(args ...any) { r.lines = append(r.lines, fmt.Sprint(args...)) }
func (r *recorder) Logf(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}
func (r *recorder) Failed() bool { return r.failed }

func TestPluginLogQuietUnlessFailed(t *testing.T) {
	for _, tc := range []struct {
		name         string
		live, failed bool
		want         bool // the plugin's line reaches the test log
	}{
		{"passed", false, false, false},
		{"failed", false, true, true},
		{"verbose", true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t, failed: tc.failed}
			l := &pluginLog{t: r, live: tc.live}
			l.logger().Debug("plugin address", "network", "unix")
			l.finish()
			l.logger().Info("after the test") // must neither panic nor show
			got := strings.Join(r.lines, "\n")
			if strings.Contains(got, "plugin address") != tc.want {
				t.Errorf("test log %q; want the plugin's line there: %v", got, tc.want)
			}
			if strings.Contains(got, "after the test") {
				t.Errorf("a line logged after the test reached its log: %q", got)
			}
		})
	}
}
