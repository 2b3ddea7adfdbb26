package fsm

import (
	"container/heap"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The simulation: N routers share one VRID on a simulated LAN with a virtual
// clock. Messages are delivered after a random latency, may be lost, and do
// not cross partitions. Rounds of chaos (crashes, restarts, graceful stops,
// partitions, heals, priority and fault changes, packet loss) alternate with
// quiet periods after which the invariants are checked.

var (
	simLong  = flag.Bool("sim.long", false, "run many more simulation seeds")
	simSeeds = flag.Int("sim.seeds", 0, "number of simulation seeds (default 500, 50000 with -sim.long)")
	simSeed  = flag.Int64("sim.seed", -1, "run only this simulation seed")
)

type simMsg struct {
	at   time.Time
	seq  uint64
	from int
	to   int
	adv  AdvertReceived
}

type msgQueue []simMsg

func (q msgQueue) Len() int { return len(q) }
func (q msgQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q msgQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *msgQueue) Push(x any)   { *q = append(*q, x.(simMsg)) }
func (q *msgQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

type simRouter struct {
	cfg      Config
	m        *Machine
	up       bool
	part     int
	trackers []Tracker // [0] weight -w (priority), [1] weight 0 (fault)

	// The RFC timer invariant: the earliest time we may become master by
	// timer, from the adverts we heard (see deliver).
	notBefore   time.Time
	transitions int
	reannounces int
}

type sim struct {
	t        *testing.T
	seed     uint64
	rng      *rand.Rand
	now      time.Time
	seq      uint64
	q        msgQueue
	rs       []*simRouter
	loss     float64
	preempt  bool
	maxDelay time.Duration // latency upper bound
	trace    []string
	events   int
}

func (s *sim) logf(format string, args ...any) {
	line := fmt.Sprintf("%9.4fs ", s.now.Sub(t0).Seconds()) + fmt.Sprintf(format, args...)
	s.trace = append(s.trace, line)
	if len(s.trace) > 400 {
		s.trace = s.trace[200:]
	}
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d (rerun: go test -run TestSimulation -sim.seed=%d): %s\nlast events:\n%s",
		s.seed, s.seed, fmt.Sprintf(format, args...), strings.Join(s.trace, "\n"))
}

func newSim(t *testing.T, seed uint64) *sim {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	s := &sim{t: t, seed: seed, rng: rng, now: t0, preempt: rng.IntN(4) != 0}
	n := 2 + rng.IntN(7)
	version := 2 + rng.IntN(2)
	interval := time.Second
	if version == 3 {
		interval = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, time.Second}[rng.IntN(3)]
	}
	mixed := version == 3 && rng.IntN(3) == 0 // routers with different intervals
	var delay time.Duration
	if s.preempt && rng.IntN(3) == 0 {
		delay = time.Duration(1+rng.IntN(3)) * interval
	}
	s.maxDelay = time.Duration(1+rng.IntN(3)) * interval / 100
	for i := range n {
		prio := 1 + rng.IntN(254)
		if rng.IntN(8) == 0 {
			prio = 100 // ties
		}
		if i == 0 && rng.IntN(4) == 0 {
			prio = PriorityOwner
		}
		iv := interval
		if mixed {
			iv = time.Duration(1+rng.IntN(10)) * 10 * time.Millisecond * 10
		}
		cfg := Config{
			VRID: 7, Version: version, Priority: prio, AdvertInterval: iv,
			Preempt: s.preempt, PreemptDelay: delay,
			PrimaryAddr:       netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}),
			LowerPrioNoAdvert: rng.IntN(5) == 0,
		}
		if rng.IntN(4) == 0 {
			cfg.InitialState = Master // keepalived's "state MASTER"
		}
		cfg.LowerPrioGarpRepeat, cfg.LowerPrioGarpDelay = rng.IntN(3), time.Duration(rng.IntN(3))*time.Second
		cfg.HigherPrioSendAdvert = rng.IntN(4) == 0
		s.rs = append(s.rs, &simRouter{cfg: cfg, trackers: []Tracker{{Up: true, Weight: -(10 + rng.IntN(100))}, {Up: true}}})
	}
	s.logf("seed %d: %d routers v%d interval %v preempt %v delay %v", seed, n, version, interval, s.preempt, delay)
	return s
}

// settle is long enough for any takeover: preempt delay plus a master down
// interval at the longest interval, twice, plus latency.
func (s *sim) settle() time.Duration {
	var maxIv, delay time.Duration
	for _, r := range s.rs {
		maxIv = max(maxIv, r.cfg.AdvertInterval)
		delay = r.cfg.PreemptDelay
	}
	return 2*(delay+4*maxIv) + 10*s.maxDelay
}

