//go:build linux

package main

import (
	"container/heap"
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/plugins/internal/target"
)

// connectOnly opens one TCP connection to ap by ctx's deadline and closes it: the whole of a
// TCP_CHECK without send or expect, which is what a load balancer with many real servers runs
// most (keepalived's default checker), a thousand times a second at 1,000 servers.
//
// Most of such a probe's CPU is in system calls (perf, through bench/checkcpu), so it makes
// few: socket, connect, epoll_ctl on the plugin's own epoll instance, getpeername once
// connected, and close (which also takes the socket off that instance). net.Dialer spends 13
// on the same connection (TCP_NODELAY, four keep-alive options, getsockname, getsockopt, the
// runtime poller's fcntl and two epoll_ctl). What the server sees is the same: a handshake,
// then FIN. One goroutine (the poller's) collects the events of every connect in flight with
// one epoll_wait, woken through the runtime's own poller.
//
// The connect fails with os.ErrDeadlineExceeded at deadline (none when zero), kept by the
// poller's one timer rather than a context and timer per probe, and at once with ctx's error
// when ctx ends first.
func (c *connector) connectOnly(ctx context.Context, deadline time.Time, ap netip.AddrPort) error {
	fd, err := startConnect(ap)
	if err != nil || fd < 0 {
		return err
	}
	p, err := c.poller()
	if err != nil {
		// No epoll instance of its own (a limit on open files, say): the runtime's poller.
		return target.ConnectFile(ctx, deadline, ap, fd)
	}
	return p.wait(ctx, deadline, ap, fd)
}

// connector is a tcpChecker's way to connectOnly: its poller, started on the first
// connect-only probe (a plugin that runs none has no epoll instance), and kept by the
// checker rather than the package, so that a test can give it a poller that fails.
type connector struct {
	once sync.Once
	p    *poller
	err  error
	// epollWait collects the poller's events; nil is syscall.EpollWait.
	epollWait func(epfd int, events []syscall.EpollEvent, msec int) (int, error)
}

func (c *connector) poller() (*poller, error) {
	c.once.Do(func() {
		wait := c.epollWait
		if wait == nil {
			wait = syscall.EpollWait
		}
		c.p, c.err = newPoller(wait)
	})
	return c.p, c.err
}

// startConnect starts a connect to ap and returns its socket, or -1 when the connect has
// already ended (nil: connected, and closed again).
func startConnect(ap netip.AddrPort) (int, error) {
	fd, done, err := target.StartConnect(ap)
	if err != nil {
		return -1, err
	}
	if done {
		syscall.Close(fd)
		return -1, nil
	}
	return fd, nil
}

// poller is the plugin's epoll instance for connects in flight. Each is registered with a
// number of its own, not its descriptor: a descriptor closed and reused while its event is
// collected must not wake the probe that now has it.
//
// Should collecting ever fail (epoll_wait with an error other than EINTR), the poller is
// dead: every connect waiting on it is woken and goes on through the runtime's poller
// (target.ConnectFile), as does every later one. The instance is closed only once no connect can
// use its number any more, so that a descriptor that reuses the number is never taken for it.
type poller struct {
	epfd    int
	file    *os.File // owns epfd: closing it closes the instance
	mu      sync.Mutex
	dead    bool
	users   int           // connects that registered and have not yet let go (release)
	stopped chan struct{} // closed once dead
	next    uint32
	waiting map[uint32]chan struct{}
	// The deadlines of the connects in flight, earliest first, and the one timer that
	// wakes each at its own (armed: when it is set for; zero: stopped). A connect that
	// ended leaves its entry behind: the timer drops it when its time comes.
	deadlines deadlineHeap
	timer     *time.Timer
	armed     time.Time
}

type deadline struct {
	at time.Time
	id uint32
}

type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// expire wakes the connects whose deadline has come, and sets the timer for the next one.
func (p *poller) expire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for len(p.deadlines) > 0 && !p.deadlines[0].at.After(now) {
		d := heap.Pop(&p.deadlines).(deadline)
		if ch := p.waiting[d.id]; ch != nil {
			wake(ch)
		}
	}
	p.armed = time.Time{}
	if len(p.deadlines) > 0 {
		p.armed = p.deadlines[0].at
		p.timer.Reset(time.Until(p.armed))
	}
}

