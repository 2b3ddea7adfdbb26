package config

import (
	"maps"
	"net/netip"
	"time"
)

// A block read thousands of times in one file (a real_server, its checker, a virtual_server
// of a large load balancer) takes its keywords
// from a table built once for the package rather than from a map of closures built for every
// block: with a thousand real servers the per-block tables were the parser's largest cost.
// The handlers of such a table are told the block they fill (its target, of type T) instead
// of capturing it, so one immutable table serves every block.

// rule is kw for a shared table: the same shape rules, and a handler given the target.
type rule[T any] struct {
	min, max int
	block    blockRule
	fn       func(b *builder, t T, n *Node)
}

type rules[T any] map[string]rule[T]

// with returns a copy of ks with more keywords, for tables that extend a common one; a keyword
// in more replaces the one in ks. It is meant for package initialisation: the tables are not
// changed once built.
func (ks rules[T]) with(more rules[T]) rules[T] {
	out := make(rules[T], len(ks)+len(more))
	maps.Copy(out, ks)
	maps.Copy(out, more)
	return out
}

// walkRules is walk for a shared table: it applies the keywords of context ctx to each
// statement of a block, for the target t. Unlike walk it keeps no map of places: the few
// checks that need where a keyword stood look in the block (lastPlace).
func walkRules[T any](b *builder, ctx string, nodes []*Node, ks rules[T], t T) {
	if b.onWalk != nil {
		b.onWalk(ctx, maps.Keys(ks))
	}
	for _, n := range nodes {
		k, ok := ks[n.Name]
		if !ok {
			b.unknown(ctx, n, maps.Keys(ks))
			continue
		}
		if !b.shape(n, k.min, k.max, k.block) {
			continue
		}
		k.fn(b, t, n)
	}
}

// --- rule constructors: each returns the rule for a keyword that sets one field of the
// target, which field reaches ------------------------------------------------------------

func intRule[T any](field func(T) *int, lo, hi int) rule[T] {
	return rule[T]{min: 1, max: 1, fn: func(b *builder, t T, n *Node) {
		if v, ok := b.int(n.Args[0], lo, hi); ok {
			*field(t) = v
		}
	}}
}

func strRule[T any](field func(T) *string) rule[T] {
	return rule[T]{min: 1, max: 1, fn: func(_ *builder, t T, n *Node) { *field(t) = n.Args[0].Text }}
}

// flagRule is a keyword that is true alone or takes an explicit boolean.
func flagRule[T any](field func(T) *bool) rule[T] {
	return rule[T]{max: 1, fn: func(b *builder, t T, n *Node) {
		if v, ok := b.boolArg(n); ok {
			*field(t) = v
		}
	}}
}

func addrRule[T any](field func(T) *netip.Addr) rule[T] {
	return rule[T]{min: 1, max: 1, fn: func(b *builder, t T, n *Node) {
		if v, ok := b.addr(n.Args[0]); ok {
			*field(t) = v
		}
	}}
}

func scriptRule[T any](field func(T) **Script) rule[T] {
	return rule[T]{min: 1, max: -1, fn: func(b *builder, t T, n *Node) { *field(t) = b.script(n) }}
}

// smtpAlertRule reads smtp_alert as optFlagKw does, remembering where alerts were first
// switched on.
func smtpAlertRule[T any](field func(T) **bool) rule[T] {
	return rule[T]{max: 1, fn: func(b *builder, t T, n *Node) {
		p := field(t)
		if v, ok := b.boolArg(n); ok {
			*p = &v
		}
		if *p != nil && **p && b.smtpAlert.File == "" {
			b.smtpAlert = n.Pos
		}
	}}
}

func optIntRule[T any](field func(T) *opt[int], lo, hi int) rule[T] {
	return rule[T]{min: 1, max: 1, fn: func(b *builder, t T, n *Node) {
		if v, ok := b.int(n.Args[0], lo, hi); ok {
			*field(t) = opt[int]{v, true}
		}
	}}
}

func optTimerRule[T any](field func(T) *opt[time.Duration], lo, hi time.Duration) rule[T] {
	return rule[T]{min: 1, max: 1, fn: func(b *builder, t T, n *Node) {
		if v, ok := b.timer(n.Args[0], lo, hi); ok {
			*field(t) = opt[time.Duration]{v, true}
		}
	}}
}

func optBoolRule[T any](field func(T) *opt[bool]) rule[T] {
	return rule[T]{max: 1, fn: func(b *builder, t T, n *Node) {
		if v, ok := b.boolArg(n); ok {
			*field(t) = opt[bool]{v, true}
		}
	}}
}

func optStrRule[T any](field func(T) *opt[string]) rule[T] {
	return rule[T]{min: 1, max: 1, fn: func(_ *builder, t T, n *Node) { *field(t) = opt[string]{n.Args[0].Text, true} }}
}

// retryTimingRules are the keywords a virtual server, a real server and a checker share: each
// sets the block's own value of a setting the blocks inherit (see inherited), found by in.
func retryTimingRules[T any](in func(T) *inherited, retryMin int) rules[T] {
	return rules[T]{
		"retry":              optIntRule(func(t T) *opt[int] { return &in(t).retry }, retryMin, 1<<31-1),
		"delay_before_retry": optTimerRule(func(t T) *opt[time.Duration] { return &in(t).delayBeforeRetry }, 0, maxLoopTimer),
		"warmup":             optTimerRule(func(t T) *opt[time.Duration] { return &in(t).warmup }, 0, maxLoopTimer),
		"delay_loop":         optTimerRule(func(t T) *opt[time.Duration] { return &in(t).delayLoop }, time.Microsecond, maxLoopTimer),
	}
}
