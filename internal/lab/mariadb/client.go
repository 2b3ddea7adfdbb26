package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/vigil-ha/vigil/internal/lab"
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
			return lab.DialIn(ctx, ns, network, addr)
		}
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mariadb: %w", err)
	}
	return sql.OpenDB(c), nil
}
