package api

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/berth-dev/berth/internal/api/backend"
)

// Attach and exec start take over the connection ("hijack"):
//
//	client                                   berth
//	POST /containers/{id}/attach?stream=1&stdout=1
//	Connection: Upgrade / Upgrade: tcp  ───►
//	                                    ◄─── HTTP/1.1 101 UPGRADED
//	                                         Content-Type: application/vnd.docker.raw-stream  (TTY)
//	                                                    or application/vnd.docker.multiplexed-stream
//	                                         Connection: Upgrade / Upgrade: tcp
//	stdin bytes ───►                    ◄─── output: raw (TTY) or frames
//	CloseWrite (stdin EOF) ───►              frame = [stream 0 0 0 | size uint32 BE] payload
//	                                         stream: 0 stdin, 1 stdout, 2 stderr
//	                                    ◄─── close (container exited / process ended)
//
// Without the Upgrade header the reply is "HTTP/1.1 200 OK" and the
// connection is hijacked all the same (old clients).

const (
	mediaRaw         = "application/vnd.docker.raw-stream"
	mediaMultiplexed = "application/vnd.docker.multiplexed-stream"
)

// Stream bytes of the multiplexed framing.
const (
	streamStdin  byte = 0
	streamStdout byte = 1
	streamStderr byte = 2
)

// conns tracks hijacked connections so shutdown can close them (the
// http.Server forgets a connection once it is hijacked).
type conns struct {
	mu     sync.Mutex
	set    map[net.Conn]struct{}
	closed bool
}

func (c *conns) add(conn net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if c.set == nil {
		c.set = map[net.Conn]struct{}{}
	}
	c.set[conn] = struct{}{}
	return true
}

func (c *conns) remove(conn net.Conn) {
	c.mu.Lock()
	delete(c.set, conn)
	c.mu.Unlock()
}

// closeAll closes every hijacked connection and refuses new ones.
func (c *conns) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for conn := range c.set {
		_ = conn.Close()
	}
	c.set = nil
}

// hijacker lazily hijacks one request's connection; the handler calls
// done() when the backend returned.
type hijacker struct {
	s       *Server
	w       http.ResponseWriter
	r       *http.Request
	wantIn  bool
	conn    net.Conn
	streams backend.AttachStreams
	tty     bool

	header     string // the status line and headers, sent once
	headerOnce sync.Once
	headerErr  error
}

// ready sends the response header (once).
func (h *hijacker) ready() error {
	h.headerOnce.Do(func() {
		if _, err := io.WriteString(h.conn, h.header); err != nil {
			h.headerErr = fmt.Errorf("write upgrade response: %w", err)
		}
	})
	return h.headerErr
}

// streamsFunc is what the backend calls to hijack (backend.StreamsFunc).
func (h *hijacker) streamsFunc(wantOut, wantErr bool) backend.StreamsFunc {
	return func(tty bool) (backend.AttachStreams, error) {
		if h.conn != nil {
			return backend.AttachStreams{}, fmt.Errorf("streams requested twice")
		}
		// Unread request body bytes (e.g. the newline after exec start's
		// JSON) would otherwise reach the process as stdin after the hijack.
		if h.r.Body != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(h.r.Body, 1<<20))
		}
		conn, brw, err := http.NewResponseController(h.w).Hijack()
		if err != nil {
			return backend.AttachStreams{}, fmt.Errorf("hijack connection: %w", err)
		}
		if rw, ok := h.w.(*respWriter); ok {
			rw.hijacked = true
		}
		if !h.s.hijacked.add(conn) {
			_ = conn.Close()
			return backend.AttachStreams{}, fmt.Errorf("server shutting down")
		}
		h.conn, h.tty = conn, tty
		media := mediaMultiplexed
		if tty {
			media = mediaRaw
		}
		if h.r.Header.Get("Upgrade") != "" {
			h.header = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + media + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
		} else {
			h.header = "HTTP/1.1 200 OK\r\nContent-Type: " + media + "\r\n\r\n"
		}
		// Anything net/http buffered for writing goes first.
		if err := brw.Writer.Flush(); err != nil {
			return backend.AttachStreams{}, err
		}
		var mu sync.Mutex
		if err := h.ready(); err != nil {
			return backend.AttachStreams{}, err
		}
		w := conn
		if h.wantIn {
			h.streams.Stdin = &stdinReader{r: brw.Reader, conn: conn}
		}
		switch {
		case tty:
			out := &lockedWriter{mu: &mu, w: w}
			if wantOut {
				h.streams.Stdout = out
			}
			if wantErr {
				h.streams.Stderr = out
			}
		default:
			if wantOut {
				h.streams.Stdout = &stdWriter{mu: &mu, w: w, stream: streamStdout}
			}
			if wantErr {
				h.streams.Stderr = &stdWriter{mu: &mu, w: w, stream: streamStderr}
			}
		}
		return h.streams, nil
	}
}

// finish reports err in-stream if the connection was hijacked and closes
// it; it returns err when the response has not started (so the caller
// maps it to an HTTP status).
func (h *hijacker) finish(err error) error {
	if h.conn == nil {
		return err
	}
	if err != nil {
		h.s.log.Debug("stream ended with error", "path", h.r.URL.Path, "err", err)
		var out io.Writer = h.streams.Stderr
		if out == nil {
			out = h.streams.Stdout
		}
		if out != nil {
			_, _ = fmt.Fprintf(out, "Error: %v\n", err)
		}
	}
	_ = h.ready()
	h.s.hijacked.remove(h.conn)
	_ = h.conn.Close()
	return nil
}

// stdinReader reads the client's stdin after the request; EOF means the
// client half-closed (CloseWrite) or went away. Close stops reading
// without closing the connection (output may still flow).
type stdinReader struct {
	r    *bufio.Reader
	conn net.Conn
}

func (s *stdinReader) Read(p []byte) (int, error) { return s.r.Read(p) }

func (s *stdinReader) Close() error {
	if cr, ok := s.conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// stdWriter writes docker's multiplexed frames: an 8-byte header
// [stream, 0, 0, 0, size (uint32 big endian)] then size bytes.
type stdWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
}

func (s *stdWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	buf := appendFrame(make([]byte, 0, 8+len(p)), s.stream, p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

func appendFrame(buf []byte, stream byte, p []byte) []byte {
	var hdr [8]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	return append(append(buf, hdr[:]...), p...)
}
