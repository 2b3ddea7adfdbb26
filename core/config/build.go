package config

import (
	"fmt"
	"iter"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// builder walks the statement tree into the typed model. Every handler reports problems to
// the sink and carries on, so that one run shows every mistake in the file.
type builder struct {
	sink *diagSink
	opts Options
	cfg  *Config
	// scripts are all commands read, for checks that need global_defs (script security).
	scripts []*Script
	// smtpAlert is where mail alerts were first switched on, for the "no smtp_server" warning.
	smtpAlert Pos
	// notifierNames and ifaceSeen are lookup tables built during validation.
	notifierNames map[string]bool
	ifaceSeen     map[string]bool
	trackables    map[string]bool
	fileNames     map[string]bool
	// onWalk, when set, is told the keywords of each block context the builder reads: how a
	// test lists what the parser accepts, to keep vigil.conf(5) (extensions.go) in step.
	onWalk func(ctx string, names iter.Seq[string])
}

type blockRule int

const (
	noBlock blockRule = iota
	needBlock
	optBlock
)

// kw describes one keyword of a block: how many arguments it takes (max < 0: any number),
// whether it opens a block, and what to do with it.
type kw struct {
	min, max int
	block    blockRule
	fn       func(n *Node)
}

type keywords map[string]kw

// walk applies the keywords of context ctx to each statement of a block. It returns where
// each keyword was last seen, so that later checks can point at the line that matters.
func (b *builder) walk(ctx string, nodes []*Node, ks keywords) map[string]Pos {
	if b.onWalk != nil {
		b.onWalk(ctx, maps.Keys(ks))
	}
	places := map[string]Pos{}
	for _, n := range nodes {
		k, ok := ks[n.Name]
		if !ok {
			b.unknown(ctx, n, maps.Keys(ks))
			continue
		}
		places[n.Name] = n.Pos
		if !b.shape(n, k.min, k.max, k.block) {
			continue
		}
		k.fn(n)
	}
	return places
}

// shape checks a statement's argument count and block against its keyword's rule: at least
// minArgs arguments, at most maxArgs (any number when negative), and a block as it says.
func (b *builder) shape(n *Node, minArgs, maxArgs int, block blockRule) bool {
	switch {
	case len(n.Args) < minArgs:
		b.sink.errorf(n.Pos, "%q needs %s", n.Name, plural(minArgs, "argument"))
		return false
	case maxArgs >= 0 && len(n.Args) > maxArgs:
		extra := n.Args[maxArgs]
		d := b.sink.errorf(extra.Pos, "%q takes %s; unexpected %q", n.Name, atMost(maxArgs), extra.Text)
		if maxArgs == 0 {
			d.Msg = fmt.Sprintf("%q takes no arguments; unexpected %q", n.Name, extra.Text)
		}
		return false
	case block == needBlock && !n.HasBlock:
		b.sink.errorf(n.Pos, "%q needs a { ... } block", n.Name).Hint = fmt.Sprintf("write %s { ... }", strings.Join(n.Words(), " "))
		return false
	case block == noBlock && n.HasBlock:
		b.sink.errorf(n.Pos, "%q does not take a block", n.Name)
		return false
	}
	return true
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func atMost(n int) string {
	if n == 1 {
		return "one argument"
	}
	return fmt.Sprintf("at most %d arguments", n)
}

// unsupported warns about a keepalived feature vigil reads but does not implement.
func (b *builder) unsupported(p Pos, what string) {
	d := b.sink.warnf(p, "%s is not supported by vigil; ignored", what)
	d.Unsupported = true
	d.Hint = "see docs/migrating.md, \"keepalived features vigil does not support\""
}

// unknown reports a keyword the context does not take: a keepalived feature vigil lacks is a
// warning marked Unsupported; anything else is an error with the nearest known spelling among
// names, the keywords of the context.
func (b *builder) unknown(ctx string, n *Node, names iter.Seq[string]) {
	known := knownKeepalived[ctx]
	if slices.Contains(known, n.Name) {
		d := b.sink.warnf(n.Pos, "%q is not supported by vigil; ignored", n.Name)
		d.Unsupported = true
		d.Hint = "see docs/migrating.md, \"keepalived features vigil does not support\""
		return
	}
	if b.sink.full() {
		b.sink.errorf(n.Pos, "unknown keyword") // only counted; spare the search for a hint
		return
	}
	where := "here"
	if ctx == "" {
		where = "at top level"
	} else {
		where = "in " + ctx
	}
	d := b.sink.errorf(n.Pos, "unknown keyword %q %s", n.Name, where)
	candidates := slices.Collect(names)
	candidates = append(candidates, known...)
	if s := suggest(n.Name, candidates); s != "" {
		d.Hint = fmt.Sprintf("did you mean %q?", s)
		return
	}
	if glued := gluedArgument(n.Name, candidates); glued != "" {
		d.Hint = glued
		return
	}
	if home := homeOf(n.Name); home != "" {
		d.Hint = fmt.Sprintf("%q belongs in %s", n.Name, home)
		return
	}
	if ctx == "vrrp_sync_group" {
		d.Hint = "list the instances inside the block: group { VI_1 VI_2 }"
	}
}

// gluedArgument spots a keyword run into its value, as in "deveth1" for "dev eth1". When
// several keywords start the word (virtual_server and virtual_server_group), the longest is
// meant: the candidates come from a map, so taking the first would change the hint from one
// run to the next.
func gluedArgument(word string, candidates []string) string {
	best := ""
	for _, c := range candidates {
		if len(word) > len(c) && len(c) > len(best) && strings.HasPrefix(word, c) {
			best = c
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("did you mean %q? a blank is missing", best+" "+word[len(best):])
}

// homeOf names the contexts where keepalived accepts a keyword, for "belongs in" hints.
func homeOf(word string) string {
	var homes []string
	for ctx, words := range knownKeepalived {
		if ctx != "" && slices.Contains(words, word) {
			homes = append(homes, ctx)
		}
	}
	slices.Sort(homes)
	if len(homes) == 0 {
		return ""
	}
	if len(homes) > 2 {
		homes = append(homes[:2], "...")
	}
	return strings.Join(homes, " or ")
}

// suggest returns the candidate closest to word when it is close enough to be a typo.
func suggest(word string, candidates []string) string {
	best, bestD := "", math.MaxInt
	for _, c := range candidates {
		if diff := len(c) - len(word); diff > 2 || diff < -2 {
			continue // too different in length to be a typo
		}
		d := editDistance(strings.ToLower(word), strings.ToLower(c))
		if d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	limit := 2
	if len(word) <= 4 {
		limit = 1
	}
	if bestD <= limit && bestD > 0 {
		return best
	}
	if bestD == 0 && best != word {
		return best // differs only in case
	}
	return ""
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt / 2
	}
	older := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			// A transposition counts as one edit: "nofity" is one step from "notify".
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], older[j-2]+1)
			}
		}
		older, prev, cur = prev, cur, older
	}
	return prev[len(b)]
}

