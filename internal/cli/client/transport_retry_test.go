package client

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A POST fully written on a reused connection that then ends without an
// answer may have been processed (a handler that panicked, a daemon that
// died after the create): it must not be sent again. A GET may.
func TestTransportNoResendOfProcessedPost(t *testing.T) {
	for _, tc := range []struct {
		method     string
		wantResent bool
	}{{"POST", false}, {"DELETE", false}, {"GET", true}} {
		t.Run(tc.method, func(t *testing.T) {
			var seen atomic.Int32
			sock := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if req.URL.Path == "/_ping" {
						_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
						continue
					}
					if seen.Add(1) == 1 {
						return // processed, then the connection ends unanswered
					}
					_, _ = io.WriteString(c, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
				}
			})
			tr := unixTransport(sock)
			defer tr.closeIdle()
			resp, err := do(context.Background(), t, tr, "GET", "/_ping", nil)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp) // the connection goes back to the pool
			var body io.Reader
			if tc.method == "POST" {
				body = strings.NewReader(`{"Image":"busybox"}`)
			}
			resp, err = do(context.Background(), t, tr, tc.method, "/containers/create", body)
			if err == nil {
				readAll(t, resp)
			}
			if resent := seen.Load() > 1; resent != tc.wantResent {
				t.Fatalf("%s seen %d times by the daemon (err %v), want resent=%v", tc.method, seen.Load(), err, tc.wantResent)
			}
			if !tc.wantResent && err == nil {
				t.Fatalf("%s: no error for a request left unanswered", tc.method)
			}
		})
	}
}

// A POST on an idle connection the daemon closed meanwhile goes over a new
// connection (and is sent once). Over tcp, where writing to a connection
// the peer closed succeeds: only a probe before the write can tell.
func TestTransportPostAfterIdleCloseTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var posts, conns atomic.Int32
	closed := make(chan struct{}, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n := conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				if req.Method == "POST" {
					posts.Add(1)
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"+string(rune('0'+n)))
				// one request per connection, closed without saying so
				_ = c.(*net.TCPConn).CloseWrite()
				_, _ = io.Copy(io.Discard, br)
				closed <- struct{}{}
			}()
		}
	}()
	tr := &transport{maxIdle: 4, dial: func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", l.Addr().String())
	}}
	defer tr.closeIdle()
	resp, err := do(context.Background(), t, tr, "GET", "/_ping", nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	waitFIN(t, tr)
	resp, err = do(context.Background(), t, tr, "POST", "/containers/create", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("POST after the daemon closed the idle connection: %v", err)
	}
	if got := readAll(t, resp); got != "2" || posts.Load() != 1 {
		t.Fatalf("answered by connection %q, POST seen %d times; want connection 2, once", got, posts.Load())
	}
}

// waitFIN waits until the pooled connection has the daemon's FIN to read.
func waitFIN(t *testing.T, tr *transport) {
	t.Helper()
	tr.mu.Lock()
	pc := tr.idle[len(tr.idle)-1]
	tr.mu.Unlock()
	rc, err := pc.Conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		eof := false
		_ = rc.Read(func(fd uintptr) bool {
			var b [1]byte
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			eof = n == 0 && err == nil
			return true
		})
		if eof {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("no FIN from the server")
}
