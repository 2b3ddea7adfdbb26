// Package lane is the probe lane of the check protocol (Check.ProbeLane in
// ../../proto/vigil_plugin.proto): the Probes stream's messages as length-prefixed protobuf
// frames under TLS on unix connections of their own (one per direction, duplex.go), beside the
// plugin's gRPC connection.
//
// Why connections beside gRPC: on a gRPC stream, one probe one-at-a-time costs about 130 µs of
// CPU in the two processes, two and a half to three times what a bare round trip between two
// Go processes costs here; the rest is HTTP/2 framing and gRPC's reader and writer goroutines
// handing each message on (see BENCHMARKS.md, "Plugin probe vs forked script"). The lane
// keeps what gRPC gave the stream that matters for a probe: the host learns the lane over
// the mutually authenticated gRPC connection, the plugin is authenticated by the certificate
// it sent there, and the host by a token it got there.
package lane

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
)

// MaxFrame bounds a frame, so that a corrupt length cannot make the reader allocate without
// limit. A batch of a thousand probe results is well under a megabyte.
const MaxFrame = 16 << 20

// MaxAnswer bounds a frame the host takes from its plugin: what gRPC takes in one message
// unless told otherwise, and what the host takes on the Probes stream (sdk.GRPCDialOptions).
// A plugin that sends more is buggy; its answer would be cut to a short message anyway.
const MaxAnswer = 4 << 20

// tokenLen is the length of the secret the host proves itself with.
const tokenLen = 32

// serverName is the name in the lane's certificate, as in go-plugin's AutoMTLS.
const serverName = "localhost"

// acceptTimeout bounds how long an offered lane waits for the host to connect.
const acceptTimeout = 10 * time.Second

// Offer is what the plugin tells the host about a lane it listens on.
type Offer struct {
	Network, Address string
	Certificate      []byte // DER
	Token            []byte
}

// Listener is a lane the plugin offered and waits on: it accepts one connection.
type Listener struct {
	l     net.Listener
	dir   string
	cfg   *tls.Config
	token []byte
}

// Listen makes a new lane: a unix socket in a new directory of mode 0700 under dir (the
// system's temporary directory when empty), a fresh certificate and token.
func Listen(dir string) (*Listener, Offer, error) {
	d, err := os.MkdirTemp(dir, "vigil-lane-")
	if err != nil {
		return nil, Offer{}, fmt.Errorf("probe lane: %w", err)
	}
	cert, err := selfSigned()
	if err != nil {
		os.RemoveAll(d)
		return nil, Offer{}, fmt.Errorf("probe lane: certificate: %w", err)
	}
	token := make([]byte, tokenLen)
	rand.Read(token)
	path := filepath.Join(d, "lane.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		os.RemoveAll(d)
		return nil, Offer{}, fmt.Errorf("probe lane: %w", err)
	}
	ln := &Listener{
		l: l, dir: d, token: token,
		cfg: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13},
	}
	return ln, Offer{Network: "unix", Address: path, Certificate: cert.Certificate[0], Token: token}, nil
}

// Accept waits for the host's two connections (at most acceptTimeout in all), removes the
// socket, and returns the lane once the host has shown the token.
func (ln *Listener) Accept(ctx context.Context) (*Conn, error) {
	defer ln.Close()
	ctx, cancel := context.WithTimeout(ctx, acceptTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.l.Close() })
	defer stop()
	d, err := join(func() (net.Conn, error) {
		c, err := ln.l.Accept()
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("nobody connected: %w", ctx.Err())
		}
		return c, err
	}, false)
	if err != nil {
		return nil, fmt.Errorf("probe lane: %w", err)
	}
	d.SetDeadline(time.Now().Add(acceptTimeout))
	conn := newConn(tls.Server(d, ln.cfg))
	tok, err := conn.recvFrame()
	if err == nil && subtle.ConstantTimeCompare(tok, ln.token) != 1 {
		err = errors.New("the peer did not show the lane's token")
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("probe lane: %w", err)
	}
	d.SetDeadline(time.Time{})
	return conn, nil
}

// Close stops listening and removes the socket and its directory.
func (ln *Listener) Close() error {
	err := ln.l.Close()
	os.RemoveAll(ln.dir)
	return err
}

// Dial connects to an offered lane (two connections, duplex.go) and shows its token.
func Dial(ctx context.Context, o Offer) (*Conn, error) {
	if o.Network != "unix" {
		return nil, fmt.Errorf("probe lane: network %q, want unix", o.Network)
	}
	cert, err := x509.ParseCertificate(o.Certificate)
	if err != nil {
		return nil, fmt.Errorf("probe lane: the plugin's certificate: %w", err)
	}
	if len(o.Token) < tokenLen {
		return nil, fmt.Errorf("probe lane: token of %d bytes, want at least %d", len(o.Token), tokenLen)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	var dialer net.Dialer
	d, err := join(func() (net.Conn, error) { return dialer.DialContext(ctx, o.Network, o.Address) }, true)
	if err != nil {
		return nil, fmt.Errorf("probe lane: %w", err)
	}
	c := tls.Client(d, &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS13})
	if err := c.HandshakeContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("probe lane: %w", err)
	}
	conn := newConn(c)
	conn.max = MaxAnswer
	if err := conn.sendFrame(o.Token); err != nil {
		c.Close()
		return nil, fmt.Errorf("probe lane: %w", err)
	}
	return conn, nil
}

// Conn is one end of a lane. Send may be called from one goroutine at a time and Recv
// from another.
type Conn struct {
	c   net.Conn
	r   *bufio.Reader
	max uint32 // the largest frame Recv takes: MaxFrame, or MaxAnswer at the host's end
	in  []byte
	wmu sync.Mutex
	out []byte
}

func newConn(c net.Conn) *Conn { return &Conn{c: c, r: bufio.NewReaderSize(c, 32<<10), max: MaxFrame} }

// Send writes m as one frame.
func (c *Conn) Send(m proto.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := proto.MarshalOptions{}.MarshalAppend(append(c.out[:0], 0, 0, 0, 0), m)
	if err != nil {
		return err
	}
	c.out = b
	return c.write(b)
}

func (c *Conn) sendFrame(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.out = append(append(c.out[:0], 0, 0, 0, 0), p...)
	return c.write(c.out)
}

// write fills in the length of the frame in b and writes it in one call, so that TLS makes
// one record of it.
func (c *Conn) write(b []byte) error {
	n := len(b) - 4
	if n > MaxFrame {
		return fmt.Errorf("probe lane: message of %d bytes, over the %d limit", n, MaxFrame)
	}
	binary.BigEndian.PutUint32(b, uint32(n))
	_, err := c.c.Write(b)
	return err
}

// Recv reads one frame into m. io.EOF: the peer closed the lane between frames.
func (c *Conn) Recv(m proto.Message) error {
	b, err := c.recvFrame()
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("probe lane: bad message: %w", err)
	}
	return nil
}

func (c *Conn) recvFrame() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > c.max {
		return nil, fmt.Errorf("probe lane: frame of %d bytes, over the %d limit", n, c.max)
	}
	if cap(c.in) < int(n) {
		c.in = make([]byte, n)
	}
	b := c.in[:n]
	if _, err := io.ReadFull(c.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// Close ends the lane; the peer's Recv returns an error.
func (c *Conn) Close() error { return c.c.Close() }

// selfSigned makes the lane's certificate. A lane lives as long as its plugin process;
// the validity is generous so that a plugin running for years keeps its lane after a
// reconnect (each reconnect gets a new certificate anyway).
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		DNSNames:     []string{serverName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