func (s *sim) apply(i int, as []Action) {
	r := s.rs[i]
	for _, a := range as {
		switch a := a.(type) {
		case SendAdvert:
			iv := r.cfg.AdvertInterval
			for j, o := range s.rs {
				if j == i || o.part != r.part || s.rng.Float64() < s.loss {
					continue
				}
				s.seq++
				heap.Push(&s.q, simMsg{
					at: s.now.Add(time.Duration(s.rng.Int64N(int64(s.maxDelay) + 1))), seq: s.seq,
					from: i, to: j,
					adv: AdvertReceived{From: r.cfg.PrimaryAddr, Priority: a.Priority, Interval: iv},
				})
			}
		case Reannounce:
			// Only a master holds the addresses it announces.
			if r.m.State() != Master || a.Repeat <= 0 {
				s.fail("r%d: %#v in %v", i, a, r.m.State())
			}
			r.reannounces++
		case Transition:
			r.transitions++
			s.logf("r%d %v -> %v (%s) prio %d", i, a.From, a.To, a.Reason, r.m.EffectivePriority())
			if a.To == Master && a.From == Backup && s.now.Before(r.notBefore) {
				s.fail("r%d became master %v before its Master_Down_Timer could run out", i, r.notBefore.Sub(s.now))
			}
			if a.To != Backup {
				r.notBefore = time.Time{}
			}
		}
	}
	s.checkMachine(i)
}

func (s *sim) checkMachine(i int) {
	m := s.rs[i].m
	d, ok := m.NextDeadline()
	switch m.State() {
	case Master, Backup:
		if !ok {
			s.fail("r%d in %v without a timer", i, m.State())
		}
	default:
		if ok {
			s.fail("r%d in %v with a timer at %v", i, m.State(), d)
		}
	}
}

func (s *sim) deliver(msg simMsg) {
	r := s.rs[msg.to]
	if !r.up || r.part != s.rs[msg.from].part {
		return
	}
	if r.m.State() == Backup {
		// RFC 5798 6.4.2: only the Master_Down_Timer makes a backup master.
		// An advert of priority >= ours must be accepted: the timer then
		// runs Master_Down_Interval, at least 3 * Master_Adver_Interval plus
		// the smallest Skew_Time. A lower one may be accepted (nopreempt,
		// preempt_delay) and restart the timer with its own interval.
		iv := r.cfg.AdvertInterval
		if r.cfg.Version == 3 {
			iv = msg.adv.Interval
		}
		minSkew := iv / 256
		if r.cfg.Version == 2 {
			minSkew = time.Second / 256
		}
		earliest := s.now.Add(3*iv + minSkew)
		switch {
		case msg.adv.Priority == 0:
			r.notBefore = time.Time{}
		case int(msg.adv.Priority) >= r.m.EffectivePriority():
			r.notBefore = earliest
		case !r.cfg.Preempt || r.cfg.PreemptDelay > 0:
			if !r.notBefore.IsZero() && earliest.Before(r.notBefore) {
				r.notBefore = earliest
			}
		}
	}
	s.apply(msg.to, r.m.Handle(s.now, msg.adv))
}

// runUntil processes messages and timers in time order up to end.
func (s *sim) runUntil(end time.Time) {
	for {
		next, who := end, -1
		for i, r := range s.rs {
			if !r.up {
				continue
			}
			if d, ok := r.m.NextDeadline(); ok && d.Before(next) {
				next, who = d, i
			}
		}
		if len(s.q) > 0 && !s.q[0].at.After(next) {
			msg := heap.Pop(&s.q).(simMsg)
			if msg.at.Before(s.now) {
				s.fail("time went backwards")
			}
			s.now = msg.at
			s.events++
			s.deliver(msg)
			continue
		}
		if who < 0 {
			s.now = end
			return
		}
		s.now = next
		s.events++
		s.apply(who, s.rs[who].m.Tick(s.now))
	}
}

func (s *sim) start(i int) {
	r := s.rs[i]
	r.m = New(r.cfg)
	r.up = true
	r.notBefore = time.Time{}
	prio, fault := Effective(r.cfg.Priority, r.trackers)
	r.m.Handle(s.now, PriorityChanged{Effective: prio})
	r.m.Handle(s.now, FaultChanged{Faulty: fault, Reason: "tracker"})
	s.logf("r%d start prio %d fault %v state %v", i, r.m.EffectivePriority(), fault, r.cfg.InitialState)
	// RFC 5798 6.4.1: only the owner configured to start as master may do
	// so at once; anyone else, "state MASTER" or not, first waits a whole
	// Master_Down_Interval for a running master to show itself.
	r.notBefore = time.Time{}
	if r.cfg.Priority != PriorityOwner || r.cfg.InitialState == Backup {
		minSkew := r.cfg.AdvertInterval / 256
		if r.cfg.Version == 2 {
			minSkew = time.Second / 256
		}
		r.notBefore = s.now.Add(3*r.cfg.AdvertInterval + minSkew)
	}
	s.apply(i, r.m.Handle(s.now, Startup{}))
}

