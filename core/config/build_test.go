package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

const fullConfig = `
global_defs {
    router_id node1
    notification_email {
        ops@example.com
        dba@example.com
    }
    notification_email_from vigil@example.com
    smtp_server 127.0.0.1 2525
    smtp_connect_timeout 3.5
    script_user vigil_script vigil
    enable_script_security
    vrrp_garp_master_delay 2
    vrrp_version 3
    plugin_dir /opt/vigil/plugins
    plugin_sha256 vigil-check-mysql 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef
    bgp {
        local_as 64512
        router_id 192.0.2.11
        neighbor 192.0.2.1 {
            remote_as 64512
            password "md5 key"
            bfd
        }
    }
}
vrrp_script chk_haproxy {
    script "/usr/bin/pgrep -x haproxy"
    interval 2
    weight -20
    fall 3
}
vrrp_check chk_db {
    plugin mysql
    interval 0.5
    rise 2
    params {
        address 127.0.0.1:3306
        password_file /etc/vigil/mysql.pw
        tls {
            ca /etc/ssl/ca.pem
        }
    }
}
vrrp_notify hook {
    plugin webhook
    timeout 2
    params {
        url http://127.0.0.1:9000/
    }
}
track_file maint {
    file /var/run/vigil/maint
    weight -10 reverse
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.5
    nopreempt
    unicast_src_ip 192.0.2.11
    unicast_peer {
        192.0.2.12 min_ttl 250
    }
    virtual_ipaddress {
        192.0.2.100/24 brd 192.0.2.255 dev eth0 scope global label eth0:vip
        192.0.2.101
    }
    virtual_routes {
        src 192.0.2.100 198.51.100.0/24 via 192.0.2.1 dev eth0 metric 5
        blackhole 203.0.113.0/24
        default via 192.0.2.254 table 100
    }
    track_interface {
        eth1 weight -30
    }
    track_script {
        chk_haproxy
        chk_db weight -50
    }
    track_file {
        maint
    }
    notify_master "/etc/vigil/master.sh VI_1" root root
    notify_action hook
    garp_master_repeat 3
    announce {
        med priority
        local_pref priority
        community 64512:100
    }
}
vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
        2001:db8::100/64
    }
}
vrrp_sync_group VG {
    group {
        VI_1 VI_6
    }
    notify_backup /etc/vigil/backup.sh
    notify_action hook
}
`

