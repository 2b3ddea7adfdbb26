package lvs

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/ipvs"
)

const sampleConf = `
global_defs {
    lvs_sync_daemon eth0 VI_1 id 7
    rs_init_notifies
    lvs_flush_on_stop VS
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.100/24
    }
}
virtual_server 192.0.2.100 80 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    ha_suspend
    quorum 4
    hysteresis 1
    quorum_up "/bin/echo quorum up"
    quorum_down "/bin/echo quorum down"
    sorry_server 198.51.100.9 8080
    sorry_server_inhibit
    real_server 192.0.2.11 8080 {
        weight 3
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 192.0.2.12 80 {
        weight 2
        alpha
        notify_up "/bin/echo 12 up"
        notify_down "/bin/echo 12 down"
        MISC_CHECK {
            misc_path /bin/true
            misc_dynamic
        }
    }
}
virtual_server 192.0.2.100 443 {
    protocol TCP
    sorry_server 198.51.100.11
    real_server 192.0.2.14 443 {
        alpha
        TCP_CHECK {
        }
    }
}
virtual_server_group G {
    192.0.2.101-102 80
    fwmark 5
}
virtual_server group G {
    lb_algo sh
    sh-port
    lb_kind NAT
    protocol TCP
    sorry_server 198.51.100.10
    sorry_server_inhibit
    real_server 192.0.2.13 8080 {
        TCP_CHECK {
        }
    }
}
`

// table renders a table as ipvsadm -Ln lists it, roughly.
func table(tb ipvs.Table) string {
	var out []string
	for _, k := range tb.Keys() {
		v := tb[k]
		s := v.Service
		out = append(out, fmt.Sprintf("%v %s flags=%v timeout=%d mask=%d pe=%q", k, s.Scheduler, s.Flags, s.Timeout, s.Netmask, s.PE))
		for _, dk := range v.DestKeys() {
			d := v.Dests[dk]
			out = append(out, fmt.Sprintf("  -> %v %v %d", dk, d.Method, d.Weight))
		}
	}
	return strings.Join(out, "\n")
}

func TestFromConfig(t *testing.T) {
	cfg, ds := config.Parse("keepalived.conf", []byte(sampleConf), config.Options{})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	c := FromConfig(cfg)
	d, ev := New(c)
	// keepalived: a DR server or sorry server takes the service's port; the group's fwmark
	// service keeps the NAT server's port; persistence_granularity is a /24. Quorum 4+1 is
	// not reached with 3 of weight (the alpha server starts down): the sorry server stands
	// in at once, and the inhibited server waits at 0.
	want := strings.Join([]string{
		`TCP  192.0.2.100:80 wrr flags=persistent timeout=300 mask=24 pe=""`,
		`  -> 192.0.2.11:80 DR 0`,
		`  -> 198.51.100.9:80 DR 1`,
		// A NAT sorry server written without a port keeps none (IPVS keeps the client's).
		`TCP  192.0.2.100:443 wlc flags=none timeout=0 mask=0 pe=""`,
		`  -> 198.51.100.11:0 NAT 1`,
		`TCP  192.0.2.101:80 sh flags=sched2 timeout=0 mask=0 pe=""`,
		`  -> 192.0.2.13:8080 NAT 1`,
		`  -> 198.51.100.10:0 NAT 0`,
		`TCP  192.0.2.102:80 sh flags=sched2 timeout=0 mask=0 pe=""`,
		`  -> 192.0.2.13:8080 NAT 1`,
		`  -> 198.51.100.10:0 NAT 0`,
		`FWM  5 sh flags=sched2 timeout=0 mask=0 pe=""`,
		`  -> 192.0.2.13:8080 NAT 1`,
		`  -> 198.51.100.10:0 NAT 0`,
	}, "\n")
	if got := table(d.Desired()); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	// rs_init_notifies announces the servers that start up.
	wantEv := "RS [192.0.2.11]:tcp:80 [192.0.2.100]:tcp:80 UP; VS [192.0.2.100]:tcp:80 DOWN (init); " +
		"VS [192.0.2.100]:tcp:443 DOWN (init); " +
		"RS [192.0.2.13]:tcp:8080 [G]:0 UP; VS [G]:0 UP (init)"
	if got := lines(ev); got != wantEv {
		t.Errorf("start events %q, want %q", got, wantEv)
	}
	// The checkers are named as core/checksched names them, so results find them.
	var names []string
	for _, s := range d.Status() {
		for _, r := range s.Reals {
			for _, c := range r.Checkers {
				names = append(names, c.Name)
			}
		}
	}
	wantNames := []string{"192.0.2.100:80/192.0.2.11:8080/TCP_CHECK", "192.0.2.100:80/192.0.2.12:80/MISC_CHECK",
		"192.0.2.100:443/192.0.2.14:443/TCP_CHECK", "group G/192.0.2.13:8080/TCP_CHECK"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("checker names %q, want %q", names, wantNames)
	}
	if got := d.Suspended(); !slices.Equal(got, wantNames[:2]) {
		t.Errorf("suspended %q", got)
	}
	d.InstanceState("VI_1", true)
	// misc_dynamic's weight 5 (exit 7) with 3 reaches 4+1.
	got := d.Check(wantNames[1], Result{Up: true, Weight: w(5)})
	if lines(got) != "RS [192.0.2.12]:tcp:80 [192.0.2.100]:tcp:80 UP; VS [192.0.2.100]:tcp:80 UP" {
		t.Errorf("events %q", lines(got))
	}
	var scripts []string
	for _, e := range append(got, d.Check(wantNames[1], Result{Up: false})...) {
		scripts = append(scripts, e.Script.Cmd)
	}
	// Down again: 3 of live weight is not below 4-1, the quorum holds.
	if want := []string{"/bin/echo 12 up", "/bin/echo quorum up", "/bin/echo 12 down"}; !slices.Equal(scripts, want) {
		t.Errorf("scripts %q, want %q", scripts, want)
	}
	d.Check(wantNames[1], Result{Up: true, Weight: w(5)})
	if got, want := destsOf(d.Desired()[c.Services[0].Keys[0]]), "192.0.2.11:80=3 192.0.2.12:80=5 198.51.100.9:80=0"; got != want {
		t.Errorf("table %q, want %q", got, want)
	}
	if got := c.Instances["VI_1"]; len(c.Instances) != 1 || len(got) != 1 || got[0].String() != "192.0.2.100" {
		t.Errorf("instances %v", c.Instances)
	}
	if c.FlushOnStop != "VS" {
		t.Errorf("lvs_flush_on_stop %q", c.FlushOnStop)
	}
	if sd := d.Daemons(); len(sd) != 1 || sd[0].State != ipvs.Master || sd[0].SyncID != 7 || sd[0].Interface != "eth0" {
		t.Errorf("daemons %+v", sd)
	}
}
