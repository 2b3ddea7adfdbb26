// Command vigil-notify-email is vigil's notify plugin that mails each state change through
// an SMTP server: keepalived's smtp_alert runs through it, and so does any vrrp_notify block
// that names it. See README.md.
//
// It speaks SMTP with the standard library's net/smtp: it covers what is needed here
// (EHLO, STARTTLS, AUTH PLAIN and CRAM-MD5, one message per connection), is maintained with
// Go, and adds no dependency to a binary that runs as root. AUTH LOGIN, which net/smtp
// lacks and some servers still require, is the small Auth below.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/core/opfile"
	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/notify"
)

func main() { notify.Serve(newMailer()) }

// mailer keeps the configured mail settings by notifier name; vigil calls it concurrently.
type mailer struct {
	mail notify.Configured[*settings]
}

var _ notify.Notifier = (*mailer)(nil)

func newMailer() *mailer { return &mailer{} }

// TLS modes.
const (
	tlsNone          = "none"          // plain SMTP, as keepalived's smtp_alert
	tlsOpportunistic = "opportunistic" // STARTTLS when the server offers it
	tlsStartTLS      = "starttls"      // STARTTLS required
	tlsImplicit      = "implicit"      // TLS from the first byte (port 465)
)

// settings is one configured notifier.
type settings struct {
	server         string
	port           int
	from           string
	to             []string
	helo           string
	tlsMode        string
	tlsConfig      *tls.Config
	username       string
	password       string
	authMech       string
	connectTimeout time.Duration
}

func (m *mailer) Describe(context.Context) (notify.Info, error) {
	return notify.Info{
		Name:        "email",
		Version:     "0.1.0",
		Description: "mails each state change through an SMTP server (keepalived's smtp_alert)",
		Params: []notify.ParamSpec{
			{Name: "server", Type: notify.TypeString, Required: true, Description: "SMTP server host name or address (keepalived's smtp_server)"},
			{Name: "port", Type: notify.TypeInt, Description: "default 25, or 465 with tls implicit"},
			{Name: "to", Type: notify.TypeList, Required: true, Description: "recipients (keepalived's notification_email)"},
			{Name: "from", Type: notify.TypeString, Description: "sender (keepalived's notification_email_from); default vigil@HOSTNAME"},
			{Name: "helo", Type: notify.TypeString, Description: "name given in EHLO (keepalived's smtp_helo_name); default the host name"},
			{Name: "tls", Type: notify.TypeString, Default: tlsOpportunistic, Description: "none, opportunistic (STARTTLS when offered), starttls (required) or implicit (TLS from the start)"},
			{Name: "ca_file", Type: notify.TypeString, Description: "PEM CA certificates to verify the server with, instead of the system's"},
			{Name: "server_name", Type: notify.TypeString, Description: "name the server's certificate must carry; default server"},
			{Name: "insecure_skip_verify", Type: notify.TypeBool, Default: "no", Description: "accept any server certificate (encryption without authentication)"},
			{Name: "username", Type: notify.TypeString, Description: "log in as this user"},
			{Name: "password_file", Type: notify.TypeSecretFile, Description: "file whose first line is the password"},
			{Name: "auth", Type: notify.TypeString, Default: "plain", Description: "plain, login or cram-md5"},
			{Name: "connect_timeout", Type: notify.TypeDuration, Default: "30", Description: "limit for connecting (keepalived's smtp_connect_timeout); the call's deadline bounds the whole mail"},
		},
	}, nil
}

func (m *mailer) Configure(_ context.Context, req notify.ConfigureRequest) (notify.ConfigureResponse, error) {
	s, warnings, err := parse(req.Params)
	if err != nil {
		return notify.ConfigureResponse{}, err
	}
	m.mail.Keep(req, s)
	return notify.ConfigureResponse{Warnings: warnings}, nil
}

