package config

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// lvsCase is one configuration with the diagnostics it must give, in order, and checks on the
// model built from it.
type lvsCase struct {
	name  string
	src   string
	diags []string // each is contained in the diagnostic at the same index; the counts match
	check func(t *testing.T, c *Config)
	// keepalived, when set, are lines that keepalived 2.2.7's -t must print for the same file
	// (each contained in one line of its output): the judge agrees that there is a problem.
	// Set and empty: keepalived must say nothing but the notes every such file gets.
	keepalived []string
}

// keepalivedNotes are what keepalived -t says of files without a mistake: defaults it fills
// in, and interfaces of vrrp_instances that this host may not have.
var keepalivedNotes = []string{"no scheduler set", "no forwarding method set", "Unknown interface", "cannot use a loopback"}

func runLVSCases(t *testing.T, cases []lvsCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ds := Parse("test.conf", []byte(tc.src), Options{ConfigID: "test"})
			if cfg == nil {
				t.Fatal("no model")
			}
			got := make([]string, len(ds))
			for i, d := range ds {
				got[i] = d.String()
			}
			ok := len(got) == len(tc.diags)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.Contains(got[i], tc.diags[i])
			}
			if !ok {
				t.Errorf("diagnostics:\n  got:\n    %s\n  want:\n    %s", strings.Join(got, "\n    "), strings.Join(tc.diags, "\n    "))
			}
			if tc.check != nil {
				tc.check(t, cfg)
			}
			if tc.keepalived != nil {
				checkKeepalived(t, tc.src, tc.keepalived)
			}
		})
	}
}

// checkKeepalived runs keepalived -t on src and wants each of want in its output.
func checkKeepalived(t *testing.T, src string, want []string) {
	t.Helper()
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Log("keepalived is not installed; its verdict is not compared (make test installs it)")
		return
	}
	if os.Geteuid() != 0 {
		t.Log("keepalived -t needs root; its verdict is not compared")
		return
	}
	f := filepath.Join(t.TempDir(), "test.conf")
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(bin, "-t", "-f", f).CombinedOutput()
	if len(want) == 0 {
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" && !slices.ContainsFunc(keepalivedNotes, func(n string) bool { return strings.Contains(l, n) }) {
				t.Errorf("keepalived -t finds a problem vigil does not: %s", l)
			}
		}
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("keepalived -t does not say %q; it says:\n%s", w, out)
		}
	}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// oneChecker returns the only checker of the only real server of the only virtual server.
func oneChecker(t *testing.T, c *Config) *Checker {
	t.Helper()
	if len(c.VirtualServers) != 1 || len(c.VirtualServers[0].RealServers) != 1 || len(c.VirtualServers[0].RealServers[0].Checkers) != 1 {
		t.Fatalf("want one virtual server with one real server with one checker, got %+v", c.VirtualServers)
	}
	return c.VirtualServers[0].RealServers[0].Checkers[0]
}

func TestLVSVirtualServer(t *testing.T) {
	runLVSCases(t, []lvsCase{
		{
			name: "every virtual_server keyword",
			src: `virtual_server 10.0.0.1 80 {
    delay_loop 10
    lb_algo wrr
    lb_kind DR
    protocol UDP
    persistence_timeout 300
    quorum 2
    hysteresis 1
    quorum_up "/usr/local/bin/up arg1"
    quorum_down /usr/local/bin/down
    alpha
    omega
    virtualhost www.example.com
    sorry_server 10.0.0.99 8080
    real_server 10.0.1.1 80 {
    }
    real_server 10.0.1.2 80 {
        weight 3
    }
}
`,
			check: func(t *testing.T, c *Config) {
				if len(c.VirtualServers) != 1 {
					t.Fatalf("got %d virtual servers", len(c.VirtualServers))
				}
				vs := c.VirtualServers[0]
				if vs.Addr != ip("10.0.0.1") || vs.Port != 80 || vs.FWMark != 0 || vs.Group != "" || vs.Pos.Line != 1 {
					t.Errorf("head: %+v", vs)
				}
				if vs.DelayLoop != 10*time.Second || vs.LBAlgo != "wrr" || vs.LBKind != "DR" || vs.Protocol != "UDP" ||
					vs.Persist != 300*time.Second || vs.Quorum != 2 || vs.Hysteresis != 1 || !vs.Alpha || !vs.Omega ||
					vs.Virtualhost != "www.example.com" {
					t.Errorf("settings: %+v", vs)
				}
				if vs.QuorumUp == nil || !reflect.DeepEqual(vs.QuorumUp.Argv, []string{"/usr/local/bin/up", "arg1"}) ||
					vs.QuorumDown == nil || vs.QuorumDown.Cmd != "/usr/local/bin/down" {
					t.Errorf("quorum scripts: %+v %+v", vs.QuorumUp, vs.QuorumDown)
				}
				if ss := vs.SorryServer; ss == nil || ss.Addr != ip("10.0.0.99") || ss.Port != 8080 || ss.Weight != 1 || ss.Pos.Line != 14 {
					t.Errorf("sorry server: %+v", vs.SorryServer)
				}
				if len(vs.RealServers) != 2 || vs.RealServers[0].Addr != ip("10.0.1.1") || vs.RealServers[0].Weight != 1 ||
					vs.RealServers[1].Weight != 3 || vs.RealServers[1].Pos.Line != 17 {
					t.Errorf("real servers: %+v", vs.RealServers)
				}
			},
		},
		{
			name: "defaults and aliases",
			src: `virtual_server 10.0.0.1 443 {
    lvs_sched sh
    lvs_method TUN
    protocol tcp
    persistence_timeout
    real_server 10.0.1.1 443 {
    }
}
virtual_server 10.0.0.2 443 {
    protocol SCTP
    real_server 10.0.1.1 443 {
    }
}
`,
			check: func(t *testing.T, c *Config) {
				a, b := c.VirtualServers[0], c.VirtualServers[1]
				if a.LBAlgo != "sh" || a.LBKind != "TUN" || a.Protocol != "TCP" || a.Persist != 360*time.Second {
					t.Errorf("aliases: %+v", a)
				}
				if b.DelayLoop != 60*time.Second || b.LBAlgo != "wlc" || b.LBKind != "NAT" || b.Protocol != "SCTP" ||
					b.Persist != 0 || b.Quorum != 1 || b.Hysteresis != 0 || b.Alpha || b.Omega || b.SorryServer != nil {
					t.Errorf("defaults: %+v", b)
				}
			},
		},
		{
			name: "fwmark service and real servers without port",
			src: `virtual_server fwmark 7 {
    persistence_timeout 900
    real_server 10.0.1.1 {
        TCP_CHECK {
            connect_port 80
        }
    }
    real_server 10.0.1.2 0 {
    }
}
`,
			check: func(t *testing.T, c *Config) {
				vs := c.VirtualServers[0]
				if vs.FWMark != 7 || vs.Addr.IsValid() || vs.Port != 0 || vs.Protocol != "" {
					t.Errorf("fwmark head: %+v", vs)
				}
				if vs.RealServers[0].Port != 0 || vs.RealServers[1].Port != 0 || vs.RealServers[0].Checkers[0].ConnectPort != 80 {
					t.Errorf("real servers: %+v %+v", vs.RealServers[0], vs.RealServers[1])
				}
			},
		},
		{
			name: "IPv6 service",
			src: `virtual_server 2001:db8::1 80 {
    protocol TCP
    real_server 2001:db8::10 8080 {
    }
}
`,
			check: func(t *testing.T, c *Config) {
				vs := c.VirtualServers[0]
				if vs.Addr != ip("2001:db8::1") || vs.RealServers[0].Addr != ip("2001:db8::10") || vs.RealServers[0].Port != 8080 {
					t.Errorf("%+v", vs)
				}
			},
		},
		{
			name: "a persistent service may omit its port",
			src: `virtual_server 10.0.0.1 {
    protocol TCP
    persistence_timeout 60
    real_server 10.0.1.1 80 {
    }
}
`,
			check: func(t *testing.T, c *Config) {
				if vs := c.VirtualServers[0]; vs.Port != 0 || vs.Persist != time.Minute {
					t.Errorf("%+v", vs)
				}
			},
		},
		{
			name: "virtual server errors",
			src: `virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_algo rrr
    lb_kind NATT
    protocol TPC
    persistence_timeout 0
    quorum 0
    delay_loop 0
    sorry_server 10.0.0.300
    real_server 10.0.1.1 {
    }
    real_server 10.0.1.1 80 {
    }
    real_server 10.0.1.1 80 {
    }
}
virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.1.1 80 {
    }
}
virtual_server 10.0.0.2 {
    protocol TCP
    real_server 10.0.1.1 80 {
    }
}
virtual_server fwmark {
}
virtual_server 10.0.0.3 81 {
    real_server 10.0.1.1 80 {
    }
}
virtual_server 10.0.0.4 80 {
    protocol TCP
}
virtual_server 10.0.0.5 80 {
    protocol TCP
    quorum 5
    hysteresis 2
    real_server 10.0.1.1 80 {
        weight 2
    }
}
virtual_server fwmark 3 {
    protocol UDP
    real_server 10.0.1.1 {
    }
}
virtual_server 10.0.0.6 80 {
    protocol TCP
    lvs_method TUN type gue port 6080
    real_server 10.0.1.1 80 {
        weight 2147483648
    }
}
`,
			diags: []string{
				`test.conf:3:13: error: "rrr" is not one of rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, fo, ovf, mh, twos; did you mean "rr"?`,
				`test.conf:4:13: error: "NATT" is not one of NAT, DR, TUN; did you mean "NAT"?`,
				`test.conf:5:14: error: "TPC" is not one of TCP, UDP, SCTP; did you mean "TCP"?`,
				`test.conf:6:25: error: 0 is out of range: use 1 to 2678400`,
				`test.conf:7:12: error: 0 is out of range: use 1 to 2147483647`,
				`test.conf:8:16: error: 0 s is out of range: use 0.000001 to 86400 seconds`,
				`test.conf:9:18: error: "10.0.0.300" is not an IP address`,
				`test.conf:10:5: error: real_server 10.0.1.1 needs a port: only the real servers of a fwmark service may omit it; write real_server 10.0.1.1 80 { ... }`,
				`test.conf:14:5: error: real_server 10.0.1.1 80 is already defined at test.conf:12:5 in this virtual_server; merge the two real_server blocks`,
				`test.conf:17:1: error: virtual_server 10.0.0.1 80 is already defined at test.conf:1:1; merge the real servers into one virtual_server block`,
				`test.conf:22:1: error: virtual_server 10.0.0.2 has no port, which only a persistent service may omit; add the port (virtual_server 10.0.0.2 80) or a persistence_timeout`,
				`test.conf:27:16: error: virtual_server fwmark needs a number: virtual_server fwmark 1 { ... }`,
				`test.conf:29:1: warning: virtual_server 10.0.0.3 81 sets no protocol; keepalived then uses UDP, and so does vigil; add "protocol TCP" (or UDP, SCTP) to say which`,
				`test.conf:33:1: warning: virtual_server 10.0.0.4 80 has no real_server; ignored, as keepalived does; add a real_server ADDRESS PORT { ... } block`,
				`test.conf:36:1: warning: quorum 5 of virtual_server 10.0.0.5 80 exceeds the total weight 2 of its real servers; using 2, as keepalived does`,
				`test.conf:36:1: warning: hysteresis 2 of virtual_server 10.0.0.5 80 is not below its quorum 2; using 1, as keepalived does`,
				`test.conf:45:5: warning: protocol is ignored for a fwmark service; the firewall mark selects the packets; remove the protocol line`,
				`test.conf:53:16: error: 2147483648 is out of range: use 0 to 2147483647`,
			},
			check: func(t *testing.T, c *Config) {
				vs := c.VirtualServers[0]
				if vs.LBAlgo != "wlc" || vs.LBKind != "NAT" || vs.Protocol != "TCP" || vs.DelayLoop != 60*time.Second || vs.SorryServer != nil {
					t.Errorf("bad values must leave the defaults: %+v", vs)
				}
				for _, vs := range c.VirtualServers {
					switch vs.Addr.String() {
					case "10.0.0.3":
						if vs.Protocol != "UDP" {
							t.Errorf("no protocol: %q", vs.Protocol)
						}
					case "10.0.0.5":
						if vs.Quorum != 2 || vs.Hysteresis != 1 {
							t.Errorf("quorum %d hysteresis %d", vs.Quorum, vs.Hysteresis)
						}
					case "10.0.0.4":
						t.Errorf("a virtual server without real servers is ignored")
					}
				}
			},
		},
		{
			name: "mistakes inside a rejected block are still reported",
			src: `virtual_server 192.168.200.1001 443 {
    lb_algo r
    real_server 10.0.1.1 {
    }
}
virtual_server 10.0.0.1 443 {
    protocol TCP
    real_server 192.168.201.1443 {
        SSL_GET {
            url {
                path /
                digest ff20ad
            }
        }
    }
}
`,
			diags: []string{
				`test.conf:1:16: error: "192.168.200.1001" is not an IP address`,
				`test.conf:2:13: error: "r" is not one of rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, fo, ovf, mh, twos`,
				`test.conf:8:17: error: "192.168.201.1443" is not an IP address; did you mean "192.168.201.1 443"? a blank is missing between address and port`,
				`test.conf:12:24: error: digest "ff20ad" is not an MD5 digest`,
			},
			check: func(t *testing.T, c *Config) {
				if len(c.VirtualServers) != 0 {
					t.Errorf("no virtual server is usable: %+v", c.VirtualServers)
				}
			},
		},
		{
			name: "typos and keepalived keywords vigil lacks",
			src: `virtual_server 10.0.0.1 80 {
    protocol TCP
    delay_lop 5
    snmp_name web
    real_server 10.0.1.1 80 {
        wieght 2
        snmp_name web1
        PING_CHECK {
        }
    }
}
`,
			diags: []string{
				`test.conf:3:5: error: unknown keyword "delay_lop" in virtual_server; did you mean "delay_loop"?`,
				`test.conf:4:5: warning: "snmp_name" is not supported by vigil; ignored`,
				`test.conf:6:9: error: unknown keyword "wieght" in virtual_server/real_server; did you mean "weight"?`,
				`test.conf:7:9: warning: "snmp_name" is not supported by vigil; ignored`,
				`test.conf:8:9: warning: "PING_CHECK" is not supported by vigil; ignored`,
			},
		},
	})
}

