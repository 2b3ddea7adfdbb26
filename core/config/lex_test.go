package config

import (
	"reflect"
	"testing"
)

func TestDecomment(t *testing.T) {
	tests := []struct {
		in, out     string
		lead        int
		cont, brace bool
	}{
		{"  priority 100  # comment", "priority 100", 2, false, false},
		{"priority 100 ! comment", "priority 100", 0, false, false},
		{`script "a # not a comment"`, `script "a # not a comment"`, 0, false, false},
		{`auth_pass pa\#ss`, `auth_pass pa#ss`, 0, false, false},
		{`$X= \`, `$X=`, 0, true, false},
		{"smtp_alert # done }", "smtp_alert", 0, false, true},
		{"\t", "", 1, false, false},
	}
	for _, tt := range tests {
		out, lead, cont, brace := decomment(tt.in)
		if out != tt.out || lead != tt.lead || cont != tt.cont || brace != tt.brace {
			t.Errorf("decomment(%q) = %q,%d,%v,%v; want %q,%d,%v,%v", tt.in, out, lead, cont, brace, tt.out, tt.lead, tt.cont, tt.brace)
		}
	}
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		cols []int
	}{
		{"vrrp_sync_group VG_1{", []string{"vrrp_sync_group", "VG_1", "{"}, []int{1, 17, 21}},
		{"group{ a b }", []string{"group", "{", "a", "b", "}"}, []int{1, 6, 8, 10, 12}},
		// keepalived's reader: a '"' always ends a word, single quotes and backslashes are
		// ordinary characters outside script commands.
		{`abcd" efg h jkl "mnop`, []string{"abcd", " efg h jkl ", "mnop"}, []int{1, 5, 18}},
		{`abcd "efg h jkl" mnop`, []string{"abcd", "efg h jkl", "mnop"}, []int{1, 6, 18}},
		{`notify "/bin/x ' a b '"`, []string{"notify", "/bin/x ' a b '"}, []int{1, 8}},
		{`auth_pass ab\x41cd it's`, []string{"auth_pass", `ab\x41cd`, "it's"}, []int{1, 11, 20}},
		{`"{" '}'`, []string{"{", "'", "}", "'"}, []int{1, 5, 6, 7}},
	}
	for _, tt := range tests {
		sink := &diagSink{}
		toks := tokenize(srcLine{pos: Pos{File: "f", Line: 1, Col: 1}, text: tt.in, exact: len(tt.in)}, sink)
		var got []string
		var cols []int
		for _, tk := range toks {
			got = append(got, tk.Text)
			cols = append(cols, tk.Pos.Col)
		}
		if !reflect.DeepEqual(got, tt.want) || !reflect.DeepEqual(cols, tt.cols) {
			t.Errorf("tokenize(%q) = %q at %v; want %q at %v", tt.in, got, cols, tt.want, tt.cols)
		}
		if len(sink.list) != 0 {
			t.Errorf("tokenize(%q): unexpected diagnostics %v", tt.in, sink.list)
		}
	}
	// Quoted braces are words, not blocks.
	sink := &diagSink{}
	toks := tokenize(srcLine{pos: Pos{File: "f", Line: 1, Col: 1}, text: `"{"`, exact: 3}, sink)
	if !toks[0].Quoted {
		t.Error("quoted brace not marked as quoted")
	}
}

func TestTokenizeUnterminatedQuote(t *testing.T) {
	sink := &diagSink{}
	tokenize(srcLine{pos: Pos{File: "f", Line: 3, Col: 5}, text: `notify "/bin/x`, exact: 14}, sink)
	if len(sink.list) != 1 || sink.list[0].Pos.Col != 12 {
		t.Fatalf("want one error at column 12, got %v", sink.list)
	}
}

func TestDiagnosticsAreBounded(t *testing.T) {
	var src []byte
	for i := 0; i < 2000; i++ {
		src = append(src, "frobnicate\n"...)
	}
	_, ds := Parse("many.conf", src, Options{})
	last := ds[len(ds)-1]
	if len(ds) != maxDiagnostics+1 || last.Severity != SevError || last.Msg != "1500 more problem(s) not shown (1500 error(s), 0 warning(s))" {
		t.Errorf("got %d diagnostics, last %v", len(ds), ds[len(ds)-1])
	}
}

// TestSplitCommand follows keepalived.conf(5)'s examples for script commands.
func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`abcd" efg h jkl "mnop`, []string{"abcd efg h jkl mnop"}},
		{`abcd "efg h jkl" mnop`, []string{"abcd", "efg h jkl", "mnop"}},
		{`x '\x41\101\t\cA\q'`, []string{"x", "AA\t\x01q"}},
		// The manual's notify_master example after its line-level pass.
		{`/etc/keepalived/notify_event.sh ' spaces\x20f\x69le ' '"s p a c e "' SG1.low master`,
			[]string{"/etc/keepalived/notify_event.sh", " spaces file ", `"s p a c e "`, "SG1.low", "master"}},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := splitCommand(`/bin/x 'open`); err == nil {
		t.Error("unterminated quote accepted")
	}
}
