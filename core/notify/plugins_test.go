package notify

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
