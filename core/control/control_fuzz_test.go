package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// FuzzControl writes arbitrary bytes (request lines, headers, bodies, several requests in
// a row) to the control socket: the server that Listen runs, with the routes it serves, on
// a unix socket in a temporary directory. What must hold:
//   - no handler panics (the server would recover and log it: the log must stay clean);
//   - the answer is bounded: at most one response per request the bytes can hold, each
//     small;
//   - status codes are right: 200 only from the status or reload handler, once per call;
//     bad input gets a 4xx (or 501/505 for an unsupported transfer coding or HTTP
//     version), never a 500;
//   - nothing but POST /reload changes state: the reload callback runs only for a request
//     whose method is POST and path /reload, the status callback only for GET or HEAD
//     /status, and every status answer shows the state that the reloads made;
//   - the server still answers GET /status on a new connection after an input that got
//     no answer at all.
func FuzzControl(f *testing.F) {
	for _, s := range []string{
		"GET /status HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"POST /reload HTTP/1.1\r\nHost: vigil\r\nContent-Length: 0\r\n\r\n",
		"HEAD /status HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"GET /reload HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"PUT /status HTTP/1.1\r\nHost: vigil\r\nContent-Length: 5\r\n\r\nhello",
		"DELETE /reload HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"GET //status HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"GET /status/ HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"POST /./reload HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"POST /%72eload?x=1 HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"GET /status HTTP/1.0\r\n\r\n",
		"GET http://vigil/status HTTP/1.1\r\nHost: other\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"CONNECT vigil:80 HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"GET /status HTTP/1.1\r\nHost: vigil\r\n\r\nPOST /reload HTTP/1.1\r\nHost: vigil\r\n\r\nGET /nothing HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"POST /reload HTTP/1.1\r\nHost: vigil\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
		"POST /reload HTTP/1.1\r\nHost: vigil\r\nTransfer-Encoding: gzip\r\n\r\n",
		"POST /reload HTTP/1.1\r\nHost: vigil\r\nContent-Length: 10\r\nContent-Length: 11\r\n\r\n0123456789",
		"POST /reload HTTP/1.1\r\nHost: vigil\r\nContent-Length: 100\r\n\r\nshort",
		"POST /reload HTTP/1.1\r\nHost: vigil\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
		"GET /status HTTP/9.9\r\nHost: vigil\r\n\r\n",
		"GET /status HTTP/1.1\r\nHost: vigil\r\nX-Long: " + strings.Repeat("a", 70000) + "\r\n\r\n",
		"GET /status HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\nPOST /reload HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"GET /st\x00atus HTTP/1.1\r\nHost: vigil\r\n\r\n",
		"GET /status HTTP/1.1\r\nHost: vigil",
		"\r\n\r\n",
		"",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
	} {
		f.Add([]byte(s))
	}
	st := &fuzzState{}
	ctrl := newFuzzServer(f, st)
	f.Fuzz(func(t *testing.T, data []byte) {
		st.begin()
		raw := ctrl.exchange(t, data)
		calls := st.end()
		if n := checkResponses(t, data, raw, calls); n == 0 {
			// Nothing answered: the server must still be there, its state unchanged.
			if _, gen := ctrl.status(t); gen != st.generation() {
				t.Fatalf("status shows generation %d after %d reloads", gen, st.generation())
			}
		}
		if msg := ctrl.errs.panics(); msg != "" {
			t.Fatalf("a handler panicked on %q: %s", data, msg)
		}
	})
}

// fuzzState is the daemon's state as the test's callbacks keep it: reloads made, and the
// requests that reached each callback during one input.
type fuzzState struct {
	mu      sync.Mutex
	gen     int
	calls   []cbCall
	running bool
}

type cbCall struct {
	reload       bool
	method, path string
	gen          int // the state it answered with
}

type reqKey struct{}

func (s *fuzzState) begin() {
	s.mu.Lock()
	s.calls, s.running = nil, true
	s.mu.Unlock()
}

func (s *fuzzState) end() []cbCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	return s.calls
}

func (s *fuzzState) generation() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

func (s *fuzzState) record(ctx context.Context, reload bool) int {
	r, _ := ctx.Value(reqKey{}).(*http.Request)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := cbCall{reload: reload}
	if r != nil {
		c.method, c.path = r.Method, r.URL.Path
	}
	if s.running {
		s.calls = append(s.calls, c)
	}
	if reload {
		s.gen++
	}
	if s.running {
		s.calls[len(s.calls)-1].gen = s.gen
	}
	return s.gen
}

type fuzzStatus struct {
	Generation int      `json:"generation"`
	Instances  []string `json:"instances"`
}

type fuzzServer struct {
	sock string
	errs *errLog
}

// newFuzzServer serves handler on a unix socket, with newServer's settings, as Listen
// does; the request reaches the callbacks in their context, so that the test sees which
// requests called them.
func newFuzzServer(f *testing.F, st *fuzzState) *fuzzServer {
	sock := filepath.Join(f.TempDir(), "vigil.sock")
	status := func(ctx context.Context) any {
		return fuzzStatus{Generation: st.record(ctx, false), Instances: []string{"VI_1", "VI_2"}}
	}
	reload := func(ctx context.Context) any {
		return map[string]any{"generation": st.record(ctx, true)}
	}
	inner := handler(status, reload)
	srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqKey{}, r)))
	}))
	errs := &errLog{}
	srv.ErrorLog = log.New(errs, "", 0)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		f.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &fuzzServer{sock: sock, errs: errs}
}

