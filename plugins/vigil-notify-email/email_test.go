package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk/notify"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

var ev = notify.Event{Node: "lb1", Instance: "VI_1", Group: "G1", OldState: "BACKUP", NewState: "MASTER", Priority: 150,
	Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), VIPs: []string{"192.0.2.10/24", "2001:db8::10/64"}}

func params(kv ...any) []notify.Param {
	var ps []notify.Param
	for i := 0; i < len(kv); i += 2 {
		var vals []string
		switch v := kv[i+1].(type) {
		case string:
			vals = []string{v}
		case []string:
			vals = v
		}
		ps = append(ps, notify.Param{Key: kv[i].(string), Values: vals})
	}
	return ps
}

func passwordFile(t *testing.T, pw string) string {
	p := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(p, []byte(pw+"\n"), 0o600)
	return p
}

func send(t *testing.T, n notify.Notifier, ps []notify.Param, e notify.Event) error {
	t.Helper()
	if _, err := n.Configure(context.Background(), notify.ConfigureRequest{Name: "mail", Params: ps}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := n.Notify(ctx, notify.NotifyRequest{Name: "mail", Event: e})
	return err
}

func TestMailModes(t *testing.T) {
	srvTLS, caFile := testCert(t)
	for _, tc := range []struct {
		name    string
		srv     *smtpd
		ps      []any
		wantTLS bool
		authed  string
	}{
		{"plain SMTP as keepalived", &smtpd{}, []any{"tls", "none"}, false, ""},
		{"opportunistic without STARTTLS offered", &smtpd{}, nil, false, ""},
		{"opportunistic takes STARTTLS", &smtpd{tls: srvTLS}, []any{"ca_file", caFile}, true, ""},
		{"starttls with AUTH PLAIN", &smtpd{tls: srvTLS, user: "vigil", pass: "pw"}, []any{"tls", "starttls", "ca_file", caFile, "username", "vigil", "password_file", passwordFile(t, "pw")}, true, "vigil"},
		{"implicit TLS with AUTH LOGIN", &smtpd{tls: srvTLS, implicit: true, user: "vigil", pass: "pw"}, []any{"tls", "implicit", "ca_file", caFile, "username", "vigil", "password_file", passwordFile(t, "pw"), "auth", "login"}, true, "vigil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSMTPD(t, tc.srv)
			n := sdktest.ServeNotifier(t, newMailer())
			ps := params(append([]any{"server", "127.0.0.1", "port", s.port(), "to", []string{"ops@example.com", "dba@example.com"}, "from", "vigil@example.com", "helo", "lb1.example.com"}, tc.ps...)...)
			if err := send(t, n, ps, ev); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			got := s.received()
			if len(got) != 1 {
				t.Fatalf("server received %d mails", len(got))
			}
			m := got[0]
			if m.from != "vigil@example.com" || !slices.Equal(m.to, []string{"ops@example.com", "dba@example.com"}) {
				t.Errorf("envelope from %q to %q", m.from, m.to)
			}
			if m.tls != tc.wantTLS || m.authed != tc.authed {
				t.Errorf("tls %v authed %q, want %v %q", m.tls, m.authed, tc.wantTLS, tc.authed)
			}
			for _, want := range []string{"Subject: [lb1] VRRP instance VI_1 is MASTER", "From: vigil@example.com", "To: ops@example.com, dba@example.com",
				"now holds its virtual addresses", "BACKUP -> MASTER", "Priority:  150", "192.0.2.10/24 2001:db8::10/64", "2026-05-01T12:00:00Z"} {
				if !strings.Contains(m.data, want) {
					t.Errorf("mail lacks %q:\n%s", want, m.data)
				}
			}
		})
	}
}

func TestMailFailures(t *testing.T) {
	srvTLS, caFile := testCert(t)
	_, otherCA := testCert(t)
	for _, tc := range []struct {
		name string
		srv  *smtpd
		ps   []any
		want string
	}{
		{"starttls required but not offered", &smtpd{}, []any{"tls", "starttls"}, "does not offer STARTTLS"},
		{"unknown CA", &smtpd{tls: srvTLS}, []any{"tls", "starttls", "ca_file", otherCA}, "certificate"},
		{"wrong password", &smtpd{tls: srvTLS, user: "vigil", pass: "pw"}, []any{"tls", "starttls", "ca_file", caFile, "username", "vigil", "password_file", passwordFile(t, "nope")}, "535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSMTPD(t, tc.srv)
			n := sdktest.ServeNotifier(t, newMailer())
			ps := params(append([]any{"server", "127.0.0.1", "port", s.port(), "to", "ops@example.com"}, tc.ps...)...)
			err := send(t, n, ps, ev)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Notify = %v, want %q", err, tc.want)
			}
			if got := s.received(); len(got) != 0 {
				t.Errorf("a mail went through: %+v", got)
			}
		})
	}
}