// --- argument readers -----------------------------------------------------------------

func (b *builder) int(t Token, lo, hi int) (int, bool) {
	v, err := strconv.Atoi(t.Text)
	if err != nil {
		b.sink.errorf(t.Pos, "%q is not a whole number", t.Text).Hint = fmt.Sprintf("use a number from %d to %d", lo, hi)
		return 0, false
	}
	if v < lo || v > hi {
		b.sink.errorf(t.Pos, "%d is out of range: use %d to %d", v, lo, hi)
		return 0, false
	}
	return v, true
}

// routeTable reads a routing table: a number, or a name the kernel or rt_tables knows.
func (b *builder) routeTable(t Token) (int, bool) {
	if id, err := strconv.ParseUint(t.Text, 0, 32); err == nil {
		return int(id), true
	}
	if id, ok := b.opts.routeTable(t.Text); ok {
		return id, true
	}
	b.sink.errorf(t.Pos, "routing table %q is not known", t.Text).Hint =
		"use a table number, main, local or default, or a name from /etc/iproute2/rt_tables"
	return 0, false
}

// timer reads seconds with up to microsecond precision ("2.5", "0.01").
func (b *builder) timer(t Token, lo, hi time.Duration) (time.Duration, bool) {
	d, err := parseSeconds(t.Text)
	if err != nil {
		b.sink.errorf(t.Pos, "%q is not a time in seconds", t.Text).Hint = "write seconds, fractions allowed: 1, 0.5, 2.71828"
		return 0, false
	}
	if d < lo || d > hi {
		b.sink.errorf(t.Pos, "%s s is out of range: use %s to %s seconds", t.Text, seconds(lo), seconds(hi))
		return 0, false
	}
	return d, true
}