// exchange writes data on a new connection, says it has no more, and returns everything the
// server answered until it closed. The deadline is a failure bound only.
func (c *fuzzServer) exchange(t *testing.T, data []byte) []byte {
	conn, err := net.Dial("unix", c.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	// Write while reading: the server may answer (and close) before it has read it all.
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		_ = conn.(*net.UnixConn).CloseWrite()
		werr <- err
	}()
	// More than any honest answer to what data can hold (see checkResponses).
	raw, err := io.ReadAll(io.LimitReader(conn, int64(maxResponses(data)+1)*maxResponse))
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("reading the answer to %q: %v", data, err)
	}
	<-werr
	return raw
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// status asks for the status on a new connection.
func (c *fuzzServer) status(t *testing.T) (int, int) {
	raw := c.exchange(t, []byte("GET /status HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("the server no longer answers GET /status: %v (%q)", err, raw)
	}
	defer resp.Body.Close()
	var s fuzzStatus
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /status: %s, %v", resp.Status, err)
	}
	return resp.StatusCode, s.Generation
}

// maxResponse bounds one response: the status JSON, or an error page, with headers.
const maxResponse = 4096

// maxResponses bounds how many requests data can hold: the shortest is "GET / HTTP/1.1\n\n".
func maxResponses(data []byte) int { return len(data)/16 + 1 }

// checkResponses parses what the server answered and checks it against the callbacks that
// ran, and returns how many there were.
func checkResponses(t *testing.T, data, raw []byte, calls []cbCall) int {
	br := bufio.NewReader(bytes.NewReader(raw))
	methods := requestMethods(data)
	var oks, n int
	for {
		if _, err := br.Peek(1); err == io.EOF {
			break
		}
		// The framing of an answer depends on its request's method (HEAD has no body).
		req := &http.Request{Method: http.MethodGet}
		if n < len(methods) {
			req.Method = methods[n]
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("answer %d to %q is not HTTP: %v\n%q", n, data, err, raw)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("answer %d to %q: body: %v", n, data, err)
		}
		n++
		if len(body) > maxResponse {
			t.Fatalf("answer %d to %q: %d bytes of body", n, data, len(body))
		}
		switch c := resp.StatusCode; {
		case c == http.StatusOK && req.Method == http.MethodOptions && len(body) == 0:
			// net/http answers "OPTIONS *" itself; it reaches no handler.
		case c == http.StatusOK:
			oks++
			// Each answer shows the state its callback saw: nothing else changed it.
			var g struct{ Generation *int }
			if len(body) > 0 && oks <= len(calls) {
				if err := json.Unmarshal(body, &g); err != nil || g.Generation == nil || *g.Generation != calls[oks-1].gen {
					t.Fatalf("answer %d to %q: %q, want generation %d", n, data, body, calls[oks-1].gen)
				}
			}
		case c == http.StatusContinue:
			n-- // an interim answer to Expect: 100-continue
		case c == http.StatusMovedPermanently, c == http.StatusTemporaryRedirect, c == http.StatusPermanentRedirect:
			// ServeMux cleans paths ("/./reload") by redirecting: nothing ran.
		case c >= 400 && c < 500:
		case c == http.StatusNotImplemented, c == http.StatusHTTPVersionNotSupported:
		default:
			t.Fatalf("answer %d to %q: %s", n, data, resp.Status)
		}
		if resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
			t.Fatalf("405 without Allow to %q", data)
		}
		if resp.Close {
			// The server's last answer. One it makes itself for a request it cannot read
			// has a body even when the request said HEAD: the rest is that body.
			if rest, _ := io.ReadAll(br); len(rest) > maxResponse {
				t.Fatalf("answer %d to %q: %d bytes after it", n, data, len(rest))
			}
			break
		}
	}
	if n > maxResponses(data) {
		t.Fatalf("%d answers to %d bytes", n, len(data))
	}
	if oks != len(calls) {
		t.Fatalf("%d answers 200 for %d callback runs on %q\n%q", oks, len(calls), data, raw)
	}
	for _, c := range calls {
		switch {
		case c.reload && (c.method != http.MethodPost || c.path != "/reload"):
			t.Fatalf("%s %q reloaded (input %q)", c.method, c.path, data)
		case !c.reload && (c.method != http.MethodGet && c.method != http.MethodHead || c.path != "/status"):
			t.Fatalf("%s %q asked for the status (input %q)", c.method, c.path, data)
		}
	}
	return n
}

// requestMethods returns the methods of the requests in data, in order, as far as the HTTP
// parser that the server uses reads them.
func requestMethods(data []byte) []string {
	var out []string
	br := bufio.NewReader(bytes.NewReader(data))
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return out
		}
		out = append(out, r.Method)
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return out
		}
	}
}

// errLog collects what the HTTP server logs; a recovered handler panic shows there.
type errLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *errLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) < 100 {
		l.lines = append(l.lines, string(p))
	}
	return len(p), nil
}

func (l *errLog) panics() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, "panic") {
			return s
		}
	}
	return ""
}
