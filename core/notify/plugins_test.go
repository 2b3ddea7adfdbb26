package notify

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/lvs"
	"github.com/vigil-ha/vigil/core/plugin"
)

// buildPlugins builds vigil's notify plugins into a fresh plugin directory.
func buildPlugins(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "vigil-notify-"+n), "github.com/vigil-ha/vigil/plugins/vigil-notify-"+n)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", n, err, out)
		}
	}
	return dir
}

// smtpSink is a plain SMTP server on 127.0.0.1:0 that keeps each message's data.
func smtpSink(t *testing.T) (port string, mails func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var got []string
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				r := bufio.NewReader(c)
				io.WriteString(c, "220 sink\r\n")
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch strings.ToUpper(strings.Fields(l + " x")[0]) {
					case "DATA":
						io.WriteString(c, "354 go\r\n")
						var data strings.Builder
						for {
							l, err := r.ReadString('\n')
							if err != nil || l == ".\r\n" {
								break
							}
							data.WriteString(l)
						}
						mu.Lock()
						got = append(got, data.String())
						mu.Unlock()
						io.WriteString(c, "250 queued\r\n")
					case "QUIT":
						io.WriteString(c, "221 bye\r\n")
						return
					default:
						io.WriteString(c, "250 ok\r\n")
					}
				}
			}()
		}
	}()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string{}, got...)
	}
}

