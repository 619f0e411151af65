// Package monitor starts and talks to berth-monitor, the small C program that
// holds one container's stdio for its whole life (see cmonitor/monitor.c for
// the files it keeps in its state directory and the attach protocol).
//
// The daemon starts one monitor per container; the monitor runs the OCI
// runtime's create as a child subreaper, so the container's init becomes its
// child. The monitor writes the log file, serves attach clients and records
// the exit status, so that the daemon can be stopped or killed without losing
// a container or a log line: a restarted daemon finds the monitor through
// monitor.pid and waits on it with a pidfd.
package monitor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Attach flags, the first byte a client sends on attach.sock.
const (
	AttachStdin  = 1
	AttachStdout = 2
	AttachStderr = 4
)

// Config is what one monitor needs to create and hold a container.
type Config struct {
	Binary      string // path of berth-monitor
	ID          string
	Bundle      string
	StateDir    string // created if missing; holds pid, exit, attach.sock, ctl
	Runtime     string // OCI runtime binary (berth-runtime, runc, crun)
	RuntimeRoot string // --root for the runtime; "" for its default
	LogPath     string // json-file log; "" for the none driver
	LogMaxSize  int64  // rotate at this size; 0 = never
	LogMaxFiles int    // files kept when rotating (>= 1)
	LogCompress bool   // gzip rotated files (FILE.1.gz …), docker's compress=true
	Terminal    bool
	Stdin       bool // keep stdin open (docker run -i)
	StdinOnce   bool // close stdin when the first attached writer closes
	// Fork starts the monitor in fork mode: Start returns at once, and
	// the caller creates the container with berth's runtime in-process,
	// having the monitor fork the init (Process.Fork), then reports the
	// outcome (Process.Created or Process.Abort). Runtime is then unused.
	Fork bool
}

// Process is a running monitor.
type Process struct {
	Pid      int // the monitor's pid
	InitPid  int // the container's init pid
	StateDir string
	cmd      *exec.Cmd
	reaped   sync.Once
	sock     int // fork mode: our end of the SEQPACKET socket, -1 after Created/Abort
}

// Start spawns a monitor, which creates the container through the runtime.
// It returns once the container is created (its init waits for the runtime's
// start) or creation failed, with the runtime's message.
func Start(ctx context.Context, c Config) (*Process, error) {
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return nil, err
	}
	for _, f := range []string{"exit", "pid"} {
		os.Remove(filepath.Join(c.StateDir, f))
	}
	args := []string{"-i", c.ID, "-b", c.Bundle, "-s", c.StateDir, "-y", "3"}
	if c.Fork {
		args = append(args, "-F")
	} else {
		args = append(args, "-r", c.Runtime)
	}
	if c.RuntimeRoot != "" {
		args = append(args, "-R", c.RuntimeRoot)
	}
	if c.LogPath != "" {
		args = append(args, "-l", c.LogPath)
		if c.LogMaxSize > 0 {
			args = append(args, "-m", strconv.FormatInt(c.LogMaxSize, 10))
		}
		if c.LogMaxFiles > 1 {
			args = append(args, "-n", strconv.Itoa(c.LogMaxFiles))
		}
		if c.LogCompress {
			args = append(args, "-z")
		}
	}
	if c.Terminal {
		args = append(args, "-t")
	}
	if c.Stdin {
		args = append(args, "-I")
	}
	if c.StdinOnce {
		args = append(args, "-O")
	}
	if c.Fork {
		return startForkMode(c, args)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p, err := startMonitor(c, args, w)
	if err != nil {
		return nil, err
	}

	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		done <- result{line, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		return nil, ctx.Err()
	}
	line := strings.TrimSpace(res.line)
	switch {
	case strings.HasPrefix(line, "ok "):
		p.InitPid, err = strconv.Atoi(strings.TrimPrefix(line, "ok "))
		if err != nil {
			return nil, fmt.Errorf("monitor: bad sync line %q", line)
		}
		return p, nil
	case strings.HasPrefix(line, "err "):
		p.reap()
		return nil, errors.New(strings.TrimPrefix(line, "err "))
	default:
		return nil, fmt.Errorf("monitor exited before creating the container: %v", p.reap())
	}
}

