package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A small HTTP/1.1 client, written here instead of using net/http because
// merely linking net/http (its inits, its size, the Transport's goroutines)
// costs ~6 ms of CPU on every CLI start, and a CLI start is on the critical
// path of `berth run`. Measured on the 2-core VM (perf stat -r 60, load
// ~2.5): `berth run -d` 30.3 -> 26.6 ms CPU and 561 -> 469 page faults,
// `berth --version` 20.2 -> 19.0 ms, binary 10.2 -> 9.1 MB (with
// progress.go replacing moby's jsonmessage and jsonenc.go).
// It speaks only what the Docker API needs:
//
//	client                                            daemon
//	POST /v1.51/containers/create?name=x HTTP/1.1 ─▶
//	Host: api.moby.localhost            (unix) or host:port (tcp)
//	User-Agent: berth-cli/…
//	Content-Type: application/json
//	Content-Length: 123                  known length (bytes, JSON)
//	  or Transfer-Encoding: chunked      streams: "<hex len>\r\n<data>\r\n" … "0\r\n\r\n"
//	                                                ◀─ HTTP/1.1 201 Created
//	                                                   Content-Length: 88 | Transfer-Encoding: chunked | neither (until EOF)
//	                                                   [Connection: close]
//	                                                   body (none for HEAD, 1xx, 204, 304)
//
// Connections: one request at a time per connection. A connection goes
// back to the idle pool (at most maxIdle) only when its response body was
// read to the end, the request body was fully written and neither side
// said "Connection: close"; concurrent requests take separate connections.
// A request that fails on a reused connection before any response byte
// arrived (the daemon closed the idle connection) is retried once on a new
// connection when its body can be replayed, and, once it was written in
// full, only when it is idempotent (GET, HEAD): a POST or DELETE the daemon
// may have processed is never sent twice. Those check instead that the
// idle connection is still open before they use it.
//
// Cancellation: while a request or its response body is in flight, the
// end of its context closes the connection (context.AfterFunc), so a
// blocked read or write returns; the caller sees ctx.Err().

// header is an HTTP header with canonical keys, like net/http's Header.
type header map[string][]string

