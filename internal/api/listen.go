package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// TLSOptions configure a tcp:// listener. TCP is served only with TLS and
// client-certificate verification against CACert, unless Insecure is set
// (then plain TCP, with a warning: anyone who can reach the port is root).
type TLSOptions struct {
	CACert, Cert, Key string
	Insecure          bool
	Logger            *slog.Logger
}

// SocketGroup is the group given the unix socket when it exists.
const SocketGroup = "berth"

// Listen opens addr: "unix:///run/berth/berth.sock" (or a bare path) or
// "tcp://host:port". The unix socket is created with mode 0660, owned by
// root and group "berth" when that group exists, else group root.
func Listen(addr string, opts TLSOptions) (net.Listener, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	proto, rest, ok := strings.Cut(addr, "://")
	if !ok {
		proto, rest = "unix", addr
	}
	switch proto {
	case "unix":
		return listenUnix(rest)
	case "tcp":
		if opts.Cert == "" && opts.Key == "" && opts.CACert == "" {
			if !opts.Insecure {
				return nil, fmt.Errorf("listen %s: refusing plain TCP without TLS: give --tlsverify --tlscacert --tlscert --tlskey, or --insecure-tcp", addr)
			}
			log.Warn("serving the API on plain TCP without TLS: anyone who can reach it has root on this host", "addr", addr)
			return net.Listen("tcp", rest)
		}
		cfg, err := serverTLSConfig(opts)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		l, err := net.Listen("tcp", rest)
		if err != nil {
			return nil, err
		}
		return tls.NewListener(l, cfg), nil
	}
	return nil, fmt.Errorf("listen %s: unsupported protocol %q (want unix:// or tcp://)", addr, proto)
}

func listenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("listen unix: empty path")
	}
	// A socket left by a dead daemon blocks bind; a live one must not be
	// stolen, so only remove it if nobody answers.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen unix %s: another daemon is serving this socket", path)
		}
		_ = os.Remove(path)
	}
	// The daemon runs with umask 022 (cmd/berthd), so the socket is born
	// 0755 and connect(2), which needs write permission, is root's only
	// until the chown and chmod below. Not a umask switch around the bind:
	// the umask is the process's, and other goroutines make files meanwhile.
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	gid := 0
	if g, err := user.LookupGroup(SocketGroup); err == nil {
		if n, err := strconv.Atoi(g.Gid); err == nil {
			gid = n
		}
	}
	if err := os.Chown(path, 0, gid); err != nil && os.Geteuid() == 0 {
		l.Close()
		return nil, fmt.Errorf("chown %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return l, nil
}

func serverTLSConfig(opts TLSOptions) (*tls.Config, error) {
	if opts.Cert == "" || opts.Key == "" {
		return nil, errors.New("TLS needs both --tlscert and --tlskey")
	}
	if opts.CACert == "" {
		return nil, errors.New("TLS needs --tlscacert to verify client certificates")
	}
	cert, err := tls.LoadX509KeyPair(opts.Cert, opts.Key)
	if err != nil {
		return nil, fmt.Errorf("load server certificate: %w", err)
	}
	pem, err := os.ReadFile(opts.CACert)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificates in %s", opts.CACert)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

// serverOf finds the *Server in handler, through middleware that has an
// Unwrap() http.Handler method.
func serverOf(h http.Handler) *Server {
	for {
		switch v := h.(type) {
		case *Server:
			return v
		case interface{ Unwrap() http.Handler }:
			h = v.Unwrap()
		default:
			return nil
		}
	}
}

// Serve serves handler on every listener until ctx is cancelled, then
// shuts down: streaming requests see their context cancelled, hijacked
// connections (attach, exec) are closed, and in-flight requests get a
// few seconds to finish. It returns the first serve error, or nil.
func Serve(ctx context.Context, listeners []net.Listener, handler http.Handler) error {
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	log := slog.Default()
	api := serverOf(handler)
	if api != nil {
		log = api.log
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		// TLS handshake failures and the like: debug noise, not errors.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func(l net.Listener) {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", l.Addr(), err)
			}
		}(l)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	if api != nil {
		api.hijacked.closeAll()
	}
	// Stop accepting; let ordinary requests (a create, a remove) finish
	// for a moment, then cancel the request contexts so that streams
	// (events, logs -f, wait) end too; cut whatever is left after 5 s.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(sctx) }()
	var serr error
	select {
	case serr = <-done:
	case <-time.After(time.Second):
		cancelBase()
		serr = <-done
	}
	if serr != nil {
		_ = srv.Close()
	}
	return err
}
