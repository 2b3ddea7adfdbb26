package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/core/opfile"
	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
)

// config is one check's params, with the files they name already read. It is comparable, so
// that a Configure with the same params (a reload, a replay after a plugin restart) keeps the
// open connection instead of reconnecting.
type config struct {
	network string // "tcp" or "unix"
	addr    string // host:port or socket path

	user, password string
	database       string

	tlsMode                string // no, yes, skip-verify, preferred
	tlsServerName          string
	caPEM, certPEM, keyPEM string

	connectTimeout, readTimeout time.Duration // 0: the probe's deadline

	query string

	expectWritable, expectReadOnly bool
	expectReplication              bool
	maxLag                         time.Duration
	maxLagSet                      bool
	lagWeight                      int // 0: no dynamic weight
	expectGalera                   bool
}

const defaultQuery = "SELECT 1"

// paramSpecs documents the params for Describe (and so `vigil plugins`).
func paramSpecs() []check.ParamSpec {
	return []check.ParamSpec{
		{Name: "address", Type: check.TypeString, Default: "127.0.0.1:3306", Description: "HOST:PORT of the server (HOST alone: port 3306); not with socket"},
		{Name: "socket", Type: check.TypeString, Description: "unix socket PATH of the server, instead of address"},
		{Name: "user", Type: check.TypeString, Required: true, Description: "account to log in as"},
		{Name: "password", Type: check.TypeString, Description: "its password (prefer password_file)"},
		{Name: "password_file", Type: check.TypeSecretFile, Description: "file whose first line is the password; read at configuration, must not be readable by others"},
		{Name: "database", Type: check.TypeString, Description: "default database of the session"},
		{Name: "tls", Type: check.TypeString, Default: "no", Description: "no, yes (verify the server's certificate), skip-verify (encrypt, do not verify) or preferred (TLS when the server offers it, unverified)"},
		{Name: "ca_file", Type: check.TypeString, Description: "PEM CA certificates that verify the server (tls yes); default: the system's"},
		{Name: "cert_file", Type: check.TypeString, Description: "PEM client certificate (with key_file)"},
		{Name: "key_file", Type: check.TypeSecretFile, Description: "PEM key of cert_file"},
		{Name: "tls_server_name", Type: check.TypeString, Description: "name the server's certificate must carry (default: the address's host)"},
		{Name: "connect_timeout", Type: check.TypeDuration, Description: "limit for connecting and logging in (default: the probe's timeout)"},
		{Name: "read_timeout", Type: check.TypeDuration, Description: "limit for each read and write on the connection (default: the probe's timeout)"},
		{Name: "query", Type: check.TypeString, Default: defaultQuery, Description: "statement that must succeed; its rows are read and ignored"},
		{Name: "expect_writable", Type: check.TypeBool, Default: "no", Description: "critical unless read_only is OFF"},
		{Name: "expect_read_only", Type: check.TypeBool, Default: "no", Description: "critical unless read_only is ON"},
		{Name: "expect_replication", Type: check.TypeBool, Default: "no", Description: "critical unless the server is a replica with its IO and SQL threads running"},
		{Name: "max_replication_lag", Type: check.TypeDuration, Description: "critical when Seconds_Behind_Master (or _Source) is above this, or NULL"},
		{Name: "lag_weight", Type: check.TypeInt, Description: "1-253: report a dynamic weight that falls from 0 at no lag to -N at max_replication_lag (needs it)"},
		{Name: "expect_galera", Type: check.TypeBool, Default: "no", Description: "critical unless wsrep_ready is ON and wsrep_local_state is 4 (Synced)"},
	}
}

