// Package mariadb starts throwaway MariaDB servers for tests, the demo and the benchmarks:
// mariadb-install-db into a temporary data directory, mariadbd on a loopback port (or on an
// address inside a network namespace the caller built), users, and the replication
// primitives that a master-master pair needs. Every server is stopped by the PID this package
// started and its data directory removed; nothing here touches a system MariaDB.
//
// The servers run with --no-defaults, so /etc/mysql/my.cnf and a system service's settings
// never leak in. root@localhost has no password and is reachable only through the server's
// unix socket in its data directory: that is how the package administers a server, also one
// that listens inside a namespace (a unix socket is a file, not bound to a network namespace).
package mariadb

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Binaries the package runs; Debian's mariadb-server package provides both.
const (
	serverBin  = "mariadbd"
	installBin = "mariadb-install-db"
)

// ErrUnavailable is wrapped by the errors of Available and Start when MariaDB is not
// installed here.
var ErrUnavailable = errors.New("mariadb is not available (install Debian's mariadb-server)")

// Available says why servers cannot be started here, or nil when they can.
func Available() error {
	for _, b := range []string{serverBin, installBin} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%w: %s not found in PATH", ErrUnavailable, b)
		}
	}
	return nil
}

// Options say how to start a server. The zero value is a server on a free port of 127.0.0.1.
type Options struct {
	// Dir is where the server's directory (data, socket, logs) is created; default os.TempDir.
	Dir string
	// Bind is the address mariadbd listens on; default 127.0.0.1. Inside a namespace, the
	// node's address (192.0.2.11), or 0.0.0.0 to be reachable on the node's loopback (where
	// a check plugin in that namespace connects) and on a VIP as well; then set Host.
	Bind string
	// Host is the address clients and replicas reach the server at (Server.Host, Addr,
	// SourceOf); default Bind, or 127.0.0.1 when Bind is 0.0.0.0 or ::.
	Host string
	// Port is the TCP port; 0 picks a free one on the host's loopback (a new namespace has
	// nothing listening, so with NetNS set 0 means 3306).
	Port int
	// NetNS runs mariadbd inside this network namespace (ip netns exec NS mariadbd ...).
	NetNS string
	// Command, when set, builds the command that runs mariadbd (name and args as this
	// package would run them), for wrappers other than ip netns exec. It wins over NetNS.
	// The process it starts must be mariadbd itself (exec, not a child), so that the PID this
	// package signals is the server's.
	Command func(name string, args ...string) *exec.Cmd
	// ServerID is server_id (default 1); replicating servers need distinct ones.
	ServerID int
	// GTIDDomainID is gtid_domain_id (default 0). Give each side of a master-master pair its
	// own, so that writes on both never interleave in one GTID sequence.
	GTIDDomainID int
	// LogBin turns the binary log on, which a replication source needs.
	LogBin bool
	// AutoIncrementIncrement and AutoIncrementOffset (default 1, 1): a master-master pair
	// uses 2 and 1/2 so that both sides can insert without colliding keys.
	AutoIncrementIncrement, AutoIncrementOffset int
	// ReadOnly starts the server with read_only on.
	ReadOnly bool
	// Args are extra mariadbd arguments (--ssl-cert=..., --wsrep-on=ON ...).
	Args []string
	// Log, when set, receives progress lines (t.Logf).
	Log func(format string, args ...any)
}

// Server is a running (or stopped) mariadbd this package started.
type Server struct {
	// Dir holds data/, tmp/, the socket, the pid file and error.log; Stop removes it.
	Dir     string
	DataDir string
	// Socket is the unix socket, reachable from any namespace.
	Socket string
	// Host and Port are where clients reach the server over TCP (Options.Host and Port).
	Host string
	Port int
	// ErrorLog is mariadbd's log file.
	ErrorLog string

	opts Options
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Addr is host:port of the server's TCP listener.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// PID is mariadbd's process id while it runs, else 0.
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil || s.Exited() {
		return 0
	}
	return s.cmd.Process.Pid
}