func TestLVSRealServer(t *testing.T) {
	runLVSCases(t, []lvsCase{
		{
			name: "every real_server keyword",
			src: `virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.1.1 8080 {
        weight 0
        inhibit_on_failure
        notify_up "/usr/local/bin/rs up"
        notify_down /usr/local/bin/rs_down nobody nogroup
        TCP_CHECK {
        }
        HTTP_GET {
            url {
                path /
            }
        }
    }
    real_server 10.0.1.2 8080 {
        weight 65536
        inhibit_on_failure off
    }
}
`,
			check: func(t *testing.T, c *Config) {
				rs := c.VirtualServers[0].RealServers[0]
				if rs.Addr != ip("10.0.1.1") || rs.Port != 8080 || rs.Weight != 0 || !rs.InhibitOnFailure {
					t.Errorf("%+v", rs)
				}
				if rs.NotifyUp == nil || !reflect.DeepEqual(rs.NotifyUp.Argv, []string{"/usr/local/bin/rs", "up"}) ||
					rs.NotifyDown == nil || rs.NotifyDown.User != "nobody" || rs.NotifyDown.Group != "nogroup" {
					t.Errorf("notify: %+v %+v", rs.NotifyUp, rs.NotifyDown)
				}
				if len(rs.Checkers) != 2 || rs.Checkers[0].Type != "TCP_CHECK" || rs.Checkers[1].Type != "HTTP_GET" || rs.Checkers[1].Pos.Line != 10 {
					t.Errorf("checkers: %+v", rs.Checkers)
				}
				if rs2 := c.VirtualServers[0].RealServers[1]; rs2.Weight != 65536 || rs2.InhibitOnFailure {
					t.Errorf("%+v", rs2)
				}
			},
		},
		{
			name: "settings pass from virtual server to real server to checker",
			src: `virtual_server 10.0.0.1 80 {
    protocol TCP
    delay_loop 20
    retry 4
    connect_timeout 7
    delay_before_retry 2
    warmup 9
    weight 5
    inhibit_on_failure
    alpha
    virtualhost vs.example.com
    real_server 10.0.1.1 80 {
        HTTP_GET {
            url {
                path /
            }
        }
    }
    real_server 10.0.1.2 80 {
        weight 6
        inhibit_on_failure no
        alpha off
        retry 2
        connect_timeout 1.5
        delay_before_retry 0.5
        warmup 0
        delay_loop 30
        virtualhost rs.example.com
        HTTP_GET {
            url {
                path /
            }
        }
        HTTP_GET {
            retry 0
            connect_timeout 0.25
            delay_before_retry 4
            warmup 1
            delay_loop 2
            alpha
            virtualhost checker.example.com
            url {
                path /
                virtualhost url.example.com
            }
        }
    }
}
`,
			check: func(t *testing.T, c *Config) {
				vs := c.VirtualServers[0]
				type eff struct {
					retry                 int
					ct, dbr, warmup, loop time.Duration
					alpha                 bool
					vhost                 string
				}
				get := func(ch *Checker) eff {
					return eff{ch.Retry, ch.ConnectTimeout, ch.DelayBeforeRetry, ch.Warmup, ch.DelayLoop, ch.Alpha, ch.Virtualhost}
				}
				rs1, rs2 := vs.RealServers[0], vs.RealServers[1]
				if rs1.Weight != 5 || !rs1.InhibitOnFailure || rs2.Weight != 6 || rs2.InhibitOnFailure {
					t.Errorf("real servers: %+v %+v", rs1, rs2)
				}
				if got, want := get(rs1.Checkers[0]), (eff{4, 7 * time.Second, 2 * time.Second, 9 * time.Second, 20 * time.Second, true, "vs.example.com"}); got != want {
					t.Errorf("from the virtual server: got %+v, want %+v", got, want)
				}
				if got, want := get(rs2.Checkers[0]), (eff{2, 1500 * time.Millisecond, 500 * time.Millisecond, 0, 30 * time.Second, false, "rs.example.com"}); got != want {
					t.Errorf("from the real server: got %+v, want %+v", got, want)
				}
				if got, want := get(rs2.Checkers[1]), (eff{0, 250 * time.Millisecond, 4 * time.Second, time.Second, 2 * time.Second, true, "checker.example.com"}); got != want {
					t.Errorf("the checker's own: got %+v, want %+v", got, want)
				}
				if u := rs2.Checkers[1].URLs[0]; u.Virtualhost != "url.example.com" {
					t.Errorf("url virtualhost %q", u.Virtualhost)
				}
			},
		},
	})
}

