// Command vigil-check-bad is a buggy check plugin: the host must survive whatever it does.
// What it does at start-up depends on the name it runs under (the host gives plugins neither
// arguments nor its environment); what it answers depends on each check's param mode.
//
// By name (the test copies the binary):
//
//	vigil-check-bad       starts normally
//	vigil-check-badnoise  writes binary garbage to stdout before its handshake: NUL bytes,
//	                      bytes that are not UTF-8, terminal escapes, a 1 MiB line, many lines
//	vigil-check-badhs     writes garbage without a newline: it runs into the handshake line
//	vigil-check-badflood  writes to stdout forever and never shakes hands
//	vigil-check-baddesc   describes itself with a name, version and description of 64 KiB of
//	                      lines and terminal escapes, and 10000 params like them
//
// By mode (param mode of a check):
//
//	ok         answers OK
//	status     answers status 99, a status that does not exist (the SDK cannot send one: the
//	           plugin rewrites its answers on their way out, as a plugin in another language
//	           might send them)
//	negstatus  answers status -7
//	weight     answers OK with weight 1000000000
//	negweight  answers OK with weight -1000000000
//	huge       answers OK with a message of 8 MiB, over gRPC's limit (written into the answer
//	           on its way out: the SDK itself cuts a message to 64 KiB)
//	long       answers OK with a message of 64 KiB, with newlines and terminal escapes
//	metrics    answers OK with 100000 metrics, some of them NaN or infinite
//	flood      answers OK, and from then on sends results nobody asked for, without end
//	late       ignores its deadline and answers OK 2 s after it
//	empty      answers the probe with neither a result nor an error (on the Probes stream)
//
// Configure misbehaves by param: reject makes it refuse the check with a message of 1 MiB of
// lines and terminal escapes, warnings makes it accept with 300 warnings of 10 KiB each.
//
// It speaks protocol 2 (the Probes stream): its answers travel as gRPC messages, which it can
// rewrite.
package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
)

// rawStatus marks a message that the answer's status is to be rewritten to the number after
// it; noResponse one whose result is to go without its response.
const (
	rawStatus  = "@status="
	noResponse = "@noresponse"
	rawHuge    = "@huge"
)

type bad struct {
	checks  check.Configured[string]
	flood   *atomic.Bool
	wildDoc bool // baddesc
}

func (b *bad) Describe(context.Context) (check.Info, error) {
	info := check.Info{Name: "bad", Version: "0.1.0", Params: []check.ParamSpec{{Name: "mode", Type: check.TypeString, Required: true}}}
	if b.wildDoc {
		wild := strings.Repeat("doc\n\x1b[2J", 64<<10/8)
		info.Name, info.Version, info.Description = wild, wild, wild
		for i := range 10000 {
			info.Params = append(info.Params, check.ParamSpec{Name: fmt.Sprintf("p%d\x1b[31m", i), Type: check.TypeString, Default: "\x1b[2J", Description: "x\ny"})
		}
	}
	return info, nil
}

func (b *bad) Configure(_ context.Context, req check.ConfigureRequest) (check.ConfigureResponse, error) {
	mode := ""
	var resp check.ConfigureResponse
	for _, p := range req.Params {
		switch p.Key {
		case "mode":
			mode = p.Value()
		case "reject":
			return resp, fmt.Errorf("%s", strings.Repeat("no\n\x1b[2J", 1<<20/7))
		case "warnings":
			for range 300 {
				resp.Warnings = append(resp.Warnings, strings.Repeat("w\n\x1b[2J", 10<<10/7))
			}
		}
	}
	b.checks.Keep(req, mode)
	return resp, nil
}

func (b *bad) Check(ctx context.Context, req check.CheckRequest) (check.CheckResponse, error) {
	mode, err := b.checks.Lookup(req.Name)
	if err != nil {
		return check.CheckResponse{}, err
	}
	weight := func(w int) *int { return &w }
	switch mode {
	case "ok":
		return check.CheckResponse{Status: check.OK, Message: req.Name}, nil
	case "status":
		return check.CheckResponse{Status: check.OK, Message: rawStatus + "99"}, nil
	case "negstatus":
		return check.CheckResponse{Status: check.OK, Message: rawStatus + "-7"}, nil
	case "weight":
		return check.CheckResponse{Status: check.OK, Message: "heavy", Weight: weight(1_000_000_000)}, nil
	case "negweight":
		return check.CheckResponse{Status: check.OK, Message: "heavy", Weight: weight(-1_000_000_000)}, nil
	case "huge":
		return check.CheckResponse{Status: check.OK, Message: rawHuge}, nil
	case "long":
		return check.CheckResponse{Status: check.OK, Message: strings.Repeat("line\n\x1b[2J\x1b[31mred\t", 64<<10/17)}, nil
	case "metrics":
		m := make(map[string]float64, 100000)
		for i := range 100000 {
			m["m"+strconv.Itoa(i)] = float64(i)
		}
		m["nan"], m["inf"], m["-inf"] = math.NaN(), math.Inf(1), math.Inf(-1)
		return check.CheckResponse{Status: check.OK, Message: "many", Metrics: m}, nil
	case "flood":
		b.flood.Store(true)
		return check.CheckResponse{Status: check.OK, Message: req.Name}, nil
	case "empty":
		return check.CheckResponse{Status: check.OK, Message: noResponse}, nil
	case "late":
		// Past the probe's deadline and past the 5 s more that the host waits for a
		// plugin that runs late (checksched.PluginLate): a plugin that ignores its deadline.
		dl, _ := ctx.Deadline()
		time.Sleep(time.Until(dl) + 7*time.Second)
		return check.CheckResponse{Status: check.OK, Message: "late"}, nil
	}
	return check.CheckResponse{}, fmt.Errorf("mode %q unknown", mode)
}

