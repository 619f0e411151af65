package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testServer serves h over a unix socket and counts the connections made.
type testServer struct {
	sock  string
	conns atomic.Int32
}

func newTestServer(t *testing.T, h http.HandlerFunc) *testServer {
	t.Helper()
	ts := &testServer{sock: filepath.Join(t.TempDir(), "t.sock")}
	l, err := net.Listen("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = l
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			ts.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return ts
}

func (ts *testServer) transport() *transport {
	return unixTransport(ts.sock)
}

func unixTransport(sock string) *transport {
	return &transport{maxIdle: 4, dial: func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
}

func do(ctx context.Context, t *testing.T, tr *transport, method, p string, body io.Reader) (*response, error) {
	t.Helper()
	req, err := newRequest(ctx, method, p, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = dummyHost
	return tr.roundTrip(req)
}

func readAll(t *testing.T, resp *response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	_ = resp.Body.Close()
	return string(b)
}

// echo answers "METHOD framing body" with a chunked (flushed) response.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	framing := fmt.Sprintf("len=%d te=%v", r.ContentLength, r.TransferEncoding)
	w.Header().Add("X-Multi", "a")
	w.Header().Add("X-Multi", "b")
	_, _ = io.WriteString(w, r.Method+" "+framing+" ")
	w.(http.Flusher).Flush()
	_, _ = w.Write(b)
}

func TestTransportFramingBothWays(t *testing.T) {
	ts := newTestServer(t, echo)
	tr := ts.transport()
	defer tr.closeIdle()
	ctx := context.Background()

	// A stream of unknown length goes chunked; the reply comes chunked.
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 3; i++ {
			_, _ = io.WriteString(pw, strings.Repeat("x", 40000))
		}
		_ = pw.Close()
	}()
	resp, err := do(ctx, t, tr, "POST", "/echo", pr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != -1 || resp.Header.Get("Transfer-Encoding") != "chunked" {
		t.Errorf("response framing: length %d, header %v", resp.ContentLength, resp.Header)
	}
	if got := resp.Header.Values("x-multi"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("multi-valued header: %q", got)
	}
	if got, want := readAll(t, resp), "POST len=-1 te=[chunked] "+strings.Repeat("x", 120000); got != want {
		t.Errorf("chunked echo: got %d bytes %.60q", len(got), got)
	}

	// Known lengths go with Content-Length.
	for _, body := range []io.Reader{strings.NewReader("hello"), bytes.NewReader([]byte("hello")), bytes.NewBufferString("hello")} {
		resp, err = do(ctx, t, tr, "PUT", "/echo", body)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, resp); got != "PUT len=5 te=[] hello" {
			t.Errorf("%T: %q", body, got)
		}
	}
	// POST without a body says Content-Length: 0.
	resp, err = do(ctx, t, tr, "POST", "/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "POST len=0 te=[] " {
		t.Errorf("empty POST: %q", got)
	}
	if n := ts.conns.Load(); n != 1 {
		t.Errorf("%d connections for sequential requests read to the end, want 1", n)
	}
}

func TestTransportKeepAlive(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/close":
			w.Header().Set("Connection", "close")
		case "/big":
			_, _ = w.Write(bytes.Repeat([]byte("y"), 1<<20))
			return
		case "/head":
			w.Header().Set("Content-Length", "10")
			if r.Method == "HEAD" {
				return
			}
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = io.WriteString(w, "0123456789")
	})
	tr := ts.transport()
	defer tr.closeIdle()
	ctx := context.Background()
	get := func(method, p string) *response {
		t.Helper()
		resp, err := do(ctx, t, tr, method, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	step := func(name string, wantConns int32) {
		t.Helper()
		if n := ts.conns.Load(); n != wantConns {
			t.Errorf("after %s: %d connections, want %d", name, n, wantConns)
		}
	}

	if got := readAll(t, get("GET", "/")); got != "0123456789" {
		t.Fatalf("body %q", got)
	}
	readAll(t, get("GET", "/"))
	step("two GETs", 1)

	resp := get("HEAD", "/head")
	if resp.ContentLength != 10 || readAll(t, resp) != "" {
		t.Errorf("HEAD: length %d", resp.ContentLength)
	}
	resp = get("DELETE", "/nocontent")
	if resp.StatusCode != 204 || readAll(t, resp) != "" {
		t.Errorf("204: %d", resp.StatusCode)
	}
	step("HEAD and 204", 1)

	// A body read exactly to its length (no EOF seen) and closed: reused.
	resp = get("GET", "/")
	b := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, b); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	step("read to length", 1)

	// Connection: close from the daemon: not reused.
	readAll(t, get("GET", "/close"))
	readAll(t, get("GET", "/"))
	step("Connection: close", 2)

	// A body closed unread (1 MiB still on the wire): the conn is dropped.
	resp = get("GET", "/big")
	_ = resp.Body.Close()
	if _, err := resp.Body.Read(b); err == nil {
		t.Error("read after close succeeded")
	}
	readAll(t, get("GET", "/"))
	step("closed early", 3)
}

