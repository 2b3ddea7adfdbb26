package harness

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Tail is the end of a daemon's log, for an error message: its last 4000 bytes.
func Tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// AcceptAndClose listens on every address, accepts connections and closes them at once:
// a backend for TCP_CHECK, which asks no more. Each connection adds one to accepted (when
// not nil), so that a measurement knows how many probes there were. It returns the first
// error, of a listen or an accept.
func AcceptAndClose(addrs []string, accepted *atomic.Int64) error {
	return acceptEach(addrs, accepted, func(c net.Conn) { c.Close() })
}

// acceptEach listens on every address and hands each connection to handle, counting it in
// accepted (when not nil), until a listen or an accept fails.
func acceptEach(addrs []string, accepted *atomic.Int64, handle func(net.Conn)) error {
	errs := make(chan error, len(addrs))
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					errs <- err
					return
				}
				if accepted != nil {
					accepted.Add(1)
				}
				handle(c)
			}
		}()
	}
	return <-errs
}

// ServeHTTP answers every request on every address with 200 "ok" and closes the
// connection: a backend for HTTP_GET. It reads the request up to its empty line and writes a
// fixed answer, no more: net/http's server cost the emulated VM of lvsbench about as much CPU
// as the checker it served, and a backend that starves the machine makes the daemon under
// test time out. Each connection adds one to accepted (when not nil).
func ServeHTTP(addrs []string, accepted *atomic.Int64) error {
	const answer = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
	serve := func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var buf [4096]byte
		n := 0
		for n < len(buf) {
			m, err := c.Read(buf[n:])
			n += m
			if bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
				_, _ = io.WriteString(c, answer)
				return
			}
			if err != nil {
				return
			}
		}
	}
	return acceptEach(addrs, accepted, func(c net.Conn) { go serve(c) })
}

// Backend serves addrs as AcceptAndClose does, or as ServeHTTP does with useHTTP, until it
// fails; with count set, it writes how many connections it accepted so far into that file
// every 100 ms (written aside and renamed, so that a reader never sees half a number).
func Backend(addrs []string, useHTTP bool, count string) error {
	if len(addrs) == 0 {
		return errors.New("no address to serve")
	}
	var n atomic.Int64
	if count != "" {
		go func() {
			for range time.Tick(100 * time.Millisecond) {
				_ = os.WriteFile(count+".tmp", []byte(strconv.FormatInt(n.Load(), 10)), 0o644)
				_ = os.Rename(count+".tmp", count)
			}
		}()
	}
	if useHTTP {
		return ServeHTTP(addrs, &n)
	}
	return AcceptAndClose(addrs, &n)
}

// Accepted reads what Backend wrote into count: the connections accepted so far (0 when
// there is nothing yet).
func Accepted(count string) int64 {
	b, err := os.ReadFile(count)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(string(b), 10, 64)
	return n
}