func TestLVSCheckers(t *testing.T) {
	runLVSCases(t, []lvsCase{
		{
			name: "TCP_CHECK",
			src: `virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.1.1 80 {
        TCP_CHECK {
            connect_ip 10.0.2.1
            connect_port 8081
            bindto 10.0.3.1
            bind_port 5000
            connect_timeout 2.5
            retry 3
            delay_before_retry 4
            warmup 1
            delay_loop 15
            alpha
        }
    }
}
`,
			check: func(t *testing.T, c *Config) {
				ch := oneChecker(t, c)
				want := &Checker{Type: "TCP_CHECK", Pos: Pos{"test.conf", 4, 9}, ConnectIP: ip("10.0.2.1"), ConnectPort: 8081,
					BindTo: ip("10.0.3.1"), BindPort: 5000, ConnectTimeout: 2500 * time.Millisecond, Retry: 3,
					DelayBeforeRetry: 4 * time.Second, Warmup: time.Second, DelayLoop: 15 * time.Second, Alpha: true}
				if !reflect.DeepEqual(ch, want) {
					t.Errorf("got  %+v\nwant %+v", ch, want)
				}
			},
		},
		{
			name: "TCP_CHECK defaults",
			src: `virtual_server 10.0.0.1 80 {
    protocol TCP
    delay_loop 6
    real_server 10.0.1.1 80 {
        TCP_CHECK {
        }
    }
}
`,
			check: func(t *testing.T, c *Config) {
				ch := oneChecker(t, c)
				if ch.Retry != 1 || ch.DelayBeforeRetry != time.Second || ch.ConnectTimeout != 5*time.Second ||
					ch.DelayLoop != 6*time.Second || ch.Warmup != 6*time.Second || ch.Alpha || ch.ConnectIP.IsValid() || ch.ConnectPort != 0 {
					t.Errorf("%+v", ch)
				}
			},
		},
		{
			name: "HTTP_GET",
			src: `virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.1.1 80 {
        HTTP_GET {
            virtualhost www.example.com
            connect_port 8080
            url {
                path /health
                digest 9B3A0C85A887A256D6939DA88AABD8CD
                status_code 200 301-302
                status_code 404
                virtualhost other.example.com
            }
            url {
                path /mrtg/
                digest 9b3a0c85a887a256d6939da88aabd8cd
            }
            url {
                path /
            }
        }
    }
}
`,
			check: func(t *testing.T, c *Config) {
				ch := oneChecker(t, c)
				if ch.Type != "HTTP_GET" || ch.Virtualhost != "www.example.com" || ch.ConnectPort != 8080 ||
					ch.Retry != 1 || ch.DelayBeforeRetry != 3*time.Second || ch.ConnectTimeout != 5*time.Second || len(ch.URLs) != 3 {
					t.Fatalf("%+v", ch)
				}
				want := []URL{
					{Path: "/health", Digest: "9b3a0c85a887a256d6939da88aabd8cd", StatusCodes: []StatusRange{{200, 200}, {301, 302}, {404, 404}},
						Virtualhost: "other.example.com", Pos: Pos{"test.conf", 7, 13}},
					{Path: "/mrtg/", Digest: "9b3a0c85a887a256d6939da88aabd8cd", StatusCodes: []StatusRange{{200, 299}}, Pos: Pos{"test.conf", 14, 13}},
					{Path: "/", StatusCodes: []StatusRange{{200, 299}}, Pos: Pos{"test.conf", 18, 13}},
				}
				if !reflect.DeepEqual(ch.URLs, want) {
					t.Errorf("urls:\n got  %+v\n want %+v", ch.URLs, want)
				}
			},
		},
		{
			name: "SSL_GET",
			src: `virtual_server 10.0.0.1 443 {
    protocol TCP
    real_server 10.0.1.1 443 {
        SSL_GET {
            enable_sni
            nb_get_retry 4
            url {
                path /
                status_code 200-299
            }
        }
    }
}
`,
			diags: []string{
				`test.conf:6:13: warning: "nb_get_retry" is deprecated; use "retry"; write: retry 4`,
			},
			check: func(t *testing.T, c *Config) {
				ch := oneChecker(t, c)
				if ch.Type != "SSL_GET" || !ch.EnableSNI || ch.Retry != 4 || ch.DelayBeforeRetry != 3*time.Second || len(ch.URLs) != 1 {
					t.Errorf("%+v", ch)
				}
			},
		},
		{
			name: "MISC_CHECK",
			src: `virtual_server 10.0.0.1 80 {
    protocol TCP
    delay_loop 8
    real_server 10.0.1.1 80 {
        MISC_CHECK {
            user nobody nogroup
            misc_path "/usr/local/bin/check.sh arg1 'two words'"
            misc_timeout 5
            misc_dynamic
            retry 2
            delay_before_retry 3
            warmup 0
            delay_loop 4
            alpha
        }
        MISC_CHECK {
            misc_path /usr/local/bin/check2.sh arg1
            user checker:checkers
        }
    }
}
`,
			check: func(t *testing.T, c *Config) {
				rs := c.VirtualServers[0].RealServers[0]
				a, b := rs.Checkers[0], rs.Checkers[1]
				wantA := &Script{Cmd: "/usr/local/bin/check.sh arg1 'two words'", Argv: []string{"/usr/local/bin/check.sh", "arg1", "two words"},
					User: "nobody", Group: "nogroup", Pos: Pos{"test.conf", 7, 23}}
				if !reflect.DeepEqual(a.MiscPath, wantA) {
					t.Errorf("misc_path:\n got  %+v\n want %+v", a.MiscPath, wantA)
				}
				if a.MiscTimeout != 5*time.Second || !a.MiscDynamic || a.Retry != 2 || a.DelayBeforeRetry != 3*time.Second ||
					a.Warmup != 0 || a.DelayLoop != 4*time.Second || !a.Alpha || a.ConnectTimeout != 0 {
					t.Errorf("settings: %+v", a)
				}
				if !reflect.DeepEqual(b.MiscPath.Argv, []string{"/usr/local/bin/check2.sh", "arg1"}) || b.MiscPath.User != "checker" || b.MiscPath.Group != "checkers" {
					t.Errorf("second misc_path: %+v", b.MiscPath)
				}
				// keepalived's defaults: no retry, misc_timeout of the virtual server's delay_loop.
				if b.Retry != 0 || b.DelayBeforeRetry != time.Second || b.MiscTimeout != 8*time.Second || b.MiscDynamic {
					t.Errorf("defaults: %+v", b)
				}
			},
		},
		{
			name: "PLUGIN_CHECK",
			src: `vrrp_check chk_db {
    plugin mysql
}
virtual_server 10.0.0.1 3306 {
    protocol TCP
    real_server 10.0.1.1 3306 {
        PLUGIN_CHECK {
            check chk_db
        }
        PLUGIN_CHECK {
            plugin redis
            connect_port 6380
            connect_timeout 2
            retry 2
            params {
                password_file /etc/vigil/redis.pw
                tls {
                    ca /etc/ssl/ca.pem
                }
            }
        }
    }
}
`,
			check: func(t *testing.T, c *Config) {
				rs := c.VirtualServers[0].RealServers[0]
				a, b := rs.Checkers[0], rs.Checkers[1]
				if a.Type != "PLUGIN_CHECK" || a.Check != "chk_db" || a.Plugin != "" || a.Retry != 1 || a.DelayBeforeRetry != time.Second {
					t.Errorf("check: %+v", a)
				}
				want := []Param{
					{Key: "password_file", Values: []string{"/etc/vigil/redis.pw"}, Pos: Pos{"test.conf", 16, 17}},
					{Key: "tls", Pos: Pos{"test.conf", 17, 17}, Block: []Param{
						{Key: "ca", Values: []string{"/etc/ssl/ca.pem"}, Pos: Pos{"test.conf", 18, 21}},
					}},
				}
				if b.Plugin != "redis" || b.Check != "" || b.ConnectPort != 6380 || b.ConnectTimeout != 2*time.Second || b.Retry != 2 ||
					!reflect.DeepEqual(b.Params, want) {
					t.Errorf("plugin: %+v", b)
				}
			},
		},
		{
			name: "PLUGIN_CHECK errors",
			src: `vrrp_check chk_db {
    plugin mysql
}
virtual_server 10.0.0.1 3306 {
    protocol TCP
    real_server 10.0.1.1 3306 {
        PLUGIN_CHECK {
            check chk_db
            plugin mysql
        }
        PLUGIN_CHECK {
            connect_port 3306
        }
        PLUGIN_CHECK {
            check chk_dv
        }
        PLUGIN_CHECK {
            check chk_db
            params {
                user x
            }
        }
        PLUGIN_CHECK {
            plugin mysql
            interval 3
        }
    }
}
`,
			diags: []string{
				`test.conf:9:13: error: PLUGIN_CHECK names both a check ("chk_db") and a plugin ("mysql"); use either "check NAME" for a vrrp_check, or "plugin NAME" with params { ... }, not both`,
				`test.conf:11:9: error: PLUGIN_CHECK names neither a check nor a plugin; add "check NAME" (a vrrp_check) or "plugin NAME" with params { ... }`,
				`test.conf:15:19: error: check "chk_dv" is not defined; did you mean "chk_db"?`,
				`test.conf:19:13: error: params belong to the vrrp_check "chk_db", not to PLUGIN_CHECK`,
				`test.conf:25:13: error: unknown keyword "interval" in virtual_server/real_server/PLUGIN_CHECK`,
			},
			check: func(t *testing.T, c *Config) {
				if n := len(c.VirtualServers[0].RealServers[0].Checkers); n != 2 {
					t.Errorf("only the valid checkers are kept, got %d", n)
				}
			},
		},
		{
			name: "checker errors",
			src: `virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.1.1 80 {
        HTTP_GET {
            conect_timeout 3
            url {
                path /
                digest 9b3a0c85a887a256d6939da88aabd8c
                status_code 200 600 299-200 2xx
            }
            url {
                digest zz3a0c85a887a256d6939da88aabd8cd
            }
        }
        HTTP_GET {
            connect_timeout 3
        }
        SSL_GET {
            url {
                path /
                regex_max_offset 10
            }
        }
        HTTP_GET {
            enable_sni
            url {
                path /
            }
        }
        MISC_CHECK {
            connect_port 80
        }
        TCP_CHECK {
            connect_port 0
            bindto 10.0.0.256
            retry -1
        }
        TCP_CHECK {
            url {
            }
        }
    }
}
`,
			diags: []string{
				`test.conf:5:13: error: unknown keyword "conect_timeout" in virtual_server/real_server/HTTP_GET; did you mean "connect_timeout"?`,
				`test.conf:8:24: error: digest "9b3a0c85a887a256d6939da88aabd8c" is not an MD5 digest; digest is the MD5 of the page body as printed by genhash: 32 hex digits`,
				`test.conf:9:33: error: "600" is not an HTTP status code or range; use codes from 100 to 599 and ranges such as 200-299`,
				`test.conf:9:37: error: "299-200" is not an HTTP status code or range`,
				`test.conf:9:45: error: "2xx" is not an HTTP status code or range`,
				`test.conf:11:13: error: url has no path; add: path /`,
				`test.conf:12:24: error: digest "zz3a0c85a887a256d6939da88aabd8cd" is not an MD5 digest`,
				`test.conf:15:9: error: HTTP_GET has no url to check; add: url { path / }`,
				`test.conf:21:17: warning: "regex_max_offset" is not supported by vigil; ignored`,
				`test.conf:25:13: warning: "enable_sni" is not supported by vigil; ignored`,
				`test.conf:30:9: error: MISC_CHECK has no misc_path; add: misc_path "/path/to/check arg"`,
				`test.conf:31:13: error: unknown keyword "connect_port" in virtual_server/real_server/MISC_CHECK`,
				`test.conf:34:26: error: 0 is out of range: use 1 to 65535`,
				`test.conf:35:20: error: "10.0.0.256" is not an IP address`,
				`test.conf:36:19: error: -1 is out of range: use 0 to 2147483647`,
				`test.conf:39:13: error: unknown keyword "url" in virtual_server/real_server/TCP_CHECK; "url" belongs in virtual_server/real_server/HTTP_GET or virtual_server/real_server/SSL_GET`,
			},
		},
		{
			name: "checkers keepalived has and vigil does not",
			src: `virtual_server 10.0.0.1 25 {
    protocol TCP
    real_server 10.0.1.1 25 {
        SMTP_CHECK {
            helo_name mail.example.com
            host {
                connect_ip 10.0.2.1
            }
        }
        PING_CHECK {
        }
        UDP_CHECK {
            payload 00
        }
        DNS_CHECK {
            type A
        }
        FILE_CHECK {
            track_file f
        }
        BFD_CHECK {
            name b
        }
        TCP_CHECK {
        }
    }
}
`,
			diags: []string{
				`test.conf:4:9: warning: "SMTP_CHECK" is not supported by vigil; ignored; see docs/migrating.md`,
				`test.conf:10:9: warning: "PING_CHECK" is not supported by vigil; ignored`,
				`test.conf:12:9: warning: "UDP_CHECK" is not supported by vigil; ignored`,
				`test.conf:15:9: warning: "DNS_CHECK" is not supported by vigil; ignored`,
				`test.conf:18:9: warning: "FILE_CHECK" is not supported by vigil; ignored`,
				`test.conf:21:9: warning: "BFD_CHECK" is not supported by vigil; ignored`,
			},
			check: func(t *testing.T, c *Config) {
				if ch := oneChecker(t, c); ch.Type != "TCP_CHECK" {
					t.Errorf("%+v", ch)
				}
			},
		},
	})
}

