package config

import (
	"os"
	"strings"
)

// Options control how a configuration is read.
type Options struct {
	// ConfigID selects @id conditional lines (keepalived's -i); the default is the short host name.
	ConfigID string
	// StrictIncludes makes a plain "include" that matches no file an error instead of a warning.
	StrictIncludes bool
	// DisableIncludes refuses include lines (fuzzing reads no files).
	DisableIncludes bool
	// LookupEnv serves ${_ENV NAME}; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// InterfaceExists, when set, lets validation warn about interfaces missing on this host.
	InterfaceExists func(name string) bool
	// RouteTable resolves a routing table name ("table NAME" in routes) other than the
	// kernel's own (main, local, default); nil means /etc/iproute2/rt_tables.
	RouteTable func(name string) (int, bool)
	// RandomSeed makes ${_RANDOM} repeatable; 0 seeds from the clock.
	RandomSeed uint64

	// Places, for a text written by Config.TextWithPlaces, is the place each of its lines
	// came from: positions found in the text are reported there (at the start of the
	// statement: the text's own columns mean nothing in the operator's file).
	Places []Pos

	MaxInputBytes   int64
	MaxIncludeDepth int
	MaxLines        int
}

func (o Options) lookupEnv(k string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv(k)
	}
	return os.LookupEnv(k)
}

func (o Options) maxInputBytes() int64 {
	if o.MaxInputBytes > 0 {
		return o.MaxInputBytes
	}
	return defaultMaxInputBytes
}

func (o Options) maxIncludeDepth() int {
	if o.MaxIncludeDepth > 0 {
		return o.MaxIncludeDepth
	}
	return defaultMaxIncludeDepth
}

func (o Options) maxLines() int {
	if o.MaxLines > 0 {
		return o.MaxLines
	}
	return defaultMaxLines
}

// DefaultConfigID is keepalived's default config id: the host name up to the first dot.
func DefaultConfigID() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	id, _, _ := strings.Cut(h, ".")
	return id
}

// Load reads the configuration file at path with everything it includes, and returns the model
// together with every problem found. The model is nil only when the file could not be read;
// callers decide with Diagnostics.HasErrors whether it may run.
func Load(path string, opts Options) (*Config, Diagnostics) {
	sink := &diagSink{}
	pp := newPreprocessor(opts, sink)
	pp.readFile(path, Pos{})
	if len(pp.files) == 0 {
		return nil, sink.list
	}
	return finish(pp, sink)
}

// Parse reads a configuration held in memory; name is used in messages and as the base
// directory of relative includes.
func Parse(name string, src []byte, opts Options) (*Config, Diagnostics) {
	sink := &diagSink{}
	pp := newPreprocessor(opts, sink)
	pp.readData(name, src, Pos{})
	return finish(pp, sink)
}

func finish(pp *preprocessor, sink *diagSink) (*Config, Diagnostics) {
	tree := buildTree(pp.out, sink)
	pp.out = nil
	cfg := &Config{Files: pp.files, Includes: pp.includes, Tree: tree}
	b := &builder{sink: sink, opts: pp.opts, cfg: cfg}
	b.top(tree)
	b.validate()
	sink.list.Sort()
	sink.summarize(Pos{File: b.mainFile()})
	return cfg, sink.list
}

// Text prints the resolved configuration in canonical keepalived syntax.
func (c *Config) Text() string {
	var sb strings.Builder
	writeTree(&sb, c.Tree, 0, nil)
	return sb.String()
}

// TextWithPlaces is Text together with the place in the operator's files that each line of
// the text came from (places[i] for line i+1). Given back to Parse as Options.Places, it
// makes what is parsed from the text name those places: core hands its children the text,
// and their messages must name the operator's file, not the text.
func (c *Config) TextWithPlaces() (text string, places []Pos) {
	var sb strings.Builder
	writeTree(&sb, c.Tree, 0, &places)
	return sb.String(), places
}