// TestThroughRealPlugins: smtp_alert from global_defs reaches an SMTP server through the
// email plugin, and a vrrp_notify webhook action reaches an HTTP server through the webhook
// plugin with a signature the server verifies, for each event in order.
func TestThroughRealPlugins(t *testing.T) {
	pluginDir := buildPlugins(t, "email", "webhook")
	port, mails := smtpSink(t)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	var mu sync.Mutex
	var hooks []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte("s3cret"))
		m.Write(body)
		if !hmac.Equal([]byte(r.Header.Get("X-Vigil-Signature")), []byte("sha256="+hex.EncodeToString(m.Sum(nil)))) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev struct {
			Instance string `json:"instance"`
			NewState string `json:"new_state"`
		}
		json.Unmarshal(body, &ev)
		mu.Lock()
		hooks = append(hooks, ev.Instance+" "+ev.NewState)
		mu.Unlock()
	}))
	defer srv.Close()

	cfg := parse(t, `global_defs {
 router_id lb1
 notification_email {
  ops@example.com
 }
 notification_email_from vigil@example.com
 smtp_server 127.0.0.1 `+port+`
 smtp_alert
}
vrrp_notify hook {
 plugin webhook
 params {
  url `+srv.URL+`
  secret_file `+secret+`
 }
}
`+instance("VI_1", 1, " notify_action hook\n"))
	host := plugin.New(plugin.Options{Dir: pluginDir, Logger: testLog(t)})
	defer host.Close()
	d := New(cfg, Options{Plugins: host, Installed: func(n string) bool {
		_, err := os.Stat(filepath.Join(pluginDir, "vigil-notify-"+n))
		return err == nil
	}, Log: testLog(t)})
	defer d.Close()
	d.Transition(Transition{Instance: "VI_1", From: "INIT", To: "BACKUP", Priority: 100})
	d.Transition(Transition{Instance: "VI_1", From: "BACKUP", To: "MASTER", Priority: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	got := mails()
	if len(got) != 3 {
		t.Fatalf("%d mails, want 3 (BACKUP, MASTER, STOP): %q", len(got), got)
	}
	for i, want := range []string{"Subject: [lb1] VRRP instance VI_1 is BACKUP", "Subject: [lb1] VRRP instance VI_1 is MASTER", "Subject: [lb1] VRRP instance VI_1 is STOP"} {
		if !strings.Contains(got[i], want) || !strings.Contains(got[i], "To: ops@example.com") {
			t.Errorf("mail %d lacks %q:\n%s", i, want, got[i])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"VI_1 BACKUP", "VI_1 MASTER", "VI_1 STOP"}; strings.Join(hooks, ",") != strings.Join(want, ",") {
		t.Errorf("webhook got %q, want %q", hooks, want)
	}
}

// TestLVSMailThroughEmailPlugin: smtp_alert mails the load balancer's changes through the
// email plugin, as keepalived 2.2.7 decides them: a virtual server's quorum changes when its
// smtp_alert is on (off by default), a real server's up and down when its own is (on by
// default, whatever its virtual server's), with keepalived's subjects. A notification that
// changes nothing is not mailed: an alpha checker's first failure (the server started down),
// the same state twice, and across a reload the servers keep the state the notifications
// gave them. A real server a reload removes is mailed as removed, and the shutdown's
// notifications (omega) as shutting down.
func TestLVSMailThroughEmailPlugin(t *testing.T) {
	pluginDir := buildPlugins(t, "email")
	port, mails := smtpSink(t)
	global := `global_defs {
 router_id lb1
 notification_email {
  ops@example.com
 }
 notification_email_from vigil@example.com
 smtp_server 127.0.0.1 ` + port + `
}
`
	vs := func(withAlpha bool) string {
		s := `virtual_server 192.0.2.100 80 {
 lb_algo rr
 lb_kind NAT
 protocol TCP
 smtp_alert
 real_server 192.0.2.11 8080 {
  weight 1
  TCP_CHECK {
  }
 }
 real_server 192.0.2.12 8080 {
  weight 1
  smtp_alert no
 }
`
		if withAlpha {
			s += ` real_server 192.0.2.13 8080 {
  weight 1
  TCP_CHECK {
   alpha
  }
 }
`
		}
		return s + `}
virtual_server 192.0.2.101 80 {
 lb_algo rr
 lb_kind NAT
 protocol TCP
 real_server 192.0.2.14 8080 {
  weight 1
 }
}
`
	}
	host := plugin.New(plugin.Options{Dir: pluginDir, Logger: testLog(t)})
	defer host.Close()
	opts := Options{Plugins: host, Installed: func(n string) bool {
		_, err := os.Stat(filepath.Join(pluginDir, "vigil-notify-"+n))
		return err == nil
	}, Log: testLog(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const vs1, vs2 = "TCP 192.0.2.100:80", "TCP 192.0.2.101:80"
	ev := func(k lvs.Kind, svc, real string) LVSEvent { return LVSEvent{Kind: k, Service: svc, Real: real} }

	d := New(parse(t, global+vs(true)), opts)
	init1 := ev(lvs.QuorumUp, vs1, "")
	init1.Init = true
	init2 := ev(lvs.QuorumUp, vs2, "")
	init2.Init = true
	for _, e := range []LVSEvent{
		init1, init2, // mailed for vs1 only: vs2's smtp_alert is off
		ev(lvs.RealDown, vs1, "192.0.2.11:8080"),
		ev(lvs.RealDown, vs1, "192.0.2.12:8080"), // its smtp_alert is off
		ev(lvs.RealDown, vs1, "192.0.2.13:8080"), // alpha: it started down
		ev(lvs.RealUp, vs1, "192.0.2.13:8080"),
		ev(lvs.RealDown, vs2, "192.0.2.14:8080"), // a real server's smtp_alert is on by default
		ev(lvs.RealUp, vs1, "192.0.2.11:8080"),
		ev(lvs.RealUp, vs1, "192.0.2.11:8080"), // the same state again
		ev(lvs.RealDown, vs1, "192.0.2.11:8080"),
	} {
		d.LVS(e)
	}
	if err := d.WaitLVS(ctx); err != nil {
		t.Fatal(err)
	}
	// A reload that removes 192.0.2.13, which is up.
	d2 := New(parse(t, global+vs(false)), opts)
	d2.Adopt(d)
	d.Close()
	defer d2.Close()
	stop1 := ev(lvs.RealDown, vs1, "192.0.2.11:8080")
	stop1.Stopping = true
	stopQ := ev(lvs.QuorumDown, vs1, "")
	stopQ.Stopping = true
	for _, e := range []LVSEvent{
		ev(lvs.RealDown, vs1, "192.0.2.13:8080"), // removed by the reload
		ev(lvs.RealDown, vs1, "192.0.2.11:8080"), // down before the reload already
		ev(lvs.RealUp, vs1, "192.0.2.11:8080"),
		stop1, stopQ,
	} {
		d2.LVS(e)
	}
	if err := d2.WaitLVS(ctx); err != nil {
		t.Fatal(err)
	}

	type mail struct{ subject, detail string }
	var got1, got2 []mail
	for _, m := range mails() {
		var subj, detail string
		for _, l := range strings.Split(m, "\r\n") {
			if s, ok := strings.CutPrefix(l, "Subject: "); ok {
				subj = s
			}
			if strings.HasPrefix(l, "=> ") {
				detail = l
			}
		}
		if !strings.Contains(m, "To: ops@example.com") || !strings.Contains(m, "From: vigil@example.com") {
			t.Errorf("mail without its sender or recipient:\n%s", m)
		}
		if strings.Contains(subj, "192.0.2.101") {
			got2 = append(got2, mail{subj, detail})
		} else {
			got1 = append(got1, mail{subj, detail})
		}
	}
	const rs = "[lb1] Realserver [192.0.2.%d]:tcp:8080 of virtual server [192.0.2.100]:tcp:80 - %s"
	want1 := []mail{
		{"[lb1] Virtualserver [192.0.2.100]:tcp:80 - UP", "=> Starting with quorum up <="},
		{fmt.Sprintf(rs, 11, "DOWN"), "=> A checker failed on service <="},
		{fmt.Sprintf(rs, 13, "UP"), "=> All checkers succeed on service <="},
		{fmt.Sprintf(rs, 11, "UP"), "=> All checkers succeed on service <="},
		{fmt.Sprintf(rs, 11, "DOWN"), "=> A checker failed on service <="},
		{fmt.Sprintf(rs, 13, "DOWN"), "=> Removing <="},
		{fmt.Sprintf(rs, 11, "UP"), "=> All checkers succeed on service <="},
		{fmt.Sprintf(rs, 11, "DOWN"), "=> Shutting down <="},
		{"[lb1] Virtualserver [192.0.2.100]:tcp:80 - DOWN", "=> Shutting down <="},
	}
	want2 := []mail{{"[lb1] Realserver [192.0.2.14]:tcp:8080 of virtual server [192.0.2.101]:tcp:80 - DOWN", "=> A checker failed on service <="}}
	if !slices.Equal(got1, want1) {
		t.Errorf("mails of 192.0.2.100:80:\n got %q\nwant %q", got1, want1)
	}
	if !slices.Equal(got2, want2) {
		t.Errorf("mails of 192.0.2.101:80:\n got %q\nwant %q", got2, want2)
	}
}
