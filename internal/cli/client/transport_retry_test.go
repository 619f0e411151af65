package client

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
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