// Start installs a fresh data directory and starts mariadbd on it, waiting until it answers
// on its socket. Call Stop when done (StartT does it at cleanup).
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	opts = withDefaults(opts)
	dir, err := os.MkdirTemp(opts.Dir, "vigil-mariadb-")
	if err != nil {
		return nil, fmt.Errorf("mariadb: %w", err)
	}
	s := &Server{
		Dir:      dir,
		DataDir:  filepath.Join(dir, "data"),
		Socket:   filepath.Join(dir, "mysqld.sock"),
		ErrorLog: filepath.Join(dir, "error.log"),
		Host:     opts.Host,
		Port:     opts.Port,
		opts:     opts,
	}
	if err := s.install(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A free port picked here can be taken before mariadbd binds it; try a few.
	for attempt := 0; ; attempt++ {
		if s.opts.Port == 0 {
			if s.Port, err = freePort(s.opts.Bind); err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
		}
		err = s.start(ctx)
		if err == nil {
			return s, nil
		}
		if s.opts.Port != 0 || attempt == 2 || !strings.Contains(s.logTail(), "Address already in use") {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// StartT is Start for tests: it skips the test when MariaDB is not installed, fails it when
// the server does not start, and stops the server and removes its directory at cleanup.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if opts.Log == nil {
		opts.Log = t.Logf
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start mariadb: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop mariadb: %v", err)
		}
	})
	return s
}

