package checksched

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/config"
)

// render prints params as "key values" lines, blocks indented, for comparison.
func render(ps []config.Param, indent string) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(indent + p.Key)
		for _, v := range p.Values {
			b.WriteString(" " + v)
		}
		b.WriteString("\n")
		b.WriteString(render(p.Block, indent+"  "))
	}
	return b.String()
}

type allPlugins struct{ fakePlugins }

func (a *allPlugins) HasCheck(name string) bool { return name != "missing" }

func TestRealServerCheckers(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	os.WriteFile(conf, []byte(`
vrrp_check chk_db {
    plugin mysql
    params {
        user monitor
    }
}
virtual_server 192.0.2.100 80 {
    delay_loop 6
    virtualhost www.example.com
    real_server 192.0.2.11 80 {
        TCP_CHECK {
            connect_port 8080
            connect_timeout 3
            retry 2
            delay_before_retry 1
        }
        HTTP_GET {
            connect_timeout 2.5
            url {
                path /health
                digest 9b3a0c85a887a256d6939da88aabd8cd
                status_code 200-299
            }
            url {
                path /
                status_code 200
            }
        }
    }
    real_server 192.0.2.12 443 {
        SSL_GET {
            url {
                path /
                regex "ready|ok"
                regex_no_match
            }
            enable_sni
            sni_name api.example.com
            http_protocol 1.1
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check_app 192.0.2.12"
            misc_timeout 4
            misc_dynamic
        }
        PLUGIN_CHECK {
            check chk_db
        }
        PLUGIN_CHECK {
            plugin missing
        }
    }
}
`), 0o644)
	cfg, ds := config.Load(conf, config.Options{})
	for _, d := range ds {
		if d.Severity == config.SevError {
			t.Fatalf("config: %v", d)
		}
	}
	p := &allPlugins{}
	specs, err := FromConfig(context.Background(), cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 6 {
		t.Fatalf("%d specs, want 6", len(specs))
	}
	got := map[string]string{}
	for _, c := range p.got {
		got[c.Name] = c.Plugin + "\n" + render(c.Params, "  ")
	}
	want := map[string]string{
		"192.0.2.100:80/192.0.2.11:80/TCP_CHECK": "tcp\n  address 192.0.2.11:8080\n",
		"192.0.2.100:80/192.0.2.11:80/HTTP_GET": "http\n  address 192.0.2.11:80\n  connect_timeout 2.5s\n  virtualhost www.example.com\n" +
			"  url\n    path /health\n    digest 9b3a0c85a887a256d6939da88aabd8cd\n    status_code 200-299\n" +
			"  url\n    path /\n    status_code 200\n",
		"192.0.2.100:80/192.0.2.12:443/SSL_GET":      "http\n  address 192.0.2.12:443\n  connect_timeout 5s\n  http_protocol 1.1\n  tls yes\n  enable_sni yes\n  sni_name api.example.com\n  virtualhost www.example.com\n  url\n    path /\n    status_code 200-299\n    regex ready|ok\n    regex_no_match yes\n",
		"192.0.2.100:80/192.0.2.12:443/MISC_CHECK":   "exec\n  command /usr/local/bin/check_app 192.0.2.12\n  mode misc_check\n  dynamic yes\n",
		"192.0.2.100:80/192.0.2.12:443/PLUGIN_CHECK": "mysql\n  address 192.0.2.12:443\n  user monitor\n",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s:\n got %q\nwant %q", name, got[name], w)
		}
	}
	// keepalived's timing: connect_timeout, retry+1 failures delay_before_retry apart, the
	// virtual server's delay_loop.
	for _, s := range specs {
		if s.FirstDecides {
			// keepalived's checkers start up (alpha: down), unlike its vrrp_scripts.
			t.Errorf("%s starts unknown; a real_server checker starts up", s.Name)
		}
		if strings.HasSuffix(s.Name, "/TCP_CHECK") && (s.Timeout != 3*time.Second || s.Fall != 3 || s.RetryDelay != time.Second || s.Interval != 6*time.Second) {
			t.Errorf("TCP_CHECK spec %+v", s)
		}
		// HTTP_GET: each step gets connect_timeout in the plugin, the probe two of them.
		if strings.HasSuffix(s.Name, "/HTTP_GET") && s.Timeout != 5*time.Second {
			t.Errorf("HTTP_GET timeout %v, want 2 × connect_timeout 2.5s", s.Timeout)
		}
		if strings.HasSuffix(s.Name, "/SSL_GET") && s.Timeout != 10*time.Second {
			t.Errorf("SSL_GET timeout %v, want 2 × the default connect_timeout 5s", s.Timeout)
		}
		if strings.HasSuffix(s.Name, "/MISC_CHECK") && s.Timeout != 4*time.Second {
			t.Errorf("MISC_CHECK timeout %v, want misc_timeout 4s", s.Timeout)
		}
		if strings.HasSuffix(s.Name, "PLUGIN_CHECK#2") {
			if r := s.Prober.Probe(context.Background()); r.OK || !strings.Contains(r.Msg, "not installed") {
				t.Errorf("a checker whose plugin is missing: %+v", r)
			}
		}
	}
}

// hostPort names and addresses checkers as net.JoinHostPort would, in one allocation.
func TestHostPortLikeJoinHostPort(t *testing.T) {
	for _, a := range []string{"192.0.2.1", "2001:db8::1", "fe80::1%eth0", "::ffff:192.0.2.1"} {
		for _, p := range []int{0, 1, 80, 65535, 70000} {
			ad := netip.MustParseAddr(a)
			if got, want := hostPort(ad, p), net.JoinHostPort(ad.String(), strconv.Itoa(p)); got != want {
				t.Errorf("hostPort(%s, %d) = %q; want %q", a, p, got, want)
			}
		}
	}
}
