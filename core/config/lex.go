package config

import (
	"fmt"
	"strings"
)

// Token is one word of a configuration line after quotes and escapes are resolved.
type Token struct {
	Text string
	Pos  Pos
	// Quoted is true when the word was quoted; a quoted "{" is a word, not a brace.
	Quoted bool
	// off is where the word starts in its line, quotes included (the tree builder cuts a
	// statement's raw text from there).
	off int
	// open marks a quoted word whose closing quote is missing (already reported).
	open bool
}

// srcLine is one logical line on its way through the preprocessor: the text, where it came from,
// and how much of it still maps column-for-column onto the file.
type srcLine struct {
	pos  Pos    // file and line; Col is the column of text[0]
	text string // comments and surrounding blanks removed
	// exact is the number of leading bytes of text whose columns are still those of the file;
	// past it (after a $NAME was replaced) every token is reported at fallback.
	exact    int
	fallback int
	// braceInComment records that the comment stripped from this line held a '}', the classic
	// way of losing a closing brace; the tree builder uses it for its hint.
	braceInComment bool
}

func (l srcLine) colAt(off int) int {
	if off < l.exact {
		return l.pos.Col + off
	}
	return l.fallback
}

// decomment removes a '#' or '!' comment (outside double quotes, as keepalived does), turns the
// escapes \# and \! into plain characters, and trims blanks. It reports how many leading bytes
// were trimmed, whether the line ends in a continuation backslash, and whether the removed
// comment contained a closing brace.
func decomment(s string) (out string, lead int, cont bool, braceInComment bool) {
	trimmed := strings.TrimLeft(s, " \t")
	lead = len(s) - len(trimmed)
	s = trimmed
	// The text is a part of s until an escape changes it; only then is it copied (into b),
	// so that most lines need no copy.
	var b []byte
	copied := false
	upTo := func(i int) string {
		if copied {
			return strings.TrimRight(string(b), " \t")
		}
		return strings.TrimRight(s[:i], " \t")
	}
	quote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quote = !quote
		case c == '\\':
			if !copied {
				b, copied = append(b, s[:i]...), true
			}
			if i+1 == len(s) {
				return upTo(i), lead, true, false
			}
			if !quote && (s[i+1] == '#' || s[i+1] == '!') {
				b = append(b, s[i+1])
			} else {
				b = append(b, c, s[i+1])
			}
			i++
			continue
		case !quote && (c == '#' || c == '!'):
			return upTo(i), lead, false, strings.Contains(s[i:], "}")
		}
		if copied {
			b = append(b, c)
		}
	}
	return upTo(len(s)), lead, false, false
}

// blanks separate words as keepalived's reader separates them (its WHITE_SPACE): a carriage
// return or form feed inside a line is a blank, not part of a word. (A word "0\r" was dumped
// by vigil -d with the \r before the line's end, where it is read as a CRLF ending, so the
// dump read back differently: FuzzParse found it.)
const blanks = " \t\f\n\r\v"

// tokenize splits a logical line into words the way keepalived reads every keyword: blanks
// separate words, "..." is one word (and a '"' always ends the word before it, so abc"d e"f
// is three words), '{' and '}' outside quotes are words of their own (so "VG_1{" is a name
// followed by a brace). Backslashes and single quotes are ordinary characters here; only
// script commands give them a meaning (see splitCommand).
func tokenize(l srcLine, sink *diagSink) []Token { return appendTokens(nil, l, sink) }

