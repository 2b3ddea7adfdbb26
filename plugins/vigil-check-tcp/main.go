// Command vigil-check-tcp is vigil's TCP check plugin: keepalived's TCP_CHECK runs through it.
// A probe opens a fresh connection within the probe's timeout and, when asked, sends a string
// and waits for an expected answer. See README.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/plugins/internal/target"
	"github.com/vigil-ha/vigil/sdk/check"
)

func main() { check.Serve(newTCP()) }

// maxReply bounds what a probe reads while it waits for expect: a service that streams
// without ever saying it must not grow the plugin's memory.
const maxReply = 64 << 10

// tcpChecker keeps the configured probes by check name; vigil calls it concurrently.
type tcpChecker struct {
	checks check.Configured[*probe]
	conn   *connector // runs the probes that only connect (probe.plain)
}

var _ check.Checker = (*tcpChecker)(nil)

func newTCP() *tcpChecker { return &tcpChecker{conn: &connector{}} }

// probe is one configured check.
type probe struct {
	target target.Target
	send   []byte
	expect []byte         // the reply contains these bytes
	re     *regexp.Regexp // or matches this
	quoted string         // expect as configured, for messages
	// plain is set when a probe only connects, to an IP address, from no chosen source:
	// then it goes through connectOnly, not net.Dialer.
	plain netip.AddrPort
}

func (c *tcpChecker) Describe(context.Context) (check.Info, error) {
	return check.Info{
		Name:        "tcp",
		Version:     "0.1.0",
		Description: "connects to a TCP service (keepalived's TCP_CHECK), optionally sends a string and expects an answer",
		Params: append(target.Specs(),
			check.ParamSpec{Name: "send", Type: check.TypeString, Description: `bytes to send once connected; escapes \r \n \t \0 \\ \" \xHH`},
			check.ParamSpec{Name: "expect", Type: check.TypeString, Description: "the reply must contain this string (same escapes); read until it appears, the peer closes, 64 KiB, or the timeout"},
			check.ParamSpec{Name: "expect_regex", Type: check.TypeString, Description: "the reply must match this regular expression (Go RE2 syntax), instead of expect"},
		),
	}, nil
}

func (c *tcpChecker) Configure(_ context.Context, req check.ConfigureRequest) (check.ConfigureResponse, error) {
	p, err := parse(req.Params)
	if err != nil {
		return check.ConfigureResponse{}, err
	}
	c.checks.Keep(req, p)
	return check.ConfigureResponse{}, nil
}

func parse(params []check.Param) (*probe, error) {
	p := &probe{}
	for _, prm := range params {
		if ok, err := p.target.Param(prm); ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		switch prm.Key {
		case "send", "expect", "expect_regex":
			if len(prm.Values) == 0 || prm.Block != nil {
				return nil, fmt.Errorf("%s needs a string; quote it to keep spaces: %s \"PING\\r\\n\"", prm.Key, prm.Key)
			}
			// Unquoted words come split; a space between them is what the operator wrote.
			s := strings.Join(prm.Values, " ")
			if prm.Key == "expect_regex" {
				re, err := regexp.Compile(s)
				if err != nil {
					return nil, fmt.Errorf("expect_regex %q: %w", s, err)
				}
				p.re = re
				p.quoted = s
				continue
			}
			b, err := target.Unescape(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", prm.Key, err)
			}
			if len(b) == 0 {
				return nil, fmt.Errorf("%s is empty; leave it out instead", prm.Key)
			}
			if prm.Key == "send" {
				p.send = b
			} else {
				p.expect, p.quoted = b, s
			}
		default:
			return nil, fmt.Errorf("unknown param %q (known: address, bindto, bind_port, send, expect, expect_regex)", prm.Key)
		}
	}
	if err := p.target.Validate(); err != nil {
		return nil, err
	}
	if p.expect != nil && p.re != nil {
		return nil, errors.New("expect and expect_regex are both set; keep one")
	}
	if ap, ok := target.PlainAddr(p.target.Address); ok && p.send == nil && p.expect == nil && p.re == nil &&
		!p.target.BindTo.IsValid() && p.target.BindPort == 0 {
		p.plain = ap
	}
	return p, nil
}