// startMonitor starts the monitor with sync as its fd 3.
func startMonitor(c Config, args []string, sync *os.File) (*Process, error) {
	// Not exec.CommandContext: the monitor must outlive the request, and the daemon.
	cmd := exec.Command(c.Binary, args...)
	cmd.ExtraFiles = []*os.File{sync}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err := cmd.Start()
	sync.Close()
	if err != nil {
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	return &Process{Pid: cmd.Process.Pid, StateDir: c.StateDir, cmd: cmd, sock: -1}, nil
}

// reap waits for a monitor we started (blocking) and returns how it ended;
// only once.
func (p *Process) reap() (err error) {
	p.reaped.Do(func() {
		if p.cmd != nil {
			err = p.cmd.Wait()
		}
	})
	return err
}

// Wait blocks until the monitor has exited (and so the container has exited
// and its exit status is recorded). The wait is on the netpoller (WaitPid),
// not a thread blocked in wait4 per running container; a monitor we started
// is reaped once it has exited.
func (p *Process) Wait(ctx context.Context) error {
	if err := WaitPid(ctx, p.Pid); err != nil {
		return err
	}
	p.reap()
	return nil
}

// Find returns the monitor recorded in stateDir, if it still runs. Used by a
// restarted daemon for monitors it did not start.
func Find(stateDir string) (*Process, bool) {
	b, err := os.ReadFile(filepath.Join(stateDir, "monitor.pid"))
	if err != nil {
		return nil, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil, false
	}
	// The pid must still be a berth-monitor, not a recycled pid.
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "berth-monitor" {
		return nil, false
	}
	p := &Process{Pid: pid, StateDir: stateDir, sock: -1}
	if b, err := os.ReadFile(filepath.Join(stateDir, "pid")); err == nil {
		p.InitPid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	return p, true
}

// WaitPid waits for any process (not only a child) to exit, with a pidfd
// on the runtime's netpoller: a daemon with a thousand containers waits
// for a thousand monitors without a thread (and its stack) each.
func WaitPid(ctx context.Context, pid int) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd") // non-blocking: registered with the netpoller
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	exited := false
	err = rc.Read(func(fd uintptr) bool {
		// A pidfd polls readable once the process has exited.
		n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		exited = n > 0
		return exited
	})
	switch {
	case exited:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("wait for pid %d: %w", pid, err)
}

// ExitStatus reads the recorded exit status; ok is false while the container
// has not exited (or its monitor died before recording it).
func ExitStatus(stateDir string) (code int, ok bool) {
	b, err := os.ReadFile(filepath.Join(stateDir, "exit"))
	if err != nil {
		return 0, false
	}
	code, err = strconv.Atoi(strings.TrimSpace(string(b)))
	return code, err == nil
}

// Attach connects to the container's stdio. The returned connection carries
// docker's multiplexed frames (no terminal) or raw bytes (terminal); writes
// go to the container's stdin when AttachStdin is set, and CloseWrite ends it.
func Attach(ctx context.Context, stateDir string, flags byte) (*net.UnixConn, error) {
	// Dial through an fd of the directory: sun_path holds only 108 bytes.
	dir, err := os.Open(stateDir)
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	defer dir.Close()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", fmt.Sprintf("/proc/self/fd/%d/attach.sock", dir.Fd()))
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	uc := c.(*net.UnixConn)
	if _, err := uc.Write([]byte{flags | attachAck}); err != nil {
		uc.Close()
		return nil, fmt.Errorf("attach: %w", err)
	}
	// Connected is not registered: the monitor reads the flags in its own
	// time, and output before that would miss this client. Its ack says
	// every later byte comes here. The deadline guards a monitor that
	// went away.
	_ = uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ack [1]byte
	if _, err := io.ReadFull(uc, ack[:]); err != nil {
		uc.Close()
		return nil, fmt.Errorf("attach: no acknowledgement from the monitor: %w", err)
	}
	_ = uc.SetReadDeadline(time.Time{})
	return uc, nil
}

// attachAck asks the monitor to acknowledge the attach (see monitor.c).
const attachAck = 16

// Resize sets the container terminal's size.
func Resize(stateDir string, rows, cols uint) error {
	return control(stateDir, fmt.Sprintf("r %d %d\n", rows, cols))
}

// CloseStdin closes the container's stdin.
func CloseStdin(stateDir string) error {
	return control(stateDir, "c\n")
}

func control(stateDir, line string) error {
	f, err := os.OpenFile(filepath.Join(stateDir, "ctl"), os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("monitor control: %w", err)
	}
	defer f.Close()
	_ = f.SetWriteDeadline(time.Now().Add(time.Second))
	_, err = f.WriteString(line)
	return err
}
