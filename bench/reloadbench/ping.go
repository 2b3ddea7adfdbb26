package main

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// pinger sends ICMP echo requests to one address from a lab namespace every interval and
// records when each reply arrived (this process's clock, read by the goroutine that got it).
// The socket is a raw ICMP socket connected to the address (lab.DialIn), so the kernel hands
// it only that address's ICMP.
type pinger struct {
	conn     net.Conn
	id       uint16
	interval time.Duration
	stop     chan struct{}
	done     sync.WaitGroup

	mu      sync.Mutex
	sent    int
	sentAt  []time.Time // every request's send time, as in its payload
	replies []time.Time
	reqSent []time.Time // when the request of each reply was sent (from its payload)
}

func startPinger(ctx context.Context, ns string, dst netip.Addr, id uint16, interval time.Duration) (*pinger, error) {
	c, err := lab.DialIn(ctx, ns, "ip4:icmp", dst.String())
	if err != nil {
		return nil, err
	}
	p := &pinger{conn: c, id: id, interval: interval, stop: make(chan struct{})}
	p.done.Add(2)
	go p.send()
	go p.recv()
	return p, nil
}

func (p *pinger) send() {
	defer p.done.Done()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	var seq uint16
	msg := make([]byte, 16)
	for {
		seq++
		msg[0], msg[1] = 8, 0 // echo request
		binary.BigEndian.PutUint16(msg[2:], 0)
		binary.BigEndian.PutUint16(msg[4:], p.id)
		binary.BigEndian.PutUint16(msg[6:], seq)
		now := time.Now()
		binary.BigEndian.PutUint64(msg[8:], uint64(now.UnixNano()))
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
		if _, err := p.conn.Write(msg); err == nil {
			p.mu.Lock()
			p.sent++
			p.sentAt = append(p.sentAt, time.Unix(0, now.UnixNano()))
			p.mu.Unlock()
		}
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

func (p *pinger) recv() {
	defer p.done.Done()
	buf := make([]byte, 1500)
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := p.conn.Read(buf)
		now := time.Now()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() || os.IsTimeout(err) {
				select {
				case <-p.stop:
					return
				default:
					continue
				}
			}
			return
		}
		b := buf[:n]
		// A raw IPv4 socket's read starts with the IP header.
		if len(b) > 0 && b[0]>>4 == 4 {
			ihl := int(b[0]&0x0f) * 4
			if len(b) < ihl {
				continue
			}
			b = b[ihl:]
		}
		if len(b) < 8 || b[0] != 0 || binary.BigEndian.Uint16(b[4:]) != p.id {
			continue // not an echo reply of ours
		}
		var sentAt time.Time
		if len(b) >= 16 {
			sentAt = time.Unix(0, int64(binary.BigEndian.Uint64(b[8:])))
		}
		p.mu.Lock()
		p.replies = append(p.replies, now)
		p.reqSent = append(p.reqSent, sentAt)
		p.mu.Unlock()
	}
}

// close stops sending and receiving.
func (p *pinger) close() {
	close(p.stop)
	p.done.Wait()
	p.conn.Close()
}

// firstAfter waits until a reply arrived after t0 and returns its time and when its request
// was sent; false after limit.
func (p *pinger) firstAfter(t0 time.Time, limit time.Duration) (got, sent time.Time, ok bool) {
	deadline := time.Now().Add(limit)
	for {
		p.mu.Lock()
		for i, r := range p.replies {
			if r.After(t0) {
				p.mu.Unlock()
				return r, p.reqSent[i], true
			}
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			return time.Time{}, time.Time{}, false
		}
		time.Sleep(time.Millisecond)
	}
}

// stats returns the requests sent, the replies, and the longest time without a reply between
// from and to (counting from from to the first reply and from the last reply to to).
func (p *pinger) stats(from, to time.Time) (sent, got int, gap time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	last := from
	for _, r := range p.replies {
		if r.Before(from) || r.After(to) {
			continue
		}
		got++
		if d := r.Sub(last); d > gap {
			gap = d
		}
		last = r
	}
	if d := to.Sub(last); d > gap {
		gap = d
	}
	return p.sent, got, gap
}

// lost counts the requests sent between from and to that got no reply (by now).
func (p *pinger) lost(from, to time.Time) (lost, sent int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	answered := make(map[int64]bool, len(p.reqSent))
	for _, t := range p.reqSent {
		answered[t.UnixNano()] = true
	}
	for _, t := range p.sentAt {
		if t.Before(from) || t.After(to) {
			continue
		}
		sent++
		if !answered[t.UnixNano()] {
			lost++
		}
	}
	return lost, sent
}

// sendPause is the longest time between two requests sent (to the other end too) between
// from and to: how long the client itself was held up.
func (p *pinger) sendPause(from, to time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var max time.Duration
	last := from
	for _, t := range p.sentAt {
		if t.Before(from) {
			continue
		}
		if t.After(to) {
			t = to
		}
		if d := t.Sub(last); d > max {
			max = d
		}
		last = t
		if t == to {
			break
		}
	}
	return max
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
