package config

import (
	"fmt"
	"strings"
)

// Node is one statement of the configuration: a keyword, its arguments and, when it opens
// one, the statements of its block. Value blocks (virtual_ipaddress, unicast_peer, ...) use
// the same shape: each line is a Node whose Name is the line's first word.
type Node struct {
	Name     string
	Pos      Pos
	Args     []Token
	HasBlock bool
	Block    []*Node
	// End is the place of the block's closing brace (zero without a block).
	End Pos
	// Rest is the statement's text after the keyword, as written (quotes kept), for keywords
	// whose value keepalived re-reads with its own rules: script commands.
	Rest string
}

// Arg returns the text of argument i, or "" when there is none.
func (n *Node) Arg(i int) string {
	if i < len(n.Args) {
		return n.Args[i].Text
	}
	return ""
}

// Words returns the name and arguments as plain strings.
func (n *Node) Words() []string {
	w := make([]string, 0, 1+len(n.Args))
	w = append(w, n.Name)
	for _, a := range n.Args {
		w = append(w, a.Text)
	}
	return w
}

// topLevelBlocks are the keywords that open a block only at the top of a file. Meeting one
// inside another block almost always means a '}' was lost earlier, so the tree builder closes
// the open blocks there, says so, and goes on reading: the rest of the file is still checked.
var topLevelBlocks = map[string]bool{
	"global_defs": true, "vrrp_instance": true, "vrrp_sync_group": true, "vrrp_script": true,
	"vrrp_track_process": true, "virtual_server": true, "virtual_server_group": true,
	"static_ipaddress": true, "static_routes": true, "static_rules": true, "garp_group": true,
	"linkbeat_interfaces": true, "bfd_instance": true, "vrrp_check": true, "vrrp_notify": true,
	"track_group": true, "vrrp_track_file": true,
}

const maxBlockDepth = 64

type openBlock struct {
	node *Node
	// kids is where the block's children start in buildTree's buffer of open children.
	kids int
	// braceInComment is the first line inside the block whose comment swallowed a '}'.
	braceInComment Pos
}

// buildTree turns preprocessed lines into the statement tree, reporting unbalanced braces.
func buildTree(lines []srcLine, sink *diagSink) []*Node {
	var top []*Node
	var stack []openBlock
	var last *Node // the most recent statement at the current level, for a '{' on its own line
	// The tree of a large file is tens of thousands of small nodes and slices that all live
	// as long as the tree: they are cut from a few larger arrays, and the words of a line
	// and the children of the open blocks are gathered in buffers reused throughout.
	var (
		nodes chunks[Node]
		args  chunks[Token]
		kids  chunks[*Node]
		toks  []Token
		// open holds the children of the open blocks, the innermost block's last, from
		// stack[i].kids on; a block's children are copied out when it is closed.
		open []*Node
	)

	appendNode := func(n *Node) {
		if len(stack) == 0 {
			top = append(top, n)
		} else {
			open = append(open, n)
		}
		last = n
	}
	// closeTo closes the open blocks above depth, giving each the children gathered for it.
	closeTo := func(depth int) {
		for i := len(stack) - 1; i >= depth; i-- {
			ob := stack[i]
			ob.node.Block = kids.clone(open[ob.kids:])
			open = open[:ob.kids]
		}
		stack = stack[:depth]
	}
	unclosed := func(ob openBlock, at Pos, before string) {
		d := sink.errorf(ob.node.Pos, "block %q opened here is not closed %s", describe(ob.node), before)
		d.Hint = fmt.Sprintf("add the missing '}' (found %s)", at)
		if ob.braceInComment.Line != 0 {
			d.Hint = fmt.Sprintf("line %d has its '}' inside a comment: a '#' or '!' comments out the rest of the line, braces included", ob.braceInComment.Line)
		}
	}

	for _, l := range lines {
		if l.braceInComment && len(stack) > 0 && stack[len(stack)-1].braceInComment.Line == 0 {
			stack[len(stack)-1].braceInComment = l.pos
		}
		toks = appendTokens(toks[:0], l, sink)
		var stmt *Node
		argFrom, argStart := -1, -1 // the statement's first argument: index in toks, offset in the line
		// flushAt ends the statement before toks[upto] (a brace), or at the end of the line.
		flushAt := func(upto int) {
			if stmt == nil {
				return
			}
			end := len(l.text)
			if upto < len(toks) {
				end = toks[upto].off
			}
			if argStart >= 0 && end > argStart {
				stmt.Rest = strings.TrimSpace(l.text[argStart:end])
			}
			if argFrom >= 0 {
				stmt.Args = args.clone(toks[argFrom:upto])
			}
			appendNode(stmt)
			stmt, argFrom, argStart = nil, -1, -1
		}
		flush := func() { flushAt(len(toks)) }
		for i, t := range toks {
			switch {
			case !t.Quoted && t.Text == "{":
				target := stmt
				if target == nil {
					// "{" at the start of a line opens the block of the previous statement.
					if last == nil || last.HasBlock {
						sink.errorf(t.Pos, "'{' without a keyword before it; its block is skipped").Hint = "put the block's keyword before '{'"
						// A stand-in keeps the braces balanced; it is not part of the tree.
						target = &Node{Name: "{", Pos: t.Pos}
					} else {
						target = last
					}
				} else {
					flushAt(i)
				}
				target.HasBlock = true
				if len(stack) >= maxBlockDepth {
					sink.errorf(t.Pos, "blocks nested deeper than %d levels", maxBlockDepth)
					closeTo(0)
					return top
				}
				stack = append(stack, openBlock{node: target, kids: len(open)})
				last = nil
			case !t.Quoted && t.Text == "}":
				flushAt(i)
				if len(stack) == 0 {
					sink.errorf(t.Pos, "unexpected '}': no block is open").Hint = "remove it, or look for a missing '{' above"
					continue
				}
				stack[len(stack)-1].node.End = t.Pos
				last = stack[len(stack)-1].node
				closeTo(len(stack) - 1)
			case stmt == nil:
				if len(stack) > 0 && topLevelBlocks[t.Text] && !t.Quoted && opensBlock(toks[i+1:]) {
					unclosed(stack[0], t.Pos, fmt.Sprintf("before %q at %s", t.Text, t.Pos))
					closeTo(0)
				}
				stmt = nodes.next()
				*stmt = Node{Name: t.Text, Pos: t.Pos}
			default:
				if argStart < 0 {
					argFrom, argStart = i, t.off
				}
			}
		}
		flush()
	}
	for i := len(stack) - 1; i >= 0; i-- {
		end := Pos{File: stack[i].node.Pos.File}
		if len(lines) > 0 {
			end = lines[len(lines)-1].pos
		}
		unclosed(stack[i], end, "before the end of the configuration")
	}
	closeTo(0)
	return top
}

