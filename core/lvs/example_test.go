package lvs_test

import (
	"fmt"
	"net/netip"

	"github.com/vigil-ha/vigil/core/ipvs"
	"github.com/vigil-ha/vigil/core/lvs"
)

// The check process's loop: each checker result, VRRP state and reload goes in, the events
// go to the notify path, and the kernel is brought to Desired (ipvs.Diff against what it
// holds).
func Example() {
	cfg := lvs.Config{Services: []lvs.Service{{
		ID: "TCP 192.0.2.100:80", FIFO: "[192.0.2.100]:tcp:80", Protocol: "tcp",
		Keys:      []ipvs.ServiceKey{ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.100:80"))},
		Scheduler: "rr", Quorum: 1,
		Reals: []lvs.Real{{
			Dest:     lvs.Dest{Addr: netip.MustParseAddr("192.0.2.11"), Port: 80},
			Weight:   1,
			Checkers: []lvs.Checker{{Name: "192.0.2.100:80/192.0.2.11:80/TCP_CHECK"}},
		}},
	}}}
	d, events := lvs.New(cfg) // or lvs.New(lvs.FromConfig(parsed))
	show := func(events []lvs.Event) {
		for _, e := range events {
			fmt.Println(e.FIFO)
		}
		t := d.Desired()
		for _, k := range t.Keys() {
			fmt.Println(k, len(t[k].Dests), "destination(s)")
		}
	}
	show(events)
	show(d.Check("192.0.2.100:80/192.0.2.11:80/TCP_CHECK", lvs.Result{Up: false}))
	// Output:
	// VS [192.0.2.100]:tcp:80 UP
	// TCP  192.0.2.100:80 1 destination(s)
	// RS [192.0.2.11]:tcp:80 [192.0.2.100]:tcp:80 DOWN
	// VS [192.0.2.100]:tcp:80 DOWN
	// TCP  192.0.2.100:80 0 destination(s)
}
