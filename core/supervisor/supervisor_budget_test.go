package supervisor

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/bgp"
	"github.com/vigil-ha/vigil/core/config"
)

// TestStopFitsTheUnit: the longest stop core waits for the vrrp child (its own stop and the
// BGP drain with the longest graceful_shutdown) stays under vigil.service's TimeoutStopSec,
// after which systemd kills the group, resigned or not.
func TestStopFitsTheUnit(t *testing.T) {
	unit, err := os.ReadFile("../../configs/vigil.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\d+)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("configs/vigil.service has no TimeoutStopSec")
	}
	limit, _ := time.ParseDuration(string(m[1]) + "s")
	longest := childStopWait + bgp.StopBudget(config.MaxGracefulShutdown)
	if longest >= limit {
		t.Errorf("core may wait %v for the vrrp child to stop; systemd kills after %v", longest, limit)
	}
}
