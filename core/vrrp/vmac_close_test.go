package vrrp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestDroppedVMACStopsItsGoroutines: closing the sockets of a VMAC that a reload dropped
// (closeSocketsOn) ends their reader and their sender, not only when the engine stops. The
// sockets are UDP sockets on loopback standing in for the VMAC's, so no privilege is needed.
func TestDroppedVMACStopsItsGoroutines(t *testing.T) {
	readCtx, stop := context.WithCancel(context.Background())
	defer stop()
	e := &Engine{log: hclog.NewNullLogger(), base: time.Now(), sockets: map[sockKey]*sockGroup{}, readCtx: readCtx}
	vmac := &net.Interface{Index: 1 << 20, Name: "vrrp.51"}
	open := func() *socket {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return &socket{fd: -1, ifi: vmac, conn: conn}
	}
	send := open() // the VMAC's sending socket, with its sender
	out := &sockGroup{sock: send, out: newSender(send, e.log)}
	out.setVRID(0, nil)
	listen := &sockGroup{sock: open()} // its listener: a reader only
	listen.setVRID(0, nil)
	e.sockets[sockKey{ifindex: vmac.Index}] = out
	e.sockets[sockKey{ifindex: vmac.Index, vmac: true}] = listen
	e.startSockets()

	e.closeSocketsOn(vmac.Name)
	if len(e.sockets) != 0 {
		t.Errorf("%d sockets still listed after closeSocketsOn", len(e.sockets))
	}
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a failure bound, not a timing
		t.Fatal("a reader or sender of the closed sockets still runs")
	}
}
