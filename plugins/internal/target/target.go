// Package target reads the connection params that vigil's network check plugins share
// (keepalived's connect_ip/connect_port as "address", bindto, bind_port), dials with them
// under a probe's context, and words the ways a probe fails in a few stable words.
package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/sdk/check"
)

// Target is where a probe connects to and from.
type Target struct {
	Address  string     // host:port
	BindTo   netip.Addr // source address; invalid: the kernel's choice
	BindPort int        // source port; 0: the kernel's choice
}

// Specs documents the params that Param reads, for a plugin's Describe.
func Specs() []check.ParamSpec {
	return []check.ParamSpec{
		{Name: "address", Type: check.TypeString, Required: true, Description: "HOST:PORT to connect to (keepalived: the real server, or connect_ip and connect_port)"},
		{Name: "bindto", Type: check.TypeString, Description: "source IP address of the probe's connection (keepalived's bindto; bind_to is the same)"},
		{Name: "bind_port", Type: check.TypeInt, Description: "source port of the probe's connection (keepalived's bind_port)"},
	}
}

// Param reads p into t if it is one of the shared params, and reports whether it was.
func (t *Target) Param(p check.Param) (bool, error) {
	switch p.Key {
	case "address":
		if err := oneValue(p); err != nil {
			return true, err
		}
		host, port, err := net.SplitHostPort(p.Value())
		if err != nil || host == "" {
			return true, fmt.Errorf("address %q: want HOST:PORT, e.g. 192.0.2.10:80 or [2001:db8::10]:80", p.Value())
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return true, fmt.Errorf("address %q: port %q is not a number from 1 to 65535", p.Value(), port)
		}
		t.Address = p.Value()
	case "bindto", "bind_to":
		if err := oneValue(p); err != nil {
			return true, err
		}
		a, err := netip.ParseAddr(p.Value())
		if err != nil {
			return true, fmt.Errorf("%s %q: want an IP address", p.Key, p.Value())
		}
		t.BindTo = a
	case "bind_port":
		if err := oneValue(p); err != nil {
			return true, err
		}
		n, err := strconv.Atoi(p.Value())
		if err != nil || n < 1 || n > 65535 {
			return true, fmt.Errorf("bind_port %q: want a port from 1 to 65535", p.Value())
		}
		t.BindPort = n
	default:
		return false, nil
	}
	return true, nil
}

// Validate reports what is missing once all params are read.
func (t *Target) Validate() error {
	if t.Address == "" {
		return errors.New("address is required: HOST:PORT to connect to")
	}
	return nil
}

func oneValue(p check.Param) error {
	if len(p.Values) != 1 || p.Block != nil {
		return fmt.Errorf("%s takes one value", p.Key)
	}
	return nil
}

// Dial opens a fresh TCP connection to the target by ctx's deadline. The connection's own
// deadline is set to ctx's, and cancelling ctx interrupts a read or write in progress, so
// that every later step of the probe honours ctx without passing it around. An IP address
// from no chosen source is dialed without net.Dialer (connect_linux.go says why).
func (t Target) Dial(ctx context.Context) (net.Conn, error) {
	dl, _ := ctx.Deadline()
	return t.DialBy(ctx, dl)
}

// DialBy is Dial with a connect deadline of its own, by (none when zero), for a probe that
// times each of its steps as keepalived's HTTP_GET does (the http plugin's connect_timeout):
// the connect ends by by or by ctx's deadline, whichever comes first, and the connection's
// deadline is left at that time for the caller's next step. Cancelling ctx, or its
// deadline, still interrupts a read or write in progress.
func (t Target) DialBy(ctx context.Context, by time.Time) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok && (by.IsZero() || dl.Before(by)) {
		by = dl
	}
	if !t.BindTo.IsValid() && t.BindPort == 0 {
		if ap, ok := PlainAddr(t.Address); ok {
			return dialPlain(ctx, by, ap)
		}
	}
	// No TCP keep-alive: a probe's connection lives for one probe, far shorter than the
	// first keep-alive (15 s idle), and net would spend four system calls setting it up.
	d := net.Dialer{KeepAlive: -1, Deadline: by}
	if t.BindTo.IsValid() || t.BindPort != 0 {
		la := &net.TCPAddr{Port: t.BindPort}
		if t.BindTo.IsValid() {
			la.IP = t.BindTo.AsSlice()
		}
		d.LocalAddr = la
	}
	if t.BindPort != 0 {
		// With a fixed source port, a connection of an earlier probe that the server closed
		// may still hold it (TIME_WAIT); SO_REUSEADDR lets the bind succeed.
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	conn, err := d.DialContext(ctx, "tcp", t.Address)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok && t.BindPort != 0 {
		// A fixed source port must be free again for the next connection, at once: closing
		// first would leave it in TIME_WAIT towards the same server for a minute, and the
		// next connect from it would fail. An abortive close (RST) leaves nothing behind.
		if err := tc.SetLinger(0); err != nil {
			conn.Close()
			return nil, err
		}
	}
	if !by.IsZero() {
		if err := conn.SetDeadline(by); err != nil {
			conn.Close()
			return nil, err
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return &ctxConn{Conn: conn, stop: stop}, nil
}

type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// Early returns a context that ends a little before ctx's deadline, so that a probe that
// runs out of time can still say where it was (and not only vigil's bare deadline error)
// before vigil stops waiting for it.
func Early(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := EarlyDeadline(ctx)
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, dl)
}

// EarlyDeadline is the deadline of Early's context, for a probe that keeps its own time.
func EarlyDeadline(ctx context.Context) (time.Time, bool) {
	dl, ok := ctx.Deadline()
	if !ok {
		return time.Time{}, false
	}
	margin := min(50*time.Millisecond, time.Until(dl)/10)
	return dl.Add(-margin), true
}

// Reason words err in a few stable words for a probe's message: "refused", "timeout",
// "reset", "unreachable", or the error itself.
func Reason(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset by peer"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "source address not available"
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return "cannot resolve " + de.Name
	}
	// Strip the "dial tcp 1.2.3.4:5->6.7.8.9:10:" prefix: the address is in the message already.
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// ParseBool reads keepalived's yes/no words; a bare keyword (no value) means yes.
func ParseBool(p check.Param) (bool, error) {
	if len(p.Values) > 1 {
		return false, fmt.Errorf("%s takes yes or no", p.Key)
	}
	switch strings.ToLower(p.Value()) {
	case "", "yes", "true", "on", "1":
		return true, nil
	case "no", "false", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%s %q: want yes or no", p.Key, p.Value())
}

// Unescape turns the escapes of a send or expect string into bytes: \r \n \t \0 \\ \" and
// \xHH. keepalived.conf keeps backslashes as written, so the plugin resolves them.
func Unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("%q ends with a lone backslash (write \\\\ for one)", s)
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case '\\':
			out = append(out, '\\')
		case '"':
			out = append(out, '"')
		case '\'':
			out = append(out, '\'')
		case 'x':
			if i+3 > len(s) {
				return nil, fmt.Errorf("%q: \\x needs two hex digits", s)
			}
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("%q: \\x needs two hex digits", s)
			}
			out = append(out, byte(n))
			i += 2
		default:
			return nil, fmt.Errorf("%q: unknown escape \\%c (known: \\r \\n \\t \\0 \\\\ \\\" \\xHH)", s, s[i])
		}
	}
	return out, nil
}