func (c *tcpChecker) Check(ctx context.Context, req check.CheckRequest) (check.CheckResponse, error) {
	p, err := c.checks.Lookup(req.Name)
	if err != nil {
		return check.CheckResponse{}, err
	}
	if p.plain.IsValid() {
		// connectOnly keeps the early deadline itself, without a context and timer of
		// its own for every probe.
		return p.connect(ctx, c.conn), nil
	}
	ctx, cancel := target.Early(ctx)
	defer cancel()
	return p.run(ctx), nil
}

// connect is run for a probe that only connects (p.plain): by target.EarlyDeadline, or at
// once when ctx ends. Check is its only caller: ctx is the probe's own, without the early
// margin yet.
func (p *probe) connect(ctx context.Context, conn *connector) check.CheckResponse {
	start := time.Now()
	dl, _ := target.EarlyDeadline(ctx)
	if err := conn.connectOnly(ctx, dl, p.plain); err != nil {
		return check.CheckResponse{Status: check.Critical, Message: "connect " + p.target.Address + ": " + target.Reason(err)}
	}
	connected := time.Since(start)
	return check.CheckResponse{Status: check.OK, Message: "connected to " + p.target.Address + " in " + round(connected).String(),
		Metrics: map[string]float64{"connect_seconds": connected.Seconds()}}
}

// run is run for every other probe (Check sends a connect-only one to connect), with ctx
// already cut by target.Early.
func (p *probe) run(ctx context.Context) check.CheckResponse {
	start := time.Now()
	critical := func(format string, args ...any) check.CheckResponse {
		return check.CheckResponse{Status: check.Critical, Message: fmt.Sprintf(format, args...)}
	}
	conn, err := p.target.Dial(ctx)
	if err != nil {
		return critical("connect %s: %s", p.target.Address, target.Reason(err))
	}
	defer conn.Close()
	connected := time.Since(start)
	metrics := map[string]float64{"connect_seconds": connected.Seconds()}
	if p.send != nil {
		if _, err := conn.Write(p.send); err != nil {
			return critical("send to %s: %s", p.target.Address, target.Reason(err))
		}
	}
	if p.expect == nil && p.re == nil {
		return check.CheckResponse{Status: check.OK, Message: fmt.Sprintf("connected to %s in %s", p.target.Address, round(connected)), Metrics: metrics}
	}
	reply, err := p.read(conn)
	metrics["response_seconds"] = time.Since(start).Seconds()
	if err == nil {
		return check.CheckResponse{Status: check.OK, Message: fmt.Sprintf("%s answered %s", p.target.Address, excerpt(reply)), Metrics: metrics}
	}
	what := "no answer"
	if len(reply) > 0 {
		what = "answer " + excerpt(reply)
	}
	switch {
	case errors.Is(err, errTooLong):
		return check.CheckResponse{Status: check.Critical, Message: fmt.Sprintf("%s: %d bytes without %q", p.target.Address, len(reply), p.quoted), Metrics: metrics}
	case errors.Is(err, io.EOF):
		return check.CheckResponse{Status: check.Critical, Message: fmt.Sprintf("%s closed the connection: %s does not match %q", p.target.Address, what, p.quoted), Metrics: metrics}
	}
	return check.CheckResponse{Status: check.Critical, Message: fmt.Sprintf("%s: %s waiting for %q: %s", p.target.Address, target.Reason(err), p.quoted, what), Metrics: metrics}
}

var errTooLong = errors.New("reply too long")

// read reads until the reply holds what is expected. The error says why it stopped short:
// io.EOF (the peer closed), errTooLong, or the connection's (deadline) error.
func (p *probe) read(conn io.Reader) ([]byte, error) {
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := conn.Read(buf[len(buf):min(cap(buf), maxReply)])
		buf = buf[:len(buf)+n]
		if p.matches(buf) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) >= maxReply {
			return buf, errTooLong
		}
	}
}

func (p *probe) matches(b []byte) bool {
	if p.re != nil {
		return p.re.Match(b)
	}
	return bytes.Contains(b, p.expect)
}

// excerpt quotes the start of a reply for a one-line message.
func excerpt(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

func round(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
