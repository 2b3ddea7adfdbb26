package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/vishvananda/netns"
)

// Connect opens a connection pool to the server at addr (IP:port) as user, dialling from
// inside the network namespace ns (as created by `ip netns add`; "" is this process's own).
// A test uses it as the client of a lab: writes through a VIP from a client node, reads the
// survivor after a failover. Statements are not retried: a write that returned without an
// error was acknowledged by the server.
func Connect(ns, addr, user, password string) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd = "tcp", addr, user, password
	cfg.Timeout = 2 * time.Second
	cfg.Logger = nopLogger{}
	if ns != "" {
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ctx, ns, network, addr)
		}
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mariadb: %w", err)
	}
	return sql.OpenDB(c), nil
}

// dialIn connects from inside namespace ns. A socket belongs to the namespace of the thread
// that creates it, and keeps it afterwards: so the dialling goroutine holds its thread, moves
// it into ns for the connect, and moves it back. addr is an IP literal: a name with several
// addresses would be dialled from other goroutines (and threads) in parallel.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	target, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("mariadb: namespace %s: %w", ns, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("mariadb: current namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("mariadb: enter namespace %s: %w", ns, err)
	}
	var d net.Dialer
	conn, dialErr := d.DialContext(ctx, network, addr)
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in ns: leave it locked, so that it ends with this goroutine
		// instead of running other goroutines in the wrong namespace.
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("mariadb: leave namespace %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	if dialErr != nil {
		return nil, fmt.Errorf("mariadb: dial %s in %s: %w", addr, ns, dialErr)
	}
	return conn, nil
}
