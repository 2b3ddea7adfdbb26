package wire

import (
	"os"
	"runtime"
	"testing"
)

func TestLimitProcs(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" {
		t.Skip("GOMAXPROCS is set in the environment: limitProcs leaves it alone by design")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range []struct{ set, want int }{
		{defaultProcs, 1},                    // the runtime's choice: lowered to one
		{defaultProcs + 2, defaultProcs + 2}, // the plugin's own choice: kept
	} {
		runtime.GOMAXPROCS(tc.set)
		limitProcs()
		if got := runtime.GOMAXPROCS(0); got != tc.want {
			t.Errorf("GOMAXPROCS %d before Serve: %d after, want %d", tc.set, got, tc.want)
		}
	}
}
