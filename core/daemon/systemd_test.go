package daemon

import (
	"context"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/supervisor"
)

func TestStatusLine(t *testing.T) {
	cfg := func(names ...string) *config.Config {
		c := &config.Config{}
		for _, n := range names {
			c.Instances = append(c.Instances, &config.VRRPInstance{Name: n})
		}
		return c
	}
	for _, tc := range []struct {
		cfg  *config.Config
		sum  supervisor.Summary
		want string
	}{
		{cfg("VI_1", "VI_2"), supervisor.Summary{Instances: map[string]string{"VI_1": "MASTER"}, Checks: 3, ChecksUp: 2},
			"2 instances: VI_1 MASTER, VI_2 INIT; 3 checks, 2 up"},
		{cfg("a", "b", "c", "d", "e"), supervisor.Summary{Instances: map[string]string{"a": "MASTER", "b": "BACKUP", "c": "BACKUP", "d": "FAULT"}},
			"5 instances: 2 BACKUP, 1 FAULT, 1 INIT, 1 MASTER"},
		{cfg("VI_1"), supervisor.Summary{Instances: map[string]string{"VI_1": "BACKUP"}, Checks: 1, ChecksUp: 0}, "1 instance: VI_1 BACKUP; 1 check, 0 up"},
		{cfg(), supervisor.Summary{Checks: 1000, ChecksUp: 1000}, "1000 checks, 1000 up"},
	} {
		if got := statusLine(tc.cfg, tc.sum); got != tc.want {
			t.Errorf("statusLine = %q, want %q", got, tc.want)
		}
	}
}

// Without NOTIFY_SOCKET nothing is set up and every call returns at once.
func TestSystemdOffWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	sd := newSystemd(hclog.NewNullLogger())
	if sd != nil {
		t.Fatalf("newSystemd without NOTIFY_SOCKET = %+v, want nil", sd)
	}
	sd.ready("x")
	sd.reloading("SIGHUP")
	sd.reloaded(supervisor.ReloadStatus{}, func() string { t.Error("status line built without systemd"); return "" })
	sd.changed()
	sd.run(context.Background(), nil, func() string { t.Error("status line built without systemd"); return "" })
	sd.stopping("terminated")
}
