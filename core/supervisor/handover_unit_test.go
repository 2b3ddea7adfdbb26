package supervisor

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
)

const handoverConf = `vrrp_sync_group G {
    group {
        VI_1
        VI_2
    }
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.1/32
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        192.0.2.2/32
    }
}
vrrp_instance VI_3 {
    interface eth0
    virtual_router_id 53
    priority 100
    virtual_ipaddress {
        192.0.2.3/32
    }
}
`

// TestExpandHandover: a sync group member brings its group (saying which), an unknown name
// is refused with the known ones listed, --all is every instance.
func TestExpandHandover(t *testing.T) {
	cfg, ds := config.Parse("h.conf", []byte(handoverConf), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	got, err := expand(cfg, []string{"VI_2"}, false)
	if want := map[string]string{"VI_2": "", "VI_1": "G"}; err != nil || !maps.Equal(got, want) {
		t.Errorf("VI_2: %v %v, want %v", got, err, want)
	}
	got, err = expand(cfg, []string{"VI_1", "VI_2"}, false)
	if want := map[string]string{"VI_1": "", "VI_2": ""}; err != nil || !maps.Equal(got, want) {
		t.Errorf("VI_1 VI_2: %v %v, want %v", got, err, want)
	}
	got, err = expand(cfg, nil, true)
	if err != nil || len(got) != 3 {
		t.Errorf("all: %v %v", got, err)
	}
	_, err = expand(cfg, []string{"VI_3", "VI_9"}, false)
	if !errors.Is(err, ErrUnknownInstance) || err.Error() != `no such vrrp_instance "VI_9": the configuration has VI_1, VI_2, VI_3` {
		t.Errorf("unknown: %v", err)
	}
	empty, _ := config.Parse("e.conf", []byte("global_defs {\n}\n"), config.Options{DisableIncludes: true})
	if _, err := expand(empty, nil, true); !errors.Is(err, ErrNoInstance) {
		t.Errorf("all of none: %v", err)
	}
}

// TestDemotionsAfterReload: a reload ends the demotion of an instance it removes, and
// demotes an instance it puts in the sync group of a demoted one, until the same time.
func TestDemotionsAfterReload(t *testing.T) {
	cfg, ds := config.Parse("h.conf", []byte(handoverConf), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	until := time.Now().Add(time.Hour)
	s := &Supervisor{opts: Options{Log: hclog.NewNullLogger()}, demoted: map[string]demotion{
		"VI_1": {until: until}, "VI_9": {},
	}}
	s.demotionsAfterReload(cfg)
	if _, ok := s.demoted["VI_9"]; ok {
		t.Errorf("the demotion of a removed instance stays")
	}
	if d, ok := s.demoted["VI_2"]; !ok || d.group != "G" || !d.until.Equal(until) {
		t.Errorf("VI_2, now in VI_1's group: %+v %v", d, ok)
	}
	if _, ok := s.demoted["VI_3"]; ok || len(s.demoted) != 2 {
		t.Errorf("demoted: %v", s.demoted)
	}
}
