package child

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/checksched"
)

// TestForwardWeightAndMetrics: a check's dynamic weight and metrics reach the state that the
// check child sends to core (and core on to the vrrp child and to vigil status).
func TestForwardWeightAndMetrics(t *testing.T) {
	s := newCheckServer(hclog.NewNullLogger(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan checksched.Change)
	go s.forward(ctx, changes)
	w := -30
	changes <- checksched.Change{Name: "chk", Up: true, Msg: "ok: lag 30s", Weight: &w, Metrics: map[string]float64{"lag": 30}}
	changes <- checksched.Change{Name: "plain", Up: false, Msg: "exit status 1"}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.current()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("states: %v", s.current())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, st := range s.current() {
		switch st.Name {
		case "chk":
			if st.Weight == nil || *st.Weight != -30 || st.Metrics["lag"] != 30 || !st.Up {
				t.Errorf("chk: %v", st)
			}
		case "plain":
			if st.Weight != nil || st.Metrics != nil || st.Up {
				t.Errorf("plain: %v", st)
			}
		}
	}
}
