package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDaemon is a Docker Engine API server on a unix socket that records
// every request ("METHOD /path?query", version prefix stripped) and answers
// with canned docker JSON from per-test handlers.
type fakeDaemon struct {
	t      *testing.T
	sock   string
	mux    *http.ServeMux
	srv    *http.Server
	mu     sync.Mutex
	calls  []string
	bodies map[string][]byte
	called chan string
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)

func newFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "berthcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeDaemon{t: t, sock: filepath.Join(dir, "d.sock"), mux: http.NewServeMux(), bodies: map[string][]byte{}, called: make(chan string, 100)}
	f.mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Ostype", "linux")
		_, _ = w.Write([]byte("OK"))
	})
	l, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve)}
	go func() { _ = f.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = f.srv.Shutdown(ctx)
		_ = f.srv.Close()
	})
	t.Setenv("BERTH_HOST", "unix://"+f.sock)
	t.Setenv("BERTH_CONFIG", dir)
	return f
}

func (f *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	r.URL.Path = versionPrefix.ReplaceAllString(r.URL.Path, "")
	if r.URL.Path != "/_ping" {
		call := r.Method + " " + r.URL.Path
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.calls = append(f.calls, call)
		if os.Getenv("FAKE_DEBUG") != "" {
			f.t.Logf("%s %s", time.Now().Format("05.000"), call)
		}
		if r.URL.RawQuery != "" {
			f.bodies[call+"?"] = []byte(r.URL.RawQuery)
		}
		f.bodies[call] = body
		f.mu.Unlock()
		select {
		case f.called <- call:
		default:
		}
	}
	f.mux.ServeHTTP(w, r)
}

func (f *fakeDaemon) handle(pattern string, h http.HandlerFunc) { f.mux.HandleFunc(pattern, h) }

// json answers with a status and a JSON body.
func (f *fakeDaemon) json(pattern string, status int, body any) {
	f.handle(pattern, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, status, body) })
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (f *fakeDaemon) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeDaemon) body(call string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[call]
}

func (f *fakeDaemon) query(call string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.bodies[call+"?"])
}

// waitCall blocks until call has been seen (or a timeout).
func (f *fakeDaemon) seen(call string) bool {
	for _, c := range f.Calls() {
		if c == call {
			return true
		}
	}
	return false
}

func (f *fakeDaemon) waitFor(call string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f.seen(call) {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// hijack upgrades the request like dockerd's attach and exec start do.
func hijack(t *testing.T, w http.ResponseWriter) (net.Conn, *bufio.ReadWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Error("response writer cannot hijack")
		return nil, nil
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	_, _ = rw.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	_ = rw.Flush()
	return conn, rw
}

// frame encodes one stdcopy frame (1 = stdout, 2 = stderr).
func frame(stream byte, s string) []byte {
	hdr := make([]byte, 8)
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(s)))
	return append(hdr, s...)
}

type cliResult struct {
	out, err string
	code     int
}

// runCLI runs berth in-process against the fake daemon.
func runCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := Run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return cliResult{out: out.String(), err: errb.String(), code: code}
}

const testID = "4f66ad9a0b2e6f8d12cbe3b6b0e3b9a8c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1"
