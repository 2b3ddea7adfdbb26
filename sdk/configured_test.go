package sdk

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestConfigured(t *testing.T) {
	var c Configured[int]
	if _, err := c.Lookup("chk"); err == nil || !strings.Contains(err.Error(), `"chk" is not configured`) {
		t.Fatalf("lookup before Keep: %v", err)
	}
	if _, replaced := c.Keep(ConfigureRequest{Name: "chk", ValidateOnly: true}, 1); replaced {
		t.Fatal("a validate-only request replaced something")
	}
	if _, err := c.Lookup("chk"); err == nil {
		t.Fatal("a validate-only request was kept")
	}
	if _, replaced := c.Keep(ConfigureRequest{Name: "chk"}, 2); replaced {
		t.Fatal("the first Keep replaced something")
	}
	if old, replaced := c.Keep(ConfigureRequest{Name: "chk"}, 3); !replaced || old != 2 {
		t.Fatalf("second Keep: old %d, replaced %v; want 2, true", old, replaced)
	}
	if v, err := c.Lookup("chk"); err != nil || v != 3 {
		t.Fatalf("lookup = %d, %v; want 3", v, err)
	}
}

// TestConfiguredConcurrent: vigil configures and probes at the same time (go test -race).
func TestConfiguredConcurrent(t *testing.T) {
	var c Configured[string]
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				name := fmt.Sprint("chk", j%10)
				c.Keep(ConfigureRequest{Name: name}, fmt.Sprint(i, j))
				if _, err := c.Lookup(name); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
