package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/plugins/vigil-check-http/httpget"
)

// genhashFailed is genhash's exit status when the page could not be fetched.
const genhashFailed = 1

// genhashCmd is `vigil genhash`, keepalived's genhash (`keepalived --genhash`): it GETs one
// page as HTTP_GET or SSL_GET would and prints the MD5 digest that a url block's digest must
// hold. It shares the request and the digest with the http check plugin, so the two agree.
func genhashCmd(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("vigil genhash", stderr)
	var (
		server, urlPath, vhost, hashName, proto string
		port, timeout                           int
		useTLS, sni, verbose, release           bool
		fwmark                                  string
	)
	str := func(p *string, short, long, def, usage string) {
		fs.StringVar(p, short, def, usage)
		fs.StringVar(p, long, def, "same as -"+short)
	}
	boolean := func(p *bool, short, long, usage string) {
		fs.BoolVar(p, short, false, usage)
		fs.BoolVar(p, long, false, "same as -"+short)
	}
	str(&server, "s", "server", "", "the server's address (required)")
	fs.IntVar(&port, "p", 0, "the server's port (required)")
	fs.IntVar(&port, "port", 0, "same as -p")
	str(&urlPath, "u", "url", "", "the path to GET, e.g. /index.html (required)")
	boolean(&useTLS, "S", "use-ssl", "use TLS (SSL_GET); the certificate is not verified, as by keepalived")
	boolean(&sni, "I", "use-sni", "send the virtualhost (-V) as SNI")
	str(&vhost, "V", "use-virtualhost", "", "the Host header (default: SERVER:PORT)")
	str(&hashName, "H", "hash", "md5", "the digest algorithm: md5, the only one url digests take")
	str(&proto, "P", "protocol", "1.0", "HTTP protocol: 1.0, 1.0c (1.0 with Connection: close) or 1.1")
	fs.IntVar(&timeout, "t", 10, "timeout in seconds for the whole GET")
	fs.IntVar(&timeout, "timeout", 10, "same as -t")
	boolean(&verbose, "v", "verbose", "print the response header and the body's size on stderr")
	boolean(&release, "r", "release", "print the version and exit")
	str(&fwmark, "m", "fwmark", "", "not supported: vigil does not mark check traffic")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vigil genhash [-S] [-I] [-V VIRTUALHOST] [-P PROTOCOL] [-t SECONDS] [-v] -s SERVER -p PORT -u URL\n\n"+
			"Prints the MD5 digest of a page's body, for the digest of an HTTP_GET or SSL_GET url block\n"+
			"(keepalived's genhash). Long forms: --server, --port, --url, --use-ssl, --use-sni,\n"+
			"--use-virtualhost, --protocol, --timeout, --verbose, --release, --hash.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if release {
		fmt.Fprintf(stdout, "vigil %s\n", versionString())
		return exitOK
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vigil genhash: "+format+"\n", a...)
		fs.Usage()
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case server == "" || port == 0 || urlPath == "":
		return usage("-s SERVER, -p PORT and -u URL are required")
	case port < 1 || port > 65535:
		return usage("invalid port number %d", port)
	case strings.ToLower(hashName) != "md5":
		return usage("hash %q: only md5 (url digests are MD5)", hashName)
	case fwmark != "":
		return usage("-m (fwmark) is not supported")
	case timeout <= 0:
		return usage("timeout %d: want seconds above 0", timeout)
	case sni && vhost == "":
		return usage("-I sends the virtualhost as SNI: give it with -V")
	}
	protocol, err := httpget.ParseProtocol(proto)
	if err != nil {
		return usage("%v", err)
	}
	req := httpget.Request{Path: urlPath, Host: vhost, Protocol: protocol}
	if useTLS {
		// keepalived's genhash checks no certificate either: the digest is what matters.
		req.TLS = &tls.Config{InsecureSkipVerify: true}
		if sni {
			req.TLS.ServerName = vhost
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
	defer cancel()
	resp, err := genhash(ctx, net.JoinHostPort(server, strconv.Itoa(port)), req)
	if err != nil {
		fmt.Fprintf(stderr, "vigil genhash: %v\n", err)
		return genhashFailed
	}
	if verbose {
		fmt.Fprintf(stderr, "%s", resp.Header)
		fmt.Fprintf(stderr, "body: %d bytes\n", resp.BodyBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// keepalived prints the digest whatever the status; a url block without status_code
		// wants 200-299, so say so.
		fmt.Fprintf(stderr, "vigil genhash: note: the status is %q; add status_code %d to the url block to accept it\n", resp.StatusLine, resp.StatusCode)
	}
	fmt.Fprintln(stdout, resp.Digest)
	return exitOK
}

// genhash connects to address and GETs the page, by ctx.
func genhash(ctx context.Context, address string, req httpget.Request) (*httpget.Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stopAfter := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stopAfter()
	resp, err := httpget.Get(ctx, conn, address, req)
	if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
		return nil, fmt.Errorf("%w: %w", err, ctx.Err())
	}
	return resp, err
}
