package runtimecli

import (
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ttyRelay copies between our stdio and a container's pty master when `run`
// or `exec` has a terminal but no --console-socket.
type ttyRelay struct {
	mu     sync.Mutex
	master *os.File
	state  *term.State
	out    sync.WaitGroup
}

func (t *ttyRelay) attach(m *os.File) {
	t.mu.Lock()
	t.master = m
	t.mu.Unlock()
}

func (t *ttyRelay) start() {
	t.mu.Lock()
	m := t.master
	t.mu.Unlock()
	if m == nil {
		return
	}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		t.state, _ = term.MakeRaw(int(os.Stdin.Fd()))
		t.resize()
	}
	go func() { _, _ = io.Copy(m, os.Stdin) }()
	t.out.Add(1)
	go func() {
		defer t.out.Done()
		_, _ = io.Copy(os.Stdout, m)
	}()
}

func (t *ttyRelay) resize() {
	if t.master == nil {
		return
	}
	ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ)
	if err == nil {
		_ = unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// drain waits for the container's output to end (EIO once every slave
// fd is closed).
func (t *ttyRelay) drain() {
	if t.master != nil {
		t.out.Wait()
	}
}

func (t *ttyRelay) restore() {
	if t.state != nil {
		_ = term.Restore(int(os.Stdin.Fd()), t.state)
	}
}