func (h header) Get(k string) string {
	if v := h[textproto.CanonicalMIMEHeaderKey(k)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h header) Values(k string) []string { return h[textproto.CanonicalMIMEHeaderKey(k)] }
func (h header) Set(k, v string)          { h[textproto.CanonicalMIMEHeaderKey(k)] = []string{v} }
func (h header) Del(k string)             { delete(h, textproto.CanonicalMIMEHeaderKey(k)) }

func (h header) Add(k, v string) {
	k = textproto.CanonicalMIMEHeaderKey(k)
	h[k] = append(h[k], v)
}

// Clone returns a deep copy of h (nil for nil).
func (h header) Clone() header {
	if h == nil {
		return nil
	}
	out := make(header, len(h))
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// noBody is an empty request body (no Content-Length except for POST/PUT).
var noBody = io.NopCloser(strings.NewReader(""))

// request is one HTTP request.
type request struct {
	ctx    context.Context
	Method string
	URL    *url.URL // Path and RawQuery are sent; Scheme and Host only name the daemon in errors
	Host   string   // the Host header
	Header header
	body   io.Reader
	// contentLength is the body's length, -1 when unknown (sent chunked).
	contentLength int64
	// rewind resets a replayable body for a retry; nil when it cannot be.
	rewind func() bool
}

// newRequest prepares method p for body; in-memory bodies (bytes, strings)
// get a Content-Length and can be replayed.
func newRequest(ctx context.Context, method, p string, body io.Reader) (*request, error) {
	u, err := url.Parse(p)
	if err != nil {
		return nil, err
	}
	if !validMethod(method) {
		return nil, fmt.Errorf("invalid method %q", method)
	}
	req := &request{ctx: ctx, Method: method, URL: u, Header: header{}, body: body, contentLength: -1}
	switch b := body.(type) {
	case nil:
		req.body, req.contentLength = nil, 0
	case *bytes.Buffer:
		data := b.Bytes()
		req.body, req.contentLength = bytes.NewReader(data), int64(len(data))
	case *bytes.Reader:
		req.contentLength = int64(b.Len())
	case *strings.Reader:
		req.contentLength = int64(b.Len())
	}
	if body == noBody {
		req.body, req.contentLength = nil, 0
	}
	if req.body == nil {
		req.rewind = func() bool { return true }
	} else if s, ok := req.body.(io.Seeker); ok && req.contentLength >= 0 {
		start, err := s.Seek(0, io.SeekCurrent)
		if err == nil {
			req.rewind = func() bool { _, err := s.Seek(start, io.SeekStart); return err == nil }
		}
	}
	return req, nil
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return true
}

// response is one HTTP response; Body must be closed.
type response struct {
	StatusCode int
	Status     string // "404 Not Found"
	Header     header
	Body       io.ReadCloser
	// ContentLength is the Content-Length header's value, -1 when unknown.
	ContentLength int64
	Request       *request

	framing io.Reader // the body as framed on the wire, until withBody
}

// transport sends requests over pooled connections made by dial.
type transport struct {
	dial    func(ctx context.Context) (net.Conn, error)
	maxIdle int

	mu     sync.Mutex
	idle   []*persistConn
	closed bool
}

type persistConn struct {
	net.Conn
	br     *bufio.Reader
	reused bool
}

// getConn takes an idle connection or dials one. probe checks that an idle
// connection is still open first (for requests that are not resent once
// written, see roundTrip).
func (t *transport) getConn(ctx context.Context, probe bool) (*persistConn, error) {
	for {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		pc := t.idle[n-1]
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		if probe && !pc.alive() {
			_ = pc.Close()
			continue
		}
		pc.reused = true
		return pc, nil
	}
	c, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &persistConn{Conn: c, br: bufio.NewReader(c)}, nil
}

// alive reports whether an idle connection was not closed (or written to)
// by the daemon meanwhile: a non-blocking peek at the socket must find
// nothing yet. (A read with a deadline in the past would not do: Go's
// poller fails it before asking the kernel.) Over TLS a waiting record may
// be a close_notify, so anything there counts as closed. A connection
// without a socket to peek at (a proxy tunnel with buffered bytes) is
// taken as alive.
func (pc *persistConn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	c := pc.Conn
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	if err := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = err == syscall.EAGAIN
		return true
	}); err != nil {
		return false
	}
	return alive
}

// idempotent reports whether a request may be sent again after it was
// written in full (net/http's rule): the daemon may have processed it
// before the connection ended.
func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

func (t *transport) putConn(pc *persistConn) {
	t.mu.Lock()
	if !t.closed && len(t.idle) < t.maxIdle {
		t.idle = append(t.idle, pc)
		pc = nil
	}
	t.mu.Unlock()
	if pc != nil {
		_ = pc.Close()
	}
}

// closeIdle closes the idle connections; later ones are closed when done.
func (t *transport) closeIdle() {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.closed = nil, true
	t.mu.Unlock()
	for _, pc := range idle {
		_ = pc.Close()
	}
}

// errStale marks a failure on a reused connection before any response
// byte: the daemon had closed it while idle.
type errStale struct{ error }

func (e errStale) Unwrap() error { return e.error }

// roundTrip sends req and reads the response head; the body streams.
// Errors are *url.Error like net/http's, wrapping ctx.Err() on cancel.
func (t *transport) roundTrip(req *request) (*response, error) {
	resp, err := t.roundTripOnce(req)
	if errors.As(err, &errStale{}) && req.rewind != nil && req.rewind() && req.ctx.Err() == nil {
		resp, err = t.roundTripOnce(req)
	}
	if err != nil {
		return nil, &url.Error{Op: opName(req.Method), URL: req.URL.String(), Err: err}
	}
	return resp, nil
}

func opName(method string) string {
	return method[:1] + strings.ToLower(method[1:])
}

