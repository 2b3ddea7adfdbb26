package harness

import (
	"net"
	"sync/atomic"
)

// Tail is the end of a daemon's log, for an error message: its last 4000 bytes.
func Tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// AcceptAndClose listens on every address, accepts connections and closes them at once:
// a backend for TCP_CHECK, which asks no more. Each connection adds one to accepted (when
// not nil), so that a measurement knows how many probes there were. It returns the first
// error, of a listen or an accept.
func AcceptAndClose(addrs []string, accepted *atomic.Int64) error {
	errs := make(chan error, len(addrs))
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					errs <- err
					return
				}
				c.Close()
				if accepted != nil {
					accepted.Add(1)
				}
			}
		}()
	}
	return <-errs
}
