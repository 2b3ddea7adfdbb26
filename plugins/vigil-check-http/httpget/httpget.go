// Package httpget performs one HTTP GET the way keepalived's HTTP_GET and SSL_GET checkers
// and its genhash tool do, and computes the page's digest as they do. The http check plugin
// and `vigil genhash` share it, so that a digest genhash prints is the one the check expects.
//
// It speaks HTTP itself instead of using net/http because the digest must be of the same
// bytes keepalived hashes: everything after the header up to Content-Length (or to the end of
// the connection), without decoding, on a fresh connection, with keepalived's request line
// and headers. net/http would pool connections, follow no such rule for the Host header, and
// undo chunked encoding.
package httpget

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Protocol is keepalived's http_protocol: the request line's version and whether the request
// says "Connection: close".
type Protocol string

const (
	HTTP10      Protocol = "1.0"  // keepalived's default
	HTTP10Close Protocol = "1.0C" // 1.0 with "Connection: close"
	HTTP11      Protocol = "1.1"  // always with "Connection: close"
)

// ParseProtocol reads an http_protocol value: 1.0, 1.0C (or 1.0c), 1.1.
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "1.0":
		return HTTP10, nil
	case "1.0C", "1.0c":
		return HTTP10Close, nil
	case "1.1":
		return HTTP11, nil
	}
	return "", fmt.Errorf("http_protocol %q: want 1.0, 1.0C or 1.1", s)
}

// MaxHeader bounds the response header: a server that never ends its header must not grow
// the checker's memory.
const MaxHeader = 64 << 10

// Request is one GET.
type Request struct {
	// Path is the request target as written in keepalived's url block ("/", "/health?x=1").
	Path string
	// Host is the Host header. Empty: Address, as keepalived sends it when no virtualhost is
	// set (IP and port, an IPv6 address in brackets).
	Host     string
	Protocol Protocol // empty: HTTP10
	// TLS, when set, runs the request over TLS with this configuration (SSL_GET).
	TLS *tls.Config
	// MaxBody is how much of the body is read (and hashed); 0: all of it. A longer body
	// stops the read and sets Response.Truncated.
	MaxBody int64
	// KeepBody keeps the body's bytes (up to MaxBody) in Response.Body, for a regex.
	KeepBody bool
	// Step, when set, times the request as keepalived's HTTP_GET and SSL_GET checkers time
	// theirs (connect_timeout): sending gets Step from its start, and so does every read,
	// from its own start, so that what counts is how long the server keeps the checker
	// waiting, not how late the checker got to its next step. ctx's deadline still bounds
	// the whole. The TLS handshake keeps the deadline conn has (keepalived: the connect's).
	Step time.Duration
}

// Response is what came back.
type Response struct {
	StatusLine string // the first line, without CRLF
	StatusCode int    // 0 when the status line has no number where keepalived looks for it
	Header     []byte // the raw header, status line included, up to the empty line
	// Digest is the lower-case hex MD5 of the body bytes: what keepalived compares with a
	// url's digest and what genhash prints.
	Digest    string
	BodyBytes int64  // how many body bytes were read and hashed
	Body      []byte // with Request.KeepBody
	Truncated bool   // the body was longer than MaxBody
	// ContentLength is the header's value, -1 without one. When the connection ends before
	// it, BodyBytes is smaller and the digest covers what came, as in keepalived.
	ContentLength int64
}

// Stage says which step of a GET failed.
type Stage string

const (
	StageTLS   Stage = "TLS handshake"
	StageSend  Stage = "send"
	StageRead  Stage = "read"
	StageReply Stage = "reply" // the reply is not HTTP
)

// Error is a GET that failed after the connection was established.
type Error struct {
	Stage Stage
	Err   error
}

