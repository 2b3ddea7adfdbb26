//go:build !linux

package lane

import "net"

// quiet returns c: the raw reads of rawconn_linux.go are for Linux, where vigil runs.
func quiet(c net.Conn) net.Conn { return c }

// detach returns c: elsewhere the write end stays an ordinary connection.
func detach(c net.Conn) (writeEnd, error) { return c, nil }
