package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lab/mariadb"
)

// Failover trials: n1 (priority 150) and n2 (priority 100) each run a MariaDB of their own on
// all their addresses (loopback for the local check, the VIP for clients) and the same VRRP
// instance tracking it; n3 is the client. mariadbd on n1 gets SIGKILL; the time is until the
// first query through the VIP that n2's server answers.

const (
	labName  = "mysqlb"
	foVRID   = 61
	prioHigh = 150
	prioLow  = 100
	// clientEvery is how often the client on n3 tries the VIP after the kill.
	clientEvery = 10 * time.Millisecond
)

var foVIP = netip.MustParseAddr("192.0.2.100")

// daemonKind is one implementation with its way of checking MySQL.
type daemonKind struct {
	name string
	bin  string
	// args is the command line for conf, with dir for its own pid files and socket.
	args func(conf, dir string) []string
	// check is the configuration of the MySQL check named chk for interval.
	check func(interval time.Duration) string
	// supports says whether the implementation can check at this interval.
	supports func(interval time.Duration) bool
}

func (e *env) kinds() []*daemonKind {
	fall := e.o.fall
	vigil := &daemonKind{
		name: "vigil",
		bin:  e.vigil,
		args: func(conf, dir string) []string {
			return []string{"-f", conf, "-p", filepath.Join(dir, "vigil.pid"), "-control", filepath.Join(dir, "vigil.sock")}
		},
		check: func(iv time.Duration) string {
			return fmt.Sprintf(`global_defs {
    plugin_dir %s
}
vrrp_check chk {
    plugin mysql
    interval %s
    timeout %s
    fall %d
    rise 2
    weight 0
    params {
        address 127.0.0.1:3306
        user %s
        password %s
        query "%s"
    }
}
`, e.pluginDir, seconds(iv), seconds(min(iv, time.Second)), fall, monitorUser, monitorPass, probeQuery)
		},
		supports: func(time.Duration) bool { return true },
	}
	keepalived := &daemonKind{
		name: "keepalived",
		bin:  e.keepalived,
		// VRRP only: the vrrp_script runs in the VRRP process.
		args: harness.KeepalivedArgs,
		check: func(iv time.Duration) string {
			// script_user root with enable_script_security: what a check script run as root
			// needs to pass keepalived -t.
			return fmt.Sprintf(`global_defs {
    script_user root
    enable_script_security
}
vrrp_script chk {
    script "%s"
    interval %d
    timeout 1
    fall %d
    rise 2
    weight 0
}
`, e.foScript, int(iv/time.Second), fall)
		},
		// keepalived's vrrp_script interval is whole seconds, 1 or more.
		supports: func(iv time.Duration) bool { return iv >= time.Second && iv%time.Second == 0 },
	}
	return []*daemonKind{vigil, keepalived}
}