// wake tells a waiting connect to look at its socket and its clock.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// newPoller starts a poller that collects its events with epollWait; it runs as long as
// the plugin, unless collecting fails.
func newPoller(epollWait func(int, []syscall.EpollEvent, int) (int, error)) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// On the runtime's poller, the instance is readable while it holds events: the
	// collecting goroutine sleeps there, not in a blocking epoll_wait of its own thread.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &poller{epfd: epfd, file: f, waiting: map[uint32]chan struct{}{}, stopped: make(chan struct{})}
	p.timer = time.AfterFunc(time.Hour, p.expire)
	p.timer.Stop()
	ready := make(chan error, 1)
	go func() {
		events := make([]syscall.EpollEvent, 256)
		first := true
		err := rc.Read(func(fd uintptr) bool {
			if first {
				first = false
				ready <- nil
			}
			for {
				n, err := epollWait(int(fd), events, 0)
				if err == syscall.EINTR {
					continue
				}
				if err != nil {
					return true
				}
				p.mu.Lock()
				for _, ev := range events[:n] {
					if ch := p.waiting[uint32(ev.Fd)]; ch != nil {
						wake(ch)
					}
				}
				p.mu.Unlock()
				if n < len(events) {
					return false // drained: sleep until the instance is readable again
				}
			}
		})
		if first {
			ready <- fmt.Errorf("epoll on the runtime poller: %w", err)
		}
		p.die()
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return p, nil
}

// die marks p dead and wakes every connect waiting on it (see poller). Called once, by
// the goroutine that collected the events, when it stops.
func (p *poller) die() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead = true
	close(p.stopped)
	p.timer.Stop()
	for _, ch := range p.waiting {
		wake(ch)
	}
	p.closeIfUnused()
}

// closeIfUnused closes the instance of a dead poller that no connect uses any more. p.mu
// is held.
func (p *poller) closeIfUnused() {
	if p.dead && p.users == 0 && p.file != nil {
		p.file.Close()
		p.file = nil
	}
}

// isDead reports whether p has stopped collecting events.
func (p *poller) isDead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead
}

// wait waits for the connect in progress on fd to end, then closes fd. Once p is dead,
// target.ConnectFile waits instead.
func (p *poller) wait(ctx context.Context, dl time.Time, ap netip.AddrPort, fd int) error {
	ch := make(chan struct{}, 1)
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return target.ConnectFile(ctx, dl, ap, fd)
	}
	p.users++
	p.next++
	for p.waiting[p.next] != nil || p.next == 0 {
		p.next++
	}
	id := p.next
	p.waiting[id] = ch
	if !dl.IsZero() {
		heap.Push(&p.deadlines, deadline{at: dl, id: id})
		if p.armed.IsZero() || dl.Before(p.armed) {
			p.armed = dl
			p.timer.Reset(time.Until(dl))
		}
	}
	p.mu.Unlock()
	fallBack, err := p.waitRegistered(ctx, ch, id, dl, ap, fd)
	// Let go of the instance before target.ConnectFile waits: a dead poller's instance is closed
	// by the last connect that lets go of it, and fd, still on it, is then taken off.
	p.mu.Lock()
	delete(p.waiting, id)
	p.users--
	p.closeIfUnused()
	p.mu.Unlock()
	if fallBack {
		return target.ConnectFile(ctx, dl, ap, fd)
	}
	syscall.Close(fd) // also takes it off the instance: it is never duplicated
	return err
}

// waitRegistered is wait once the connect has its number id and its channel ch; fallBack
// says that p died first, and that fd is still open for target.ConnectFile.
func (p *poller) waitRegistered(ctx context.Context, ch chan struct{}, id uint32, dl time.Time, ap netip.AddrPort, fd int) (fallBack bool, err error) {
	// Edge-triggered: registered after connect, the socket's state at this moment counts
	// as an edge, so a handshake that is already over is reported too.
	ev := syscall.EpollEvent{Events: syscall.EPOLLOUT | epollET, Fd: int32(id)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		if p.isDead() {
			return true, nil
		}
		return false, target.ConnectError(ap, os.NewSyscallError("epoll_ctl", err))
	}
	for {
		select {
		case <-ch:
		case <-ctx.Done():
			// The socket first: after a stall (a busy machine) both may be due, and a
			// handshake that was over before the end counts, as keepalived counts it.
			if done, err := target.Connected(fd); done && err == nil {
				return false, nil
			}
			return false, target.ConnectError(ap, ctx.Err())
		}
		if p.isDead() {
			// Nothing will wake this connect again: the socket may be over already, which
			// target.ConnectFile asks first.
			return true, nil
		}
		// Woken by the socket or by the timer (maybe for an earlier connect that had this
		// number): the socket says whether it is over, the clock whether time is up.
		if done, err := target.Connected(fd); done {
			if err != nil {
				return false, target.ConnectError(ap, err)
			}
			return false, nil
		}
		if !dl.IsZero() && !time.Now().Before(dl) {
			return false, target.ConnectError(ap, os.ErrDeadlineExceeded)
		}
	}
}

// epollET is syscall.EPOLLET, which package syscall declares as a negative int.
const epollET = 1 << 31
