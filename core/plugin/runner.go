package plugin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// procRunner starts a plugin process for go-plugin, as go-plugin's own command runner does,
// with two differences:
//
//   - The plugin's stdout reaches go-plugin through a filter that drops, and logs, every line
//     before the handshake line that is not one: go-plugin takes the first line it reads for
//     the handshake, so a plugin (or a library it links) that prints anything in an init
//     function would otherwise fail to start.
//   - A pinned checksum is verified just before the exec, where go-plugin's SecureConfig
//     would verify it (SecureConfig cannot be combined with a custom runner).
type procRunner struct {
	log  hclog.Logger
	cmd  *exec.Cmd
	path string
	sum  string // pinned lower-case hex SHA-256, "" when unpinned
	out  *io.PipeReader
	outW *io.PipeWriter
	raw  io.ReadCloser // the plugin's real stdout
	err  io.ReadCloser
	pid  int
	// started is pid for other goroutines (the start's stall watch), set once it runs.
	started atomic.Int64
	// exited is closed when Wait has reaped the plugin; the thread that started it waits
	// for that (Start).
	exited   chan struct{}
	exitOnce sync.Once
	// ranInto is the plugin's handshake line with output in front of it (see
	// filterHandshake), for Diagnose; set before go-plugin sees the stdout end.
	ranInto atomic.Pointer[string]
}

var _ runner.Runner = (*procRunner)(nil)

// newProcRunner builds the command for the plugin at path; spec is go-plugin's description
// of it (the environment with the handshake variables).
func newProcRunner(log hclog.Logger, path, sum string, spec *exec.Cmd) (*procRunner, error) {
	cmd := exec.Command(path)
	// Its own process group, so that killing it kills what it started; SIGKILL if vigil
	// dies, so that no plugin outlives the process that supervises it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Plugins get a clean environment (vigil's may hold secrets meant for nobody else) plus
	// go-plugin's handshake variables; no stdin.
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, spec.Env...)
	raw, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	r := &procRunner{log: log, cmd: cmd, path: path, sum: sum, raw: raw, err: stderr, exited: make(chan struct{})}
	r.out, r.outW = io.Pipe()
	return r, nil
}

func (r *procRunner) Start(context.Context) error {
	if r.sum != "" {
		got, err := sha256File(r.path)
		if err != nil {
			return err
		}
		if got != r.sum {
			return fmt.Errorf("%w: %s changed while being started: SHA-256 %s, pinned %s", ErrChecksum, r.path, got, r.sum)
		}
	}
	// The parent-death signal fires when the thread that started the plugin ends, not only
	// when vigil does, and the runtime ends threads (one that a goroutine left locked, in
	// another namespace, say). Start it from a thread kept for the plugin's lifetime.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := r.cmd.Start()
		started <- err
		if err == nil {
			<-r.exited
		}
	}()
	if err := <-started; err != nil {
		return err
	}
	r.pid = r.cmd.Process.Pid
	r.started.Store(int64(r.pid))
	go filterHandshake(r.log, r.raw, r.outW, func(line string) { r.ranInto.Store(&line) })
	return nil
}

// handshakeLine is go-plugin's handshake: core protocol | app protocol | network | address |
// protocol [| server certificate, base64].
var handshakeLine = regexp.MustCompile(`^\d+\|\d+\|(tcp|unix)\|[^|]+\|(grpc|netrpc)(\|[A-Za-z0-9+/=]*)?$`)

// handshakeAtEnd finds a handshake at the end of a line that holds more: output printed
// without a newline, then the handshake. (Behind more than maxLine bytes of such output the
// handshake is cut off with the rest of the line, and the start fails by its timeout.)
var handshakeAtEnd = regexp.MustCompile(`\d+\|\d+\|(tcp|unix)\|[^|]+\|(grpc|netrpc)(\|[A-Za-z0-9+/=]*)?$`)

// maxNoiseLogged bounds the lines of stdout noise logged per start.
const maxNoiseLogged = 10

// maxLine bounds what is kept of one line: a handshake is well under 2 KiB.
const maxLine = 64 << 10

// filterHandshake copies the plugin's stdout to w from the handshake line on, and logs and
// drops what comes before it. It closes w at the end of the output, so that go-plugin sees
// the plugin's stdout end. A line that ends in a handshake after other output (printed
// without a newline) ends the start at once: ranInto gets the line first, so that the
// start fails with the cause (Diagnose) instead of a timeout 10 s later.
func filterHandshake(log hclog.Logger, raw io.Reader, w *io.PipeWriter, ranInto func(line string)) {
	br := bufio.NewReaderSize(raw, 4096)
	dropped := 0
	for {
		line, err := readLine(br)
		if t := bytes.TrimSpace(line); handshakeLine.Match(t) {
			if dropped > 0 {
				log.Warn("plugin wrote to stdout before its handshake; lines ignored", "count", dropped)
			}
			if _, werr := w.Write(append(t, '\n')); werr != nil {
				w.CloseWithError(werr)
				return
			}
			// The rest goes through untouched (go-plugin reads and discards it).
			_, err := io.Copy(w, br)
			w.CloseWithError(err)
			return
		}
		if t := bytes.TrimSpace(line); handshakeAtEnd.Match(t) {
			// The evidence is where they meet: the end of what ran into the handshake, and
			// the handshake's start (its certificate goes on for hundreds of bytes).
			at := handshakeAtEnd.FindIndex(t)[0]
			ranInto(tail(string(t[:at]), 120) + truncate(string(t[at:]), 60))
			w.Close()
			io.Copy(io.Discard, br) // the plugin must not block on a full pipe until it is killed
			return
		}
		if len(line) > 0 {
			dropped++
			if dropped <= maxNoiseLogged {
				log.Warn("plugin wrote to stdout before its handshake; line ignored (log to stderr instead)", "line", truncate(string(bytes.TrimSpace(line)), 200))
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			w.CloseWithError(err)
			return
		}
	}
}

// readLine returns the next line without its newline, at most maxLine bytes of it.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line) < maxLine {
			line = append(line, chunk[:min(len(chunk), maxLine-len(line))]...)
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(line, []byte("\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return line, err
		}
	}
}

// tail is the last n bytes of s (at a character boundary), marked as cut.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return "…" + s[i:]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (r *procRunner) Wait(context.Context) error {
	err := r.cmd.Wait()
	r.exitOnce.Do(func() { close(r.exited) })
	return err
}

func (r *procRunner) Kill(context.Context) error {
	if r.cmd.Process == nil {
		return nil
	}
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func (r *procRunner) Stdout() io.ReadCloser { return r.out }
func (r *procRunner) Stderr() io.ReadCloser { return r.err }
func (r *procRunner) Name() string          { return r.path }
func (r *procRunner) ID() string            { return strconv.Itoa(r.pid) }

func (r *procRunner) Diagnose(context.Context) string {
	if line := r.ranInto.Load(); line != nil {
		return fmt.Sprintf("its handshake came on one line after other output printed without a newline: %q; the plugin must end what it prints to stdout with a newline, or log to stderr (see sdk/README.md)", *line)
	}
	return "the plugin must print go-plugin's handshake line on stdout (see sdk/README.md); was it built for this machine, and does it run by hand?"
}

// The plugin runs on this machine: addresses need no translation.
func (r *procRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *procRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}
