package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-ha/vigil/core/control"
)

// View is what the listener serves, read-only: nothing on it changes vigil's state (the
// control socket, root-only, is where reloads are asked for). It lives here rather than in
// core/control so that the network-facing server has no handler that could change anything.
type View struct {
	// Gatherer is served on /metrics.
	Gatherer prometheus.Gatherer
	// Status is the JSON of `vigil status --json` (the control socket's /status).
	Status func(ctx context.Context) any
	// Ready says why vigil is not ready (nil: ready): /readyz.
	Ready func() error
	Log   hclog.Logger
}

// Handler routes the view: GET (and HEAD) /metrics, /status, /healthz, /readyz. Any other
// method gets 405 with an Allow header, any other path 404.
func (v View) Handler() http.Handler {
	mux := http.NewServeMux()
	var errLog promhttp.Logger
	if v.Log != nil {
		errLog = v.Log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn})
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(v.Gatherer, promhttp.HandlerOpts{
		// A collector that fails leaves its metrics out; the rest is served.
		ErrorHandling: promhttp.ContinueOnError, ErrorLog: errLog,
	}))
	mux.HandleFunc("GET /status", control.ServeJSON(v.Status))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		// Core answers: that is all this says (a load balancer's liveness probe).
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := v.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// Server is the metrics listener.
type Server struct {
	ln     net.Listener
	server *http.Server
}

// Listen serves v on addr (HOST:PORT) until Close. A listener that every host can reach
// is logged as a warning: it has no authentication, and /status names the addresses,
// peers and checks of the node.
func Listen(addr string, v View) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen %s: %w (pick a free HOST:PORT, or leave it unset to turn metrics off)", addr, err)
	}
	if v.Log != nil {
		if Unauthenticated(addr) {
			v.Log.Warn("the metrics listener is reachable from other hosts and has no authentication; bind it to 127.0.0.1 or firewall it",
				"listen", ln.Addr().String())
		} else {
			v.Log.Info("serving metrics and the read-only status", "listen", ln.Addr().String())
		}
	}
	s := &Server{ln: ln, server: &http.Server{Handler: v.Handler(),
		// A scraper that trickles its request or never reads the answer must not hold a
		// goroutine and a descriptor of core's for ever.
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}}
	go func() { _ = s.server.Serve(ln) }()
	return s, nil
}

// Addr is the address the listener took (the port chosen for ":0").
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops serving.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.server.Shutdown(ctx)
}

// Unauthenticated reports whether addr is reachable from other hosts: any address but a
// loopback one (an empty host, 0.0.0.0 and :: are every address).
func Unauthenticated(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if host == "localhost" {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err != nil || !ip.IsLoopback()
}