func (t *transport) roundTripOnce(req *request) (_ *response, retErr error) {
	if err := req.ctx.Err(); err != nil {
		return nil, err
	}
	pc, err := t.getConn(req.ctx, !idempotent(req.Method))
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(req.ctx, func() { _ = pc.Close() })
	defer func() {
		if retErr != nil {
			stop()
			_ = pc.Close()
			if err := req.ctx.Err(); err != nil {
				retErr = err
			}
		}
	}()

	// Bodies of unknown length are written while the response is read:
	// the daemon may answer (and stream) before it has read all of it.
	var writeDone chan error
	if req.body != nil && req.contentLength < 0 {
		writeDone = make(chan error, 1)
		go func() { writeDone <- writeRequest(pc.Conn, req) }()
	} else if err := writeRequest(pc.Conn, req); err != nil {
		// The daemon may have answered and closed (an early error): read
		// that answer rather than report the write error.
		if resp, rerr := readResponse(pc.br, req); rerr == nil {
			resp.Header.Set("Connection", "close")
			return t.withBody(pc, req, resp, stop, nil), nil
		}
		if pc.reused {
			return nil, errStale{err}
		}
		return nil, err
	}
	if _, err := pc.br.Peek(1); err != nil {
		if pc.reused && writeDone == nil && isStaleErr(err) && idempotent(req.Method) {
			return nil, errStale{err}
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading response: %w", err)
	}
	resp, err := readResponse(pc.br, req)
	if err != nil {
		return nil, err
	}
	return t.withBody(pc, req, resp, stop, writeDone), nil
}

func isStaleErr(err error) bool {
	var op *net.OpError
	return errors.Is(err, io.EOF) || errors.As(err, &op)
}

// writeRequest writes the request line, headers and body.
//
//	METHOD /path?query HTTP/1.1\r\n  Host  User-Agent  headers  framing  \r\n  body
func writeRequest(c net.Conn, req *request) error {
	bw := bufio.NewWriter(c)
	fmt.Fprintf(bw, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.URL.RequestURI(), req.Host)
	if _, ok := req.Header["User-Agent"]; !ok {
		bw.WriteString("User-Agent: Go-http-client/1.1\r\n")
	}
	for k, vs := range req.Header {
		if !validHeaderName(k) {
			return fmt.Errorf("invalid header field name %q", k)
		}
		if k == "Content-Length" || k == "Transfer-Encoding" || k == "Host" {
			continue // framing is ours
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				return fmt.Errorf("invalid header field value for %q", k)
			}
			if k == "User-Agent" && v == "" {
				continue
			}
			fmt.Fprintf(bw, "%s: %s\r\n", k, v)
		}
	}
	switch {
	case req.body == nil && (req.Method == "POST" || req.Method == "PUT" || req.Method == "PATCH"):
		bw.WriteString("Content-Length: 0\r\n")
	case req.body == nil:
	case req.contentLength >= 0:
		fmt.Fprintf(bw, "Content-Length: %d\r\n", req.contentLength)
	default:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	bw.WriteString("\r\n")
	switch {
	case req.body == nil:
	case req.contentLength >= 0:
		n, err := io.Copy(bw, io.LimitReader(req.body, req.contentLength))
		if err != nil {
			return err
		}
		if n != req.contentLength {
			return fmt.Errorf("request body: %d bytes of %d", n, req.contentLength)
		}
	default:
		if _, err := io.Copy(&chunkedWriter{bw}, req.body); err != nil {
			return err
		}
		bw.WriteString("0\r\n\r\n")
	}
	return bw.Flush()
}

func validHeaderName(k string) bool {
	return k != "" && validMethod(k) // same token rule
}

// chunkedWriter frames each Write as one chunk and flushes it, so a
// stream reaches the daemon as it is produced.
type chunkedWriter struct{ bw *bufio.Writer }

func (w *chunkedWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil // a zero chunk would end the body
	}
	fmt.Fprintf(w.bw, "%x\r\n", len(p))
	w.bw.Write(p)
	w.bw.WriteString("\r\n")
	if err := w.bw.Flush(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// readResponse reads a status line and headers, skipping 1xx answers
// other than 101, and sets up the body framing reader (not yet owned).
func readResponse(br *bufio.Reader, req *request) (*response, error) {
	tp := textproto.NewReader(br)
	for {
		line, err := tp.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading response: %w", err)
		}
		proto, status, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(proto, "HTTP/1.") || len(proto) != len("HTTP/1.1") {
			return nil, fmt.Errorf("malformed HTTP response %q", line)
		}
		codeS, reason, _ := strings.Cut(strings.TrimLeft(status, " "), " ")
		code, err := strconv.Atoi(codeS)
		if len(codeS) != 3 || err != nil || code < 100 {
			return nil, fmt.Errorf("malformed HTTP status code %q", codeS)
		}
		mh, err := tp.ReadMIMEHeader()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading response headers: %w", err)
		}
		if code >= 100 && code < 200 && code != 101 {
			continue
		}
		h := header(mh)
		if proto == "HTTP/1.0" && !hasToken(h.Values("Connection"), "keep-alive") {
			h.Set("Connection", "close")
		}
		resp := &response{StatusCode: code, Status: codeS + " " + reason, Header: h, ContentLength: -1, Request: req}
		if reason == "" {
			resp.Status = codeS + " " + statusText(code)
		}
		if err := setFraming(br, resp); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// setFraming sets resp.framing to the reader of the body.
func setFraming(br *bufio.Reader, resp *response) error {
	h := resp.Header
	cl := int64(-1)
	if vs := h.Values("Content-Length"); len(vs) > 0 {
		for _, v := range vs {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 || (cl >= 0 && n != cl) {
				return fmt.Errorf("bad Content-Length %q", vs)
			}
			cl = n
		}
	}
	code := resp.StatusCode
	switch {
	case resp.Request.Method == "HEAD" || code == 204 || code == 304 || code < 200:
		resp.ContentLength = cl
		if code == 204 || code == 304 || code < 200 {
			resp.ContentLength = 0
		}
		resp.framing = strings.NewReader("")
	case len(h.Values("Transfer-Encoding")) > 0:
		if !strings.EqualFold(strings.TrimSpace(h.Get("Transfer-Encoding")), "chunked") || len(h.Values("Transfer-Encoding")) > 1 {
			return fmt.Errorf("unsupported transfer encoding %q", h.Values("Transfer-Encoding"))
		}
		h.Del("Content-Length")
		resp.framing = &chunkedReader{br: br}
	case cl >= 0:
		resp.ContentLength = cl
		resp.framing = &lengthReader{r: br, n: cl}
	default:
		h.Set("Connection", "close") // the body ends with the connection
		resp.framing = br
	}
	return nil
}

func hasToken(vs []string, token string) bool {
	for _, v := range vs {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// lengthReader reads exactly n bytes; an early EOF is an error.
type lengthReader struct {
	r io.Reader
	n int64
}

func (l *lengthReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if errors.Is(err, io.EOF) && l.n > 0 {
		err = io.ErrUnexpectedEOF
	} else if err == nil && l.n == 0 {
		err = io.EOF
	}
	return n, err
}

// chunkedReader decodes a chunked body; trailers are read and dropped.
//
//	<hex size>[;ext]\r\n <size bytes>\r\n ... 0\r\n [trailer: v\r\n]... \r\n
type chunkedReader struct {
	br   *bufio.Reader
	left int64 // bytes left in the current chunk
	err  error // sticky
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.left == 0 {
		size, err := c.readSize()
		if err != nil {
			c.err = err
			return 0, err
		}
		if size == 0 {
			c.err = c.readTrailers()
			if c.err == nil {
				c.err = io.EOF
			}
			return 0, c.err
		}
		c.left = size
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	if c.left == 0 && err == nil {
		err = c.crlf()
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		c.err = err
	}
	return n, err
}

func (c *chunkedReader) readSize() (int64, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull) {
			return 0, fmt.Errorf("malformed chunked encoding: %w", io.ErrUnexpectedEOF)
		}
		return 0, err
	}
	s := strings.TrimRight(string(line), "\r\n")
	s, _, _ = strings.Cut(s, ";")
	size, perr := strconv.ParseInt(strings.TrimSpace(s), 16, 64)
	if perr != nil || size < 0 {
		return 0, fmt.Errorf("malformed chunked encoding: bad chunk size %q", s)
	}
	return size, nil
}

func (c *chunkedReader) crlf() error {
	var b [2]byte
	if _, err := io.ReadFull(c.br, b[:]); err != nil {
		return err
	}
	if b != [2]byte{'\r', '\n'} {
		return errors.New("malformed chunked encoding: missing CRLF after chunk data")
	}
	return nil
}

func (c *chunkedReader) readTrailers() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("malformed chunked encoding: %w", err)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
}

// withBody makes resp.Body own pc: at its end the connection goes back to
// the pool or is closed.
func (t *transport) withBody(pc *persistConn, req *request, resp *response, stop func() bool, writeDone chan error) *response {
	b := &body{r: resp.framing, t: t, pc: pc, ctx: req.ctx, stop: stop, writeDone: writeDone,
		reuse: !hasToken(resp.Header.Values("Connection"), "close") && resp.StatusCode != 101}
	resp.framing, resp.Body = nil, b
	if req.Method == "HEAD" || resp.StatusCode == 204 || resp.StatusCode == 304 || b.atEOF() {
		b.finish(true)
	}
	return resp
}

// body is a response body that owns its connection.
type body struct {
	r         io.Reader // *lengthReader, *chunkedReader, or the conn (until EOF)
	t         *transport
	pc        *persistConn
	ctx       context.Context
	stop      func() bool
	writeDone chan error
	reuse     bool

	reading sync.Mutex // held by Read; Close only drains when it can take it
	once    sync.Once
	done    atomic.Bool // finished: Read returns err or EOF
	err     error
}

func (b *body) Read(p []byte) (int, error) {
	b.reading.Lock()
	defer b.reading.Unlock()
	if b.done.Load() {
		if b.err == nil {
			return 0, io.EOF
		}
		// closed because the request was cancelled: say so, as a Read
		// blocked at the time does
		if cerr := b.ctx.Err(); cerr != nil {
			return 0, cerr
		}
		return 0, b.err
	}
	n, err := b.r.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		b.finish(true)
	case err != nil:
		if cerr := b.ctx.Err(); cerr != nil {
			err = cerr
		}
		b.err = err
		b.finish(false)
	}
	return n, err
}

// Close gives the connection back when the body was read to its end (or
// the rest is already buffered), else closes it.
func (b *body) Close() error {
	if !b.reading.TryLock() {
		b.finish(false) // a Read is blocked: closing the conn ends it
		return nil
	}
	defer b.reading.Unlock()
	if b.done.Load() {
		return nil
	}
	clean := b.atEOF()
	if !clean && b.reuse && b.pc.br.Buffered() > 0 {
		// The rest may already be here (e.g. a chunked body's last chunk
		// after a JSON value): drain what needs no network read.
		_ = b.pc.SetReadDeadline(time.Now())
		_, err := io.Copy(io.Discard, io.LimitReader(b.r, 64<<10))
		clean = err == nil && b.atEOF()
		_ = b.pc.SetReadDeadline(time.Time{})
	}
	b.finish(clean)
	b.err = errors.New("read on closed response body")
	return nil
}

// atEOF reports whether the framing reader reached the body's end.
func (b *body) atEOF() bool {
	switch r := b.r.(type) {
	case *lengthReader:
		return r.n == 0
	case *chunkedReader:
		return errors.Is(r.err, io.EOF)
	}
	return false
}

func (b *body) finish(ok bool) {
	b.once.Do(func() {
		b.done.Store(true)
		stopped := b.stop()
		if ok && stopped && b.reuse && b.writeOK() {
			b.t.putConn(b.pc)
			return
		}
		_ = b.pc.Close()
	})
}

// writeOK reports whether the request body was written completely.
func (b *body) writeOK() bool {
	if b.writeDone == nil {
		return true
	}
	select {
	case err := <-b.writeDone:
		return err == nil
	default:
		return false
	}
}

// statusText names the statuses the daemon sends, for error messages.
func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 204:
		return "No Content"
	case 304:
		return "Not Modified"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	case 409:
		return "Conflict"
	case 412:
		return "Precondition Failed"
	case 429:
		return "Too Many Requests"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	}
	return ""
}