// opensBlock reports whether the rest of a line opens a block, the shape of a top-level
// definition ("vrrp_instance VI_1 {").
func opensBlock(rest []Token) bool {
	for _, u := range rest {
		if !u.Quoted && u.Text == "{" {
			return true
		}
	}
	return false
}

func describe(n *Node) string {
	if len(n.Args) == 0 {
		return n.Name
	}
	return n.Name + " " + n.Args[0].Text
}

// writeTree prints the tree in canonical keepalived syntax: one statement per line, four
// spaces per level. Arguments are written as they were read (quotes kept), so script commands
// keep their meaning; reading the output back gives the same tree. When places is not nil,
// the place in the operator's files of each line written is appended to it.
func writeTree(b *strings.Builder, nodes []*Node, indent int, places *[]Pos) {
	place := func(p Pos) {
		if places != nil {
			*places = append(*places, p)
		}
	}
	for _, n := range nodes {
		line := dumpName(n.Name)
		if n.Rest != "" {
			line += " " + escapeComments(n.Rest)
		}
		if _, _, cont, _ := decomment(line); cont && !n.HasBlock {
			// The text ends in a lone backslash (read from "\ " with the blank trimmed):
			// written bare it would continue the line, so close it with an empty comment.
			line += " #"
		}
		pad := strings.Repeat("    ", indent)
		b.WriteString(pad)
		b.WriteString(line)
		place(n.Pos)
		if n.HasBlock {
			open := " {\n"
			if indent > 0 && topLevelBlocks[n.Name] {
				// Nested (inside a block vigil ignores, say): "vrrp_instance {" on one line
				// would read back as a lost '}' (buildTree), a '{' on the next line as this.
				open = "\n" + pad + "{\n"
				place(n.Pos)
			}
			b.WriteString(open)
			writeTree(b, n.Block, indent+1, places)
			b.WriteString(pad)
			b.WriteString("}")
			place(n.End)
		}
		b.WriteByte('\n')
	}
}

// dumpName quotes a keyword that would otherwise be read as something else: a comment, a
// brace, a conditional, a definition, a generator or an include.
func dumpName(s string) string {
	special := s == "" || strings.ContainsAny(s, " \t{}#!") || strings.ContainsAny(s[:1], "@~$")
	if _, _, ok := includeDirective(s + " x"); ok || special {
		return `"` + s + `"`
	}
	return s
}

// escapeComments protects '#' and '!' outside double quotes, which the reader turned from
// "\#" into plain characters.
func escapeComments(s string) string {
	if !strings.ContainsAny(s, "#!") {
		return s
	}
	var b strings.Builder
	quote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quote = !quote
		case !quote && (c == '#' || c == '!'):
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// chunks hands out elements and copies of slices cut from larger arrays, for the many small
// pieces of a statement tree that all live as long as the tree. The arrays grow with the
// file, so a small file does not pay for a large one's.
type chunks[T any] struct {
	free []T
	size int
}

func (c *chunks[T]) grow(n int) {
	c.size = min(max(2*c.size, 16), 1024)
	c.free = make([]T, max(c.size, n))
}

// next returns a new zero element.
func (c *chunks[T]) next() *T {
	if len(c.free) == 0 {
		c.grow(1)
	}
	p := &c.free[0]
	c.free = c.free[1:]
	return p
}

// clone returns a copy of src (nil when empty) whose capacity ends with it, so that an append
// to it never writes over its neighbour.
func (c *chunks[T]) clone(src []T) []T {
	if len(src) == 0 {
		return nil
	}
	if len(src) > len(c.free) {
		c.grow(len(src))
	}
	out := c.free[:len(src):len(src)]
	c.free = c.free[len(src):]
	copy(out, src)
	return out
}