func TestLVSUnsupportedCheckersAreMarked(t *testing.T) {
	_, ds := Parse("test.conf", []byte("virtual_server 10.0.0.1 25 {\n protocol TCP\n real_server 10.0.1.1 25 {\n  SMTP_CHECK {\n  }\n }\n}\n"), Options{})
	if len(ds) != 1 || !ds[0].Unsupported || ds[0].Severity != SevWarning {
		t.Fatalf("want one Unsupported warning, got %v", ds)
	}
}

func TestLVSGroups(t *testing.T) {
	runLVSCases(t, []lvsCase{
		{
			name: "virtual_server_group entries",
			src: `virtual_server_group web {
    10.0.0.1 80
    10.0.0.2 0
    10.0.0.3
    192.168.200.3-10 8080
    192.168.200.250-192.168.200.255 80
    192.168.202.8/29 443
    2001:db8::10-1f 80
    fwmark 1 inet
    fwmark 2 inet6
}
virtual_server group web {
    protocol TCP
    real_server 10.0.1.1 80 {
    }
    real_server 10.0.1.2 {
    }
}
`,
			diags: []string{
				`test.conf:12:1: warning: virtual_server group web is not persistent, but its group's entry at test.conf:3:5 has no port; persistence_timeout is 360s, as keepalived sets it`,
			},
			// keepalived 2.2.7's -t says nothing at all of this file (a group of both
			// families with IPv4 real servers): no comparison.
			check: func(t *testing.T, c *Config) {
				if vs := c.VirtualServers[0]; vs.Persist != 360*time.Second {
					t.Errorf("persistence %v", vs.Persist)
				}
				if len(c.VirtualServerGroups) != 1 {
					t.Fatalf("groups: %+v", c.VirtualServerGroups)
				}
				g := c.VirtualServerGroups[0]
				at := func(line, col int) Pos { return Pos{"test.conf", line, col} }
				want := &VirtualServerGroup{Name: "web", Pos: at(1, 1), Entries: []VSGEntry{
					{Addr: ip("10.0.0.1"), Port: 80, Pos: at(2, 5)},
					{Addr: ip("10.0.0.2"), Pos: at(3, 5)},
					{Addr: ip("10.0.0.3"), Pos: at(4, 5)},
					{Addr: ip("192.168.200.3"), RangeTo: ip("192.168.200.10"), Port: 8080, Pos: at(5, 5)},
					{Addr: ip("192.168.200.250"), RangeTo: ip("192.168.200.255"), Port: 80, Pos: at(6, 5)},
					{Addr: ip("192.168.202.8"), RangeTo: ip("192.168.202.15"), Port: 443, Pos: at(7, 5)},
					{Addr: ip("2001:db8::10"), RangeTo: ip("2001:db8::1f"), Port: 80, Pos: at(8, 5)},
					{FWMark: 1, Family: 4, Pos: at(9, 5)},
					{FWMark: 2, Family: 6, Pos: at(10, 5)},
				}}
				if !reflect.DeepEqual(g, want) {
					t.Errorf("got  %+v\nwant %+v", g, want)
				}
				if vs := c.VirtualServers[0]; vs.Group != "web" || vs.Addr.IsValid() || vs.Port != 0 || len(vs.RealServers) != 2 {
					t.Errorf("%+v", vs)
				}
			},
		},
		{
			name: "a group entry without a port makes the service persistent",
			src: `virtual_server_group web {
    192.0.2.1 80
    192.0.2.2
}
virtual_server group web {
    protocol TCP
    real_server 192.0.2.10 80 {
    }
}
`,
			diags: []string{
				`test.conf:5:1: warning: virtual_server group web is not persistent, but its group's entry at test.conf:3:5 has no port; persistence_timeout is 360s, as keepalived sets it`,
			},
			keepalived: []string{"Virtual server [web]:0: zero port only valid for persistent services - setting"},
			check: func(t *testing.T, c *Config) {
				if vs := c.VirtualServers[0]; vs.Persist != 360*time.Second {
					t.Errorf("persistence %v", vs.Persist)
				}
			},
		},
		{
			name: "a group of both families needs the family of its fwmarks",
			src: `virtual_server_group g {
    192.0.2.1 80
    2001:db8::1 80
    fwmark 1
}
virtual_server_group h {
    192.0.2.1 80
    2001:db8::1 80
    fwmark 1 inet6
}
virtual_server_group i {
    192.0.2.1 80
    fwmark 1
}
`,
			diags: []string{
				`test.conf:1:1: error: virtual_server_group "g" has IPv4 and IPv6 entries and a fwmark without a family; keepalived cannot tell`,
			},
			keepalived: []string{"virtual server group g cannot have IPv4, IPv6 and fwmark without family - removing"},
		},
		{
			name: "virtual_server_group errors",
			src: `virtual_server_group web {
    10.0.0.1 80 extra
    10.0.0.10-5 80
    10.0.0.10-10.0.0.5 80
    10.0.0.1-300 80
    10.0.0.9/29 80
    10.0.0.1 65536
    fwmark
    fwmark 0
    fwmark 2 inet
    fwmark 2 inet4
    fwmark 2 inet
    10.0.0.1 80 {
    }
    192.168.200.250-192.168.201.10 80
    10.0.0.0/23 80
    2001:db8::1-2001:db8::1:1 80
    fwmark 2 INET6
}
virtual_server_group empty {
}
virtual_server_group web {
    10.0.0.1 80
}
virtual_server group wbe {
    protocol TCP
    real_server 10.0.1.1 80 {
    }
}
virtual_server_group plain {
    10.0.0.1 80
}
virtual_server group plain {
    protocol TCP
    real_server 10.0.1.1 {
    }
}
virtual_server group web {
    protocol TCP
    real_server 10.0.1.1 {
    }
}
`,
			diags: []string{
				`test.conf:2:17: error: unexpected "extra" after the port; write one "ADDRESS [PORT]" per line`,
				`test.conf:3:15: error: the range 10.0.0.10-5 does not end after it starts`,
				`test.conf:4:15: error: the range 10.0.0.10-10.0.0.5 ends before it starts; write FIRST-LAST with FIRST the lower address`,
				`test.conf:5:14: error: "300" is not the last octet of an IPv4 range`,
				`test.conf:6:5: error: 10.0.0.9/29 has host bits set beyond /29; did you mean 10.0.0.8/29?`,
				`test.conf:7:14: error: 65536 is out of range: use 1 to 65535`,
				`test.conf:8:5: error: fwmark needs a number; write: fwmark 1`,
				`test.conf:9:12: error: 0 is out of range: use 1 to 4294967295`,
				`test.conf:11:14: error: "inet4" is not one of inet, inet6; did you mean "inet"?`,
				`test.conf:12:5: error: this entry of virtual_server_group "web" repeats the one at test.conf:10:5`,
				`test.conf:13:5: error: unexpected block in virtual_server_group "web"`,
				`test.conf:15:5: error: the range 192.168.200.250-192.168.201.10 spans more than the last octet of the address; keepalived 2.2.7 counts only the last octet up`,
				`test.conf:16:5: error: the range 10.0.0.0/23 spans more than the last octet`,
				`test.conf:17:5: error: the range 2001:db8::1-2001:db8::1:1 spans more than the last 16-bit group of the address`,
				`test.conf:18:14: error: "INET6" is not one of inet, inet6; write "inet6": keepalived takes only that spelling`,
				`test.conf:20:1: error: virtual_server_group "empty" has no entries`,
				`test.conf:22:1: error: virtual_server_group "web" is already defined at test.conf:1:1`,
				`test.conf:25:22: error: virtual_server_group "wbe" is not defined; did you mean "web"?`,
				`test.conf:35:5: error: real_server 10.0.1.1 needs a port: virtual_server_group "plain" has no fwmark entry; write real_server 10.0.1.1 PORT { ... }`,
			},
		},
	})
}