func TestModel(t *testing.T) {
	cfg, ds := Parse("full.conf", []byte(fullConfig), Options{})
	if ds.HasErrors() {
		t.Fatalf("errors:\n%v", ds)
	}
	g := cfg.Global
	if g.RouterID != "node1" || len(g.NotificationEmail) != 2 || g.SMTPServer != "127.0.0.1" || g.SMTPPort != 2525 ||
		g.SMTPConnectTimeout != 3500*time.Millisecond || g.ScriptUser != "vigil_script" || g.ScriptGroup != "vigil" ||
		!g.EnableScriptSecurity || g.VRRPVersion != 3 || g.PluginDir != "/opt/vigil/plugins" ||
		len(g.PluginSHA256) != 1 || g.PluginSHA256["vigil-check-mysql"] != "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Errorf("global_defs: %+v", g)
	}
	if g.Garp.MasterDelay != 2*time.Second || g.Garp.LowerPrioDelay != 2*time.Second || g.Garp.MasterRepeat != 5 {
		t.Errorf("garp defaults: %+v", g.Garp)
	}
	s := cfg.Scripts[0]
	if s.Name != "chk_haproxy" || !reflect.DeepEqual(s.Script.Argv, []string{"/usr/bin/pgrep", "-x", "haproxy"}) ||
		s.Interval != 2*time.Second || s.Timeout != 2*time.Second || s.Weight != -20 || s.Fall != 3 || s.Rise != 1 {
		t.Errorf("vrrp_script: %+v %+v", s, s.Script)
	}
	c := cfg.Checks[0]
	if c.Plugin != "mysql" || c.Interval != 500*time.Millisecond || c.Timeout != c.Interval || c.Rise != 2 || len(c.Params) != 3 ||
		c.Params[1].Key != "password_file" || c.Params[2].Block[0].Values[0] != "/etc/ssl/ca.pem" {
		t.Errorf("vrrp_check: %+v", c)
	}
	if n := cfg.Notifiers[0]; n.Plugin != "webhook" || n.Timeout != 2*time.Second || n.Params[0].Values[0] != "http://127.0.0.1:9000/" {
		t.Errorf("vrrp_notify: %+v", n)
	}
	if f := cfg.TrackFiles[0]; f.Weight != -10 || !f.Reverse || f.File != "/var/run/vigil/maint" {
		t.Errorf("track_file: %+v", f)
	}
	vi := cfg.Instances[0]
	if vi.InitialState != "MASTER" || vi.VRID != 51 || vi.Priority != 150 || vi.AdvertInt != 500*time.Millisecond ||
		vi.Version != 3 || !vi.NoPreempt || vi.UnicastSrcIP != netip.MustParseAddr("192.0.2.11") ||
		vi.UnicastPeers[0].MinTTL != 250 || vi.UnicastPeers[0].MaxTTL != 255 {
		t.Errorf("instance: %+v", vi)
	}
	v0 := vi.VIPs[0]
	if v0.Prefix != netip.MustParsePrefix("192.0.2.100/24") || v0.Broad != netip.MustParseAddr("192.0.2.255") || v0.Dev != "eth0" ||
		v0.Scope != "global" || v0.Label != "eth0:vip" || vi.VIPs[1].Prefix.Bits() != 32 {
		t.Errorf("vips: %+v %+v", v0, vi.VIPs[1])
	}
	r := vi.Routes
	if len(r) != 3 || r[0].Src.String() != "192.0.2.100" || r[0].Dst.String() != "198.51.100.0/24" || r[0].Via.String() != "192.0.2.1" ||
		r[0].Metric != 5 || r[1].Type != "blackhole" || r[2].Dst.String() != "0.0.0.0/0" || r[2].Table != "100" {
		t.Errorf("routes: %+v %+v %+v", r[0], r[1], r[2])
	}
	if vi.TrackInterfaces[0].Weight != -30 || vi.TrackScripts[0].HasWeight || vi.TrackScripts[1].Weight != -50 || vi.TrackFiles[0].Name != "maint" {
		t.Errorf("tracking: %+v %+v", vi.TrackInterfaces, vi.TrackScripts)
	}
	if m := vi.Notify.Master; m == nil || m.User != "root" || !reflect.DeepEqual(m.Argv, []string{"/etc/vigil/master.sh", "VI_1"}) {
		t.Errorf("notify_master: %+v", vi.Notify.Master)
	}
	if vi.Garp.MasterRepeat != 3 || vi.Garp.MasterDelay != 2*time.Second || vi.NotifyActions[0].Name != "hook" {
		t.Errorf("instance garp/actions: %+v %+v", vi.Garp, vi.NotifyActions)
	}
	v6 := cfg.Instances[1]
	if !v6.IPv6 || v6.Version != 3 || v6.Priority != 100 || v6.AdvertInt != time.Second || v6.InitialState != "BACKUP" {
		t.Errorf("IPv6 instance: %+v", v6)
	}
	if bg := g.BGP; bg == nil || bg.LocalAS != 64512 || len(bg.Neighbors) != 1 || bg.Neighbors[0].Password != "md5 key" || !bg.Neighbors[0].BFD {
		t.Errorf("bgp: %+v", bg)
	}
	if an := vi.Announce; an == nil || an.Mode != AnnounceMaster || !an.MEDFromPriority || !an.LocalPrefFromPriority || len(an.Communities) != 1 {
		t.Errorf("announce: %+v", an)
	}
	sg := cfg.SyncGroups[0]
	if len(sg.Members) != 2 || sg.Members[1].Name != "VI_6" || sg.Notify.Backup == nil || sg.NotifyActions[0].Name != "hook" {
		t.Errorf("sync group: %+v", sg)
	}
}

