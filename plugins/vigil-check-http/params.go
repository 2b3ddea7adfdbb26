package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/core/opfile"
	"github.com/vigil-ha/vigil/plugins/internal/target"
	"github.com/vigil-ha/vigil/plugins/vigil-check-http/httpget"
	"github.com/vigil-ha/vigil/sdk/check"
)

// defaultMaxBody bounds a body read when max_body is not set: health pages are small, and a
// server that streams must not grow the plugin's memory.
const defaultMaxBody = 1 << 20

// probe is one configured check.
type probe struct {
	target   target.Target
	tls      bool
	vhost    string
	protocol httpget.Protocol
	sni      bool
	sniName  string
	verify   bool
	roots    *x509.CertPool // nil: the system's
	certs    []tls.Certificate
	maxBody  int64
	urls     []urlCheck
	// step is connect_timeout: each step of a GET gets this long from its own start
	// (httpget.Request.Step), within the probe's timeout; zero: the probe's timeout alone.
	step time.Duration
}

// urlCheck is one url block.
type urlCheck struct {
	path    string
	digest  string // lower-case hex; empty: not checked
	codes   []codeRange
	vhost   string
	re      *regexp.Regexp
	reText  string
	noMatch bool // regex_no_match: a match fails
}

// codeRange is an inclusive range of status codes.
type codeRange struct{ from, to int }

func (r codeRange) String() string {
	if r.from == r.to {
		return strconv.Itoa(r.from)
	}
	return fmt.Sprintf("%d-%d", r.from, r.to)
}

var knownParams = "address, bindto, bind_port, tls, url, virtualhost, http_protocol, enable_sni, sni_name, tls_verify, ca_file, cert_file, key_file, max_body, connect_timeout"

