package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// lockedBuffer collects what the terminal shows.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func isRaw(f *os.File) bool {
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil && tio.Lflag&(unix.ICANON|unix.ECHO) == 0
}

// TestRunInteractiveTTY drives `berth run -it` through a pseudo-terminal
// against a fake daemon whose container echoes its input: the terminal goes
// raw, the size is sent at start and on SIGWINCH, keystrokes round-trip,
// and ctrl-p ctrl-q detaches with exit status 0 and the terminal restored.
func TestRunInteractiveTTY(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("needs a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 100}); err != nil {
		t.Fatal(err)
	}

	f := newFakeDaemon(t)
	f.json("POST /containers/create", 201, map[string]any{"Id": testID})
	done := make(chan struct{})
	defer close(done)
	var rawDuringSession bool
	var rawMu sync.Mutex
	f.handle("POST /containers/{id}/attach", func(w http.ResponseWriter, r *http.Request) {
		conn, _ := hijack(t, w)
		if conn == nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 256)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				rawMu.Lock()
				rawDuringSession = isRaw(tty)
				rawMu.Unlock()
				// A tty container's output is the raw stream, no frames.
				_, _ = conn.Write([]byte("echo:" + string(buf[:n])))
			}
			if err != nil {
				return
			}
		}
	})
	f.handle("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-done:
		case <-r.Context().Done():
		}
	})
	f.handle("POST /containers/{id}/start", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	var mu sync.Mutex
	var resizes []string
	f.handle("POST /containers/{id}/resize", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		resizes = append(resizes, r.URL.RawQuery)
		mu.Unlock()
		w.WriteHeader(200)
	})
	hasResize := func(q string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range resizes {
				if r == q {
					return true
				}
			}
			return false
		}
	}

	screen := &lockedBuffer{}
	go func() {
		b := make([]byte, 1024)
		for {
			n, err := ptmx.Read(b)
			if n > 0 {
				_, _ = screen.Write(b[:n])
			}
			if err != nil {
				return
			}
		}
	}()

	var stderr lockedBuffer
	codeCh := make(chan int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		codeCh <- Run(ctx, []string{"run", "-it", "busybox", "sh"}, tty, tty, &stderr)
	}()

	eventually(t, "initial resize h=40 w=100", hasResize("h=40&w=100"))
	var body struct {
		Tty, OpenStdin, AttachStdin bool
		HostConfig                  struct{ ConsoleSize [2]uint }
	}
	_ = json.Unmarshal(f.body("POST /containers/create"), &body)
	if !body.Tty || !body.OpenStdin || !body.AttachStdin || body.HostConfig.ConsoleSize != [2]uint{40, 100} {
		t.Errorf("create body %+v", body)
	}

	if _, err := ptmx.Write([]byte("ls\r")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "echoed keystrokes", func() bool { return strings.Contains(screen.String(), "echo:ls\r") })
	rawMu.Lock()
	if !rawDuringSession {
		t.Error("terminal was not in raw mode while attached")
	}
	rawMu.Unlock()

	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 50, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGWINCH)
	eventually(t, "resize after SIGWINCH", hasResize("h=50&w=120"))

	before := screen.String()
	if _, err := ptmx.Write([]byte{0x10, 0x11}); err != nil { // ctrl-p ctrl-q
		t.Fatal(err)
	}
	select {
	case code := <-codeCh:
		if code != 0 {
			t.Errorf("detach exit status %d (stderr %q), want 0", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ctrl-p ctrl-q did not detach")
	}
	time.Sleep(50 * time.Millisecond)
	if after := screen.String(); strings.Contains(after[len(before):], "echo:") {
		t.Errorf("detach keys were sent to the container: %q", after[len(before):])
	}
	if isRaw(tty) {
		t.Error("terminal left in raw mode after detach")
	}
	if stderr.String() != "" {
		t.Errorf("stderr %q", stderr.String())
	}
}

// TestPullProgressOnTerminal checks that pull redraws per-layer lines with
// cursor movement on a terminal, and prints plain lines otherwise.
func TestPullProgressOnTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("needs a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	_ = pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 100})
	f := newFakeDaemon(t)
	f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		for _, m := range []string{
			`{"status":"Pulling from library/busybox","id":"latest"}`,
			`{"status":"Pulling fs layer","progressDetail":{},"id":"aaaa"}`,
			`{"status":"Pulling fs layer","progressDetail":{},"id":"bbbb"}`,
			`{"status":"Downloading","progressDetail":{"current":50,"total":100},"progress":"[=====>     ]","id":"aaaa"}`,
			`{"status":"Pull complete","progressDetail":{},"id":"aaaa"}`,
			`{"status":"Pull complete","progressDetail":{},"id":"bbbb"}`,
			`{"status":"Status: Downloaded newer image for busybox:latest"}`,
		} {
			_, _ = w.Write([]byte(m + "\n"))
		}
	})
	screen := &lockedBuffer{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			if n > 0 {
				_, _ = screen.Write(b[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	var stderr bytes.Buffer
	code := Run(context.Background(), []string{"pull", "busybox"}, strings.NewReader(""), tty, &stderr)
	if code != 0 {
		t.Fatalf("pull: %d %q", code, stderr.String())
	}
	eventually(t, "final reference line", func() bool { return strings.Contains(screen.String(), "docker.io/library/busybox:latest") })
	if s := screen.String(); !strings.Contains(s, "\x1b[") || !strings.Contains(s, "aaaa: Pull complete") {
		t.Errorf("no cursor movement in terminal output: %q", s)
	}
	r := runCLI(t, "", "pull", "busybox")
	if strings.Contains(r.out, "\x1b[") || !strings.HasPrefix(r.out, "Using default tag: latest\n") || !strings.Contains(r.out, "aaaa: Pull complete\n") || !strings.HasSuffix(r.out, "docker.io/library/busybox:latest\n") {
		t.Errorf("plain pull output: %q", r.out)
	}
	r = runCLI(t, "", "pull", "-q", "busybox")
	if r.out != "docker.io/library/busybox:latest\n" {
		t.Errorf("pull -q: %q", r.out)
	}
}

// TestStatsLiveRedraw checks that streaming stats on a terminal clears and
// redraws the table for each refresh.
func TestStatsLiveRedraw(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("needs a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	f := newFakeDaemon(t)
	f.handle("GET /containers/{id}/stats", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 3; i++ {
			writeJSONLine(w, map[string]any{"id": testID, "name": "/web", "pids_stats": map[string]any{"current": i + 1}})
			w.(http.Flusher).Flush()
			time.Sleep(200 * time.Millisecond)
		}
	})
	screen := &lockedBuffer{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			if n > 0 {
				_, _ = screen.Write(b[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if code := Run(ctx, []string{"stats", "web"}, strings.NewReader(""), tty, &bytes.Buffer{}); code != 0 {
		t.Fatalf("stats exit %d", code)
	}
	eventually(t, "redraws", func() bool { return strings.Count(screen.String(), "\x1b[2J\x1b[H") >= 2 })
	s := screen.String()
	if !strings.Contains(s, "CONTAINER ID   NAME") || !strings.Contains(s, "web") {
		t.Errorf("stats screen %q", s)
	}
	if i := strings.LastIndex(s, "\x1b[2J\x1b[H"); !strings.Contains(s[i:], "   3\r\n") {
		t.Errorf("last frame does not show the latest sample: %q", s[i:])
	}
}

func writeJSONLine(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	_, _ = w.Write(append(b, '\n'))
}

// TestExecInteractiveTTY resizes the exec (not the container) and exits
// with the exec's status.
func TestExecInteractiveTTY(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("needs a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	_ = pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 80})
	f := newFakeDaemon(t)
	f.json("POST /containers/web/exec", 201, map[string]string{"Id": "ex1"})
	f.handle("POST /exec/ex1/start", func(w http.ResponseWriter, r *http.Request) {
		conn, _ := hijack(t, w)
		if conn == nil {
			return
		}
		defer conn.Close()
		b := make([]byte, 16)
		n, _ := conn.Read(b)
		_, _ = conn.Write([]byte("got:" + string(b[:n])))
	})
	f.handle("POST /exec/ex1/resize", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) })
	f.json("GET /exec/ex1/json", 200, map[string]any{"ExitCode": 42})
	go func() {
		b := make([]byte, 1024)
		for {
			if _, err := ptmx.Read(b); err != nil {
				return
			}
		}
	}()
	eventuallyWrite := func() {
		for !f.seen("POST /exec/ex1/start") {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		_, _ = ptmx.Write([]byte("x"))
	}
	go eventuallyWrite()
	code := Run(context.Background(), []string{"exec", "-it", "web", "sh"}, tty, tty, &bytes.Buffer{})
	if code != 42 {
		t.Errorf("exec -it exit %d, want 42", code)
	}
	if q := f.query("POST /exec/ex1/resize"); q != "h=24&w=80" {
		t.Errorf("exec resize query %q", q)
	}
	var body struct {
		Tty, AttachStdin bool
		ConsoleSize      []uint
	}
	_ = json.Unmarshal(f.body("POST /containers/web/exec"), &body)
	if !body.Tty || !body.AttachStdin || len(body.ConsoleSize) != 2 || body.ConsoleSize[0] != 24 {
		t.Errorf("exec create body %s", f.body("POST /containers/web/exec"))
	}
}