func (s *sim) retrack(i int) {
	r := s.rs[i]
	prio, fault := Effective(r.cfg.Priority, r.trackers)
	if !r.up {
		return
	}
	s.logf("r%d trackers: prio %d fault %v", i, prio, fault)
	s.apply(i, r.m.Handle(s.now, PriorityChanged{Effective: prio}))
	s.apply(i, r.m.Handle(s.now, FaultChanged{Faulty: fault, Reason: "tracker"}))
}

// disrupt injects one random fault.
func (s *sim) disrupt() {
	i := s.rng.IntN(len(s.rs))
	r := s.rs[i]
	switch k := s.rng.IntN(7); {
	case k == 0 && r.up: // crash: no priority 0
		s.logf("r%d crash", i)
		r.up = false
	case k == 1 && r.up: // graceful stop
		s.logf("r%d stop", i)
		s.apply(i, r.m.Handle(s.now, Shutdown{}))
		r.up = false
	case k <= 1:
		s.start(i)
	case k == 2:
		r.part = s.rng.IntN(3)
		s.logf("r%d moves to partition %d", i, r.part)
	case k == 3:
		s.logf("heal all partitions")
		for _, o := range s.rs {
			o.part = 0
		}
	case k == 4 || k == 5:
		r.trackers[0].Up = !r.trackers[0].Up
		s.retrack(i)
	default:
		r.trackers[1].Up = !r.trackers[1].Up
		s.retrack(i)
	}
}

// checkConverged: per partition, among running routers that are not faulty,
// exactly one master and only backups besides; with preemption the master
// has the highest effective priority.
func (s *sim) checkConverged() map[int]int {
	masters := map[int]int{}
	best := map[int]int{}
	count := map[int]int{}
	for i, r := range s.rs {
		if !r.up {
			continue
		}
		_, fault := Effective(r.cfg.Priority, r.trackers)
		st := r.m.State()
		if fault {
			if st != Fault {
				s.fail("r%d faulty but %v", i, st)
			}
			continue
		}
		count[r.part]++
		best[r.part] = max(best[r.part], r.m.EffectivePriority())
		switch st {
		case Master:
			if j, ok := masters[r.part]; ok {
				s.fail("two masters in partition %d: r%d and r%d", r.part, j, i)
			}
			masters[r.part] = i
		case Backup:
		default:
			s.fail("r%d is %v, running and not faulty", i, st)
		}
	}
	for p, n := range count {
		j, ok := masters[p]
		if !ok {
			s.fail("no master in partition %d (%d routers)", p, n)
		}
		if s.preempt && s.rs[j].m.EffectivePriority() != best[p] {
			s.fail("partition %d: master r%d has priority %d, best is %d", p, j, s.rs[j].m.EffectivePriority(), best[p])
		}
	}
	return masters
}

func (s *sim) run(rounds int) {
	for i := range s.rs {
		if s.rng.IntN(2) == 0 {
			s.runUntil(s.now.Add(time.Duration(s.rng.Int64N(int64(s.rs[i].cfg.AdvertInterval)))))
		}
		s.start(i)
	}
	for round := range rounds {
		// Chaos: a few disruptions at random times, with some packet loss.
		s.loss = []float64{0, 0, 0.05, 0.3}[s.rng.IntN(4)]
		for range 1 + s.rng.IntN(4) {
			s.runUntil(s.now.Add(time.Duration(s.rng.Int64N(int64(s.settle()/2) + 1))))
			s.disrupt()
		}
		// Quiet: no loss, no disruption; then the invariants.
		s.loss = 0
		s.runUntil(s.now.Add(s.settle()))
		s.logf("round %d: check convergence", round)
		masters := s.checkConverged()
		// Steady: nothing changes any more (no flapping).
		before := make([]int, len(s.rs))
		for i, r := range s.rs {
			before[i] = r.transitions
		}
		s.runUntil(s.now.Add(s.settle()))
		for i, r := range s.rs {
			if r.transitions != before[i] {
				s.fail("r%d changed state %d times in a steady period", i, r.transitions-before[i])
			}
		}
		for p, j := range s.checkConverged() {
			if masters[p] != j {
				s.fail("partition %d: master moved from r%d to r%d while steady", p, masters[p], j)
			}
		}
	}
}

func TestSimulation(t *testing.T) {
	seeds := 500
	if *simLong {
		seeds = 50000
	}
	if *simSeeds > 0 {
		seeds = *simSeeds
	}
	first := uint64(1)
	if *simSeed >= 0 {
		first, seeds = uint64(*simSeed), 1
	}
	start := time.Now()
	var events, reannounces int
	var virtual time.Duration
	for seed := first; seed < first+uint64(seeds); seed++ {
		s := newSim(t, seed)
		s.run(6)
		events += s.events
		for _, r := range s.rs {
			reannounces += r.reannounces
		}
		virtual += s.now.Sub(t0)
	}
	t.Logf("%d seeds (from %d): %d events, %d re-announcements, %v virtual time, in %v", seeds, first, events, reannounces, virtual.Round(time.Second), time.Since(start).Round(time.Millisecond))
}
