package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// The service and the client are this program re-executed in a lab node (-serve, -client), so
// that each runs wholly inside its node's network namespace.

const (
	servicePort = 8080
	// clientEvery is how often the client sends a request to the VIP.
	clientEvery = 10 * time.Millisecond
	// clientTimeout bounds one request (connect, then read the answer).
	clientTimeout = time.Second
)

// serve answers every TCP connection on port with name and a newline, then closes it.
func serve(name string, port int) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	answer := []byte(name + "\n")
	for {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		go func() {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			_, _ = c.Write(answer)
			c.Close()
		}()
	}
}

// client sends a request to addr every clientEvery, each on a connection of its own and in
// parallel (a request to a dead address must not delay the next), and prints one line per
// request when it ends: "SENT_UNIXNANO NODE" with the node that answered, or
// "SENT_UNIXNANO - REASON". On SIGTERM it stops sending, lets the requests under way finish
// and exits.
func client(addr string) error {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	lines := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		w := bufio.NewWriter(os.Stdout)
		flush := time.NewTicker(50 * time.Millisecond)
		defer flush.Stop()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					w.Flush()
					close(done)
					return
				}
				w.WriteString(l)
			case <-flush.C:
				w.Flush()
			}
		}
	}()
	var wg sync.WaitGroup
	tick := time.NewTicker(clientEvery)
	defer tick.Stop()
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-tick.C:
		}
		sent := time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines <- fmt.Sprintf("%d %s\n", sent.UnixNano(), request(addr, sent))
		}()
	}
	wg.Wait()
	close(lines)
	<-done
	return nil
}

// request is the node that answered, or "- REASON".
func request(addr string, sent time.Time) string {
	d := net.Dialer{Deadline: sent.Add(clientTimeout)}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "- " + reason(err)
	}
	defer c.Close()
	_ = c.SetDeadline(sent.Add(clientTimeout))
	l, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "- read:" + reason(err)
	}
	return strings.TrimSpace(l)
}

func reason(err error) string {
	switch {
	case os.IsTimeout(err):
		return "timeout"
	case strings.Contains(err.Error(), "refused"):
		return "refused"
	case strings.Contains(err.Error(), "unreachable"):
		return "unreachable"
	}
	return "error"
}

// Request is one of the client's requests.
type Request struct {
	Sent time.Time
	Node string // the node that answered; "" when it failed
	Why  string // why it failed (timeout, refused, unreachable ...)
}

// Client is the client process on the client node and what it has recorded.
type Client struct {
	proc    *lab.Proc
	stopped bool
}

func startClient(nd *lab.Node, self string, addr string) (*Client, error) {
	p, err := nd.Start(self, "-client", addr)
	if err != nil {
		return nil, err
	}
	return &Client{proc: p}, nil
}

// Stop ends the client; the requests under way finish first (at most clientTimeout).
func (c *Client) Stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	_ = c.proc.Signal(syscall.SIGTERM)
	if c.proc.Wait(clientTimeout+5*time.Second) != nil && !c.proc.Exited() {
		c.proc.Kill()
	}
}

// Requests are the requests that have ended so far, in the order they were sent.
func (c *Client) Requests() []Request {
	var out []Request
	sc := bufio.NewScanner(strings.NewReader(c.proc.Output()))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		r := Request{Sent: time.Unix(0, ns)}
		if f[1] == "-" {
			r.Why = strings.Join(f[2:], " ")
		} else {
			r.Node = f[1]
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Sent.Before(out[j].Sent) })
	return out
}

// Between are the requests sent in [from, to); a zero to means no end.
func Between(rs []Request, from, to time.Time) []Request {
	var out []Request
	for _, r := range rs {
		if r.Sent.Before(from) || (!to.IsZero() && !r.Sent.Before(to)) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// Outage is the longest run of consecutive failed requests in rs: from the sending of the
// first failed request of the run to the sending of the next answered request; a run that
// lasts to the end of rs ends one request interval after its last request. It also returns
// when that run began.
func Outage(rs []Request) (time.Duration, time.Time) {
	var longest time.Duration
	var at time.Time
	for i := 0; i < len(rs); {
		if rs[i].Node != "" {
			i++
			continue
		}
		j := i
		for j < len(rs) && rs[j].Node == "" {
			j++
		}
		end := rs[len(rs)-1].Sent.Add(clientEvery)
		if j < len(rs) {
			end = rs[j].Sent
		}
		if d := end.Sub(rs[i].Sent); d > longest {
			longest, at = d, rs[i].Sent
		}
		i = j
	}
	return longest, at
}

// Answers counts the answered requests of rs by node, and the failed ones by reason (as
// "failed:REASON").
func Answers(rs []Request) map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		if r.Node != "" {
			out[r.Node]++
		} else {
			out["failed:"+r.Why]++
		}
	}
	return out
}

// FinalRun is the node that answered the last requests of rs and when the run began: the
// first request after which every request was answered by that node. n is the run's length;
// node is "" when the last request failed.
func FinalRun(rs []Request) (node string, since time.Time, n int) {
	if len(rs) == 0 || rs[len(rs)-1].Node == "" {
		return "", time.Time{}, 0
	}
	node = rs[len(rs)-1].Node
	i := len(rs) - 1
	for i > 0 && rs[i-1].Node == node {
		i--
	}
	return node, rs[i].Sent, len(rs) - i
}

// formatCounts writes counts by name as "a 1, b 2", sorted by name: the client's answers by
// node, a node's drops by reason.
func formatCounts[N int | uint64](m map[string]N) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
