package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/proc"
	"github.com/vigil-ha/vigil/internal/lab"
)

const (
	routerAS = 64512
	nodeAS   = 64600 // both nodes: the router compares MEDs only between paths from one AS
	port     = 8080
)

// Priorities of n1 and n2: vigil's MED is 255 minus the priority, and ExaBGP's side is
// given the same MEDs, so that n1 is preferred on every side.
var prios = [2]int{200, 100}

func med(i int) int { return 255 - prios[i] }

// side is one implementation under test: it announces vip from both nodes while their
// check (the absence of failFile(i)) passes.
type side interface {
	name() string
	// start runs the side on node i of b's lab.
	start(ctx context.Context, b *bench, i int) (*lab.Proc, error)
	// backupAnnounces says whether n2 announces while n1 does (ExaBGP, anycast) or only once
	// n1 has stopped (active/backup).
	backupAnnounces() bool
}

type bench struct {
	lab     *lab.Lab
	work    string
	o       options
	router  *lab.FRR
	servers [2]*server
	vip     netip.Prefix
	mu      sync.Mutex
	procs   []*lab.Proc
}

// server answers each TCP connection with its node's name, unless down: then it closes
// the connection without a word, as a dead service would (a refused connect is the same to
// the client, and keeps the listener for the next trial).
type server struct {
	name string
	ln   net.Listener
	down atomic.Bool
}

func (s *server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.down.Load() {
			_, _ = io.WriteString(c, s.name+"\n")
		}
		c.Close()
	}
}

func (b *bench) failFile(i int) string { return filepath.Join(b.work, fmt.Sprintf("fail-n%d", i+1)) }

func (b *bench) nodeAddr(i int) netip.Addr { return b.lab.Nodes[i].Addr4.Addr() }

// routerConf: eBGP to both nodes, GRACEFUL_SHUTDOWN honoured as RFC 8326 asks (LOCAL_PREF 0),
// ECMP between equal paths, and the updates it receives logged with microseconds.
func (b *bench) routerConf() string {
	var s strings.Builder
	s.WriteString("log stdout debugging\nlog timestamp precision 6\ndebug bgp updates in\n")
	// The policy first: a route-map that bgpd meets before its definition denies what
	// arrives until its delay timer has run, and a path once denied is not looked at again.
	s.WriteString("bgp route-map delay-timer 0\n")
	s.WriteString("bgp community-list standard GSHUT seq 5 permit graceful-shutdown\n")
	s.WriteString("route-map IN permit 10\n match community GSHUT\n set local-preference 0\nroute-map IN permit 20\nexit\n")
	fmt.Fprintf(&s, "router bgp %d\n bgp router-id %s\n", routerAS, b.lab.Router.Addr4.Addr())
	s.WriteString(" no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n bgp bestpath as-path multipath-relax\n")
	for i := range b.lab.Nodes {
		a := b.nodeAddr(i)
		fmt.Fprintf(&s, " neighbor %s remote-as %d\n neighbor %s timers connect 1\n", a, nodeAS, a)
	}
	s.WriteString(" address-family ipv4 unicast\n  maximum-paths 4\n")
	for i := range b.lab.Nodes {
		a := b.nodeAddr(i)
		fmt.Fprintf(&s, "  neighbor %s activate\n  neighbor %s route-map IN in\n", a, a)
	}
	s.WriteString(" exit-address-family\n")
	return s.String()
}

func (b *bench) setup(ctx context.Context) error {
	b.vip = lab.RoutedVIP(1, false)
	var err error
	if b.router, err = b.lab.Router.StartFRRDaemons(ctx, lab.FRRDaemon{Name: "bgpd", Conf: b.routerConf()}); err != nil {
		return err
	}
	for i, nd := range b.lab.Nodes {
		// The address stays on every node's lo, as an anycast node has it (docs/bgp.md): a
		// node that is not routed to gets no traffic, so only the router's choice is
		// measured; vigil adds and removes its own copy on VIPIface.
		if _, err := nd.Exec(ctx, "ip", "addr", "add", b.vip.String(), "dev", "lo"); err != nil {
			return err
		}
		ln, err := lab.ListenIn(nd.NS, "tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			return err
		}
		b.servers[i] = &server{name: nd.Name, ln: ln}
		go b.servers[i].serve()
	}
	return nil
}

func (b *bench) closeAll() {
	for _, s := range b.servers {
		if s != nil {
			s.ln.Close()
		}
	}
	b.mu.Lock()
	procs := b.procs
	b.procs = nil
	b.mu.Unlock()
	stopProcs(procs, b.work)
	if b.router != nil {
		if err := b.router.Stop(); err != nil {
			logf("stop FRR: %v", err)
		}
	}
}

func (b *bench) startSide(ctx context.Context, s side) error {
	for i := range b.lab.Nodes {
		os.Remove(b.failFile(i))
		b.servers[i].down.Store(false)
		p, err := s.start(ctx, b, i)
		if err != nil {
			return err
		}
		b.mu.Lock()
		b.procs = append(b.procs, p)
		b.mu.Unlock()
	}
	return b.waitSettled(ctx, s, 60*time.Second)
}

func (b *bench) stopSide(side) {
	b.mu.Lock()
	procs := b.procs
	b.procs = nil
	b.mu.Unlock()
	stopProcs(procs, b.work)
	// The next side starts from a router without routes.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = poll(ctx, func() bool {
		_, ok, err := b.router.BGPRoute(ctx, b.vip)
		return err == nil && !ok
	})
}

