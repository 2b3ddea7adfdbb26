package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// vigil -t asks the plugins to validate their params and prints their objections at the
// vrrp_check's line, for the http and tcp plugins as built.
func TestVigilConfigTest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds vigil and two plugins")
	}
	dir := t.TempDir()
	for _, pkg := range []string{"../../cmd/vigil", ".", "../vigil-check-tcp"} {
		cmd := exec.Command("go", "build", "-o", dir+"/", pkg)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("go build %s: %v", pkg, err)
		}
	}
	conf := filepath.Join(dir, "vigil.conf")
	text := `global_defs {
    plugin_dir ` + dir + `
}
vrrp_check chk_web {
    plugin http
    params {
        address 127.0.0.1:443
        tls yes
        url {
            path /health
            status_code 200 204
        }
    }
}
vrrp_check chk_bad_web {
    plugin http
    params {
        address 127.0.0.1:80
        url {
            path /
            status_code 2xx
        }
    }
}
vrrp_check chk_redis {
    plugin tcp
    params {
        address 127.0.0.1:6379
        send "PING\r\n"
        expect "+PONG"
    }
}
vrrp_check chk_bad_tcp {
    plugin tcp
    params {
        address 127.0.0.1:6379
        send "PING\q"
    }
}
`
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(dir, "vigil"), "-t", "-f", conf).CombinedOutput()
	if err == nil {
		t.Fatalf("vigil -t accepted bad params:\n%s", out)
	}
	for _, want := range []string{
		conf + `:15:1: error: vrrp_check "chk_bad_web": plugin http: status_code "2xx": want a code from 100 to 599`,
		conf + `:33:1: error: vrrp_check "chk_bad_tcp": plugin tcp: send: "PING\\q": unknown escape \q`,
		"2 error(s)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("vigil -t output lacks %q:\n%s", want, out)
		}
	}
}