// instanceConf is the VRRP instance both implementations run, tracking chk.
func instanceConf(prio int, advert time.Duration) string {
	return fmt.Sprintf(`vrrp_instance VI_MYSQL {
    state BACKUP
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %s
    version 3
    track_script {
        chk
    }
    virtual_ipaddress {
        %s/24
    }
}
`, foVRID, prio, seconds(advert), foVIP)
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// foResult is one failover trial.
type foResult struct {
	kind     string
	interval time.Duration
	took     time.Duration // SIGKILL of mariadbd on n1 -> first query answered by n2 via the VIP
	attempts int           // client attempts until then
}

type foLab struct {
	e   *env
	lab *lab.Lab
	dbs []*mariadb.Server
	log string
}

func (e *env) failoverBench(ctx context.Context, rep *report, cl *cleaner) error {
	o := e.o
	e.foScript = filepath.Join(e.work, "check_mysql_3306.sh")
	if err := writeScript(e.foScript, e.mysql, "127.0.0.1", 3306); err != nil {
		return err
	}
	kinds := e.kinds()
	// Both implementations must accept the very configurations they get.
	for _, iv := range o.intervals {
		for _, k := range kinds {
			if !k.supports(iv) {
				continue
			}
			p := filepath.Join(e.work, "check.conf")
			if err := os.WriteFile(p, []byte(k.check(iv)+instanceConf(prioHigh, o.advert)), 0o644); err != nil {
				return err
			}
			if out, err := exec.CommandContext(ctx, k.bin, "-t", "-f", p).CombinedOutput(); err != nil {
				return fmt.Errorf("%s -t -f %s: %w\n%s", k.name, p, err, out)
			}
		}
	}
	logDir := filepath.Join(e.work, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	l, err := lab.New(ctx, labName, 3, logDir)
	if err != nil {
		return err
	}
	cl.add(func() {
		if err := l.Close(); err != nil {
			logf("lab cleanup: %v", err)
		}
	})
	fl := &foLab{e: e, lab: l, log: logDir}
	for i, nd := range l.Nodes[:2] {
		db, err := mariadb.Start(ctx, mariadb.Options{
			Dir: e.work, NetNS: nd.NS, Bind: "0.0.0.0", Host: nd.Addr4.Addr().String(),
			ServerID: i + 1, GTIDDomainID: i + 1, LogBin: true,
			AutoIncrementIncrement: 2, AutoIncrementOffset: i + 1,
		})
		if err != nil {
			return err
		}
		// Registered after the lab: stopped (by its PID) before the namespaces go.
		cl.add(func() {
			if err := db.Stop(); err != nil {
				logf("stop mariadb on %s: %v", nd.Name, err)
			}
		})
		if err := db.CreateUser(ctx, monitorUser, monitorPass, ""); err != nil {
			return err
		}
		fl.dbs = append(fl.dbs, db)
	}
	logf("failover: %d trials per implementation and interval %v, fall %d, advert_int %s (VRRPv3)", o.trials, o.intervals, o.fall, o.advert)
	for t := range o.trials {
		for _, iv := range o.intervals {
			for _, k := range alternate(kinds, t) {
				if !k.supports(iv) {
					continue
				}
				r, err := fl.trial(ctx, k, iv)
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					logf("failover %s interval %s trial %d failed: %v", k.name, iv, t+1, err)
					rep.foFailed[k.name+" "+iv.String()]++
					continue
				}
				logf("failover %-10s interval %-5s trial %d: %7.1f ms (%d client attempts)", k.name, iv, t+1, ms(r.took), r.attempts)
				rep.fo = append(rep.fo, r)
			}
		}
	}
	return nil
}

// alternate gives the kinds in turn order for trial t.
func alternate(kinds []*daemonKind, t int) []*daemonKind {
	if t%2 == 0 {
		return kinds
	}
	return []*daemonKind{kinds[1], kinds[0]}
}

func (fl *foLab) trial(ctx context.Context, k *daemonKind, iv time.Duration) (res foResult, err error) {
	n1, n2, n3 := fl.lab.Nodes[0], fl.lab.Nodes[1], fl.lab.Nodes[2]
	res = foResult{kind: k.name, interval: iv}
	fl.reset(ctx)
	defer fl.reset(ctx)
	if fl.dbs[0].Exited() {
		// Killed by the trial before: crash recovery, as after a real crash.
		if err := fl.dbs[0].Restart(ctx); err != nil {
			return res, fmt.Errorf("restart mariadb on n1: %w", err)
		}
	}
	var procs []*lab.Proc
	defer func() {
		for _, p := range procs {
			stopTree(p.Cmd.Process.Pid, 5*time.Second)
			p.Kill()
		}
	}()
	for _, s := range []struct {
		nd   *lab.Node
		prio int
	}{{n1, prioHigh}, {n2, prioLow}} {
		p, err := fl.start(k, s.nd, k.check(iv)+instanceConf(s.prio, fl.e.o.advert))
		if err != nil {
			return res, err
		}
		procs = append(procs, p)
	}
	if err := waitFor(ctx, 20*time.Second, 50*time.Millisecond, func() bool { return holds(ctx, n1) && !holds(ctx, n2) }); err != nil {
		return res, fmt.Errorf("n1 never held the VIP alone: %w\n%s", err, tailOut(procs))
	}
	// Both checks have run a few times and n2 has settled as backup. The random part puts
	// the kill anywhere in the check's interval: without it the kill would land at one
	// fixed point of a schedule that started with the daemon (or, for vigil's aligned
	// checks, with the first probe that let n1 take the VIP), and the trials would measure
	// that point instead of the check.
	if err := sleep(ctx, 3*iv+time.Second+rand.N(iv)); err != nil {
		return res, err
	}
	if !holds(ctx, n1) || holds(ctx, n2) {
		return res, fmt.Errorf("the VIP moved before the kill\n%s", tailOut(procs))
	}
	for _, p := range procs {
		if p.Exited() {
			return res, fmt.Errorf("a daemon exited\n%s", tailOut(procs))
		}
	}
	client, err := newClient(n3.NS)
	if err != nil {
		return res, err
	}
	defer client.Close()
	if id, err := client.serverID(ctx); err != nil || id != 1 {
		return res, fmt.Errorf("before the kill the VIP answers as server %d (%v), want 1 (n1)", id, err)
	}

	killed := time.Now()
	fl.dbs[0].Kill()
	deadline := killed.Add(10*iv + 10*time.Second)
	tick := time.NewTicker(clientEvery)
	defer tick.Stop()
	for {
		res.attempts++
		id, err := client.serverID(ctx)
		if err == nil && id == 2 {
			res.took = time.Since(killed)
			break
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("no answer from n2 through the VIP %s after the kill (last: server %d, %v)\n%s", time.Since(killed).Round(time.Millisecond), id, err, tailOut(procs))
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
	}
	return res, nil
}

// start writes conf into a fresh directory and runs the implementation on node.
func (fl *foLab) start(k *daemonKind, nd *lab.Node, conf string) (*lab.Proc, error) {
	dir, err := os.MkdirTemp(fl.e.work, fmt.Sprintf("%s-%s-", k.name, nd.Name))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := nd.Start(k.bin, k.args(path, dir)...)
	if err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", k.name, nd.Name, err)
	}
	return p, nil
}

// reset leaves no VIP anywhere and no neighbour entry on the client.
func (fl *foLab) reset(ctx context.Context) {
	for _, nd := range fl.lab.Nodes[:2] {
		_ = exec.CommandContext(ctx, "ip", "-n", nd.NS, "addr", "del", foVIP.String()+"/24", "dev", "eth0").Run()
	}
	_ = exec.CommandContext(ctx, "ip", "-n", fl.lab.Nodes[2].NS, "neigh", "flush", "dev", "eth0").Run()
}

func holds(ctx context.Context, nd *lab.Node) bool {
	ok, _ := nd.HasAddr(ctx, foVIP)
	return ok
}

func tailOut(procs []*lab.Proc) string {
	var b strings.Builder
	for _, p := range procs {
		out := p.Output()
		if len(out) > 1500 {
			out = "..." + out[len(out)-1500:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(p.Log), out)
	}
	return b.String()
}

// client asks the server behind the VIP who it is, over a new connection every time (as an
// application that reconnects after its server died), from inside n3's namespace.
type client struct{ db *sql.DB }

func newClient(ns string) (*client, error) {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(foVIP.String(), "3306")
	cfg.User, cfg.Passwd = monitorUser, monitorPass
	// Short limits: during the handover a SYN may go to n1's MAC, which no longer has the
	// VIP and drops it; a new attempt every few tens of milliseconds beats the kernel's
	// 1 s SYN retransmission.
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 50*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return lab.DialIn(ctx, ns, network, addr)
	}
	cfg.Logger = nopLogger{}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	db := sql.OpenDB(c)
	db.SetMaxIdleConns(0) // every query on a new connection
	return &client{db: db}, nil
}

func (c *client) serverID(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	var id int
	err := c.db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id)
	return id, err
}

func (c *client) Close() error { return c.db.Close() }

type nopLogger struct{}

func (nopLogger) Print(...any) {}

func waitFor(ctx context.Context, timeout, every time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		if err := sleep(ctx, every); err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
