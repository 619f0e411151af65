package monitor

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// startFork starts a fork-mode monitor; the test plays the daemon's part.
func startFork(t *testing.T) (*Process, string) {
	t.Helper()
	c := Config{
		Binary: testutil.Binary(t, "berth-monitor"), ID: "fork", Bundle: t.TempDir(),
		StateDir: t.TempDir(), LogPath: filepath.Join(t.TempDir(), "c-json.log"), Fork: true,
	}
	p, err := Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.sock >= 0 {
			p.Abort("test over")
		}
	})
	return p, c.LogPath
}

func openExe(t *testing.T, path string) int {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// The forked child is the monitor's: its output is logged, its exit
// recorded, and the fds lent with the request are its 3, 4, ….
func TestForkModeRunsChild(t *testing.T) {
	p, logPath := startFork(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sh := openExe(t, "/bin/sh")
	pid, err := p.Fork(sh, []string{"sh", "-c", `echo "fd3 $X" >&3; echo out; echo err >&2; exit 7`},
		[]string{"X=from-env"}, []int{int(w.Fd())}, 0)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Created(pid); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	n, _ := r.Read(b)
	if got := string(b[:n]); got != "fd3 from-env\n" {
		t.Fatalf("child's fd 3 got %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if code, ok := ExitStatus(p.StateDir); !ok || code != 7 {
		t.Fatalf("exit status %d %v, want 7", code, ok)
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), `"log":"out\n","stream":"stdout"`) || !strings.Contains(string(log), `"log":"err\n","stream":"stderr"`) {
		t.Fatalf("log %s", log)
	}
	if b, _ := os.ReadFile(filepath.Join(p.StateDir, "monitor.pid")); strings.TrimSpace(string(b)) != strconv.Itoa(p.Pid) {
		t.Fatalf("monitor.pid %q, want %d", b, p.Pid)
	}
}

// Clone flags reach the clone: in a new pid namespace the child is pid 1.
func TestForkModeCloneFlags(t *testing.T) {
	testutil.RequireRoot(t)
	p, logPath := startFork(t)
	pid, err := p.Fork(openExe(t, "/bin/sh"), []string{"sh", "-c", "echo pid=$$"}, nil, nil, unix.CLONE_NEWPID)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Created(pid); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if log, _ := os.ReadFile(logPath); !strings.Contains(string(log), `"log":"pid=1\n"`) {
		t.Fatalf("log %s", log)
	}
}

// A child that cannot be exec'd is an error of Fork, and Abort ends the
// monitor without an exit status.
func TestForkModeExecFailure(t *testing.T) {
	p, _ := startFork(t)
	dir := openExe(t, t.TempDir()) // a directory: execve fails with EACCES
	if _, err := p.Fork(dir, []string{"x"}, nil, nil, 0); err == nil || !strings.Contains(err.Error(), "exec container init") {
		t.Fatalf("Fork of a directory: %v", err)
	}
	p.Abort("create failed")
	if _, ok := ExitStatus(p.StateDir); ok {
		t.Fatal("an aborted monitor recorded an exit status")
	}
	if _, err := p.Fork(dir, []string{"x"}, nil, nil, 0); err == nil {
		t.Fatal("Fork after Abort succeeded")
	}
}