func (e *Error) Error() string { return string(e.Stage) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ErrNoResponse is a connection that ended before a complete response header, the case
// keepalived reports as "no data received".
var ErrNoResponse = errors.New("no HTTP response: the connection ended before the header did")

// Get sends the request on conn, a fresh connection to address, and reads the response. It
// closes conn. Deadlines are conn's: set them, or cancel through the connection, before.
func Get(ctx context.Context, conn net.Conn, address string, req Request) (*Response, error) {
	defer conn.Close()
	var rw io.ReadWriter = conn
	if req.TLS != nil {
		tc := tls.Client(conn, req.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, &Error{StageTLS, err}
		}
		defer tc.Close()
		rw = tc
	}
	arm := stepper(ctx, req.Step)
	if err := arm(conn.SetWriteDeadline); err != nil {
		return nil, &Error{StageSend, err}
	}
	if _, err := io.WriteString(rw, requestText(address, req)); err != nil {
		return nil, &Error{StageSend, err}
	}
	var r io.Reader = rw
	if req.Step > 0 {
		r = &stepReader{r: rw, arm: func() error { return arm(conn.SetReadDeadline) }}
	}
	return readResponse(r, req)
}

// stepper returns what gives a step of the exchange its time: step from now, never past
// ctx's deadline. With no step it leaves the connection's deadline as it is.
func stepper(ctx context.Context, step time.Duration) func(set func(time.Time) error) error {
	if step <= 0 {
		return func(func(time.Time) error) error { return nil }
	}
	by, bounded := ctx.Deadline()
	return func(set func(time.Time) error) error {
		dl := time.Now().Add(step)
		if bounded && by.Before(dl) {
			dl = by
		}
		if err := set(dl); err != nil {
			return err
		}
		if ctx.Err() != nil {
			// ctx ended: the interruption set on the connection when it did may have come
			// before this deadline and been overwritten by it. Set again; ctx's error is set
			// before its AfterFuncs run, so one of the two sets comes last either way.
			return set(time.Unix(1, 0))
		}
		return nil
	}
}

// stepReader gives each read its step's time before it waits.
type stepReader struct {
	r   io.Reader
	arm func() error
}

func (s *stepReader) Read(b []byte) (int, error) {
	if err := s.arm(); err != nil {
		return 0, err
	}
	return s.r.Read(b)
}

// requestText is keepalived's request: the same lines in the same order, so that a server's
// logs, access rules and virtual hosts see the check as they saw keepalived's.
func requestText(address string, req Request) string {
	host := req.Host
	if host == "" {
		host = address
	}
	minor, closeLine := "0", ""
	switch req.Protocol {
	case HTTP10Close:
		closeLine = "Connection: close\r\n"
	case HTTP11:
		minor, closeLine = "1", "Connection: close\r\n"
	}
	return "GET " + req.Path + " HTTP/1." + minor + "\r\n" +
		"User-Agent: KeepAliveClient\r\n" +
		closeLine +
		"Host: " + host + "\r\n\r\n"
}

func readResponse(r io.Reader, req Request) (*Response, error) {
	br := bufio.NewReaderSize(r, 4096)
	header, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	resp := &Response{Header: header, ContentLength: -1}
	line, _, _ := bytes.Cut(header, []byte("\r\n"))
	resp.StatusLine = string(line)
	resp.StatusCode = statusCode(resp.StatusLine)
	resp.ContentLength = contentLength(header)

	limit := req.MaxBody
	if resp.ContentLength >= 0 && (limit == 0 || resp.ContentLength <= limit) {
		limit = resp.ContentLength
	}
	h := md5.New()
	var body *bytes.Buffer
	var w io.Writer = h
	if req.KeepBody {
		body = &bytes.Buffer{}
		w = io.MultiWriter(h, body)
	}
	var src io.Reader = br
	if limit > 0 || resp.ContentLength == 0 {
		src = io.LimitReader(br, limit)
	}
	n, err := io.Copy(w, src)
	resp.BodyBytes = n
	if err != nil && !isEOF(err) {
		return nil, &Error{StageRead, err}
	}
	if req.MaxBody > 0 && n == req.MaxBody && (resp.ContentLength < 0 || resp.ContentLength > req.MaxBody) {
		// Full up to the limit: is there more? One more byte says so.
		var one [1]byte
		if m, _ := br.Read(one[:]); m > 0 {
			resp.Truncated = true
		}
	}
	resp.Digest = sum(h)
	if body != nil {
		resp.Body = body.Bytes()
	}
	return resp, nil
}

// isEOF tells the ends of a response that are not read errors: a clean close, or a TLS peer
// that closes without close_notify (keepalived tolerates that too).
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// readHeader reads up to and including the first empty line (CRLF CRLF), the only header end
// keepalived recognises.
func readHeader(br *bufio.Reader) ([]byte, error) {
	var h []byte
	for {
		line, err := br.ReadSlice('\n')
		h = append(h, line...)
		if bytes.HasSuffix(h, []byte("\r\n\r\n")) {
			return h, nil
		}
		if len(h) > MaxHeader {
			return nil, &Error{StageReply, fmt.Errorf("header longer than %d KiB", MaxHeader>>10)}
		}
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if isEOF(err) {
				if len(h) == 0 {
					return nil, &Error{StageRead, ErrNoResponse}
				}
				return nil, &Error{StageReply, fmt.Errorf("%w (got %d bytes)", ErrNoResponse, len(h))}
			}
			return nil, &Error{StageRead, err}
		}
	}
}

// statusCode reads the number between the first and the second space of the status line, as
// keepalived does; 0 if there is none.
func statusCode(line string) int {
	_, rest, ok := strings.Cut(line, " ")
	if !ok {
		return 0
	}
	code, _, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if err != nil {
		return 0
	}
	return n
}

// contentLength is the Content-Length header's value, -1 without a valid one. Unlike
// keepalived, the name is matched without regard to case, as HTTP says.
func contentLength(header []byte) int64 {
	for _, line := range strings.Split(string(header), "\r\n")[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
	return -1
}

// Digest is the digest of a page body, as keepalived computes it: lower-case hex MD5.
func Digest(body []byte) string {
	s := md5.Sum(body)
	return hex.EncodeToString(s[:])
}

func sum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