func TestTransportConcurrentRequestsOwnConnections(t *testing.T) {
	const n = 4
	var arrived sync.WaitGroup
	arrived.Add(n)
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/b") {
			arrived.Done()
			arrived.Wait() // answers only once all n are in flight at once
		}
		_, _ = io.WriteString(w, r.URL.Path)
	})
	tr := ts.transport()
	defer tr.closeIdle()
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			p := fmt.Sprintf("/b%d", i)
			resp, err := do(context.Background(), t, tr, "GET", p, nil)
			if err == nil {
				var b []byte
				b, err = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err == nil && string(b) != p {
					err = fmt.Errorf("got %q for %s", b, p)
				}
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := ts.conns.Load(); got != n {
		t.Errorf("%d connections for %d concurrent requests", got, n)
	}
	// All went back to the pool: n more sequential requests dial nothing.
	for i := 0; i < n; i++ {
		resp, err := do(context.Background(), t, tr, "GET", "/x", nil)
		if err == nil {
			readAll(t, resp)
		}
	}
	if got := ts.conns.Load(); got != n {
		t.Errorf("%d connections after reuse, want %d", got, n)
	}
}

func TestTransportCancel(t *testing.T) {
	released := make(chan struct{})
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			_, _ = io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done() // the client's close ends the request
		close(released)
	})
	tr := ts.transport()
	defer tr.closeIdle()

	// Cancelling while the body streams ends a blocked Read.
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := do(ctx, t, tr, "GET", "/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "first\n" {
		t.Fatalf("first line %q: %v", line, err)
	}
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := br.ReadString('\n'); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v", err)
	}
	<-released
	_ = resp.Body.Close()

	// Cancelled and closed between reads (as a caller's context.AfterFunc
	// does): the next Read says why too (it said "read on closed response
	// body").
	released = make(chan struct{})
	ctx, cancel = context.WithCancel(context.Background())
	if resp, err = do(ctx, t, tr, "GET", "/stream", nil); err != nil {
		t.Fatal(err)
	}
	br = bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "first\n" {
		t.Fatalf("first line %q: %v", line, err)
	}
	cancel()
	_ = resp.Body.Close()
	<-released
	if _, err := br.ReadString('\n'); !errors.Is(err, context.Canceled) {
		t.Errorf("read after a cancel between reads: %v", err)
	}

	// Cancelling before the response head arrives ends the request.
	released = make(chan struct{})
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := do(ctx, t, tr, "GET", "/wait", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("request after cancel: %v", err)
	}
	<-released
}

// rawServer runs serve for each connection on a unix socket.
func rawServer(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "raw.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	serveConns(t, l, serve)
	return sock
}

// serveConns runs serve for each connection l accepts, until the test ends.
func serveConns(t *testing.T, l net.Listener, serve func(c net.Conn, br *bufio.Reader)) {
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
}

func TestTransportLyingServer(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		wantReq     string // error of the request
		wantBody    error  // error reading the body
	}{
		{name: "bad status line", reply: "HTTP/1.1 abc\r\n\r\n", wantReq: "malformed HTTP status code"},
		{name: "not HTTP", reply: "SSH-2.0-OpenSSH\r\n\r\n", wantReq: "malformed HTTP response"},
		{name: "headers cut", reply: "HTTP/1.1 200 OK\r\nContent-Le", wantReq: "malformed MIME header"},
		{name: "nothing", reply: "", wantReq: "unexpected EOF"},
		{name: "bad length", reply: "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", wantReq: "bad Content-Length"},
		{name: "truncated chunked", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", wantBody: io.ErrUnexpectedEOF},
		{name: "chunked without end", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", wantBody: io.ErrUnexpectedEOF},
		{name: "bad chunk size", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n", wantBody: errors.New("bad chunk size")},
		{name: "short length", reply: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", wantBody: io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, tc.reply)
			})
			tr := unixTransport(sock)
			resp, err := do(context.Background(), t, tr, "GET", "/", nil)
			if tc.wantReq != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantReq) {
					t.Fatalf("request error %v, want %q", err, tc.wantReq)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(resp.Body)
			if err == nil || (!errors.Is(err, tc.wantBody) && !strings.Contains(err.Error(), tc.wantBody.Error())) {
				t.Errorf("body error %v, want %v", err, tc.wantBody)
			}
		})
	}
}