// TestLVSKeepalivedSamples reads keepalived's sample configurations: their virtual servers
// must give no error, and the model must hold what they say.
func TestLVSKeepalivedSamples(t *testing.T) {
	dir, err := findSamples()
	if err != nil {
		t.Skip("keepalived samples not found: expected a shared/keepalived-samples folder beside the repository")
	}
	for _, name := range []string{"HTTP_GET.port", "SSL_GET", "inhibit", "misc_check", "misc_check_arg", "status_code",
		"virtual_server_group", "virtualhost", "fwmark", "sample"} {
		t.Run(name, func(t *testing.T) {
			cfg, ds := Load(filepath.Join(dir, "keepalived.conf."+name), Options{ConfigID: "high"})
			if cfg == nil {
				t.Fatalf("no model: %v", ds)
			}
			vsLines := map[int]bool{}
			for _, vs := range cfg.VirtualServers {
				for l := vs.Pos.Line; l <= lastLine(cfg.Tree, vs.Pos); l++ {
					vsLines[l] = true
				}
			}
			for _, d := range ds {
				if d.Severity == SevError && (vsLines[d.Pos.Line] || strings.Contains(d.Msg, "virtual_server")) {
					t.Errorf("error in an LVS block: %s", d)
				}
			}
			if len(cfg.VirtualServers) == 0 {
				t.Fatal("no virtual server read")
			}
			for _, vs := range cfg.VirtualServers {
				if len(vs.RealServers) == 0 {
					t.Errorf("%s has no real server", vsName(vs))
				}
				for _, rs := range vs.RealServers {
					if len(rs.Checkers) == 0 {
						t.Errorf("%s of %s has no checker", rsName(rs), vsName(vs))
					}
				}
			}
		})
	}
}

func lastLine(tree []*Node, at Pos) int {
	for _, n := range tree {
		if n.Pos == at {
			return n.End.Line
		}
	}
	return at.Line
}