// TestHungServerCancelled: a server that accepts and says nothing fails the call at its
// deadline.
func TestHungServerCancelled(t *testing.T) {
	s := startSMTPD(t, &smtpd{hang: true})
	n := sdktest.ServeNotifier(t, newMailer())
	if _, err := n.Configure(context.Background(), notify.ConfigureRequest{Name: "mail", Params: params("server", "127.0.0.1", "port", s.port(), "to", "ops@example.com")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := n.Notify(ctx, notify.NotifyRequest{Name: "mail", Event: ev})
	if err == nil {
		t.Fatal("a silent server did not fail the call")
	}
	// The call ends at the deadline: gRPC's own timer for it may fire a moment before the
	// context's, so allow a little; a silent server must not fail it much earlier.
	if dl, _ := ctx.Deadline(); time.Until(dl) > 50*time.Millisecond {
		t.Errorf("Notify returned %v %v before its deadline", err, time.Until(dl))
	}
}

func TestGroupMail(t *testing.T) {
	s := startSMTPD(t, &smtpd{})
	n := sdktest.ServeNotifier(t, newMailer())
	g := ev
	g.Instance, g.NewState, g.Priority = "", "STOP", 0
	if err := send(t, n, params("server", "127.0.0.1", "port", s.port(), "to", "ops@example.com", "tls", "none"), g); err != nil {
		t.Fatal(err)
	}
	m := s.received()[0]
	if !strings.Contains(m.data, "Subject: [lb1] VRRP sync group G1 is STOP") || !strings.Contains(m.data, "is stopping") || strings.Contains(m.data, "Priority:") {
		t.Errorf("group mail:\n%s", m.data)
	}
}

// TestLoadBalancerMail: a real server's and a virtual server's events get keepalived's
// subjects and say what happened; nothing of VRRP's (priority, addresses) is in them.
func TestLoadBalancerMail(t *testing.T) {
	s := startSMTPD(t, &smtpd{})
	n := sdktest.ServeNotifier(t, newMailer())
	ps := params("server", "127.0.0.1", "port", s.port(), "to", "ops@example.com", "tls", "none")
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	rs := notify.Event{Node: "lb1", NewState: "DOWN", Time: at, VirtualServer: "[192.0.2.100]:tcp:80", RealServer: "[192.0.2.11]:tcp:80",
		Detail: "=> Real server down: a checker failed <="}
	vs := notify.Event{Node: "lb1", NewState: "UP", Time: at, VirtualServer: "FWM 7", Detail: "=> Gained quorum <="}
	for _, e := range []notify.Event{rs, vs} {
		if err := send(t, n, ps, e); err != nil {
			t.Fatal(err)
		}
	}
	got := s.received()
	if len(got) != 2 {
		t.Fatalf("%d mails, want 2", len(got))
	}
	for i, want := range [][]string{
		{"Subject: [lb1] Realserver [192.0.2.11]:tcp:80 of virtual server [192.0.2.100]:tcp:80 - DOWN",
			"real server [192.0.2.11]:tcp:80 of virtual server [192.0.2.100]:tcp:80 is down", "=> Real server down: a checker failed <=",
			"Real server:    [192.0.2.11]:tcp:80", "Time:           2026-05-01T12:00:00Z"},
		{"Subject: [lb1] Virtualserver FWM 7 - UP", "virtual server FWM 7 has its quorum", "=> Gained quorum <="},
	} {
		for _, w := range want {
			if !strings.Contains(got[i].data, w) {
				t.Errorf("mail %d lacks %q:\n%s", i, w, got[i].data)
			}
		}
		for _, bad := range []string{"VRRP", "Priority:", "Addresses:"} {
			if strings.Contains(got[i].data, bad) {
				t.Errorf("mail %d has %q:\n%s", i, bad, got[i].data)
			}
		}
	}
}

func TestConfigureErrors(t *testing.T) {
	n := sdktest.ServeNotifier(t, newMailer())
	for _, tc := range []struct {
		ps   []notify.Param
		want string
	}{
		{params("to", "a@example.com"), "server is required"},
		{params("server", "127.0.0.1"), "to is required"},
		{params("server", "127.0.0.1", "to", "a@example.com", "tls", "maybe"), `"maybe": use none`},
		{params("server", "127.0.0.1", "to", "a@example.com", "port", "70000"), "not a port"},
		{params("server", "127.0.0.1", "to", "a@example.com", "auth", "xoauth"), "use plain, login or cram-md5"},
		{params("server", "127.0.0.1", "to", "a@example.com", "username", "u"), "go together"},
		{params("server", "mail.example.com", "to", "a@example.com", "tls", "none", "username", "u", "password_file", passwordFile(t, "p")), "in clear"},
		{params("server", "127.0.0.1", "to", "a@example.com\r\nBcc: x@example.com"), "no line breaks"},
		{params("server", "127.0.0.1", "to", "a@example.com", "colour", "red"), `unknown param "colour"`},
	} {
		_, err := n.Configure(context.Background(), notify.ConfigureRequest{Name: "mail", Params: tc.ps, ValidateOnly: true})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Configure(%v) = %v, want %q", tc.ps, err, tc.want)
		}
	}
}

// TestBinary runs the built plugin the way vigil starts it, with the params core sends for
// keepalived's smtp_alert.
func TestBinary(t *testing.T) {
	s := startSMTPD(t, &smtpd{})
	n := sdktest.LaunchNotifier(t, sdktest.Build(t, "."))
	if err := send(t, n, params("server", "127.0.0.1", "port", s.port(), "to", "ops@example.com", "from", "vigil@example.com", "tls", "none", "connect_timeout", "30s"), ev); err != nil {
		t.Fatal(err)
	}
	if got := s.received(); len(got) != 1 || !strings.Contains(got[0].data, "VI_1 is MASTER") {
		t.Errorf("received %+v", got)
	}
}
