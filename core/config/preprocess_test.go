package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lines runs src through the preprocessor and returns the logical lines it emits.
func lines(t *testing.T, src string, opts Options) ([]string, Diagnostics) {
	t.Helper()
	sink := &diagSink{}
	p := newPreprocessor(opts, sink)
	p.readData("test.conf", []byte(src), Pos{})
	var out []string
	for _, l := range p.out {
		out = append(out, l.text)
	}
	return out, sink.list
}

func TestPreprocess(t *testing.T) {
	tests := []struct {
		name string
		src  string
		id   string
		want string
	}{
		{"conditional", "@main router_id a\n@backup router_id b\n@^main x\n", "main", "router_id a"},
		{"negated conditional", "@main a\n@^main b\n", "other", "b"},
		{"conditional without text is dropped", "@main\n", "main", ""},
		{"definition", "$P=240\npriority $P\n", "", "priority 240"},
		{"braces", "$B=10.2\n${B}.0.1\n", "", "10.2.0.1"},
		{"late binding", "$A=10.${S}\n$S=0\n${A}.1\n$S=9\n${A}.1\n", "", "10.0.1|10.9.1"},
		{"undefined stays", "script \"echo $HOME\"\n", "", "script \"echo $HOME\""},
		{"needs delimiter", "$AB=x\nz $ABC\n", "", "z $ABC"},
		{"conditional from parameter", "$IF=@main\n$IF priority 240\n", "main", "priority 240"},
		{"multiline", "$I= \\\nvrrp_instance V_${N} { \\\n  priority 1 \\\n}\n$N=7\n$I\n", "", "vrrp_instance V_7 {|priority 1|}"},
		{"empty value", "$E=\nx $E y\n", "", "x  y"},
		{"predefined", "a ${_INSTANCE} ${_HASH} ${_BANG}\n", "n1", "a n1 # !"},
		{"seq", "~SEQ(N, 1, 3) ip 10.0.${N}.1\n", "", "ip 10.0.1.1|ip 10.0.2.1|ip 10.0.3.1"},
		{"seq one arg", "~SEQ(N, 2) x$N\n", "", "x1|x2"},
		{"bare name needs a delimiter", "~SEQ(N, 2) x$Ny\n", "", "x$Ny|x$Ny"},
		{"seq one arg braces", "~SEQ(N, 2) x${N}\n", "", "x1|x2"},
		{"seq down", "~SEQ(N, 3, -2, 0) n${N}\n", "", "n3|n1"},
		{"seqx", "~SEQx(H, 0x90, 0x10, 0xb0) fe80::${H}\n", "", "fe80::90|fe80::a0|fe80::b0"},
		{"seq nested", "~SEQ(A, 1, 2) ~SEQ(B, 1, 2) ${A}.${B}\n", "", "1.1|1.2|2.1|2.2"},
		{"lst", "~LST(IP, 1, 2) 192.0.2.${IP}\n", "", "192.0.2.1|192.0.2.2"},
		{"lst groups", "~LST({A, B}, {10,1},{20}) ${A}-${B}\n", "", "10-1|20-"},
		{"lst and seq", "~LST(A, x, y) ~SEQ(N, 1, 2) ${A}${N}\n", "", "x1|x2|y1|y2"},
		{"comment after substitution stays text", "$H=${_HASH}\nv ${H}\n", "", "v #"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ds := lines(t, tt.src, Options{ConfigID: tt.id})
			if ds.HasErrors() {
				t.Fatalf("errors: %v", ds)
			}
			if s := strings.Join(got, "|"); s != tt.want {
				t.Errorf("got %q, want %q", s, tt.want)
			}
		})
	}
}

func TestPreprocessEnvAndRandom(t *testing.T) {
	env := func(k string) (string, bool) { return map[string]string{"SITE": "fra"}[k], k == "SITE" }
	got, ds := lines(t, "a ${_ENV SITE}\nb ${_RANDOM 5 5}\n", Options{LookupEnv: env})
	if ds.HasErrors() || strings.Join(got, "|") != "a fra|b 5" {
		t.Fatalf("got %q %v", got, ds)
	}
	_, ds = lines(t, "b ${_RANDOM 9 1}\n", Options{})
	if !ds.HasErrors() {
		t.Fatal("inverted ${_RANDOM} range accepted")
	}
}

func TestPreprocessPositions(t *testing.T) {
	sink := &diagSink{}
	p := newPreprocessor(Options{ConfigID: "n1"}, sink)
	p.readData("f.conf", []byte("$P=2\n  @n1   priority $P extra\n"), Pos{})
	if len(p.out) != 1 {
		t.Fatalf("out = %v", p.out)
	}
	toks := tokenize(p.out[0], sink)
	// "priority" keeps its exact column; words after the substitution point at the "$".
	if toks[0].Pos.Col != 9 || toks[1].Pos.Col != 18 || toks[2].Pos.Col != 18 {
		t.Errorf("columns %d %d %d, want 9 18 18", toks[0].Pos.Col, toks[1].Pos.Col, toks[2].Pos.Col)
	}
}