func knownParams() string {
	specs := paramSpecs()
	names := make([]string, len(specs))
	for i, p := range specs {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// parse reads and checks the params of one check. Warnings are accepted but worth saying.
func parse(ps []check.Param) (config, []string, error) {
	c := config{network: "tcp", addr: "127.0.0.1:3306", tlsMode: "no", query: defaultQuery}
	var warnings []string
	var address, socket, passwordFile, caFile, certFile, keyFile string
	var hasPassword bool
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.Key] {
			return config{}, nil, fmt.Errorf("%s is given twice", p.Key)
		}
		seen[p.Key] = true
		v := p.Value()
		var err error
		switch p.Key {
		case "address":
			address = v
		case "socket":
			socket = v
		case "user":
			c.user = v
		case "password":
			c.password, hasPassword = v, true
		case "password_file":
			passwordFile = v
		case "database":
			c.database = v
		case "tls":
			switch strings.ToLower(v) {
			case "no", "false", "off":
				c.tlsMode = "no"
			case "yes", "true", "on":
				c.tlsMode = "yes"
			case "skip-verify", "preferred":
				c.tlsMode = strings.ToLower(v)
			default:
				return config{}, nil, fmt.Errorf("tls %q: use no, yes, skip-verify or preferred", v)
			}
		case "ca_file":
			caFile = v
		case "cert_file":
			certFile = v
		case "key_file":
			keyFile = v
		case "tls_server_name":
			c.tlsServerName = v
		case "connect_timeout":
			c.connectTimeout, err = sdk.ParseDuration(v)
		case "read_timeout":
			c.readTimeout, err = sdk.ParseDuration(v)
		case "query":
			c.query = strings.Join(p.Values, " ")
			if strings.TrimSpace(c.query) == "" {
				return config{}, nil, fmt.Errorf("query is empty: give a statement, or leave query out for %s", defaultQuery)
			}
		case "expect_writable":
			c.expectWritable, err = sdk.ParseBool(v)
		case "expect_read_only":
			c.expectReadOnly, err = sdk.ParseBool(v)
		case "expect_replication":
			c.expectReplication, err = sdk.ParseBool(v)
		case "max_replication_lag":
			c.maxLag, err = sdk.ParseDuration(v)
			c.maxLagSet = true
		case "lag_weight":
			c.lagWeight, err = strconv.Atoi(v)
			if err == nil && (c.lagWeight < 1 || c.lagWeight > 253) {
				err = fmt.Errorf("%q is not 1-253", v)
			}
		case "expect_galera":
			c.expectGalera, err = sdk.ParseBool(v)
		default:
			return config{}, nil, fmt.Errorf("unknown param %q (known: %s)", p.Key, knownParams())
		}
		if err != nil {
			return config{}, nil, fmt.Errorf("%s: %w", p.Key, err)
		}
	}

	switch {
	case address != "" && socket != "":
		return config{}, nil, fmt.Errorf("address and socket: give one of them")
	case socket != "":
		c.network, c.addr = "unix", socket
	case address != "":
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			// A bare host (or IPv6 address) means the standard port, as for the mysql client.
			host, port = strings.Trim(address, "[]"), "3306"
		}
		if host == "" {
			return config{}, nil, fmt.Errorf("address %q: want HOST:PORT", address)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return config{}, nil, fmt.Errorf("address %q: port %q is not 1-65535", address, port)
		}
		c.addr = net.JoinHostPort(host, port)
	}

	if c.user == "" {
		return config{}, nil, fmt.Errorf("user is required: the account the check logs in as")
	}
	if hasPassword && passwordFile != "" {
		return config{}, nil, fmt.Errorf("password and password_file: give one of them")
	}
	if passwordFile != "" {
		pw, w, err := readPasswordFile(passwordFile)
		if err != nil {
			return config{}, nil, err
		}
		c.password = pw
		warnings = append(warnings, w...)
	}

	if c.tlsMode == "no" && (caFile != "" || certFile != "" || keyFile != "" || c.tlsServerName != "") {
		return config{}, nil, fmt.Errorf("ca_file, cert_file, key_file and tls_server_name need tls yes (or skip-verify, preferred)")
	}
	if caFile != "" && c.tlsMode != "yes" {
		return config{}, nil, fmt.Errorf("ca_file needs tls yes: with tls %s the server's certificate is not verified", c.tlsMode)
	}
	if (certFile == "") != (keyFile == "") {
		return config{}, nil, fmt.Errorf("cert_file and key_file go together")
	}
	var err error
	if caFile != "" {
		if c.caPEM, err = readFile("ca_file", caFile); err != nil {
			return config{}, nil, err
		}
	}
	if certFile != "" {
		if c.certPEM, err = readFile("cert_file", certFile); err != nil {
			return config{}, nil, err
		}
		if c.keyPEM, err = readFile("key_file", keyFile); err != nil {
			return config{}, nil, err
		}
	}
	if _, err := c.tlsConfig(); err != nil {
		return config{}, nil, err
	}

	if c.lagWeight != 0 && !c.maxLagSet {
		return config{}, nil, fmt.Errorf("lag_weight needs max_replication_lag: the lag at which the weight reaches -%d", c.lagWeight)
	}
	if c.expectWritable && c.expectReadOnly {
		return config{}, nil, fmt.Errorf("expect_writable and expect_read_only: a server cannot be both")
	}
	return c, warnings, nil
}

// tlsConfig is the client's TLS configuration, or nil without TLS.
func (c config) tlsConfig() (*tls.Config, error) {
	var t *tls.Config
	switch c.tlsMode {
	case "no":
		return nil, nil
	case "yes":
		t = &tls.Config{ServerName: c.tlsServerName}
		if t.ServerName == "" && c.network == "tcp" {
			t.ServerName, _, _ = net.SplitHostPort(c.addr)
		}
		if c.caPEM != "" {
			t.RootCAs = x509.NewCertPool()
			if !t.RootCAs.AppendCertsFromPEM([]byte(c.caPEM)) {
				return nil, fmt.Errorf("ca_file: no PEM certificate in it")
			}
		}
	default: // skip-verify, preferred: encryption against passive listeners only
		t = &tls.Config{InsecureSkipVerify: true}
	}
	if c.certPEM != "" {
		cert, err := tls.X509KeyPair([]byte(c.certPEM), []byte(c.keyPEM))
		if err != nil {
			return nil, fmt.Errorf("cert_file and key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

func readFile(param, path string) (string, error) {
	b, err := opfile.Read(path, opfile.PEMLimit)
	if err != nil {
		return "", fmt.Errorf("%s: %w", param, err)
	}
	return string(b), nil
}

// readPasswordFile reads the first line of path. A file that everyone can read is refused:
// the password would be no secret on that host.
func readPasswordFile(path string) (string, []string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", nil, fmt.Errorf("password_file: %w", err)
	}
	perm := fi.Mode().Perm()
	if perm&0o004 != 0 {
		return "", nil, fmt.Errorf("password_file %s is readable by everyone (mode %04o): chmod o-rwx %s (0600, or 0640 with a group only vigil is in)", path, perm, path)
	}
	var warnings []string
	if perm&0o040 != 0 {
		group := "its group"
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			group = "group " + strconv.FormatUint(uint64(st.Gid), 10)
			if g, err := user.LookupGroupId(group[len("group "):]); err == nil {
				group = "group " + g.Name
			}
		}
		warnings = append(warnings, fmt.Sprintf("password_file %s is readable by %s (mode %04o): make sure only vigil's users are in it, or chmod g-r", path, group, perm))
	}
	b, err := opfile.Read(path, opfile.LineLimit)
	if err != nil {
		return "", nil, fmt.Errorf("password_file: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", nil, fmt.Errorf("password_file %s: the first line is empty; put the password there", path)
	}
	return pw, warnings, nil
}