func (m *mailer) Notify(ctx context.Context, req notify.NotifyRequest) (notify.NotifyResponse, error) {
	s, err := m.mail.Lookup(req.Name)
	if err != nil {
		return notify.NotifyResponse{}, err
	}
	return notify.NotifyResponse{}, s.send(ctx, compose(s, req.Event, time.Now()))
}

// send delivers msg over one connection, within ctx: the connection's deadline is ctx's, and
// ctx's end closes it, so that no SMTP step outlives the call.
func (s *settings) send(ctx context.Context, msg []byte) error {
	addr := net.JoinHostPort(s.server, strconv.Itoa(s.port))
	dctx, cancel := context.WithTimeout(ctx, s.connectTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	if s.tlsMode == tlsImplicit {
		conn, err = (&tls.Dialer{Config: s.tlsConfig}).DialContext(dctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	err = s.converse(conn, msg)
	if ctx.Err() != nil {
		return fmt.Errorf("mail through %s: %w", addr, ctx.Err())
	}
	return err
}

func (s *settings) converse(conn net.Conn, msg []byte) error {
	c, err := smtp.NewClient(conn, s.server)
	if err != nil {
		return fmt.Errorf("%s: greeting: %w", s.server, err)
	}
	defer c.Close()
	if err := c.Hello(s.helo); err != nil {
		return fmt.Errorf("%s: EHLO: %w", s.server, err)
	}
	if s.tlsMode == tlsStartTLS || s.tlsMode == tlsOpportunistic {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tlsConfig); err != nil {
				return fmt.Errorf("%s: STARTTLS: %w", s.server, err)
			}
		} else if s.tlsMode == tlsStartTLS {
			return fmt.Errorf("%s does not offer STARTTLS, and tls is starttls: the mail was not sent in clear", s.server)
		}
	}
	if s.username != "" {
		if err := c.Auth(s.auth()); err != nil {
			return fmt.Errorf("%s: AUTH %s as %s: %w", s.server, s.authMech, s.username, err)
		}
	}
	if err := c.Mail(s.from); err != nil {
		return fmt.Errorf("%s: MAIL FROM %s: %w", s.server, s.from, err)
	}
	for _, r := range s.to {
		if err := c.Rcpt(r); err != nil {
			return fmt.Errorf("%s: RCPT TO %s: %w", s.server, r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("%s: DATA: %w", s.server, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("%s: message: %w", s.server, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: message refused: %w", s.server, err)
	}
	return c.Quit()
}

func (s *settings) auth() smtp.Auth {
	switch s.authMech {
	case "login":
		return &loginAuth{user: s.username, pass: s.password, host: s.server}
	case "cram-md5":
		return smtp.CRAMMD5Auth(s.username, s.password)
	}
	return smtp.PlainAuth("", s.username, s.password, s.server)
}

// loginAuth is AUTH LOGIN: the user name and the password, each in answer to the server's
// prompt. Like net/smtp's PLAIN, it refuses to send them in clear except to localhost.
type loginAuth struct{ user, pass, host string }

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !isLocalhost(server.Name) {
		return "", nil, errors.New("unencrypted connection: AUTH LOGIN would send the password in clear")
	}
	if server.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(fromServer))) {
	case "username:", "user name", "username":
		return []byte(a.user), nil
	case "password:", "password":
		return []byte(a.pass), nil
	}
	return nil, fmt.Errorf("unexpected AUTH LOGIN prompt %q", fromServer)
}

func isLocalhost(name string) bool {
	return name == "localhost" || name == "127.0.0.1" || name == "::1"
}

var knownTLS = []string{tlsNone, tlsOpportunistic, tlsStartTLS, tlsImplicit}

func parse(params []notify.Param) (*settings, []string, error) {
	s := &settings{tlsMode: tlsOpportunistic, authMech: "plain", connectTimeout: 30 * time.Second}
	var caFile, serverName, passwordFile string
	var skipVerify bool
	var warnings []string
	for _, p := range params {
		var err error
		switch p.Key {
		case "server":
			s.server = p.Value()
		case "port":
			s.port, err = strconv.Atoi(p.Value())
			if err == nil && (s.port < 1 || s.port > 65535) {
				err = fmt.Errorf("%d is not a port", s.port)
			}
		case "to":
			s.to = append(s.to, p.Values...)
		case "from":
			s.from = p.Value()
		case "helo":
			s.helo = p.Value()
		case "tls":
			s.tlsMode = strings.ToLower(p.Value())
			if !slices.Contains(knownTLS, s.tlsMode) {
				err = fmt.Errorf("%q: use %s", p.Value(), strings.Join(knownTLS, ", "))
			}
		case "ca_file":
			caFile = p.Value()
		case "server_name":
			serverName = p.Value()
		case "insecure_skip_verify":
			skipVerify, err = sdk.ParseBool(p.Value())
		case "username":
			s.username = p.Value()
		case "password_file":
			passwordFile = p.Value()
		case "auth":
			s.authMech = strings.ToLower(p.Value())
			if !slices.Contains([]string{"plain", "login", "cram-md5"}, s.authMech) {
				err = fmt.Errorf("%q: use plain, login or cram-md5", p.Value())
			}
		case "connect_timeout":
			s.connectTimeout, err = sdk.ParseDuration(p.Value())
			if err == nil && s.connectTimeout == 0 {
				err = errors.New("must be more than 0")
			}
		default:
			return nil, nil, fmt.Errorf("unknown param %q (known: server, port, to, from, helo, tls, ca_file, server_name, insecure_skip_verify, username, password_file, auth, connect_timeout)", p.Key)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p.Key, err)
		}
	}
	if s.server == "" {
		return nil, nil, errors.New("server is required: the SMTP server to send through (smtp_server)")
	}
	if len(s.to) == 0 {
		return nil, nil, errors.New("to is required: who gets the mail (notification_email)")
	}
	for _, a := range append([]string{s.from}, s.to...) {
		if strings.ContainsAny(a, "\r\n<>") {
			return nil, nil, fmt.Errorf("address %q: no line breaks or angle brackets", a)
		}
	}
	if s.port == 0 {
		s.port = 25
		if s.tlsMode == tlsImplicit {
			s.port = 465
		}
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	if s.helo == "" {
		s.helo = host
	}
	if s.from == "" {
		s.from = "vigil@" + host
	}
	if (s.username == "") != (passwordFile == "") {
		return nil, nil, errors.New("username and password_file go together")
	}
	if passwordFile != "" {
		pw, err := readSecret(passwordFile)
		if err != nil {
			return nil, nil, fmt.Errorf("password_file: %w", err)
		}
		s.password = pw
	}
	if s.username != "" && s.tlsMode == tlsNone && !isLocalhost(s.server) {
		return nil, nil, errors.New("username with tls none would send the password in clear: use tls starttls or implicit")
	}
	if s.tlsMode == tlsNone && (caFile != "" || skipVerify || serverName != "") {
		warnings = append(warnings, "ca_file, server_name and insecure_skip_verify do nothing with tls none")
	}
	if serverName == "" {
		serverName = s.server
	}
	s.tlsConfig = &tls.Config{ServerName: serverName, InsecureSkipVerify: skipVerify, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := opfile.Read(caFile, opfile.PEMLimit)
		if err != nil {
			return nil, nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("ca_file %s: no PEM certificate in it", caFile)
		}
		s.tlsConfig.RootCAs = pool
	}
	return s, warnings, nil
}

// readSecret reads the first line of path; a file that everyone can read is refused.
func readSecret(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if perm := fi.Mode().Perm(); perm&0o004 != 0 {
		return "", fmt.Errorf("%s is readable by everyone (mode %04o): chmod o-rwx %s", path, perm, path)
	}
	b, err := opfile.Read(path, opfile.LineLimit)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("%s: the first line is empty", path)
	}
	return line, nil
}
