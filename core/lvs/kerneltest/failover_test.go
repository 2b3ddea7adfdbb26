package kerneltest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/vm"
)

// pair is two directors, a client and two DR backends on one bridge (198.51.100.0/24, in a
// namespace of its own), the VIP held by VRRP between the directors.
type pair struct {
	sw, client netns
	dirs       [2]netns
	backends   []*backend
}

const vipHA = "198.51.100.100"

func newPair(t *testing.T, tag string) *pair {
	t.Helper()
	p := &pair{sw: newNS(t, tag+"s"), client: newNS(t, tag+"c")}
	p.sw.ip(t, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	p.sw.ip(t, "link", "set", "br0", "up")
	plug := func(ns netns, port, addr string) {
		veth(t, p.sw, port, ns, "eth0")
		p.sw.ip(t, "link", "set", port, "master", "br0")
		ns.ip(t, "addr", "add", addr+"/24", "dev", "eth0")
	}
	plug(p.client, "pc", "198.51.100.2")
	for i := range p.dirs {
		p.dirs[i] = newNS(t, fmt.Sprintf("%sd%d", tag, i+1))
		plug(p.dirs[i], fmt.Sprintf("pd%d", i+1), fmt.Sprintf("198.51.100.%d", 3+i))
	}
	for i := 1; i <= 2; i++ {
		b := &backend{name: fmt.Sprintf("b%d", i), ns: newNS(t, fmt.Sprintf("%sb%d", tag, i)), addr: fmt.Sprintf("198.51.100.%d", 10+i)}
		plug(b.ns, fmt.Sprintf("pb%d", i), b.addr)
		b.ns.ip(t, "addr", "add", vipHA+"/32", "dev", "lo")
		b.ns.sysctl(t, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
			"net.ipv4.conf.eth0.arp_ignore=1", "net.ipv4.conf.eth0.arp_announce=2")
		b.echo(t, 9000)
		p.backends = append(p.backends, b)
	}
	return p
}

// haConf is one director's configuration: VI_1 holding the VIP, and a DR service on it
// whose checks only the master runs (ha_suspend); with sync, the sync daemon follows VI_1.
func haConf(prio int, sync bool) string {
	g := ""
	if sync {
		g = "global_defs {\n    lvs_sync_daemon eth0 VI_1\n}\n"
	}
	return g + fmt.Sprintf(`vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    virtual_ipaddress {
        %s/24 dev eth0
    }
}
virtual_server %[2]s 9000 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    ha_suspend
    real_server 198.51.100.11 9000 {
        weight 1
        TCP_CHECK {
            connect_timeout 2
        }
    }
    real_server 198.51.100.12 9000 {
        weight 1
        TCP_CHECK {
            connect_timeout 2
        }
    }
}
`, prio, vipHA)
}

// pinger sends a byte every 10 ms on a connection and reads its echo, recording the longest
// wait between two echoes and the first error.
type pinger struct {
	mu     sync.Mutex
	n      int
	last   time.Time
	maxGap time.Duration
	err    error
	stop   chan struct{}
	done   chan struct{}
}

func ping(c net.Conn) *pinger {
	p := &pinger{last: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		b := []byte{'x'}
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			c.SetDeadline(time.Now().Add(90 * time.Second))
			_, err := c.Write(b)
			if err == nil {
				_, err = c.Read(b)
			}
			p.mu.Lock()
			if err != nil {
				p.err = err
				p.mu.Unlock()
				return
			}
			now := time.Now()
			p.maxGap = max(p.maxGap, now.Sub(p.last))
			p.last, p.n = now, p.n+1
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *pinger) state() (int, time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.maxGap, p.err
}

func (p *pinger) halt() {
	close(p.stop)
	<-p.done
}

// TestVMFailover: two directors running vigil with VRRP and ha_suspend: the master runs the
// DR service's checks and the backup holds them; when the master's vigil is killed -9 (its whole
// process group) and its host leaves the network, the service moves to the other director.
// A client holds a connection through the VIP, a byte every 10 ms echoed: with
// lvs_sync_daemon it survives the failover (the longest stall is logged); without, the new
// director knows nothing of it and the connection is reset: what the sync daemon adds.
func TestVMFailover(t *testing.T) {
	vm.Guest(t)
	// Each test has namespaces (and so IPVS tables) of its own: they overlap their waits.
	t.Parallel()
	for _, sync := range []bool{false, true} {
		name, tag := "without sync daemon", "fo"
		if sync {
			name, tag = "with lvs_sync_daemon", "fs"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newPair(t, tag)
			d1 := startVigil(t, p.dirs[0], haConf(150, sync))
			d2 := startVigil(t, p.dirs[1], haConf(100, sync))
			svc := "TCP " + vipHA + ":9000"
			both := []string{"198.51.100.11:9000 Route 1", "198.51.100.12:9000 Route 1"}
			programmed := func(d *director) bool {
				out, err := d.ns.try("ipvsadm", "-Ln")
				return err == nil && strings.Join(dests(out, svc), ",") == strings.Join(both, ",")
			}
			suspended := func(d *director) (bool, error) {
				st, err := d.status()
				if err != nil || len(st.VirtualServers) != 1 {
					return false, fmt.Errorf("status: %+v %v", st, err)
				}
				return st.VirtualServers[0].Suspended, nil
			}
			holds := func(d *director) bool {
				out, err := d.ns.try("ip", "-o", "addr", "show", "dev", "eth0")
				return err == nil && strings.Contains(out, " "+vipHA+"/")
			}
			waitFor(t, 60*time.Second, "d1 becomes master, programs the service, its checks run", func() bool {
				s, err := suspended(d1)
				return holds(d1) && programmed(d1) && err == nil && !s
			})
			// ha_suspend holds the backup's checkers; as keepalived, vigil keeps the table
			// of an ha_suspend service programmed on the backup too (TestVMSameTable
			// compares that with keepalived's).
			if s, err := suspended(d2); err != nil || !s {
				t.Errorf("the backup's checkers are not suspended: %v %v", s, err)
			}
			t.Logf("the backup's table:\n%s", d2.ipvsadm(t))

			c, err := p.client.dial(t.Context(), "tcp", vipHA+":9000")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			pg := ping(c)
			defer pg.halt()
			local := c.LocalAddr().String()
			waitFor(t, 60*time.Second, "the connection in d1's table", func() bool {
				return strings.Contains(connEntry(t, d1.ns, local), "ESTABLISHED")
			})
			if sync {
				waitFor(t, 60*time.Second, "the sync daemon copies the connection to d2", func() bool {
					return connEntry(t, d2.ns, local) != ""
				})
				t.Logf("d1: %s; d2 (synced): %s", connEntry(t, d1.ns, local), connEntry(t, d2.ns, local))
			}
			waitFor(t, 60*time.Second, "100 echoes", func() bool { n, _, _ := pg.state(); return n >= 100 })
			n0, gap0, _ := pg.state()

			// The master dies: vigil killed -9, and its host off the network (a killed vigil
			// leaves the VIP and the kernel's table, a dead host does not answer).
			d1.kill()
			p.sw.ip(t, "link", "set", "pd1", "down")
			killed := time.Now()
			waitFor(t, 60*time.Second, "d2 takes the VIP, programs the service, runs its checks", func() bool {
				s, err := suspended(d2)
				return holds(d2) && programmed(d2) && err == nil && !s
			})
			t.Logf("d2 took over %v after the kill", time.Since(killed).Round(time.Millisecond))
			if sync {
				waitFor(t, 90*time.Second, "300 echoes after the failover", func() bool {
					n, _, err := pg.state()
					if err != nil {
						t.Fatalf("the connection broke with the sync daemon: %v", err)
					}
					return n >= n0+300
				})
				n, gap, _ := pg.state()
				t.Logf("the connection survived: %d echoes, longest stall %v (before the kill %v)", n, gap.Round(time.Millisecond), gap0.Round(time.Millisecond))
				if e := connEntry(t, d2.ns, local); !strings.Contains(e, "ESTABLISHED") {
					t.Errorf("d2's entry for the connection: %q", e)
				}
				return
			}
			waitFor(t, 90*time.Second, "the connection breaks", func() bool { _, _, err := pg.state(); return err != nil })
			_, _, err = pg.state()
			t.Logf("without the sync daemon the connection broke %v after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the connection failed with %v, want a reset", err)
			}
		})
	}
}