func parse(params []check.Param) (*probe, error) {
	p := &probe{protocol: httpget.HTTP10, maxBody: defaultMaxBody}
	var certFile, keyFile string
	var tlsOnly []string // TLS params given, for the check that tls is on
	for _, prm := range params {
		if ok, err := p.target.Param(prm); ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		var err error
		switch prm.Key {
		case "tls":
			p.tls, err = target.ParseBool(prm)
		case "url":
			var u urlCheck
			if u, err = parseURL(prm); err == nil {
				p.urls = append(p.urls, u)
			}
		case "virtualhost":
			p.vhost, err = one(prm)
		case "http_protocol":
			var s string
			if s, err = one(prm); err == nil {
				p.protocol, err = httpget.ParseProtocol(s)
			}
		case "enable_sni":
			p.sni, err = target.ParseBool(prm)
			tlsOnly = append(tlsOnly, prm.Key)
		case "sni_name", "sni":
			p.sniName, err = one(prm)
			p.sni = true
			tlsOnly = append(tlsOnly, prm.Key)
		case "tls_verify":
			p.verify, err = target.ParseBool(prm)
			tlsOnly = append(tlsOnly, prm.Key)
		case "tls_compliant":
			// keepalived's switch to send close_notify at the end; Go's TLS always does.
			_, err = target.ParseBool(prm)
		case "ca_file", "ca":
			var path string
			if path, err = one(prm); err == nil {
				p.roots, err = loadCA(path)
			}
			tlsOnly = append(tlsOnly, prm.Key)
		case "cert_file", "certificate":
			certFile, err = one(prm)
			tlsOnly = append(tlsOnly, prm.Key)
		case "key_file", "key":
			keyFile, err = one(prm)
			tlsOnly = append(tlsOnly, prm.Key)
		case "connect_timeout":
			p.step, err = prm.Duration()
			if err == nil && p.step == 0 {
				err = errors.New("connect_timeout must be more than 0; leave it out to time the probe as a whole")
			}
		case "max_body":
			var s string
			if s, err = one(prm); err == nil {
				p.maxBody, err = parseSize(s)
			}
		default:
			return nil, fmt.Errorf("unknown param %q (known: %s)", prm.Key, knownParams)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := p.target.Validate(); err != nil {
		return nil, err
	}
	if len(p.urls) == 0 {
		return nil, errors.New("no url to check: add url { path / }")
	}
	if !p.tls && len(tlsOnly) > 0 {
		return nil, fmt.Errorf("%s applies to HTTPS only: add tls yes (keepalived's SSL_GET)", tlsOnly[0])
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file %s, key_file %s: %w", certFile, keyFile, err)
		}
		p.certs = []tls.Certificate{cert}
	case certFile != "":
		return nil, errors.New("cert_file needs key_file")
	case keyFile != "":
		return nil, errors.New("key_file needs cert_file")
	}
	if (p.roots != nil) && !p.verify {
		return nil, errors.New("ca_file is only used with tls_verify yes; add it, or remove ca_file")
	}
	return p, nil
}

func one(p check.Param) (string, error) {
	if len(p.Values) != 1 || p.Block != nil {
		return "", fmt.Errorf("%s takes one value", p.Key)
	}
	return p.Values[0], nil
}

func parseURL(prm check.Param) (urlCheck, error) {
	var u urlCheck
	if prm.Block == nil || len(prm.Values) > 0 {
		return u, errors.New("url is a block: url { path /health  status_code 200 }")
	}
	var regexOptions []string
	for _, k := range prm.Block {
		var err error
		switch k.Key {
		case "path":
			if u.path, err = one(k); err == nil && !validPath(u.path) {
				err = fmt.Errorf("url path %q: want a request target such as / or /health?full=1 (no spaces or control characters)", u.path)
			}
		case "digest":
			var d string
			if d, err = one(k); err == nil {
				if len(d) != 32 || strings.Trim(strings.ToLower(d), "0123456789abcdef") != "" {
					err = fmt.Errorf("url digest %q: want the 32 hex digits of an MD5, as vigil genhash prints", d)
				}
				u.digest = strings.ToLower(d)
			}
		case "status_code":
			if len(k.Values) == 0 {
				err = errors.New("status_code needs codes or ranges: status_code 200 300-399")
			}
			for _, v := range k.Values {
				r, perr := parseRange(v)
				if perr != nil {
					err = perr
					break
				}
				u.codes = append(u.codes, r)
			}
		case "virtualhost":
			u.vhost, err = one(k)
		case "regex":
			if len(k.Values) == 0 {
				err = errors.New("regex needs a pattern")
				break
			}
			u.reText = strings.Join(k.Values, " ")
		case "regex_no_match":
			u.noMatch, err = target.ParseBool(k)
		case "regex_options":
			regexOptions = append(regexOptions, k.Values...)
		case "tls_compliant":
			_, err = target.ParseBool(k)
		case "regex_min_offset", "regex_max_offset", "regex_stack":
			err = fmt.Errorf("url %s is not supported: vigil matches the regex against the whole body (up to max_body)", k.Key)
		default:
			err = fmt.Errorf("unknown url param %q (known: path, digest, status_code, virtualhost, regex, regex_no_match, regex_options)", k.Key)
		}
		if err != nil {
			return u, err
		}
	}
	if u.path == "" {
		return u, errors.New("url has no path: add path /")
	}
	if len(u.codes) == 0 {
		u.codes = []codeRange{{200, 299}} // keepalived's default
	}
	if u.reText == "" && (u.noMatch || len(regexOptions) > 0) {
		return u, fmt.Errorf("url %s: regex_no_match and regex_options need a regex", u.path)
	}
	if u.reText != "" {
		flags, err := regexFlags(regexOptions)
		if err != nil {
			return u, fmt.Errorf("url %s: %w", u.path, err)
		}
		if u.re, err = regexp.Compile(flags + u.reText); err != nil {
			return u, fmt.Errorf("url %s: regex %q (Go RE2 syntax): %w", u.path, u.reText, err)
		}
	}
	return u, nil
}

func validPath(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return s != ""
}

// regexFlags maps the PCRE options of keepalived's regex_options that RE2 has.
func regexFlags(opts []string) (string, error) {
	flags := ""
	for _, o := range opts {
		switch o {
		case "caseless":
			flags += "i"
		case "multiline":
			flags += "m"
		case "dotall":
			flags += "s"
		case "ungreedy":
			flags += "U"
		case "utf", "ucp", "no_auto_capture":
			// RE2 is UTF-8 aware already; captures are not used.
		default:
			return "", fmt.Errorf("regex_options %q is not supported (vigil's regexes are Go RE2: caseless, multiline, dotall, ungreedy)", o)
		}
	}
	if flags == "" {
		return "", nil
	}
	return "(?" + flags + ")", nil
}

// parseRange reads a status code or an inclusive range, as keepalived: 200, 200-299.
func parseRange(s string) (codeRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	from, err1 := strconv.Atoi(lo)
	to, err2 := from, error(nil)
	if isRange {
		to, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || from < 100 || to > 599 || from > to || strings.ContainsAny(s, "+ ") {
		return codeRange{}, fmt.Errorf("status_code %q: want a code from 100 to 599 or a range such as 200-299", s)
	}
	return codeRange{from, to}, nil
}

// parseSize reads a byte count: 65536, 64k, 64KiB, 1M, 1MiB.
func parseSize(s string) (int64, error) {
	num := strings.TrimRight(s, "kKmMiIbB")
	unit := strings.ToLower(s[len(num):])
	mult := int64(1)
	switch unit {
	case "":
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	default:
		return 0, fmt.Errorf("max_body %q: want bytes, e.g. 65536, 64KiB or 1MiB", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("max_body %q: want bytes, e.g. 65536, 64KiB or 1MiB", s)
	}
	return n * mult, nil
}

func loadCA(path string) (*x509.CertPool, error) {
	pem, err := opfile.Read(path, opfile.PEMLimit)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// hostOf is the host part of an address (validated already).
func hostOf(address string) string {
	h, _, _ := net.SplitHostPort(address)
	return h
}