func TestDefaultsFromKeepalived(t *testing.T) {
	cfg, ds := Parse("d.conf", []byte("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n"), Options{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	g := cfg.Global
	if g.VRRPVersion != 2 || g.VRRPMcastGroup4.String() != "224.0.0.18" || g.VRRPMcastGroup6.String() != "ff02::12" ||
		g.SMTPConnectTimeout != 30*time.Second || g.Garp.MasterDelay != 5*time.Second || g.Garp.MasterRepeat != 5 {
		t.Errorf("global defaults: %+v", g)
	}
	vi := cfg.Instances[0]
	if vi.Version != 2 || vi.Priority != 100 || vi.AdvertInt != time.Second || vi.InitialState != "BACKUP" || vi.Garp.MasterDelay != 5*time.Second {
		t.Errorf("instance defaults: %+v", vi)
	}
}

// TestDumpRoundTrip: the resolved text that vigil -d prints reads back to the same tree.
func TestDumpRoundTrip(t *testing.T) {
	src := fullConfig + "\n$N=3\n$G= \\\nvrrp_instance G_${I} { \\\n interface eth1 \\\n virtual_router_id ${I} \\\n}\n~SEQ(I, 1, $N) $G\n" +
		"vrrp_script q {\n script \"/bin/echo 'a b' \\\"c\\\" $HOME\"\n}\n"
	cfg, ds := Parse("rt.conf", []byte(src), Options{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	text := cfg.Text()
	cfg2, ds2 := Parse("rt2.conf", []byte(text), Options{})
	if ds2.HasErrors() {
		t.Fatalf("dump does not read back:\n%v\n%s", ds2, text)
	}
	if cfg2.Text() != text {
		t.Errorf("dump is not stable:\n%s\n---\n%s", text, cfg2.Text())
	}
	if argv := cfg2.Scripts[1].Script.Argv; len(cfg2.Instances) != 5 || !reflect.DeepEqual(argv, []string{"/bin/echo", "a b", `"c"`, "$HOME"}) {
		t.Errorf("round trip lost data: %d instances, argv %q", len(cfg2.Instances), argv)
	}
	if bg := cfg2.Global.BGP; bg == nil || len(bg.Neighbors) != 1 || bg.Neighbors[0].Password != "md5 key" || cfg2.Instances[0].Announce == nil {
		t.Errorf("round trip lost the bgp or announce block:\n%s", text)
	}
	if !strings.Contains(text, "vrrp_instance G_3 {") {
		t.Errorf("generator not resolved in dump:\n%s", text)
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ word, want string }{
		{"netify_backup", "notify_backup"},
		{"prority", "priority"},
		{"virtual_router_di", "virtual_router_id"},
		{"STATE", "state"},
		{"zzzzzzzz", ""},
	}
	cands := []string{"notify_backup", "notify_master", "priority", "virtual_router_id", "state"}
	for _, tt := range tests {
		if got := suggest(tt.word, cands); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

// TestScriptQuoting is keepalived.conf(5)'s own example of a notify script with parameters:
// the line is read with script rules, then the command is split again.
func TestScriptQuoting(t *testing.T) {
	src := `$SG_NAME=SG1
$INST=low
$USER=user
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    notify_master "/etc/keepalived/notify_event.sh ' spaces\\x20f\x69le ' '\"s p a c e \"' ${SG_NAME}.$INST master" $USER group
}
`
	cfg, ds := Parse("q.conf", []byte(src), Options{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	s := cfg.Instances[0].Notify.Master
	want := []string{"/etc/keepalived/notify_event.sh", ` spaces\x20file `, `"s p a c e "`, "SG1.low", "master"}
	if s == nil || !reflect.DeepEqual(s.Argv, want) || s.User != "user" || s.Group != "group" {
		t.Fatalf("got %+v, want argv %q as user:group", s, want)
	}
	// Outside scripts a backslash is an ordinary character, as in keepalived: the password
	// below is 8 bytes long, not 5.
	cfg, _ = Parse("p.conf", []byte("vrrp_instance V {\n interface eth0\n virtual_router_id 2\n authentication {\n auth_type PASS\n auth_pass ab\\x41cd\n }\n}\n"), Options{})
	if got := cfg.Instances[0].Auth.Pass; got != `ab\x41cd` {
		t.Errorf("auth_pass = %q", got)
	}
}

// TestGarpLowerPrio: garp_lower_prio_repeat and garp_lower_prio_delay as keepalived 2.2.7
// resolves them: an instance's fall back to global_defs' vrrp_garp_lower_prio_*, and those
// to vrrp_garp_master_repeat and vrrp_garp_master_delay (5 and 5 s), never to the instance's
// own garp_master_*; 0 turns them off; vrrp_strict turns them off.
func TestGarpLowerPrio(t *testing.T) {
	inst := func(name, extra string) string {
		return "vrrp_instance " + name + " {\n interface eth0\n virtual_router_id 1\n" + extra + " virtual_ipaddress {\n 192.0.2.1\n }\n}\n"
	}
	for _, tt := range []struct {
		name, global, extra string
		repeat              int
		delay               time.Duration
	}{
		{"defaults", "", "", 5, 5 * time.Second},
		{"instance garp_master_* do not count", "", " garp_master_repeat 2\n garp_master_delay 1\n", 5, 5 * time.Second},
		{"global master settings", "vrrp_garp_master_repeat 3\n vrrp_garp_master_delay 2\n", "", 3, 2 * time.Second},
		{"global lower prio settings", "vrrp_garp_master_repeat 3\n vrrp_garp_lower_prio_repeat 0\n vrrp_garp_lower_prio_delay 0\n", "", 0, 0},
		{"instance settings", "vrrp_garp_lower_prio_repeat 0\n", " garp_lower_prio_repeat 1\n garp_lower_prio_delay 7\n", 1, 7 * time.Second},
		{"vrrp_strict", "vrrp_strict\n", " version 3\n", 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// global_defs last: keepalived applies it first wherever it stands.
			text := inst("V", tt.extra) + "global_defs {\n " + tt.global + "}\n"
			cfg, ds := Parse("g.conf", []byte(text), Options{})
			if ds.HasErrors() {
				t.Fatalf("%v\n%s", ds, text)
			}
			g := cfg.Instances[0].Garp
			if g.LowerPrioRepeat != tt.repeat || g.LowerPrioDelay != tt.delay {
				t.Errorf("garp_lower_prio_repeat %d, garp_lower_prio_delay %v; want %d, %v", g.LowerPrioRepeat, g.LowerPrioDelay, tt.repeat, tt.delay)
			}
		})
	}
}

// TestTrackLineReverse: a track_script or track_file line's weight replaces the block's, and
// its direction stays the block's unless the line says reverse or noreverse (keepalived
// 2.2.7, vrrp_track.c and track_file.c). reverse without a weight is refused: keepalived
// drops such a line.
func TestTrackLineReverse(t *testing.T) {
	src := `vrrp_script s {
    script /bin/true
    weight 10 reverse
}
vrrp_instance V {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        192.0.2.1
    }
    track_script {
        s
        s weight 20
        s weight 20 noreverse
        s weight -5 reverse
    }
}
`
	cfg, ds := Parse("t.conf", []byte(src), Options{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	s := cfg.Scripts[0]
	type wr struct {
		w   int
		rev bool
	}
	var got []wr
	for _, r := range cfg.Instances[0].TrackScripts {
		w, rev := r.Apply(s.Weight, s.Reverse)
		got = append(got, wr{w, rev})
	}
	want := []wr{{10, true}, {20, true}, {20, false}, {-5, true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("weight and direction per line: %v, want %v", got, want)
	}

	bad := strings.Replace(src, "        s weight -5 reverse\n", "        s reverse\n", 1)
	_, ds = Parse("t.conf", []byte(bad), Options{})
	if !ds.HasErrors() || !strings.Contains(ds.Error(), "need a weight before them") {
		t.Errorf("reverse without a weight: %v; want an error", ds)
	}
}

// TestOwnerStateBackupWarning: the warning for an address owner left in state BACKUP says
// what happens. keepalived 2.2.7 on the wire enters BACKUP and takes over after
// Master_Down_Interval (about 3 s at advert_int 1), and so does vigil's state machine
// (fsm: "owner starts as backup"); an earlier text said it became MASTER at once.
func TestOwnerStateBackupWarning(t *testing.T) {
	text := "vrrp_instance V {\n interface eth0\n state BACKUP\n virtual_router_id 1\n priority 255\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n"
	_, ds := Parse("o.conf", []byte(text), Options{})
	for _, d := range ds {
		if strings.Contains(d.Msg, "address owner") {
			if d.Severity != SevWarning || strings.Contains(d.Msg, "at once") || !strings.Contains(d.Msg, "starts as BACKUP") {
				t.Errorf("owner warning: %s", d)
			}
			return
		}
	}
	t.Errorf("no warning for priority 255 with state BACKUP: %v", ds)
}

// TestOwnerWithoutStateNoWarning: an owner without a state line takes over at once (the
// engine starts it from INIT, as keepalived does): no warning about waiting as a backup.
func TestOwnerWithoutStateNoWarning(t *testing.T) {
	text := "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 255\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n"
	_, ds := Parse("o.conf", []byte(text), Options{})
	for _, d := range ds {
		if strings.Contains(d.Msg, "address owner") {
			t.Errorf("owner without a state line: %s", d)
		}
	}
}

// TestGluedKeywordLongest: when two keywords start a glued word, the hint names the longer,
// on every run (the candidates come from a map, in a different order each time).
func TestGluedKeywordLongest(t *testing.T) {
	for range 20 {
		_, ds := Parse("glued.conf", []byte("virtual_server_groupVSG_1 {\n    192.0.2.1 80\n}\n"), Options{DisableIncludes: true})
		want := `glued.conf:1:1: error: unknown keyword "virtual_server_groupVSG_1" at top level; did you mean "virtual_server_group VSG_1"? a blank is missing`
		if len(ds) == 0 || ds[0].String() != want {
			t.Fatalf("diagnostics:\n%v\nwant first:\n%s", ds, want)
		}
	}
}
