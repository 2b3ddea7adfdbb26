// Package control is vigil's control socket: a unix socket, root-only by default, that
// `vigil status`, `vigil reload`, `vigil demote` and `vigil promote` talk to (GET /status,
// POST /reload, POST /demote and /promote). It speaks HTTP with JSON bodies, so operators can
// also use curl --unix-socket.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/vigil/vigil.sock"

// Server serves the control socket.
type Server struct {
	path   string
	ln     net.Listener
	server *http.Server
}

// Listen creates the socket at path, readable and writable by its owner only (root for
// the daemon). A stale socket left by a crashed daemon is replaced.
// reload (POST /reload, from `vigil reload`) runs a reload and returns its result; each
// action is one more POST endpoint (vigil demote, vigil promote).
func Listen(path string, status func(ctx context.Context) any, reload func(ctx context.Context) any, actions ...Action) (*Server, error) {
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use: is another vigil running?", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &Server{path: path, ln: ln, server: newServer(handler(status, reload, actions...))}
	go func() { _ = s.server.Serve(ln) }()
	return s, nil
}

// Action is a POST endpoint that changes state: Do gets the request's query parameters
// (POST /demote?instance=VI_1&for=10m) and answers with its result, or with an error,
// which the client gets as an *Error: one made with Refuse keeps its status code, any other
// is a 500.
type Action struct {
	Path string // "/demote"
	Do   func(ctx context.Context, q url.Values) (any, error)
}

// Error is a request the daemon refused or failed, with its HTTP status and message.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("vigil answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Msg)
}

// Refuse makes an action's error that the client gets with code (400: a bad parameter,
// 404: no such instance, 409: the state does not allow it).
func Refuse(code int, err error) error { return &Error{Code: code, Msg: err.Error()} }

// handler routes the control socket's requests: GET (and HEAD) /status, POST /reload, and
// POST for each action; anything else gets 404 or 405 and calls none of them.
func handler(status, reload func(ctx context.Context) any, actions ...Action) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", ServeJSON(status))
	mux.HandleFunc("POST /reload", ServeJSON(reload))
	for _, a := range actions {
		mux.HandleFunc("POST "+a.Path, serveAction(a.Do))
	}
	return mux
}

// serveAction answers with what do returns, as indented JSON, or with its error as
// {"error": "..."} and the error's status code.
func serveAction(do func(context.Context, url.Values) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := do(r.Context(), r.URL.Query())
		if err != nil {
			code, msg := http.StatusInternalServerError, err.Error()
			var e *Error
			if errors.As(err, &e) {
				code, msg = e.Code, e.Msg
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
			return
		}
		ServeJSON(func(context.Context) any { return res })(w, r)
	}
}

// newServer is the HTTP server of the control socket (its fuzz test serves with it too).
func newServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		// Other clients may keep connections alive: one that never comes back must not hold
		// a goroutine and a descriptor of core's for ever.
		IdleTimeout: 30 * time.Second}
}

// serveJSON answers with what f returns, as indented JSON.
func ServeJSON(f func(ctx context.Context) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(f(r.Context())); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
}

// Close stops serving and removes the socket.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.server.Shutdown(ctx)
	_ = os.Remove(s.path)
	return err
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			if i == 0 {
				return "/"
			}
			return p[:i]
		}
	}
	return "."
}

// Get fetches a path (e.g. "/status") from the daemon's control socket and returns the body.
func Get(ctx context.Context, socket, path string) ([]byte, error) {
	return call(ctx, http.MethodGet, socket, path)
}

// Post posts to a path (e.g. "/reload") of the daemon's control socket and returns the body.
func Post(ctx context.Context, socket, path string) ([]byte, error) {
	return call(ctx, http.MethodPost, socket, path)
}

func call(ctx context.Context, method, socket, path string) ([]byte, error) {
	// One request per connection: a kept-alive connection of a transport that nobody uses
	// again would hold a goroutine and a descriptor on both sides for as long as the calling
	// process lives (a monitoring agent, the fault suite's soak), one more per call.
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, method, "http://vigil"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("cannot reach vigil at %s: %w (is it running? are you root?)", socket, err)
		}
		return nil, fmt.Errorf("cannot reach vigil at %s: %w", socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := string(body)
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error // an action's refusal (serveAction)
		}
		return nil, &Error{Code: resp.StatusCode, Msg: msg}
	}
	return body, nil
}