func TestPreprocessLimits(t *testing.T) {
	// A definition that doubles itself must stop with an error, not exhaust memory.
	src := "$A=x\n"
	for i := 0; i < 30; i++ {
		src += "$A=${A} ${A}\n"
	}
	src += "v $A\n"
	_, ds := lines(t, src, Options{})
	if !ds.HasErrors() {
		t.Error("exponential expansion accepted")
	}
	_, ds = lines(t, "~SEQ(N, 1, 100000) ~SEQ(M, 1, 100000) x\n", Options{MaxLines: 1000})
	if !ds.HasErrors() || !strings.Contains(ds.Error(), "more than 1000 lines") {
		t.Errorf("line limit not enforced: %v", ds)
	}
	_, ds = lines(t, strings.Repeat("x", 2000), Options{MaxInputBytes: 1000})
	if !strings.Contains(ds.Error(), "larger than 1000 bytes") {
		t.Errorf("size limit not enforced: %v", ds)
	}
	_, ds = lines(t, "a\x00b\n", Options{})
	if !strings.Contains(ds.Error(), "NUL byte") {
		t.Errorf("NUL byte accepted: %v", ds)
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestInclude(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.conf":         "include conf.d/*.conf\ninclude {a,b}.inc\nlast ${_PWD}\n",
		"conf.d/1.conf":     "one\ninclude ../nested/x.conf\n",
		"conf.d/2.conf":     "two ${_PWD}\n",
		"nested/x.conf":     "nested\n",
		"a.inc":             "a\n",
		"b.inc":             "b\n",
		"conf.d/skip.other": "never\n",
	})
	sink := &diagSink{}
	p := newPreprocessor(Options{}, sink)
	p.readFile(filepath.Join(dir, "main.conf"), Pos{})
	var got []string
	for _, l := range p.out {
		got = append(got, strings.ReplaceAll(l.text, dir, "D"))
	}
	want := "one|nested|two D/conf.d|a|b|last D"
	if strings.Join(got, "|") != want || len(sink.list) != 0 {
		t.Errorf("got %q %v, want %q", strings.Join(got, "|"), sink.list, want)
	}
	if len(p.files) != 6 {
		t.Errorf("files read = %v", p.files)
	}
}

func TestIncludeProblems(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"loop.conf":   "include loop.conf\n",
		"plain.conf":  "include nothing/*.conf\n",
		"braces.conf": "includeb {a,missing}.inc\n",
		"a.inc":       "a\n",
	})
	tests := []struct {
		file   string
		strict bool
		want   string
		sev    Severity
	}{
		{"loop.conf", false, "include cycle", SevError},
		{"plain.conf", false, "matches no file", SevWarning},
		{"plain.conf", true, "matches no file", SevError},
		{"braces.conf", false, `"` + dir + `/missing.inc" matches no file`, SevError},
	}
	for _, tt := range tests {
		_, ds := Load(filepath.Join(dir, tt.file), Options{StrictIncludes: tt.strict})
		found := false
		for _, d := range ds {
			if strings.Contains(d.Msg, tt.want) && d.Severity == tt.sev {
				found = true
			}
		}
		if !found {
			t.Errorf("%s (strict=%v): want %s %q, got %v", tt.file, tt.strict, tt.sev, tt.want, ds)
		}
	}
	_, ds := Load(filepath.Join(dir, "nope.conf"), Options{})
	if len(ds) != 1 || !strings.Contains(ds[0].String(), "cannot read configuration") {
		t.Errorf("missing main file: %v", ds)
	}
}

func TestExpandBraces(t *testing.T) {
	got, err := expandBraces("{foo/{,cat,dog},bar}")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "foo/ foo/cat foo/dog bar" {
		t.Errorf("got %q", got)
	}
	if got, _ := expandBraces("a{b}c"); strings.Join(got, " ") != "a{b}c" {
		t.Errorf("single-item group expanded: %q", got)
	}
	if _, err := expandBraces(strings.Repeat("{a,b}", 12)); err == nil {
		t.Error("brace explosion accepted")
	}
}

func TestGeneratorWorkIsBounded(t *testing.T) {
	_, ds := lines(t, "~SEQ(A, 1, 1000000) ~SEQ(B, 1, 1000000) $X=1\n", Options{MaxLines: 1000})
	if !strings.Contains(ds.Error(), "expansion steps") {
		t.Errorf("unbounded generator work: %v", ds)
	}
}

// TestDefaultLimits uses the limits a daemon runs with: a 40-byte file must not be able to
// expand without bound.
func TestDefaultLimits(t *testing.T) {
	_, ds := Parse("bomb.conf", []byte("~SEQ(i,1,1000000) ~SEQ(j,1,1000000) x\n"), Options{})
	if !ds.HasErrors() || !strings.Contains(ds.Error(), "more than") {
		t.Fatalf("expansion bomb accepted: %v", ds)
	}
}