// appendTokens is tokenize appending to toks, so that a caller reading line after line can
// reuse one buffer.
func appendTokens(toks []Token, l srcLine, sink *diagSink) []Token {
	s := l.text
	i := 0
	for i < len(s) {
		for i < len(s) && strings.IndexByte(blanks, s[i]) >= 0 {
			i++
		}
		if i >= len(s) {
			break
		}
		start := i
		switch s[i] {
		case '{', '}':
			toks = append(toks, Token{Text: s[i : i+1], Pos: l.posAt(i), off: i})
			i++
			continue
		case '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				sink.errorf(l.posAt(start), "unterminated quote in %q", s[start:]).Hint =
					"close the quote on the same line; quoted strings cannot span lines"
				toks = append(toks, Token{Text: s[i+1:], Pos: l.posAt(start), Quoted: true, off: start, open: true})
				return toks
			}
			toks = append(toks, Token{Text: s[i+1 : i+1+j], Pos: l.posAt(start), Quoted: true, off: start})
			i += j + 2
			continue
		}
		for i < len(s) && strings.IndexByte(blanks+"\"{}", s[i]) < 0 {
			i++
		}
		toks = append(toks, Token{Text: s[start:i], Pos: l.posAt(start), off: start})
	}
	return toks
}

// splitCommand splits a script command line into words the way keepalived does for scripts:
// blanks separate words, "..." and '...' group blanks into a word and may be glued to
// unquoted text (abc"d e"f is one word), and backslash escapes follow keepalived.conf(5):
// \a \b \E \f \n \r \t \v, \nnn octal, \xHH hex, \cC control, \C for any other C.
// It reports an unterminated quote as an error.
func splitCommand(cmd string) ([]string, error) { return splitWords(cmd, true) }

// splitLine splits a script keyword's line into command, user and group: quotes group words
// and a backslash protects the next character, but escapes are left for splitCommand, as
// keepalived reads these lines.
func splitLine(s string) ([]string, error) { return splitWords(s, false) }

func splitWords(cmd string, escapes bool) ([]string, error) {
	var words []string
	s := cmd
	i := 0
	for i < len(s) {
		for i < len(s) && strings.IndexByte(blanks, s[i]) >= 0 {
			i++
		}
		if i >= len(s) {
			break
		}
		var b strings.Builder
		var quote byte
	word:
		for i < len(s) {
			c := s[i]
			switch {
			case c == '\\':
				if i+1 >= len(s) {
					i++
					break word
				}
				if !escapes {
					b.WriteString(s[i : i+2])
					i += 2
					continue
				}
				n, ch := unescape(s[i+1:])
				b.WriteString(ch)
				i += 1 + n
			case quote != 0:
				if c == quote {
					quote = 0
				} else {
					b.WriteByte(c)
				}
				i++
			case c == '"' || c == '\'':
				quote = c
				i++
			case c == ' ' || c == '\t':
				break word
			default:
				b.WriteByte(c)
				i++
			}
		}
		if quote != 0 {
			return words, fmt.Errorf("unterminated %c quote in %q", quote, cmd)
		}
		words = append(words, b.String())
	}
	return words, nil
}

func (l srcLine) posAt(off int) Pos {
	p := l.pos
	p.Col = l.colAt(off)
	return p
}

// unescape decodes one escape sequence (the text after the backslash) and returns how many bytes
// it used and what it stands for: \a \b \E \f \n \r \t \v, \nnn octal, \xHH hex, \cC control, and
// \C for any other C.
func unescape(s string) (int, string) {
	c := s[0]
	switch {
	case c == 'x' && len(s) > 1 && isHex(s[1]):
		v, n := 0, 1
		for n <= 2 && n < len(s) && isHex(s[n]) {
			v = v<<4 | hexVal(s[n])
			n++
		}
		return n, string([]byte{byte(v)})
	case c == 'c' && len(s) > 1:
		return 2, string([]byte{s[1] & 0x1f})
	case c >= '0' && c <= '7':
		v, n := 0, 0
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
			v = v<<3 | int(s[n]-'0')
			n++
		}
		return n, string([]byte{byte(v)})
	}
	switch c {
	case 'a':
		c = '\a'
	case 'b':
		c = '\b'
	case 'E':
		c = 0x1b
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'v':
		c = '\v'
	}
	return 1, string([]byte{c})
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}
