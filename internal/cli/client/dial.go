package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"sync"
)

// dialFunc returns how the client reaches the daemon: a unix socket, or
// tcp (directly or through an HTTP(S)_PROXY CONNECT tunnel), with TLS on
// top when configured (over unix too, as docker's client does).
func (cli *Client) dialFunc() func(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: dialTimeout}
	addr, unix := cli.addr, cli.proto == "unix"
	scheme, tlsConfig := cli.scheme, cli.tlsConfig
	return func(ctx context.Context) (net.Conn, error) {
		var c net.Conn
		var err error
		if unix {
			c, err = d.DialContext(ctx, "unix", addr)
		} else {
			var proxy *url.URL
			if proxy, err = proxyFor(scheme, addr); err != nil {
				return nil, err
			}
			if proxy != nil {
				c, err = dialProxy(ctx, d, proxy, addr)
			} else {
				c, err = d.DialContext(ctx, "tcp", addr)
			}
		}
		if err != nil || tlsConfig == nil {
			return c, err
		}
		return tlsHandshake(ctx, c, tlsConfig, addr)
	}
}

// tlsHandshake runs TLS over c, naming the server by addr's host unless
// the config names it (as net/http does).
func tlsHandshake(ctx context.Context, c net.Conn, cfg *tls.Config, addr string) (net.Conn, error) {
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return tc, nil
}

// Proxies: the environment as net/http's ProxyFromEnvironment reads it
// (HTTPS_PROXY for TLS daemons, HTTP_PROXY otherwise, lower-case variants,
// NO_PROXY; never for localhost or loopback addresses). Written here
// because golang.org/x/net/http/httpproxy would link the idna tables.
type proxyEnv struct {
	httpProxy, httpsProxy string
	noProxy               []string
}

var readProxyEnv = sync.OnceValue(func() proxyEnv {
	get := func(names ...string) string {
		for _, n := range names {
			if v := os.Getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	e := proxyEnv{httpProxy: get("HTTP_PROXY", "http_proxy"), httpsProxy: get("HTTPS_PROXY", "https_proxy")}
	for _, p := range strings.Split(get("NO_PROXY", "no_proxy"), ",") {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			e.noProxy = append(e.noProxy, p)
		}
	}
	return e
})

// proxyFor returns the proxy for a daemon at addr (host:port), or nil.
func proxyFor(scheme, addr string) (*url.URL, error) {
	return readProxyEnv().proxyFor(scheme, addr)
}

func (e proxyEnv) proxyFor(scheme, addr string) (*url.URL, error) {
	raw := e.httpProxy
	if scheme == "https" {
		raw = e.httpsProxy
	}
	if raw == "" {
		return nil, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, ""
	}
	host = strings.ToLower(host)
	if host == "localhost" {
		return nil, nil
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() {
		return nil, nil
	}
	if e.noProxyMatch(host, port, ip) {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		// "proxy.example:3128" without a scheme means http://
		if u2, err2 := url.Parse("http://" + raw); err2 == nil && u2.Host != "" {
			u, err = u2, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid proxy address %q: %w", raw, err)
	}
	return u, nil
}

func (e proxyEnv) noProxyMatch(host, port string, ip net.IP) bool {
	for _, p := range e.noProxy {
		if p == "*" {
			return true
		}
		if _, cidr, err := net.ParseCIDR(p); err == nil {
			if ip != nil && cidr.Contains(ip) {
				return true
			}
			continue
		}
		pHost, pPort, err := net.SplitHostPort(p)
		if err != nil {
			pHost, pPort = p, ""
		}
		if pPort != "" && pPort != port {
			continue
		}
		if pip := net.ParseIP(pHost); pip != nil {
			if ip != nil && pip.Equal(ip) {
				return true
			}
			continue
		}
		pHost = strings.TrimPrefix(pHost, "*")
		if strings.HasPrefix(pHost, ".") { // subdomains only, as net/http's httpproxy
			if strings.HasSuffix(host, pHost) {
				return true
			}
			continue
		}
		if host == pHost || strings.HasSuffix(host, "."+pHost) {
			return true
		}
	}
	return false
}

// dialProxy opens a tunnel to target through an http or https proxy:
//
//	CONNECT host:port HTTP/1.1 ─▶ proxy      (Proxy-Authorization: Basic … from the URL's user)
//	                           ◀─ HTTP/1.1 200 Connection established
//	then the bytes of the daemon connection (TLS or not) flow through.
func dialProxy(ctx context.Context, d *net.Dialer, proxy *url.URL, target string) (net.Conn, error) {
	if proxy.Scheme != "http" && proxy.Scheme != "https" {
		return nil, fmt.Errorf("proxy %s: scheme %q is not supported by berth (only http:// and https:// proxies, through CONNECT)", proxy.Redacted(), proxy.Scheme)
	}
	paddr := proxy.Host
	if proxy.Port() == "" {
		port := "80"
		if proxy.Scheme == "https" {
			port = "443"
		}
		paddr = net.JoinHostPort(proxy.Hostname(), port)
	}
	c, err := d.DialContext(ctx, "tcp", paddr)
	if err != nil {
		return nil, fmt.Errorf("proxyconnect tcp: %w", err)
	}
	if proxy.Scheme == "https" {
		if c, err = tlsHandshake(ctx, c, &tls.Config{MinVersion: tls.VersionTLS12}, paddr); err != nil {
			return nil, fmt.Errorf("proxyconnect tcp: %w", err)
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	fail := func(err error) (net.Conn, error) {
		stop()
		_ = c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("proxy %s: %w", proxy.Redacted(), err)
	}
	msg := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if u := proxy.User; u != nil {
		pw, _ := u.Password()
		msg += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)) + "\r\n"
	}
	if _, err := c.Write([]byte(msg + "\r\n")); err != nil {
		return fail(err)
	}
	br := bufio.NewReader(c)
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return fail(fmt.Errorf("reading CONNECT response: %w", err))
	}
	if _, err := tp.ReadMIMEHeader(); err != nil {
		return fail(fmt.Errorf("reading CONNECT response: %w", err))
	}
	_, status, _ := strings.Cut(line, " ")
	if !strings.HasPrefix(status, "2") {
		return fail(fmt.Errorf("CONNECT %s: %s", target, status))
	}
	if !stop() {
		return fail(ctx.Err())
	}
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// bufferedConn reads through r first: bytes that arrived with a response
// head. CloseWrite reaches the connection's when it has one.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(CloseWriter); ok {
		return cw.CloseWrite()
	}
	return nil
}