func TestLVSSampleModels(t *testing.T) {
	dir, err := findSamples()
	if err != nil {
		t.Skip("keepalived samples not found: expected a shared/keepalived-samples folder beside the repository")
	}
	load := func(name string) *Config {
		cfg, _ := Load(filepath.Join(dir, "keepalived.conf."+name), Options{ConfigID: "high"})
		if cfg == nil || len(cfg.VirtualServers) == 0 {
			t.Fatalf("%s: no virtual server", name)
		}
		return cfg
	}
	t.Run("status_code", func(t *testing.T) {
		ch := load("status_code").VirtualServers[0].RealServers[0].Checkers[0]
		want := []StatusRange{{200, 299}, {400, 499}, {503, 503}, {505, 505}}
		if ch.Type != "SSL_GET" || !reflect.DeepEqual(ch.URLs[0].StatusCodes, want) || !reflect.DeepEqual(ch.URLs[1].StatusCodes, []StatusRange{{200, 200}}) {
			t.Errorf("%+v", ch.URLs)
		}
	})
	t.Run("virtualhost", func(t *testing.T) {
		vs := load("virtualhost").VirtualServers[0]
		if vs.Virtualhost != "www.firewall.loc" || vs.RealServers[0].Checkers[0].Virtualhost != "www.firewall.loc" {
			t.Errorf("%q %q", vs.Virtualhost, vs.RealServers[0].Checkers[0].Virtualhost)
		}
	})
	t.Run("fwmark", func(t *testing.T) {
		vs := load("fwmark").VirtualServers[0]
		if vs.FWMark != 1 || vs.Persist != 900*time.Second || len(vs.RealServers) != 2 || vs.RealServers[0].Port != 0 {
			t.Errorf("%+v", vs)
		}
	})
	t.Run("sample", func(t *testing.T) {
		vs := load("sample").VirtualServers[0]
		if vs.SorryServer == nil || vs.SorryServer.Addr != ip("192.168.200.200") || vs.SorryServer.Port != 1358 ||
			vs.DelayLoop != 6*time.Second || vs.LBAlgo != "rr" || vs.Protocol != "TCP" || vs.Persist != 50*time.Second {
			t.Errorf("%+v", vs)
		}
		ch := vs.RealServers[0].Checkers[0]
		if ch.Retry != 3 || ch.ConnectTimeout != 3*time.Second || ch.DelayBeforeRetry != 3*time.Second || ch.URLs[0].Digest != "640205b7b0fc66c1ea91c463fac6334d" {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("inhibit", func(t *testing.T) {
		if rs := load("inhibit").VirtualServers[0].RealServers[0]; !rs.InhibitOnFailure {
			t.Errorf("%+v", rs)
		}
	})
	t.Run("misc_check_arg", func(t *testing.T) {
		ch := load("misc_check_arg").VirtualServers[0].RealServers[0].Checkers[0]
		if !reflect.DeepEqual(ch.MiscPath.Argv, []string{"/usr/local/bin/script.sh", "arg1", "arg2"}) {
			t.Errorf("%+v", ch.MiscPath)
		}
	})
	t.Run("virtual_server_group", func(t *testing.T) {
		cfg := load("virtual_server_group")
		g := cfg.VirtualServerGroups[0]
		if g.Name != "VSG_1" || len(g.Entries) != 6 || g.Entries[3].RangeTo != ip("192.168.200.10") || g.Entries[5].FWMark != 2 {
			t.Errorf("%+v", g)
		}
		if cfg.VirtualServers[0].Group != "VSG_1" {
			t.Errorf("%+v", cfg.VirtualServers[0])
		}
	})
}

func TestLVSSchedulerFlags(t *testing.T) {
	runLVSCases(t, []lvsCase{
		{
			keepalived: []string{},
			name:       "flags of sh, mh and any scheduler",
			src: `virtual_server 192.0.2.1 53 {
    protocol UDP
    lb_algo sh
    sh-port
    sh-fallback
    flag-3
    ops
    real_server 192.0.2.10 53 {
    }
}
virtual_server 192.0.2.2 80 {
    protocol TCP
    lb_algo mh
    mh-port
    mh-fallback
    real_server 192.0.2.10 80 {
    }
}
virtual_server fwmark 5 {
    ops
    flag-1
    flag-2
    real_server 192.0.2.10 {
    }
}
`,
			check: func(t *testing.T, c *Config) {
				a, b, f := c.VirtualServers[0], c.VirtualServers[1], c.VirtualServers[2]
				if !a.SchedFlag1 || !a.SchedFlag2 || !a.SchedFlag3 || !a.OPS || a.LBAlgo != "sh" {
					t.Errorf("sh: %+v", a)
				}
				if !b.SchedFlag1 || !b.SchedFlag2 || b.SchedFlag3 || b.OPS || b.LBAlgo != "mh" {
					t.Errorf("mh: %+v", b)
				}
				if !f.SchedFlag1 || !f.SchedFlag2 || f.SchedFlag3 || !f.OPS || f.Family != 4 {
					t.Errorf("fwmark keeps ops: %+v", f)
				}
			},
		},
		{
			name: "flags that keepalived ignores",
			src: `virtual_server 192.0.2.1 80 {
    protocol TCP
    sh-port
    mh-fallback
    lb_algo sh
    mh-port
    hashed
    ops
    real_server 192.0.2.10 80 {
    }
}
virtual_server 192.0.2.2 80 {
    protocol TCP
    lb_algo rr
    sh-fallback
    hashed
    real_server 192.0.2.10 80 {
    }
}
`,
			diags: []string{
				`test.conf:3:5: error: sh-port applies only to the sh scheduler, and lb_algo is not set yet at this line; keepalived reads the lines in order and ignores this one: move "lb_algo sh" (line 5) above it`,
				`test.conf:4:5: error: mh-fallback applies only to the mh scheduler, and lb_algo is not set yet at this line; set lb_algo mh above this line, or remove it`,
				`test.conf:6:5: warning: mh-port has no effect with the sh scheduler; ignored, as keepalived does; did you mean sh-port?`,
				`test.conf:7:5: warning: hashed has no effect; ignored, as keepalived does`,
				`test.conf:8:5: warning: ops (one-packet scheduling) needs UDP, and virtual_server 192.0.2.1 80 is TCP; ignored, as keepalived does`,
				`test.conf:15:5: error: sh-fallback applies only to the sh scheduler, and lb_algo is rr at this line`,
				`test.conf:16:5: warning: hashed has no effect`,
			},
			check: func(t *testing.T, c *Config) {
				for _, vs := range c.VirtualServers {
					if vs.SchedFlag1 || vs.SchedFlag2 || vs.SchedFlag3 || vs.OPS {
						t.Errorf("no flag may be set: %+v", vs)
					}
				}
			},
			keepalived: []string{
				"test.conf: Line 3) sh-port only applies to sh scheduler",
				"test.conf: Line 4) mh-fallback only applies to sh scheduler",
				"one packet scheduling requires UDP",
				"test.conf: Line 15) sh-fallback only applies to sh scheduler",
				"test.conf: Line 16) hashed only applies to sh scheduler",
			},
		},
		{
			name: "scheduler names are spelt as keepalived compares them",
			src: `virtual_server 192.0.2.1 80 {
    protocol TCP
    lb_algo RR
    lvs_sched Wlc
    real_server 192.0.2.10 80 {
    }
}
`,
			diags: []string{
				`test.conf:3:13: error: "RR" is not one of rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, fo, ovf, mh, twos; write "rr": keepalived takes only that spelling`,
				`test.conf:4:15: error: "Wlc" is not one of`,
			},
			keepalived: []string{"Invalid lvs_scheduler 'RR'", "Invalid lvs_scheduler 'Wlc'"},
		},
	})
}

func TestLVSForwarding(t *testing.T) {
	runLVSCases(t, []lvsCase{
		{
			keepalived: []string{},
			name:       "methods, tunnels and where a real server takes its method from",
			src: `virtual_server 192.0.2.1 80 {
    protocol TCP
    real_server 192.0.2.10 80 {
    }
    lb_kind TUN type gue port 6080 csum
    real_server 192.0.2.11 80 {
        uthreshold 1000
        lthreshold 800
    }
    real_server 192.0.2.12 80 {
        lvs_method DR
    }
    real_server 2001:db8::1 80 {
        lvs_method TUN type gre csum
    }
    real_server 192.0.2.13 8080 {
        lvs_method NAT
        weight 0
    }
    lb_kind DR
    real_server 192.0.2.14 80 {
    }
    sorry_server 192.0.2.99 80
    sorry_server_inhibit
    sorry_server_lvs_method TUN type ipip
}
virtual_server 192.0.2.2 80 {
    protocol TCP
    real_server 192.0.2.10 80 {
    }
    sorry_server 192.0.2.99 80
    lvs_method TUN type gue port 5555 remcsum
}
`,
			check: func(t *testing.T, c *Config) {
				vs := c.VirtualServers[0]
				if vs.LBKind != "DR" || vs.Tunnel != (Tunnel{}) || vs.Family != 4 {
					t.Errorf("virtual server: %+v", vs)
				}
				gue := Tunnel{Type: "gue", Port: 6080, Checksum: "csum"}
				want := []struct {
					method string
					tunnel Tunnel
				}{
					{"DR", Tunnel{}}, // written before any lb_kind: the block's final one
					{"TUN", gue},     // the lb_kind above the block
					{"DR", Tunnel{}},
					{"TUN", Tunnel{Type: "gre", Checksum: "csum"}},
					{"NAT", Tunnel{}},
					{"DR", Tunnel{}},
				}
				if len(vs.RealServers) != len(want) {
					t.Fatalf("%d real servers", len(vs.RealServers))
				}
				for i, w := range want {
					if rs := vs.RealServers[i]; rs.LVSMethod != w.method || rs.Tunnel != w.tunnel {
						t.Errorf("%s: %s %+v, want %s %+v", rsName(rs), rs.LVSMethod, rs.Tunnel, w.method, w.tunnel)
					}
				}
				if rs := vs.RealServers[1]; rs.UThreshold != 1000 || rs.LThreshold != 800 {
					t.Errorf("thresholds: %+v", rs)
				}
				if rs := vs.RealServers[4]; rs.Weight != 0 {
					t.Errorf("weight 0: %+v", rs)
				}
				ss := vs.SorryServer
				if ss == nil || !ss.InhibitOnFailure || ss.LVSMethod != "TUN" || ss.Tunnel != (Tunnel{Type: "ipip", Checksum: "nocsum"}) {
					t.Errorf("sorry server: %+v", ss)
				}
				b := c.VirtualServers[1]
				gue2 := Tunnel{Type: "gue", Port: 5555, Checksum: "remcsum"}
				if b.LBKind != "TUN" || b.Tunnel != gue2 || b.RealServers[0].LVSMethod != "TUN" || b.RealServers[0].Tunnel != gue2 ||
					b.SorryServer.LVSMethod != "TUN" || b.SorryServer.Tunnel != gue2 {
					t.Errorf("a method written last reaches every server: %+v %+v %+v", b, b.RealServers[0], b.SorryServer)
				}
			},
		},
		{
			name: "method and tunnel mistakes",
			src: `virtual_server 192.0.2.1 80 {
    protocol TCP
    lb_kind tun
    lvs_method TUN type vxlan
    lvs_method TUN type gue
    lvs_method TUN port 80
    lvs_method TUN csum
    lvs_method TUN type gre remcsum
    lvs_method TUN type
    lvs_method TUN mtu 1400
    lvs_method DR type gue port 6080
    real_server 2001:db8::1 80 {
    }
    real_server 192.0.2.10 80 {
    }
    sorry_server_inhibit
    sorry_server_lvs_method DR
    sorry_server 2001:db8::99 80
}
`,
			diags: []string{
				`test.conf:3:13: error: "tun" is not one of NAT, DR, TUN; write "TUN": keepalived takes only that spelling`,
				`test.conf:4:25: error: "vxlan" is not one of ipip, gue, gre`,
				`test.conf:5:5: error: a gue tunnel needs a port; write: lvs_method TUN type gue port 6080`,
				`test.conf:6:5: error: port is for gue tunnels only; this one is ipip`,
				`test.conf:7:5: error: ipip tunnels have no checksum option (csum)`,
				`test.conf:8:5: error: gre tunnels have no remote checksum (remcsum)`,
				`test.conf:9:20: error: "type" of lvs_method needs a value`,
				`test.conf:10:20: error: unknown tunnel option "mtu" of lvs_method`,
				`test.conf:11:19: warning: tunnel options of the virtual server's DR apply only to TUN; ignored`,
				`test.conf:12:17: error: real_server 2001:db8::1 80 is IPv6 but virtual_server 192.0.2.1 80 is IPv4; use a real server of the service's family, or TUN forwarding`,
				`test.conf:16:5: error: sorry_server_inhibit comes before any sorry_server; keepalived ignores it there: put it after the sorry_server line`,
				`test.conf:17:5: error: sorry_server_lvs_method comes before any sorry_server`,
				`test.conf:18:5: error: sorry_server 2001:db8::99 is IPv6 but virtual_server 192.0.2.1 80 is IPv4`,
			},
			keepalived: []string{
				"unknown [tun] routing method",
				"Unknown tunnel type vxlan",
				"test.conf: Line 5) gue tunnels require port",
				"test.conf: Line 6) gue tunnels require port",
				"ipip tunnels do not support checksum option",
				"gre tunnels do not support remote checksum option",
				"Missing tunnel type",
				"Invalid tunnel option mtu",
				"real server 2001:db8::1 don't match",
				"Ignoring sorry_server inhibit used before or without sorry_server",
				"sorry_server forwarding used without sorry_server",
				"Address family of virtual server and sorry server",
			},
		},
		{
			name: "ports IPVS does not use",
			src: `virtual_server 192.0.2.1 80 {
    protocol TCP
    lb_kind DR
    real_server 192.0.2.10 8080 {
    }
    real_server 192.0.2.11 80 {
    }
    real_server 192.0.2.12 8080 {
        lvs_method NAT
    }
}
virtual_server fwmark 1 {
    lb_kind TUN
    real_server 192.0.2.10 80 {
    }
}
virtual_server_group g {
    192.0.2.5-6 80
    192.0.2.7 443
}
virtual_server group g {
    protocol TCP
    lb_kind DR
    real_server 192.0.2.10 80 {
    }
}
`,
			diags: []string{
				`test.conf:4:5: warning: real_server 192.0.2.10 8080 uses DR, which cannot change the port: IPVS forwards to port 80, not 8080`,
				`test.conf:14:5: warning: real_server 192.0.2.10 80 uses TUN in a fwmark service: IPVS ignores its port`,
				`test.conf:24:5: warning: real_server 192.0.2.10 80 uses DR, which cannot change the port: IPVS forwards to the port of each service of group g, not 80`,
			},
			keepalived: []string{
				"real server [192.0.2.10]:tcp:8080 ports don't match - resetting",
				"real server [192.0.2.10]:none:80 has port specified - clearing",
				"[192.0.2.7,443] and real server [192.0.2.10]:tcp:80 ports don't match",
			},
			check: func(t *testing.T, c *Config) {
				vs := c.VirtualServers[0]
				k := c.Services(vs)[0]
				for i, want := range []int{80, 80, 8080} {
					if got := vs.DestPort(vs.RealServers[i], k); got != want {
						t.Errorf("%s: destination port %d, want %d", rsName(vs.RealServers[i]), got, want)
					}
				}
				fw := c.VirtualServers[1]
				if got := fw.DestPort(fw.RealServers[0], c.Services(fw)[0]); got != 0 {
					t.Errorf("fwmark TUN destination port %d, want 0", got)
				}
			},
		},
	})
}

func TestLVSPersistence(t *testing.T) {
	runLVSCases(t, []lvsCase{
		{
			keepalived: []string{},
			name:       "granularity, engine and the timeout they imply",
			src: `virtual_server 192.0.2.1 80 {
    protocol TCP
    persistence_granularity 255.255.255.0
    persistence_engine sip
    real_server 192.0.2.10 80 {
    }
}
virtual_server 2001:db8::1 80 {
    protocol TCP
    persistence_timeout 600
    persistence_granularity 64
    real_server 2001:db8::10 80 {
    }
}
virtual_server fwmark 3 {
    persistence_granularity 255.255.0.255
    persistence_engine abcdefghijklmnop
    real_server 192.0.2.10 {
    }
}
virtual_server fwmark 4 {
    real_server 2001:db8::10 {
    }
    persistence_granularity 48
}
`,
			check: func(t *testing.T, c *Config) {
				want := []struct {
					persist time.Duration
					mask    string
					family  int
				}{
					{360 * time.Second, "255.255.255.0", 4},
					{600 * time.Second, "ffff:ffff:ffff:ffff::", 6},
					{360 * time.Second, "255.255.0.255", 4}, // keepalived and ipvsadm take any mask
					{360 * time.Second, "ffff:ffff:ffff::", 6},
				}
				for i, w := range want {
					vs := c.VirtualServers[i]
					if vs.Persist != w.persist || vs.PersistMask != ip(w.mask) || vs.Family != w.family {
						t.Errorf("%s: persist %v mask %v family %d", vsName(vs), vs.Persist, vs.PersistMask, vs.Family)
					}
				}
				if c.VirtualServers[0].PersistEngine != "sip" || c.VirtualServers[2].PersistEngine != "abcdefghijklmnop" {
					t.Errorf("engines %q %q", c.VirtualServers[0].PersistEngine, c.VirtualServers[2].PersistEngine)
				}
			},
		},
		{
			name: "granularity mistakes",
			src: `virtual_server 2001:db8::1 80 {
    protocol TCP
    persistence_granularity 255.255.255.0
    persistence_granularity 129
    persistence_engine sipsipsipsipsipsip
    real_server 2001:db8::10 80 {
    }
}
virtual_server 192.0.2.1 80 {
    protocol TCP
    persistence_granularity 24
    real_server 192.0.2.10 80 {
    }
}
virtual_server_group g {
    192.0.2.1-3 80
}
virtual_server group g {
    protocol TCP
    persistence_granularity 255.255.255.0
    real_server 192.0.2.10 80 {
    }
}
`,
			diags: []string{
				`test.conf:3:29: error: persistence_granularity 255.255.255.0 is an IPv4 netmask, but virtual_server 2001:db8::1 80 is IPv6; an IPv6 service takes a prefix length from 1 to 128`,
				`test.conf:4:29: error: 129 is out of range: use 1 to 128`,
				`test.conf:5:24: error: persistence_engine "sipsipsipsipsipsip" is longer than 16 bytes`,
				`test.conf:11:29: error: persistence_granularity "24" is not an IPv4 netmask; did you mean 255.255.255.0 (/24)?`,
				`test.conf:20:5: warning: persistence_granularity has no effect on a virtual_server group: keepalived 2.2.7 programs each of its services with the full mask; ignored`,
			},
			keepalived: []string{
				"Invalid IPv6 persistence_granularity specified - 255.255.255.0",
				"Invalid IPv6 persistence_granularity specified - 129",
				"persistence_name too long",
			},
			check: func(t *testing.T, c *Config) {
				for _, vs := range c.VirtualServers {
					if vs.Group == "g" && (vs.PersistMask.IsValid() || vs.Persist != 360*time.Second) {
						t.Errorf("group: mask %v persist %v", vs.PersistMask, vs.Persist)
					}
				}
			},
		},
	})
}

func TestLVSFamily(t *testing.T) {
	runLVSCases(t, []lvsCase{
		{
			keepalived: []string{},
			name:       "fwmark services whose servers are all tunnelled",
			src: `virtual_server fwmark 9 {
    lb_kind TUN
    real_server 2001:db8::1 {
    }
    real_server 2001:db8::2 {
    }
}
virtual_server fwmark 10 {
    lb_kind TUN
    real_server 2001:db8::1 {
    }
    real_server 192.0.2.1 {
    }
}
virtual_server fwmark 11 {
    ip_family inet6
    lb_kind TUN
    real_server 192.0.2.1 {
    }
}
virtual_server fwmark 12 {
    real_server 2001:db8::1 {
    }
}
`,
			check: func(t *testing.T, c *Config) {
				for i, want := range []int{6, 4, 6, 6} {
					if vs := c.VirtualServers[i]; vs.Family != want {
						t.Errorf("%s: IPv%d, want IPv%d", vsName(vs), vs.Family, want)
					}
				}
			},
		},
		{
			name: "ip_family against the address",
			src: `virtual_server 192.0.2.1 80 {
    protocol TCP
    ip_family inet6
    ip_family INET
    real_server 192.0.2.10 80 {
    }
}
`,
			diags: []string{
				`test.conf:3:15: error: ip_family inet6 conflicts with the IPv4 of virtual_server 192.0.2.1 80`,
				`test.conf:4:15: error: "INET" is not one of inet, inet6; write "inet"`,
			},
			keepalived: []string{"Virtual server specified family inet6 conflicts with server family", "unknown address family INET"},
		},
	})
}

func TestLVSHASuspend(t *testing.T) {
	runLVSCases(t, []lvsCase{
		{
			name: "ha_suspend on an address a vrrp_instance holds, on one it does not, on a fwmark",
			src: `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.1/24
    }
}
virtual_server 192.0.2.1 80 {
    protocol TCP
    ha_suspend
    real_server 192.0.2.10 80 {
    }
}
virtual_server 192.0.2.2 80 {
    protocol TCP
    ha_suspend
    real_server 192.0.2.10 80 {
    }
}
virtual_server fwmark 1 {
    ha_suspend
    real_server 192.0.2.10 {
    }
}
`,
			diags: []string{
				`test.conf:16:5: warning: ha_suspend: no vrrp_instance or static_ipaddress of this file holds the address of virtual_server 192.0.2.2 80; its checkers run only while the address is on an interface of this host`,
				`test.conf:21:5: warning: ha_suspend cannot follow a fwmark service (it has no address to watch); ignored, as keepalived does`,
			},
			keepalived: []string{"cannot use ha_suspend with fwmarks"},
			check: func(t *testing.T, c *Config) {
				if vis, static := c.AddressHolders(ip("192.0.2.1")); len(vis) != 1 || vis[0].Name != "VI_1" || static {
					t.Errorf("holders of 192.0.2.1: %v %v", vis, static)
				}
				if vis, static := c.AddressHolders(ip("192.0.2.2")); len(vis) != 0 || static {
					t.Errorf("holders of 192.0.2.2: %v %v", vis, static)
				}
				for i, want := range []bool{true, true, false} {
					if vs := c.VirtualServers[i]; vs.HASuspend != want {
						t.Errorf("%s: ha_suspend %v, want %v", vsName(vs), vs.HASuspend, want)
					}
				}
			},
		},
	})
}

func TestLVSSMTPAlert(t *testing.T) {
	const mail = "global_defs {\n    smtp_server 192.0.2.25\n    notification_email {\n        ops@example.com\n    }\n%s}\n"
	const vs = `virtual_server 192.0.2.1 80 {
    protocol TCP
%s    real_server 192.0.2.10 80 {
    }
    real_server 192.0.2.11 80 {
        smtp_alert off
    }
}
`
	cases := []struct {
		name, global, vsLine string
		vs, rs               bool // the virtual server's, the first real server's
	}{
		{"keepalived's defaults", "", "", false, true},
		{"global smtp_alert", "    smtp_alert\n", "", true, true},
		{"smtp_alert_checker before smtp_alert", "    smtp_alert\n    smtp_alert_checker off\n", "", false, false},
		{"the block's own", "    smtp_alert_checker off\n", "    smtp_alert\n", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(mail, "%s", tc.global, 1) + strings.Replace(vs, "%s", tc.vsLine, 1)
			c, ds := Parse("test.conf", []byte(src), Options{ConfigID: "test"})
			if len(ds) != 0 {
				t.Fatalf("%v", ds)
			}
			v := c.VirtualServers[0]
			if v.SMTPAlert != tc.vs || v.RealServers[0].SMTPAlert != tc.rs || v.RealServers[1].SMTPAlert {
				t.Errorf("virtual server %v, real servers %v %v; want %v %v false", v.SMTPAlert, v.RealServers[0].SMTPAlert, v.RealServers[1].SMTPAlert, tc.vs, tc.rs)
			}
		})
	}
}

func TestLVSGlobal(t *testing.T) {
	const instance = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.1
    }
}
`
	runLVSCases(t, []lvsCase{
		{
			keepalived: []string{},
			name:       "every LVS setting of global_defs",
			src: `global_defs {
    lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 239.1.2.3
    lvs_flush
    lvs_flush_on_stop VS
    lvs_timeouts tcp 900 tcpfin 120 udp 300 tcp 901
}
` + instance,
			check: func(t *testing.T, c *Config) {
				g := c.Global
				want := SyncDaemon{Interface: "eth1", Instance: "VI_1", InstancePos: Pos{"test.conf", 2, 26}, SyncID: 7, HasSyncID: true,
					MaxLen: 1400, Port: 8849, TTL: 2, Group: ip("239.1.2.3"), Pos: Pos{"test.conf", 2, 5}}
				if g.LVSSyncDaemon == nil || *g.LVSSyncDaemon != want {
					t.Errorf("sync daemon: %+v", g.LVSSyncDaemon)
				}
				if !g.LVSFlush || g.LVSFlushOnStop != "VS" {
					t.Errorf("flush %v, on stop %q", g.LVSFlush, g.LVSFlushOnStop)
				}
				if g.LVSTimeouts.TCP != 901*time.Second || g.LVSTimeouts.TCPFin != 120*time.Second || g.LVSTimeouts.UDP != 300*time.Second {
					t.Errorf("timeouts: %+v", g.LVSTimeouts)
				}
			},
		},
		{
			keepalived: []string{},
			name:       "the sync id defaults to the instance's virtual_router_id",
			src:        "global_defs {\n    lvs_sync_daemon eth1 inst VI_1\n    lvs_timeouts udp 0\n}\n" + instance,
			check: func(t *testing.T, c *Config) {
				sd := c.Global.LVSSyncDaemon
				if sd == nil || sd.Instance != "VI_1" || sd.SyncID != 51 || sd.HasSyncID || sd.Port != 0 || sd.Group.IsValid() {
					t.Errorf("%+v", sd)
				}
				if c.Global.LVSFlush || c.Global.LVSFlushOnStop != "" || c.Global.LVSTimeouts.UDP != 0 {
					t.Errorf("defaults: %+v", c.Global)
				}
			},
		},
		{
			keepalived: []string{},
			name:       "a sync daemon without an instance runs both daemons",
			src:        "global_defs {\n    lvs_sync_daemon eth1\n    lvs_flush_on_stop\n}\n",
			check: func(t *testing.T, c *Config) {
				sd := c.Global.LVSSyncDaemon
				if sd == nil || sd.Interface != "eth1" || sd.Instance != "" || sd.SyncID != 0 || c.Global.LVSFlushOnStop != "full" {
					t.Errorf("%+v %q", sd, c.Global.LVSFlushOnStop)
				}
			},
		},
		{
			name: "deprecated spellings",
			src: `global_defs {
    lvs_flush_onstop
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    lvs_sync_daemon_interface eth1
    virtual_ipaddress {
        192.0.2.1
    }
}
`,
			diags: []string{
				`test.conf:2:5: warning: "lvs_flush_onstop" is a deprecated spelling; write lvs_flush_on_stop`,
				`test.conf:7:5: warning: lvs_sync_daemon_interface is deprecated; write in global_defs: lvs_sync_daemon eth1 VI_1`,
			},
			keepalived: []string{"Specifying lvs_sync_daemon_interface against a vrrp is deprecated"},
			check: func(t *testing.T, c *Config) {
				sd := c.Global.LVSSyncDaemon
				if sd == nil || sd.Interface != "eth1" || sd.Instance != "VI_1" || sd.SyncID != 51 || c.Global.LVSFlushOnStop != "full" {
					t.Errorf("%+v", sd)
				}
			},
		},
		{
			name: "the older positional sync id",
			src:  "global_defs {\n    lvs_sync_daemon eth1 VI_1 5\n}\n" + instance,
			diags: []string{
				`test.conf:2:31: warning: a sync id without "id" is a deprecated form; write: id 5`,
			},
			keepalived: []string{`Please use keyword "id" before lvs_sync_daemon SYNCID`},
			check: func(t *testing.T, c *Config) {
				if sd := c.Global.LVSSyncDaemon; sd == nil || sd.SyncID != 5 || sd.Instance != "VI_1" {
					t.Errorf("%+v", sd)
				}
			},
		},
		{
			name: "mistakes",
			src: `global_defs {
    lvs_sync_daemon eth1 VI_9 id 256 maxlen 0 port 0 ttl 0 group 192.0.2.1 bogus
    lvs_sync_daemon eth2
    lvs_timeouts tcp
    lvs_timeouts tcp 900 fin 3
    lvs_timeouts udp 2678401
    lvs_timeouts tcp 1 udp
    lvs_flush_on_stop ALL
    lvs_sync_daemon_x eth1
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    lvs_sync_daemon_interface eth1
    virtual_ipaddress {
        192.0.2.1
    }
}
`,
			diags: []string{
				`test.conf:2:26: error: lvs_sync_daemon names vrrp_instance "VI_9", which is not defined; did you mean "VI_1"? (keepalived would run without the sync daemon)`,
				`test.conf:2:34: error: 256 is out of range: use 0 to 255`,
				`test.conf:2:45: error: 0 is out of range: use 1 to 65507`,
				`test.conf:2:52: error: 0 is out of range: use 1 to 65535`,
				`test.conf:2:58: error: 0 is out of range: use 1 to 255`,
				`test.conf:2:66: error: lvs_sync_daemon group 192.0.2.1 is not a multicast address`,
				`test.conf:2:76: error: unknown lvs_sync_daemon option "bogus"`,
				`test.conf:3:5: error: lvs_sync_daemon is already set at test.conf:2:5; keepalived runs one sync daemon and ignores this line`,
				`test.conf:4:5: error: "lvs_timeouts" needs 2 arguments`,
				`test.conf:5:26: error: unknown lvs_timeouts option "fin"`,
				`test.conf:5:30: error: unknown lvs_timeouts option "3"`,
				`test.conf:6:22: error: 2678401 is out of range: use 0 to 2678400`,
				`test.conf:7:24: error: lvs_timeouts udp needs a number of seconds`,
				`test.conf:8:23: error: "ALL" is not one of VS`,
				`test.conf:9:5: error: unknown keyword "lvs_sync_daemon_x" in global_defs; did you mean "lvs_sync_daemon"?`,
				`test.conf:14:5: error: lvs_sync_daemon is already set at test.conf:2:5`,
			},
			keepalived: []string{
				"Invalid syncid (256)",
				"Invalid lvs_sync_daemon maxlen (0)",
				"Invalid lvs_sync_daemon port (0)",
				"Invalid lvs_sync_daemon ttl (0)",
				"lvs_sync_daemon group address 192.0.2.1 is not multicast",
				"Unknown option bogus specified for lvs_sync_daemon",
				"lvs_sync_daemon has already been specified",
				"lvs_timeouts requires at least one option",
				"Unknown option fin specified for lvs_timeouts",
				"Invalid lvs_timeout udp (2678401)",
				"No value specified for lvs_timeout udp",
				"Unknown lvs_flush_on_stop type ALL",
				"lvs_sync_daemon_interface has already been specified",
			},
		},
	})
}

func TestLVSServices(t *testing.T) {
	src := `virtual_server_group g {
    192.0.2.1-3 80
    fwmark 7 inet
    2001:db8::a-b 443
    fwmark 8 inet6
    192.0.2.9/32 0
}
virtual_server group g {
    protocol TCP
    persistence_timeout 60
    lb_kind DR
    real_server 192.0.2.10 {
    }
    real_server 192.0.2.11 8080 {
        lvs_method NAT
    }
}
virtual_server 192.0.2.20 443 {
    protocol SCTP
    real_server 192.0.2.10 443 {
    }
}
virtual_server fwmark 3 {
    real_server 2001:db8::5 {
    }
}
virtual_server_group v6 {
    2001:db8::fffe-2001:db8::ffff 80
    fwmark 9
}
virtual_server group v6 {
    protocol UDP
    real_server 2001:db8::5 80 {
    }
}
`
	c, ds := Parse("test.conf", []byte(src), Options{ConfigID: "test"})
	if len(ds) != 0 {
		t.Fatalf("%v", ds)
	}
	k := func(fam int, a string, port int, proto string) ServiceKey {
		return ServiceKey{Family: fam, Addr: ip(a), Port: port, Protocol: proto}
	}
	want := [][]ServiceKey{
		{
			k(4, "192.0.2.1", 80, "TCP"), k(4, "192.0.2.2", 80, "TCP"), k(4, "192.0.2.3", 80, "TCP"),
			k(6, "2001:db8::a", 443, "TCP"), k(6, "2001:db8::b", 443, "TCP"),
			k(4, "192.0.2.9", 0, "TCP"),
			{Family: 4, FWMark: 7},
			{Family: 6, FWMark: 8},
		},
		{k(4, "192.0.2.20", 443, "SCTP")},
		{{Family: 6, FWMark: 3}},
		// a fwmark entry without a family takes the virtual server's
		{k(6, "2001:db8::fffe", 80, "UDP"), k(6, "2001:db8::ffff", 80, "UDP"), {Family: 6, FWMark: 9}},
	}
	if len(c.VirtualServers) != len(want) {
		t.Fatalf("%d virtual servers", len(c.VirtualServers))
	}
	for i, w := range want {
		if got := c.Services(c.VirtualServers[i]); !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n got  %+v\n want %+v", vsName(c.VirtualServers[i]), got, w)
		}
	}
	// Destination ports in the group: DR follows each service, NAT keeps its own.
	vs := c.VirtualServers[0]
	svcs := c.Services(vs)
	for i, w := range []struct{ dr, nat int }{{80, 8080}, {443, 8080}, {0, 8080}, {0, 8080}} {
		k := svcs[[]int{0, 3, 5, 6}[i]]
		if dr, nat := vs.DestPort(vs.RealServers[0], k), vs.DestPort(vs.RealServers[1], k); dr != w.dr || nat != w.nat {
			t.Errorf("%+v: DR %d NAT %d, want %d %d", k, dr, nat, w.dr, w.nat)
		}
	}
	if got := c.Services(&VirtualServer{Group: "missing"}); got != nil {
		t.Errorf("an undefined group has no services: %+v", got)
	}
}

func TestLVSVirtualServerSwitches(t *testing.T) {
	runLVSCases(t, []lvsCase{
		{
			name: "alpha, omega, ha_suspend and inhibit_on_failure are on whatever follows them",
			src: `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.1
    }
}
virtual_server 192.0.2.1 80 {
    protocol TCP
    alpha off
    omega no
    ha_suspend false
    inhibit_on_failure on
    sorry_server 192.0.2.99
    real_server 192.0.2.10 80 {
    }
}
`,
			diags: []string{
				`test.conf:10:11: warning: keepalived switches alpha on in a virtual_server whatever follows it; "off" is ignored; remove the line to leave it off`,
				`test.conf:11:11: warning: keepalived switches omega on`,
				`test.conf:12:16: warning: keepalived switches ha_suspend on`,
			},
			check: func(t *testing.T, c *Config) {
				vs := c.VirtualServers[0]
				if !vs.Alpha || !vs.Omega || !vs.HASuspend || !vs.RealServers[0].InhibitOnFailure || vs.RealServers[0].Checkers != nil {
					t.Errorf("%+v %+v", vs, vs.RealServers[0])
				}
				k := c.Services(vs)[0]
				// keepalived gives a NAT real server without a port the service's (vigil asks
				// for the port), but not the sorry server.
				if p := vs.DestPort(vs.SorryServer, k); p != 0 {
					t.Errorf("sorry server without a port: %d", p)
				}
			},
		},
	})
}

// TestLVSKeywordsRead: every keyword keepalived takes in a virtual_server, a real_server and
// global_defs' LVS settings is read by vigil, except the few listed as not supported.
func TestLVSKeywordsRead(t *testing.T) {
	notSupported := []string{"snmp_name", "SMTP_CHECK", "PING_CHECK", "UDP_CHECK", "DNS_CHECK", "FILE_CHECK", "BFD_CHECK"}
	try := func(t *testing.T, src, kw string) {
		t.Helper()
		_, ds := Parse("test.conf", []byte(src), Options{ConfigID: "test"})
		for _, d := range ds {
			if d.Unsupported && !slices.Contains(notSupported, kw) {
				t.Errorf("%s: %s", kw, d)
			}
		}
	}
	for _, kw := range knownKeepalived["virtual_server"] {
		try(t, "virtual_server 192.0.2.1 80 {\n    "+kw+"\n    real_server 192.0.2.10 80 {\n    }\n}\n", kw)
	}
	for _, kw := range knownKeepalived["virtual_server/real_server"] {
		try(t, "virtual_server 192.0.2.1 80 {\n    real_server 192.0.2.10 80 {\n        "+kw+"\n    }\n}\n", kw)
	}
	for _, kw := range knownKeepalived["global_defs"] {
		if strings.HasPrefix(kw, "lvs_") && !strings.Contains(kw, "netlink") && kw != "lvs_process_name" {
			try(t, "global_defs {\n    "+kw+"\n}\n", kw)
		}
	}
}