// A server that closes idle connections: the next request on the pooled
// connection is retried on a new one.
func TestTransportStaleConnectionRetried(t *testing.T) {
	var conns atomic.Int32
	sock := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		n := conns.Add(1)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d", n)
		// and close, without saying so
	})
	tr := unixTransport(sock)
	defer tr.closeIdle()
	for i, want := range []string{"1", "2"} {
		resp, err := do(context.Background(), t, tr, "POST", "/", strings.NewReader("body"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := readAll(t, resp); got != want {
			t.Errorf("request %d answered by connection %s, want %s", i, got, want)
		}
		time.Sleep(20 * time.Millisecond) // let the server's close arrive
	}
}

func TestTransportHijackTCPHalfClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveConns(t, l, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/_ping" {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nApi-Version: 1.44\r\nContent-Length: 2\r\n\r\nOK")
				continue
			}
			if req.Header.Get("Upgrade") != "tcp" || req.Header.Get("Connection") != "Upgrade" {
				_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
				return
			}
			// 200 instead of 101, and output sent with the head.
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nearly ")
			in, _ := io.ReadAll(br) // until the client's half-close
			_, _ = io.WriteString(c, "echo "+string(in))
			return
		}
	})
	c, err := New(WithHost("tcp://" + l.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.ContainerAttach(context.Background(), "x", ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if mt, _ := res.MediaType(); mt != "application/vnd.docker.raw-stream" {
		t.Errorf("media type %q", mt)
	}
	_, _ = io.WriteString(res.Conn, "over tcp")
	if err := res.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(res.Reader)
	if string(out) != "early echo over tcp" {
		t.Errorf("output %q", out)
	}
}

func TestRedirectsNotFollowed(t *testing.T) {
	c, _ := newDaemon(t, "1.41", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	ctx := context.Background()
	resp, err := c.get(ctx, "/x", nil, nil)
	if err != nil || resp.StatusCode != 302 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	ensureReaderClosed(resp)
	if _, err := c.post(ctx, "/x", nil, nil, nil); !errors.Is(err, ErrRedirect) {
		t.Errorf("POST: %v", err)
	}
}

func TestProxyFromEnvironment(t *testing.T) {
	e := proxyEnv{httpProxy: "proxy:3128", httpsProxy: "https://sproxy:443",
		noProxy: []string{"skip.example", ".dot.example", "10.0.0.0/8", "192.168.1.1", "port.example:2376"}}
	for _, tc := range []struct{ scheme, addr, want string }{
		{"http", "daemon.example:2375", "http://proxy:3128"},
		{"https", "daemon.example:2376", "https://sproxy:443"},
		{"https", "localhost:2376", ""},
		{"https", "127.0.0.1:2376", ""},
		{"https", "skip.example:2376", ""},
		{"https", "a.skip.example:2376", ""},
		{"https", "dot.example:2376", "https://sproxy:443"}, // ".dot.example": subdomains only, as net/http
		{"https", "b.dot.example:2376", ""},
		{"https", "notskip.example:2376", "https://sproxy:443"},
		{"https", "10.1.2.3:2376", ""},
		{"https", "192.168.1.1:2376", ""},
		{"https", "192.168.1.2:2376", "https://sproxy:443"},
		{"https", "port.example:2376", ""},
		{"https", "port.example:2377", "https://sproxy:443"},
	} {
		u, err := e.proxyFor(tc.scheme, tc.addr)
		got := ""
		if u != nil {
			got = u.String()
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %s: %q %v, want %q", tc.scheme, tc.addr, got, err, tc.want)
		}
	}
	if u, _ := (proxyEnv{httpsProxy: "x", noProxy: []string{"*"}}).proxyFor("https", "a:1"); u != nil {
		t.Errorf("NO_PROXY=* still proxies: %v", u)
	}
}

// A CONNECT proxy in front of a daemon: the tunnel carries the requests.
func TestDialProxyConnect(t *testing.T) {
	ts := newTestServer(t, echo)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var target, auth string
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || req.Method != "CONNECT" {
			return
		}
		target, auth = req.Host, req.Header.Get("Proxy-Authorization")
		up, err := net.Dial("unix", ts.sock) // where "daemon:2375" really is
		if err != nil {
			return
		}
		defer up.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { _, _ = io.Copy(up, br) }()
		_, _ = io.Copy(c, up)
	}()
	proxy, _ := (proxyEnv{httpProxy: "http://u:p@" + l.Addr().String()}).proxyFor("http", "daemon:2375")
	tr := &transport{maxIdle: 1, dial: func(ctx context.Context) (net.Conn, error) {
		return dialProxy(ctx, &net.Dialer{}, proxy, "daemon:2375")
	}}
	defer tr.closeIdle()
	resp, err := do(context.Background(), t, tr, "POST", "/", strings.NewReader("tunnelled"))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "POST len=9 te=[] tunnelled" {
		t.Errorf("through the proxy: %q", got)
	}
	if target != "daemon:2375" || auth != "Basic dTpw" {
		t.Errorf("CONNECT to %q with auth %q", target, auth)
	}
	socks, _ := (proxyEnv{httpProxy: "socks5://h:1080"}).proxyFor("http", "daemon:2375")
	if _, err := dialProxy(context.Background(), &net.Dialer{}, socks, "daemon:2375"); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("socks5 proxy: %v", err)
	}
}
