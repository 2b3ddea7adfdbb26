package lane

import (
	"net"
	"time"
)

// A lane is two unix connections, one per direction, joined into one net.Conn for TLS.
//
// Why two: a socket that a process both reads and writes is in its runtime's poller for
// both, and Linux tells a writer's poller that there is room again every time the reader
// takes a message off the socket. On one connection, each probe therefore woke each
// process twice: once for the message it waited for, once for room it did not need. The
// second wake cost as much as the first (a context switch and an empty poll; about a third
// of a probe's CPU on the VM of BENCHMARKS.md). Here each process polls only the socket it
// reads; the socket it writes is kept out of its poller (writeEnd), so a probe wakes each
// process once.
//
// The host dials twice, one connection after the other: the first carries host to plugin,
// the second plugin to host. The listener accepts them in that order (a unix listener's
// queue is first in, first out).

// writeEnd is the connection a process writes to and never reads.
type writeEnd interface {
	Write(p []byte) (int, error)
	SetWriteDeadline(t time.Time) error
	Close() error
}

// duplex reads from r and writes to w.
type duplex struct {
	net.Conn // the read end: Read, the addresses, read deadlines
	w        writeEnd
}

// join opens the lane's two connections with open (Dial's or Accept's), host to plugin
// first, and makes the duplex of the host's side or the plugin's.
func join(open func() (net.Conn, error), host bool) (*duplex, error) {
	down, err := open()
	if err != nil {
		return nil, err
	}
	up, err := open()
	if err != nil {
		down.Close()
		return nil, err
	}
	r, w := down, up
	if host {
		r, w = up, down
	}
	d, err := newDuplex(r, w)
	if err != nil {
		down.Close()
		up.Close()
		return nil, err
	}
	return d, nil
}

func newDuplex(r, w net.Conn) (*duplex, error) {
	we, err := detach(w)
	if err != nil {
		return nil, err
	}
	return &duplex{Conn: quiet(r), w: we}, nil
}

func (d *duplex) Write(p []byte) (int, error) { return d.w.Write(p) }

func (d *duplex) SetWriteDeadline(t time.Time) error { return d.w.SetWriteDeadline(t) }

func (d *duplex) SetDeadline(t time.Time) error {
	d.w.SetWriteDeadline(t)
	return d.Conn.SetReadDeadline(t)
}

func (d *duplex) Close() error {
	werr := d.w.Close()
	if err := d.Conn.Close(); err != nil {
		return err
	}
	return werr
}
