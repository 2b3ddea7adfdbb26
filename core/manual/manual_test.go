package manual

import (
	"flag"
	"reflect"
	"strings"
	"testing"
)

func TestFlagsJoinsAliases(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var file string
	var test bool
	fs.StringVar(&file, "f", "", "configuration file")
	fs.StringVar(&file, "use-file", "", "same as -f")
	fs.BoolVar(&test, "t", false, "check")
	fs.BoolVar(&test, "config-test", false, "check")
	fs.String("role", "", Hidden+" not for operators")
	fs.Duration("watch", 0, "debounce")
	got := Flags(fs, map[string]string{"use-file": "FILE"}, "f")
	want := []Flag{
		{Names: []string{"f", "use-file"}, Arg: "FILE", Usage: "configuration file"},
		{Names: []string{"t", "config-test"}, Usage: "check"},
		{Names: []string{"watch"}, Arg: "DURATION", Usage: "debounce"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Flags:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseDefaults(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var port int
	fs.IntVar(&port, "p", 0, "the port")
	fs.IntVar(&port, "port", 0, "same as -p")
	fs.Bool("S", false, "use TLS")
	fs.String("hash", "md5", "the digest\nover two lines")
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	got := ParseDefaults(b.String(), map[string]string{"p": "PORT"})
	want := []Flag{
		{Names: []string{"hash"}, Arg: "VALUE", Usage: `the digest over two lines (default "md5")`},
		{Names: []string{"p", "port"}, Arg: "PORT", Usage: "the port"},
		{Names: []string{"S"}, Usage: "use TLS"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseDefaults of\n%s\n got %+v\nwant %+v", b.String(), got, want)
	}
}

func TestRoffEscapes(t *testing.T) {
	p := &Page{Name: "x", Section: "8", Summary: "a – b", Sections: []Section{{Title: "Options", Blocks: []Block{
		Para(".starts with a dot, has a \\ and `--flag`"),
		List{{Term: "-f, --use-file FILE", Text: "'quoted"}},
		Example(".line\n  -x µ"),
	}}}}
	var b strings.Builder
	if err := Roff(&b, p, ""); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`x \- a \[u2013] b`,
		`\&.starts with a dot, has a \e and \fB\-\-flag\fR`,
		`\fB\-f,\fR \fB\-\-use\-file\fR \fIFILE\fR`,
		"\n\\&'quoted\n",
		"\n\\&.line\n  \\-x \\[u00B5]\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("roff lacks %q:\n%s", want, b.String())
		}
	}
}