// waitSettled waits until FRR's best path to the address is n1's (and n2 has one too when
// the side announces from both), and the client is answered by n1.
func (b *bench) waitSettled(ctx context.Context, s side, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	n1, n2 := b.nodeAddr(0), b.nodeAddr(1)
	err := poll(ctx, func() bool {
		r, ok, err := b.router.BGPRoute(ctx, b.vip)
		if err != nil || !ok {
			return false
		}
		best, ok := r.BestPath()
		if !ok || best.Peer != n1 {
			return false
		}
		if s.backupAnnounces() {
			has2 := false
			for _, p := range r.Paths {
				has2 = has2 || p.Peer == n2
			}
			if !has2 {
				return false
			}
		}
		who, err := b.probe(ctx)
		return err == nil && who == "n1"
	})
	if err != nil {
		r, _, _ := b.router.BGPRoute(context.Background(), b.vip)
		return fmt.Errorf("not settled (n1 best at FRR, client answered by n1) within %s: FRR has %+v", d, r)
	}
	return nil
}

// probe connects from the client to the address and returns the name the node answers.
func (b *bench) probe(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	c, err := lab.DialIn(ctx, b.lab.Client.NS, "tcp", netip.AddrPortFrom(b.vip.Addr(), port).String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func poll(ctx context.Context, cond func() bool) error {
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// result is one trial: times from the check's failure (the fail file and the dead service).
type result struct {
	notBest time.Duration // FRR's best path is no longer n1's (vtysh polled every 10 ms)
	gone    time.Duration // n1's path is gone from FRR (withdrawn)
	logged  time.Duration // FRR's log line of n1's withdrawal (its own timestamp); -1 if none
	outage  time.Duration // last answer from n1 to first answer from n2 at the client
	lost    int           // probes unanswered in between
}

type answer struct {
	at  time.Time
	who string // "" when unanswered
}

// trial fails n1's check at a random point of the check interval, and watches the router
// and the client until n2 answers and n1's path is gone.
func (b *bench) trial(ctx context.Context, s side, i int) (result, error) {
	var r result
	// The client's stream of connects, every o.probe.
	pctx, stopProbes := context.WithCancel(ctx)
	var answers []answer // the probing goroutine's until probesDone
	var sawN2 atomic.Bool
	probesDone := make(chan struct{})
	go func() {
		defer close(probesDone)
		t := time.NewTicker(b.o.probe)
		defer t.Stop()
		for {
			who, _ := b.probe(pctx)
			answers = append(answers, answer{at: time.Now(), who: who})
			if who == "n2" {
				sawN2.Store(true)
			}
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	stopped := false
	defer func() {
		if !stopped {
			stopProbes()
			<-probesDone
		}
	}()
	time.Sleep(300*time.Millisecond + rand.N(b.o.interval))

	logBefore := len(b.router.Log("bgpd"))
	t0 := time.Now()
	b.servers[0].down.Store(true)
	if err := os.WriteFile(b.failFile(0), nil, 0o644); err != nil {
		return r, err
	}
	n1, n2 := b.nodeAddr(0), b.nodeAddr(1)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second+time.Duration(b.o.gshut)*time.Second)
	defer cancel()
	err := poll(wctx, func() bool {
		rt, ok, err := b.router.BGPRoute(wctx, b.vip)
		if err != nil {
			return false
		}
		now := time.Since(t0)
		has1 := false
		best := netip.Addr{}
		for _, p := range rt.Paths {
			has1 = has1 || p.Peer == n1
			if p.Best {
				best = p.Peer
			}
		}
		if r.notBest == 0 && (!ok || best != n1) {
			r.notBest = now
		}
		if r.gone == 0 && !has1 {
			r.gone = now
		}
		return r.gone != 0 && best == n2
	})
	if err != nil {
		return r, fmt.Errorf("n1's path not gone or n2's not best at FRR: %w", err)
	}
	// n2 answering the client ends the trial.
	err = poll(wctx, sawN2.Load)
	stopProbes()
	<-probesDone
	stopped = true
	if err != nil {
		return r, fmt.Errorf("the client got no answer from n2")
	}
	var last1, first2 time.Time
	for _, a := range answers {
		switch {
		case a.who == "n1":
			last1 = a.at
		case a.who == "n2" && first2.IsZero():
			first2 = a.at
		case a.who == "" && !last1.IsZero() && first2.IsZero():
			r.lost++
		}
	}
	if last1.IsZero() || first2.IsZero() {
		return r, errors.New("no answer from n1 before the failure")
	}
	r.outage = first2.Sub(last1)
	r.logged = withdrawLogged(b.router.Log("bgpd")[logBefore:], n1, b.vip, t0)

	if err := b.recover(ctx, s); err != nil {
		return r, err
	}
	return r, nil
}

// recover makes n1's check pass again and waits until traffic is back on n1.
func (b *bench) recover(ctx context.Context, s side) error {
	b.servers[0].down.Store(false)
	os.Remove(b.failFile(0))
	return b.waitSettled(ctx, s, 60*time.Second)
}

// stopProcs ends the daemons: SIGTERM first, so that ExaBGP ends the processes it runs (it
// puts them in process groups of their own, out of reach of a kill of its group), then
// SIGKILL for what is left; last, any process that still names the work directory on its
// command line (a healthcheck orphaned all the same) is killed by its PID.
func stopProcs(procs []*lab.Proc, work string) {
	for _, p := range procs {
		if !p.Exited() {
			_ = p.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		if p.Wait(5*time.Second) != nil {
			p.Kill()
		}
	}
	for _, st := range proc.All() {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.PID))
		if st.PID != os.Getpid() && strings.Contains(string(cmd), work+"/") {
			_ = syscall.Kill(st.PID, syscall.SIGKILL)
		}
	}
}
