package vrrp

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// sender sends the adverts of the steady masters on one socket. A master whose unit hands
// it its Adver_Timer (see fsm.Machine.AdvertsSentUntil) costs no wake-up of its own per
// advert: the sender wakes once for every master that is due, and one sendmmsg carries all
// their adverts. At 255 instances with 10 ms adverts that replaces 25,500 goroutine
// wake-ups and system calls a second with a few hundred.
type sender struct {
	sock *socket
	log  hclog.Logger

	mu      sync.Mutex // held while sending, so that take never races a send
	entries []*sendEntry
	kick    chan struct{}

	m4 []ipv4.Message
	m6 []ipv6.Message

	lastWarn time.Time // adverts fail every interval while a link is down: warn every 10 s
	failed   int       // batches that failed since the last warning
}

// sendEntry is one master's advert schedule.
type sendEntry struct {
	in       *instance
	due      time.Time
	interval time.Duration
	early    time.Duration // how much earlier than due it may go, to share a wake-up
	pkts     []outPacket   // one per destination (the group, or each unicast peer)
}

type outPacket struct {
	bufs [][]byte // the payload, as the one buffer of a message
	oob  []byte   // source address and interface (IP_PKTINFO / IPV6_PKTINFO)
	to   *net.IPAddr
}

// maxEarly bounds how much sooner than its Adver_Timer an advert may be sent so that it
// shares a wake-up and a system call with others. A backup only ever sees the adverts
// somewhat earlier, which never brings its Master_Down_Timer closer.
const maxEarly = time.Millisecond

func newSender(s *socket, log hclog.Logger) *sender {
	return &sender{sock: s, log: log, kick: make(chan struct{}, 1)}
}

// put starts sending in's adverts: the first at due, then every interval.
func (s *sender) put(in *instance, due time.Time, interval time.Duration, pkts []outPacket) {
	early := min(maxEarly, interval/10)
	s.mu.Lock()
	// Join the cadence of a master already here with the same interval, by sending our next
	// advert up to one interval early: masters that took over at slightly different times
	// then share one wake-up and one system call per interval, and their backups receive
	// the adverts in one burst, which they also read in few calls. An advert that comes
	// early only ever pushes a backup's Master_Down_Timer further away.
	for _, e := range s.entries {
		if e.interval == interval {
			due = alignDown(due, e.due, interval)
			break
		}
	}
	s.entries = append(s.entries, &sendEntry{in: in, due: due, interval: interval, early: early, pkts: pkts})
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// alignDown returns the latest time at or before t that is a whole number of intervals
// away from phase.
func alignDown(t, phase time.Time, interval time.Duration) time.Time {
	d := t.Sub(phase)
	k := d / interval
	if d < 0 && d%interval != 0 {
		k-- // floor, not truncation towards zero
	}
	return phase.Add(k * interval)
}

// take stops sending in's adverts and returns when the next one was due. Once it returns,
// no further advert of in leaves through the sender.
func (s *sender) take(in *instance) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.entries {
		if e.in == in {
			last := len(s.entries) - 1
			s.entries[i] = s.entries[last]
			s.entries[last] = nil
			s.entries = s.entries[:last]
			return e.due, true
		}
	}
	return time.Time{}, false
}

func (s *sender) run(ctx context.Context) {
	runTimed(ctx, s.kick, func(now time.Time) (time.Time, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.sendDue(now)
	})
}

// runTimed calls step now, then again at the time it returns (if it returns one) or when
// kick says that what step looks at has changed, until ctx ends.
func runTimed(ctx context.Context, kick <-chan struct{}, step func(now time.Time) (time.Time, bool)) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next, ok := step(time.Now())
		var timerC <-chan time.Time
		if ok {
			timer.Reset(time.Until(next))
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-timerC:
		}
	}
}

// sendDue sends every advert that is due (or nearly) and returns when the next one is.
// Called with s.mu held.
func (s *sender) sendDue(now time.Time) (time.Time, bool) {
	var next time.Time
	s.m4, s.m6 = s.m4[:0], s.m6[:0]
	for _, e := range s.entries {
		if !e.due.After(now.Add(e.early)) {
			e.in.stats.sent.Add(1)
			for _, p := range e.pkts {
				if s.sock.v6 {
					s.m6 = append(s.m6, ipv6.Message{Buffers: p.bufs, OOB: p.oob, Addr: p.to})
				} else {
					s.m4 = append(s.m4, ipv4.Message{Buffers: p.bufs, OOB: p.oob, Addr: p.to})
				}
			}
			// The next one counts from when this one was due, as fsm's Adver_Timer does.
			e.due = e.due.Add(e.interval)
			if !e.due.After(now) {
				e.due = now.Add(e.interval)
			}
		}
		if next.IsZero() || e.due.Add(-e.early).Before(next) {
			next = e.due.Add(-e.early)
		}
	}
	if err := s.flush(); err != nil {
		s.failed++
		if now.Sub(s.lastWarn) >= 10*time.Second {
			s.log.Warn("adverts not sent", "interface", s.sock.ifi.Name, "error", err, "failed_batches", s.failed)
			s.lastWarn, s.failed = now, 0
		}
	}
	return next, !next.IsZero()
}

// flush writes the collected messages, as many per system call as the kernel takes. A
// message the kernel refuses is skipped, so that one bad destination does not hold back
// the adverts of every other instance.
func (s *sender) flush() error {
	var errs []error
	write := func(n int, err error) int {
		if err != nil {
			errs = append(errs, err)
		}
		return max(n, 1)
	}
	for ms := s.m4; len(ms) > 0; {
		ms = ms[write(s.sock.p4.WriteBatch(ms, 0)):]
	}
	for ms := s.m6; len(ms) > 0; {
		ms = ms[write(s.sock.p6.WriteBatch(ms, 0)):]
	}
	if len(errs) > 0 {
		return fmt.Errorf("sendmmsg (%d failed): %w", len(errs), errs[0])
	}
	return nil
}
