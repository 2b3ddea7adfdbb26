package plugin

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/sdk/check"
)

// FuzzAnswer feeds arbitrary check answers (status, message, weight, metrics: every field a
// plugin's CheckResponse carries, at any value the wire can carry) to what the scheduler makes
// of them. Whatever comes in: the result keeps a bounded, one-line message; a weight only when
// it is one a priority can take; only finite metrics, bounded in number and name; success only
// for a status that counts as one; and a status that does not exist, or a weight out of range,
// fails with a message that names the plugin.
func FuzzAnswer(f *testing.F) {
	f.Add(int64(1), "HELLO vigil", true, int64(7), []byte("pid\x00123"))
	f.Add(int64(99), "", false, int64(0), []byte{})
	f.Add(int64(-7), "x", true, int64(-900), []byte("a\x00nan\x00b\x00+Inf"))
	f.Add(int64(2), strings.Repeat("line\n\x1b[2J\xff", 500), true, int64(1_000_000_000), []byte(strings.Repeat("k\x001\x00", 100)))
	f.Add(int64(3), "critical", true, int64(-253), []byte("\xff\x001"))
	f.Fuzz(func(t *testing.T, status int64, msg string, hasWeight bool, weight int64, metrics []byte) {
		// The wire carries an int32 status and weight.
		resp := check.CheckResponse{Status: check.Status(int32(status)), Message: msg, Metrics: parseMetrics(metrics)}
		w := int(int32(weight))
		if hasWeight {
			resp.Weight = &w
		}
		r := answer("fuzz", resp)

		if len(r.Msg) > checksched.MaxMessage || !utf8.ValidString(r.Msg) || strings.IndexFunc(r.Msg, unicode.IsControl) >= 0 {
			t.Fatalf("message kept: %q", r.Msg)
		}
		validStatus := resp.Status >= check.Unknown && resp.Status <= check.Critical
		validWeight := !hasWeight || w >= -checksched.MaxWeight && w <= checksched.MaxWeight
		switch {
		case !validStatus || !validWeight:
			if r.OK || r.Weight != nil || r.Metrics != nil || !strings.HasPrefix(r.Msg, "plugin fuzz answered ") {
				t.Fatalf("bad answer %+v taken: %+v", resp, r)
			}
		case r.OK != resp.Status.Healthy():
			t.Fatalf("status %v came out OK=%v", resp.Status, r.OK)
		case hasWeight != (r.Weight != nil) || hasWeight && *r.Weight != w:
			t.Fatalf("weight %d (set %v) came out as %v", w, hasWeight, r.Weight)
		case !strings.HasPrefix(r.Msg, resp.Status.String()):
			t.Fatalf("message %q does not start with the status %v", r.Msg, resp.Status)
		}
		if len(r.Metrics) > checksched.MaxMetrics {
			t.Fatalf("%d metrics kept", len(r.Metrics))
		}
		for k, v := range r.Metrics {
			if math.IsNaN(v) || math.IsInf(v, 0) || len(k) > checksched.MaxMetricName || k == "" || !utf8.ValidString(k) {
				t.Fatalf("metric %q = %v kept", k, v)
			}
			if resp.Metrics[k] != v {
				t.Fatalf("metric %q = %v changed to %v", k, resp.Metrics[k], v)
			}
		}
	})
}

// parseMetrics reads NUL-separated name, value pairs; a value that does not parse is NaN.
func parseMetrics(b []byte) map[string]float64 {
	parts := strings.Split(string(b), "\x00")
	m := map[string]float64{}
	for i := 0; i+1 < len(parts); i += 2 {
		v, err := strconv.ParseFloat(parts[i+1], 64)
		if err != nil {
			v = math.NaN()
		}
		m[parts[i]] = v
	}
	return m
}
