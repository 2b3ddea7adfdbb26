package main

import (
	"strings"
	"testing"
	"time"
)

// reqs builds requests 10 ms apart from a pattern: a letter is the node that answered
// ("a" for n1, "b" for n2), "-" a failed request.
func reqs(pattern string) []Request {
	t0 := time.Unix(1000, 0)
	var out []Request
	for i, c := range pattern {
		r := Request{Sent: t0.Add(time.Duration(i) * clientEvery)}
		switch c {
		case '-':
			r.Why = "timeout"
		case 'a':
			r.Node = "n1"
		case 'b':
			r.Node = "n2"
		}
		out = append(out, r)
	}
	return out
}

func TestOutage(t *testing.T) {
	for _, c := range []struct {
		pattern string
		want    time.Duration
		at      int // index of the first failed request of the longest run
	}{
		{"aaaa", 0, -1},
		{"aa-aa", 10 * time.Millisecond, 2},
		{"a--a---bb", 30 * time.Millisecond, 4},
		{"a---a---", 30 * time.Millisecond, 1}, // a tie keeps the first
		{"aa--", 20 * time.Millisecond, 2},     // to the end: one interval after the last
		{"---b", 30 * time.Millisecond, 0},
		{"", 0, -1},
	} {
		rs := reqs(c.pattern)
		got, at := Outage(rs)
		if got != c.want {
			t.Errorf("Outage(%q) = %s, want %s", c.pattern, got, c.want)
		}
		if c.at >= 0 && !at.Equal(rs[c.at].Sent) {
			t.Errorf("Outage(%q) began at %s, want request %d", c.pattern, at, c.at)
		}
	}
}

func TestFinalRun(t *testing.T) {
	for _, c := range []struct {
		pattern string
		node    string
		from, n int
	}{
		{"aaa", "n1", 0, 3},
		{"aa--bbb", "n2", 4, 3},
		{"bbab", "n2", 3, 1},
		{"aab-", "", 0, 0},
		{"", "", 0, 0},
	} {
		rs := reqs(c.pattern)
		node, since, n := FinalRun(rs)
		if node != c.node || n != c.n || (n > 0 && !since.Equal(rs[c.from].Sent)) {
			t.Errorf("FinalRun(%q) = %q since %v, %d; want %q from request %d, %d", c.pattern, node, since, n, c.node, c.from, c.n)
		}
	}
}

func TestAnswersAndBetween(t *testing.T) {
	rs := reqs("aa-bb")
	if got := formatCounts(Answers(rs)); got != "failed:timeout 1, n1 2, n2 2" {
		t.Errorf("Answers = %q", got)
	}
	if got := Between(rs, rs[1].Sent, rs[3].Sent); len(got) != 2 || got[0] != rs[1] || got[1] != rs[2] {
		t.Errorf("Between [1, 3) = %v", got)
	}
	if got := Between(rs, rs[3].Sent, time.Time{}); len(got) != 2 {
		t.Errorf("Between [3, end) = %v", got)
	}
}

func TestConfText(t *testing.T) {
	c := Conf{Instances: 2, Advert: 100 * time.Millisecond, Instance: "track_script {\n    chk\n}", Extra: "vrrp_script chk {\n    script /bin/true\n}"}
	n1 := c.text(0, "n1", "/w/notify.sh")
	n3 := c.text(2, "n3", "/w/notify.sh")
	for _, want := range []string{
		"state MASTER", "priority 150", "advert_int 0.1", "version 3", "virtual_router_id 52",
		"192.0.2.101/24", `notify "/w/notify.sh n1"`, "    track_script {\n        chk\n    }", "vrrp_script chk",
	} {
		if !strings.Contains(n1, want) {
			t.Errorf("n1's configuration lacks %q:\n%s", want, n1)
		}
	}
	for _, want := range []string{"state BACKUP", "priority 50", `notify "/w/notify.sh n3"`} {
		if !strings.Contains(n3, want) {
			t.Errorf("n3's configuration lacks %q:\n%s", want, n3)
		}
	}
	if strings.Count(n1, "vrrp_instance") != 2 {
		t.Errorf("want 2 instances:\n%s", n1)
	}
	if strings.Contains(Conf{NoNotify: true}.text(0, "n1", "/w/notify.sh"), "notify") {
		t.Error("NoNotify still has a notify line")
	}
}

func TestBroken(t *testing.T) {
	ok := &Result{Masters: 1, Lost: 0, Moved: 0}
	if b := ok.Broken(); len(b) != 0 {
		t.Errorf("a clean row is broken: %v", b)
	}
	unmeasured := &Result{Masters: -1, Lost: -1, Moved: -1}
	if b := unmeasured.Broken(); len(b) != 0 {
		t.Errorf("unmeasured figures break a row: %v", b)
	}
	bad := &Result{Masters: 2, Lost: 3, Moved: 1}
	bad.Check(false, "own check")
	if b := bad.Broken(); len(b) != 4 {
		t.Errorf("want 4 broken invariants, got %v", b)
	}
}

// TestSkewTime checks the bound master-demote holds the outage to against the RFCs' worked
// figures: VRRPv3 scales Skew_Time by the advert interval, VRRPv2 does not.
func TestSkewTime(t *testing.T) {
	for _, c := range []struct {
		conf Conf
		node int
		want time.Duration
	}{
		{Conf{}, 1, 609375 * time.Microsecond},                                           // v3, 1 s, priority 100: 156/256 s
		{Conf{Advert: 100 * time.Millisecond}, 1, 60937500 * time.Nanosecond},            // v3 scales with the interval
		{Conf{Version: 2, Advert: 100 * time.Millisecond}, 1, 609375 * time.Microsecond}, // v2 does not
		{Conf{Version: 2, Advert: 3 * time.Second}, 0, 414062500 * time.Nanosecond},      // v2, priority 150: 106/256 s
	} {
		e := &Env{Conf: c.conf}
		if got := e.SkewTime(c.node); got != c.want {
			t.Errorf("SkewTime(%d) for %+v = %s, want %s", c.node, c.conf, got, c.want)
		}
	}
}