func withDefaults(o Options) Options {
	if o.Bind == "" {
		o.Bind = "127.0.0.1"
	}
	if o.Host == "" {
		o.Host = o.Bind
		if ip := net.ParseIP(o.Bind); ip != nil && ip.IsUnspecified() {
			o.Host = "127.0.0.1"
		}
	}
	if o.Port == 0 && o.NetNS != "" && o.Command == nil {
		o.Port = 3306
	}
	if o.ServerID == 0 {
		o.ServerID = 1
	}
	if o.AutoIncrementIncrement == 0 {
		o.AutoIncrementIncrement = 1
	}
	if o.AutoIncrementOffset == 0 {
		o.AutoIncrementOffset = 1
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	return o
}

func (s *Server) install(ctx context.Context) error {
	start := time.Now()
	// normal: root@localhost without a password (the socket is the only way in as root);
	// no test database, no anonymous users to shadow the test's own accounts.
	// A private tmpdir: bootstraps running at the same time (parallel test packages) in the
	// shared /tmp have been seen to lose their temporary tables.
	if err := os.Mkdir(s.tmpDir(), 0o700); err != nil {
		return fmt.Errorf("mariadb: %w", err)
	}
	cmd := exec.CommandContext(ctx, installBin, "--no-defaults", "--datadir="+s.DataDir,
		"--user=root", "--auth-root-authentication-method=normal", "--skip-test-db",
		"--tmpdir="+s.tmpDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("mariadb: %s: %w\n%s", installBin, err, bytes.TrimSpace(out))
	}
	s.opts.Log("mariadb: installed %s in %s", s.DataDir, time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Server) tmpDir() string { return filepath.Join(s.Dir, "tmp") }

// args is mariadbd's command line for this server.
func (s *Server) args() []string {
	o := s.opts
	a := []string{
		"--no-defaults",
		"--datadir=" + s.DataDir,
		"--socket=" + s.Socket,
		"--pid-file=" + filepath.Join(s.Dir, "mysqld.pid"),
		"--log-error=" + s.ErrorLog,
		"--tmpdir=" + s.tmpDir(),
		"--bind-address=" + o.Bind,
		"--port=" + strconv.Itoa(s.Port),
		// The tests run as root; mariadbd refuses root unless told so.
		"--user=root",
		// Accounts are matched by address, and a namespace has no resolver to wait for.
		"--skip-name-resolve",
		// Small and quick: a test server holds a few rows.
		"--innodb-buffer-pool-size=16M",
		"--innodb-log-file-size=16M",
		"--performance-schema=OFF",
		"--server-id=" + strconv.Itoa(o.ServerID),
		"--gtid-domain-id=" + strconv.Itoa(o.GTIDDomainID),
		"--auto-increment-increment=" + strconv.Itoa(o.AutoIncrementIncrement),
		"--auto-increment-offset=" + strconv.Itoa(o.AutoIncrementOffset),
	}
	if o.LogBin {
		a = append(a, "--log-bin="+filepath.Join(s.DataDir, "binlog"), "--binlog-format=ROW")
	}
	if o.ReadOnly {
		a = append(a, "--read-only=ON")
	}
	return append(a, o.Args...)
}

func (s *Server) command() *exec.Cmd {
	switch {
	case s.opts.Command != nil:
		return s.opts.Command(serverBin, s.args()...)
	case s.opts.NetNS != "":
		// ip netns exec execs into mariadbd, so the PID is the server's.
		return exec.Command("ip", append([]string{"netns", "exec", s.opts.NetNS, serverBin}, s.args()...)...)
	}
	return exec.Command(serverBin, s.args()...)
}

// start runs mariadbd on the installed data directory and waits until it answers.
func (s *Server) start(ctx context.Context) error {
	started := time.Now()
	cmd := s.command()
	// Its own process group, and killed with the test process, so that a crashed test run
	// leaves no server behind.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	var out bytes.Buffer // mariadbd logs to error.log; this catches what comes before
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mariadb: start %s: %w", serverBin, err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.kill()
		return fmt.Errorf("mariadb on %s: %w\n%s%s", s.Addr(), err, bytes.TrimSpace(out.Bytes()), s.logTail())
	}
	s.opts.Log("mariadb: pid %d ready on %s (socket %s) in %s", cmd.Process.Pid, s.Addr(), s.Socket, time.Since(started).Round(time.Millisecond))
	return nil
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		db, err := s.Root()
		if err == nil {
			last = ready(ctx, db)
			db.Close()
			if last == nil {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("mariadbd exited: %v", s.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// ready is nil once the server answers and, with Galera on, once the node is ready for
// statements: a wsrep node accepts connections before that and refuses DDL with error 1047
// for a moment, which made the first CREATE USER of a test fail now and then.
func ready(ctx context.Context, db *sql.DB) error {
	if err := db.PingContext(ctx); err != nil {
		return err
	}
	// A server built with wsrep shows wsrep_ready OFF while wsrep_on is off, so ask wsrep_on
	// first.
	on, err := showGlobal(ctx, db, "VARIABLES", "wsrep_on")
	if err != nil || !strings.EqualFold(on, "ON") {
		return err
	}
	r, err := showGlobal(ctx, db, "STATUS", "wsrep_ready")
	if err == nil && !strings.EqualFold(r, "ON") {
		err = fmt.Errorf("wsrep_ready is %q", r)
	}
	return err
}

// showGlobal is the value of a global variable or status ("VARIABLES", "STATUS"), "" if the
// server has no such name.
func showGlobal(ctx context.Context, db *sql.DB, what, name string) (string, error) {
	var n, v string
	err := db.QueryRowContext(ctx, "SHOW GLOBAL "+what+" LIKE '"+name+"'").Scan(&n, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// logTail is the end of error.log, for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.ErrorLog)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nerror.log:\n" + string(b)
}

// Exited reports whether the server process has ended.
func (s *Server) Exited() bool {
	if s.done == nil {
		return true
	}
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Server) wait(d time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Kill ends mariadbd with SIGKILL, as a crash would, and waits for it; the data directory
// stays for Restart.
func (s *Server) Kill() { s.kill() }

func (s *Server) kill() {
	if s.Exited() {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.wait(10 * time.Second)
}

// Shutdown stops mariadbd cleanly (SIGTERM; SIGKILL after 30 s) and keeps the data
// directory for Restart.
func (s *Server) Shutdown() error {
	if s.Exited() {
		return nil
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("mariadb: stop pid %d: %w", s.cmd.Process.Pid, err)
	}
	if !s.wait(30 * time.Second) {
		s.kill()
		return fmt.Errorf("mariadb: pid %d ignored SIGTERM for 30s; killed", s.cmd.Process.Pid)
	}
	return nil
}

// Restart starts mariadbd again on the same data directory and port, after Kill or Shutdown.
func (s *Server) Restart(ctx context.Context) error {
	if !s.Exited() {
		return fmt.Errorf("mariadb: pid %d is still running", s.cmd.Process.Pid)
	}
	return s.start(ctx)
}

// Stop shuts the server down and removes its directory. It is safe to call more than once.
func (s *Server) Stop() error {
	err := s.Shutdown()
	if rmErr := os.RemoveAll(s.Dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("mariadb: %w", rmErr))
	}
	return err
}

// Root opens a connection pool to the server as root over its unix socket.
func (s *Server) Root() (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "unix"
	cfg.Addr = s.Socket
	cfg.Timeout = 5 * time.Second
	// Admin statements come several to an Exec.
	cfg.MultiStatements = true
	// mariadbd's clean shutdown closes our idle connections; the driver would log each.
	cfg.Logger = nopLogger{}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mariadb: %w", err)
	}
	return sql.OpenDB(c), nil
}

type nopLogger struct{}

func (nopLogger) Print(...any) {}

// Exec runs statements as root in one session, one at a time, and stops at the first error.
func (s *Server) Exec(ctx context.Context, stmts ...string) error {
	db, err := s.Root()
	if err != nil {
		return err
	}
	defer db.Close()
	// One session for all, so that a SET SESSION holds for the statements after it.
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("mariadb %s: %w", s.Addr(), err)
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("mariadb %s: %s: %w", s.Addr(), q, err)
		}
	}
	return nil
}

// QueryRow runs a query as root and returns its first row as column -> value (NULL is
// absent), or nil when there is no row.
func (s *Server) QueryRow(ctx context.Context, query string, args ...any) (map[string]string, error) {
	db, err := s.Root()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("mariadb %s: %s: %w", s.Addr(), query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("mariadb %s: %s: %w", s.Addr(), query, err)
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("mariadb %s: %s: %w", s.Addr(), query, err)
	}
	row := make(map[string]string, len(cols))
	for i, c := range cols {
		if vals[i].Valid {
			row[c] = vals[i].String
		}
	}
	return row, rows.Err()
}

// quote makes s a SQL string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// CreateUser creates user@'%' with password and grants it privileges on *.* (a comma list
// such as "PROCESS, REPLICATION CLIENT", or "" for none beyond USAGE). '%' matches every TCP
// client address; with --skip-name-resolve, 'localhost' would match only the unix socket.
// The statements stay out of the binary log: accounts are made on each server by the test,
// and a replica that received the same CREATE USER would stop on it.
func (s *Server) CreateUser(ctx context.Context, user, password, privileges string) error {
	stmts := []string{
		"SET SESSION sql_log_bin = 0",
		fmt.Sprintf("CREATE USER %s@'%%' IDENTIFIED BY %s", quote(user), quote(password)),
	}
	if privileges != "" {
		stmts = append(stmts, fmt.Sprintf("GRANT %s ON *.* TO %s@'%%'", privileges, quote(user)))
	}
	return s.Exec(ctx, stmts...)
}

// SetReadOnly sets the global read_only.
func (s *Server) SetReadOnly(ctx context.Context, on bool) error {
	v := "OFF"
	if on {
		v = "ON"
	}
	return s.Exec(ctx, "SET GLOBAL read_only = "+v)
}

// Connections counts the server's client connections of user (PROCESSLIST), which a test
// uses to prove that a client does not leak them.
func (s *Server) Connections(ctx context.Context, user string) (int, error) {
	row, err := s.QueryRow(ctx, "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = ?", user)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(row["n"])
}

// freePort asks the kernel for a free TCP port on host. The port is free only until someone
// else takes it, which Start handles by trying again.
func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("mariadb: free port on %s: %w", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