func parseSeconds(s string) (time.Duration, error) {
	if s == "" || strings.ContainsAny(s, "eE+_xXnN") || strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("not a plain number")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e9 {
		return 0, fmt.Errorf("not a time")
	}
	return time.Duration(math.Round(f*1e6)) * time.Microsecond, nil
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// boolArg reads keepalived's booleans; a keyword given alone means true.
func (b *builder) boolArg(n *Node) (bool, bool) {
	if len(n.Args) == 0 {
		return true, true
	}
	switch strings.ToLower(n.Args[0].Text) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	b.sink.errorf(n.Args[0].Pos, "%q is not a boolean", n.Args[0].Text).Hint = "use on/off, true/false or yes/no"
	return false, false
}

func (b *builder) addr(t Token) (netip.Addr, bool) {
	a, err := netip.ParseAddr(t.Text)
	if err != nil {
		d := b.sink.errorf(t.Pos, "%q is not an IP address", t.Text)
		if h := addrHint(t.Text); h != "" {
			d.Hint = h
		}
		return netip.Addr{}, false
	}
	return a.WithZone(""), true
}

// addrHint explains the common ways an address goes wrong.
func addrHint(s string) string {
	if strings.Count(s, ".") == 3 && !strings.ContainsAny(s, ":/") {
		parts := strings.Split(s, ".")
		last := parts[3]
		for i := 1; i < len(last) && i <= 3; i++ {
			if v, err := strconv.Atoi(last[:i]); err == nil && v <= 255 && last[:i] == strconv.Itoa(v) {
				if p, err := strconv.Atoi(last[i:]); err == nil && p > 0 && p <= 65535 && last[i:] == strconv.Itoa(p) {
					return fmt.Sprintf("did you mean %q? a blank is missing between address and port", strings.Join(parts[:3], ".")+"."+last[:i]+" "+last[i:])
				}
			}
		}
	}
	if strings.HasPrefix(s, "<") {
		return "this is a placeholder from a documentation template; put a real address here"
	}
	return ""
}

// prefix reads ADDR or ADDR/LEN; without a length the address is a host route.
func (b *builder) prefix(t Token) (netip.Prefix, bool) {
	s := t.Text
	if !strings.Contains(s, "/") {
		a, ok := b.addr(t)
		if !ok {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		addr, bits, _ := strings.Cut(s, "/")
		if _, aerr := netip.ParseAddr(addr); aerr != nil {
			d := b.sink.errorf(t.Pos, "%q is not an IP address", addr)
			d.Hint = addrHint(addr)
		} else {
			b.sink.errorf(t.Pos, "%q is not a prefix length for %s", bits, addr)
		}
		return netip.Prefix{}, false
	}
	return p, true
}

func (b *builder) enum(t Token, vals ...string) (string, bool) {
	for _, v := range vals {
		if strings.EqualFold(t.Text, v) {
			return v, true
		}
	}
	d := b.sink.errorf(t.Pos, "%q is not one of %s", t.Text, strings.Join(vals, ", "))
	if s := suggest(t.Text, vals); s != "" {
		d.Hint = fmt.Sprintf("did you mean %q?", s)
	}
	return "", false
}

func (b *builder) port(t Token) (int, bool) { return b.int(t, 1, 65535) }

// script reads "KEYWORD "command args" [user [group]]". keepalived reads these lines twice
// with its shell-like rules (quotes and backslash escapes): once to find the command, user
// and group, and again to split the command into its arguments.
func (b *builder) script(n *Node) *Script {
	if len(n.Args) > 0 && n.Args[len(n.Args)-1].open {
		return nil // the unterminated quote is reported already
	}
	words, err := splitLine(n.Rest)
	if err != nil {
		b.sink.errorf(argPos(n), "%v", err).Hint = "close the quote on the same line"
		return nil
	}
	return b.scriptWords(n, words)
}

// scriptWords builds a script from its words: the command, then an optional user and group.
func (b *builder) scriptWords(n *Node, words []string) *Script {
	pos := argPos(n)
	if len(words) == 0 {
		b.sink.errorf(n.Pos, "%q needs a command", n.Name)
		return nil
	}
	if len(words) > 3 {
		b.sink.errorf(pos, "%q has %d words after the command; expected at most a user and a group", n.Name, len(words)-1).Hint =
			"quote the command when it has arguments: " + n.Name + " \"/path/script arg1 arg2\""
		return nil
	}
	s := &Script{Cmd: words[0], Pos: pos}
	if len(words) > 1 {
		s.User = words[1]
	}
	if len(words) > 2 {
		s.Group = words[2]
	}
	return b.commandArgv(n, s)
}

// commandArgv splits the script's command into its arguments and records the script.
func (b *builder) commandArgv(n *Node, s *Script) *Script {
	argv, err := splitCommand(s.Cmd)
	switch {
	case err != nil:
		b.sink.errorf(s.Pos, "%q: %v", n.Name, err)
		return nil
	case len(argv) == 0:
		b.sink.errorf(s.Pos, "%q has an empty command", n.Name)
		return nil
	}
	s.Argv = argv
	b.scripts = append(b.scripts, s)
	return s
}

func argPos(n *Node) Pos {
	if len(n.Args) > 0 {
		return n.Args[0].Pos
	}
	return n.Pos
}

// --- keyword constructors: each returns the rule for a keyword that sets one field ---------

func (b *builder) intKw(p *int, lo, hi int) kw {
	return kw{min: 1, max: 1, fn: func(n *Node) {
		if v, ok := b.int(n.Args[0], lo, hi); ok {
			*p = v
		}
	}}
}

func (b *builder) timerKw(p *time.Duration, lo, hi time.Duration) kw {
	return kw{min: 1, max: 1, fn: func(n *Node) {
		if v, ok := b.timer(n.Args[0], lo, hi); ok {
			*p = v
		}
	}}
}

// flagKw is a keyword that is true alone or takes an explicit boolean.
func (b *builder) flagKw(p *bool) kw {
	return kw{max: 1, fn: func(n *Node) {
		if v, ok := b.boolArg(n); ok {
			*p = v
		}
	}}
}

// optFlagKw is flagKw for settings that inherit from global_defs when unset.
func (b *builder) optFlagKw(p **bool) kw {
	return kw{max: 1, fn: func(n *Node) {
		if v, ok := b.boolArg(n); ok {
			*p = &v
		}
	}}
}

// smtpAlertKw is optFlagKw for smtp_alert, remembering where alerts were first switched on.
func (b *builder) smtpAlertKw(p **bool) kw {
	k := b.optFlagKw(p)
	set := k.fn
	k.fn = func(n *Node) {
		set(n)
		if *p != nil && **p && b.smtpAlert.File == "" {
			b.smtpAlert = n.Pos
		}
	}
	return k
}

// setKw is a keyword with no arguments that switches something on.
func setKw(p *bool) kw {
	return kw{fn: func(*Node) { *p = true }}
}

func strKw(p *string) kw {
	return kw{min: 1, max: 1, fn: func(n *Node) { *p = n.Args[0].Text }}
}

func (b *builder) addrKw(p *netip.Addr) kw {
	return kw{min: 1, max: 1, fn: func(n *Node) {
		if v, ok := b.addr(n.Args[0]); ok {
			*p = v
		}
	}}
}

func (b *builder) scriptKw(p **Script) kw {
	return kw{min: 1, max: -1, fn: func(n *Node) { *p = b.script(n) }}
}