// rewrite sets the status of every check answer in m that asks for it (rawStatus) to the
// number it names, writes 8 MiB into the message of those that ask for it (rawHuge), and drops the answers that ask for it (noResponse) from their results:
// the SDK itself only sends statuses that exist, and a response with every result.
func rewrite(m protoreflect.Message) {
	if m.Descriptor().FullName() == "vigil.plugin.v1.ProbeResult" {
		fd := m.Descriptor().Fields().ByName("response")
		if m.Has(fd) && m.Get(fd).Message().Get(fd.Message().Fields().ByName("message")).String() == noResponse {
			m.Clear(fd)
			return
		}
	}
	if m.Descriptor().FullName() == "vigil.plugin.v1.CheckResponse" {
		fs := m.Descriptor().Fields()
		msg := m.Get(fs.ByName("message")).String()
		if msg == rawHuge {
			m.Set(fs.ByName("message"), protoreflect.ValueOfString(strings.Repeat("h", 8<<20)))
		}
		if n, ok := strings.CutPrefix(msg, rawStatus); ok {
			v, _ := strconv.Atoi(n)
			m.Set(fs.ByName("status"), protoreflect.ValueOfEnum(protoreflect.EnumNumber(v)))
			m.Set(fs.ByName("message"), protoreflect.ValueOfString("rewritten"))
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil || fd.IsMap():
		case fd.IsList():
			for i := range v.List().Len() {
				rewrite(v.List().Get(i).Message())
			}
		default:
			rewrite(v.Message())
		}
		return true
	})
}

func unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if m, ok := resp.(proto.Message); ok && err == nil {
		rewrite(m.ProtoReflect())
	}
	return resp, err
}

// stream rewrites what the plugin sends on a stream, and floods it once a check asked for it.
type stream struct {
	grpc.ServerStream
	flood *atomic.Bool
	mu    sync.Mutex
	once  sync.Once
}

func (s *stream) SendMsg(m any) error {
	if pm, ok := m.(proto.Message); ok {
		rewrite(pm.ProtoReflect())
	}
	s.mu.Lock()
	err := s.ServerStream.SendMsg(m)
	s.mu.Unlock()
	if err == nil && s.flood.Load() {
		s.once.Do(func() { go s.floodForever(m.(proto.Message)) })
	}
	return err
}

// floodForever sends copies of a result batch that was already answered, under ids nobody
// waits for and under the ids it held, until the stream ends.
func (s *stream) floodForever(answered proto.Message) {
	batch := proto.Clone(answered)
	results := batch.ProtoReflect().Descriptor().Fields().ByName("results")
	list := batch.ProtoReflect().Get(results).List()
	ids := make([]uint64, list.Len())
	for j := range ids {
		r := list.Get(j).Message()
		ids[j] = r.Get(r.Descriptor().Fields().ByName("id")).Uint()
	}
	for i := uint64(0); s.Context().Err() == nil; i++ {
		for j := range list.Len() {
			r := list.Get(j).Message()
			id := ids[j]
			if i%2 == 0 {
				id = 1<<62 + i
			}
			r.Set(r.Descriptor().Fields().ByName("id"), protoreflect.ValueOfUint64(id))
		}
		s.mu.Lock()
		err := s.ServerStream.SendMsg(batch)
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func main() {
	switch name := filepath.Base(os.Args[0]); name {
	case "vigil-check-badnoise":
		os.Stdout.WriteString("\x00\x01\xff\xfe not UTF-8 \x1b[2J\x1b]0;title\x07\n")
		os.Stdout.WriteString(strings.Repeat("\x00", 1<<20) + "\n")
		for range 10000 {
			os.Stdout.WriteString("1|2|unix|/nowhere\n")
		}
	case "vigil-check-badhs":
		os.Stdout.WriteString("garbage without a newline")
	case "vigil-check-badflood":
		line := []byte(strings.Repeat("flood ", 1000) + "\n")
		for {
			if _, err := os.Stdout.Write(line); err != nil {
				os.Exit(1)
			}
		}
	}
	flood := &atomic.Bool{}
	impl := &bad{flood: flood, wildDoc: filepath.Base(os.Args[0]) == "vigil-check-baddesc"}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdk.Handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{2: {"check": &check.Plugin{Impl: impl}}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts,
				grpc.ChainUnaryInterceptor(unary),
				grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
					return handler(srv, &stream{ServerStream: ss, flood: flood})
				}))...)
		},
	})
}
