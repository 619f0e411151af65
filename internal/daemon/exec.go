package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/api/backend"
)

// execProc is one `docker exec`. The daemon is its parent (through the
// runtime's exec command), so unlike the container's init it does not
// survive a daemon restart, as with docker's shim-less exec streams.
type execProc struct {
	mu       sync.Mutex
	id       string
	c        *Container
	cfg      container.ExecCreateRequest
	running  bool
	started  bool
	exitCode *int
	pid      int
	pty      *os.File
	done     chan struct{}
}

// ExecCreate implements backend.ExecBackend.
func (d *Daemon) ExecCreate(ctx context.Context, id string, cfg container.ExecCreateRequest) (container.ExecCreateResponse, error) {
	c, err := d.ctrs.get(id)
	if err != nil {
		return container.ExecCreateResponse{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Status == container.StatePaused {
		return container.ExecCreateResponse{}, errMsg(errConflict, "Container %s is paused, unpause the container before exec", c.ID)
	}
	if !c.State.running() {
		return container.ExecCreateResponse{}, errMsg(errConflict, "container %s is not running", c.ID)
	}
	if len(cfg.Cmd) == 0 {
		return container.ExecCreateResponse{}, errMsg(errInvalid, "No exec command specified")
	}
	e := &execProc{id: newID(), c: c, cfg: cfg, done: make(chan struct{})}
	c.execs[e.id] = e
	d.execsMu.Lock()
	d.execs[e.id] = e
	d.execsMu.Unlock()
	d.containerEvent(c, events.Action("exec_create: "+strings.Join(cfg.Cmd, " ")), map[string]string{"execID": e.id})
	return container.ExecCreateResponse{ID: e.id}, nil
}

func (d *Daemon) getExec(id string) (*execProc, error) {
	d.execsMu.Lock()
	defer d.execsMu.Unlock()
	e, ok := d.execs[id]
	if !ok {
		return nil, errMsg(errdefs.ErrNotFound, "No such exec instance: %s", id)
	}
	return e, nil
}

// execProcess builds the process spec: the container's process with the
// exec's args, env, user, cwd and tty.
func (d *Daemon) execProcess(e *execProc) (*specs.Process, error) {
	b, err := os.ReadFile(filepath.Join(d.bundleDir(e.c.ID), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("exec: container spec: %w", err)
	}
	var sp specs.Spec
	if err := json.Unmarshal(b, &sp); err != nil {
		return nil, err
	}
	p := *sp.Process
	p.Args = e.cfg.Cmd
	p.Terminal = e.cfg.Tty
	p.ConsoleSize = nil
	env := append([]string{}, p.Env...)
	for _, kv := range e.cfg.Env {
		k, _, _ := strings.Cut(kv, "=")
		kept := env[:0]
		for _, old := range env {
			if ok, _, _ := strings.Cut(old, "="); ok != k {
				kept = append(kept, old)
			}
		}
		env = append(kept, kv)
	}
	p.Env = env
	if e.cfg.WorkingDir != "" {
		p.Cwd = e.cfg.WorkingDir
	}
	if e.cfg.User != "" {
		u, err := d.execUser(e.c, e.cfg.User) // execuser.go
		if err != nil {
			return nil, err
		}
		p.User = u
	}
	if e.cfg.Privileged && p.Capabilities != nil {
		all := allCaps()
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return &p, nil
}

func allCaps() []string {
	var out []string
	for i := 0; i <= 40; i++ {
		if n := capName(i); n != "" {
			out = append(out, n)
		}
	}
	return out
}

var capNames = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"}

func capName(i int) string {
	if i < len(capNames) {
		return capNames[i]
	}
	return ""
}

// ExecStart implements backend.ExecBackend.
func (d *Daemon) ExecStart(ctx context.Context, execID string, opts backend.ExecStartOptions) error {
	e, err := d.getExec(execID)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errMsg(errConflict, "Error: Exec command %s has already run", execID)
	}
	e.started = true
	e.mu.Unlock()
	c := e.c
	c.mu.Lock()
	running := c.State.running()
	c.mu.Unlock()
	if !running {
		return errMsg(errConflict, "container %s is not running", c.ID)
	}
	proc, err := d.execProcess(e)
	if err != nil {
		return d.execFailed(e, opts, err) // execuser.go: on the stream, exit 126, as docker
	}
	// A short directory: it holds the console socket (sun_path is 108 bytes).
	dir, err := os.MkdirTemp("", "berth-exec-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pb, _ := json.Marshal(proc)
	procFile := filepath.Join(dir, "process.json")
	if err := os.WriteFile(procFile, pb, 0o600); err != nil {
		return err
	}
	rt, rtArgs, err := d.runtimeFor(c.Runtime)
	if err != nil {
		return err
	}
	args := append(append([]string{}, rtArgs...), "--root", d.runtimeRoot(), "exec", "--process", procFile, "--pid-file", filepath.Join(dir, "pid"))
	var consoleL *net.UnixListener
	if e.cfg.Tty {
		sock := filepath.Join(dir, "console.sock")
		consoleL, err = net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return err
		}
		defer consoleL.Close()
		args = append(args, "--tty", "--console-socket", sock)
	}
	args = append(args, c.ID)
	// The runtime's exec waits for the process and exits with its status.
	cmd := exec.Command(rt, args...)
	var streams backend.AttachStreams
	if !opts.Detach && opts.Streams != nil {
		streams, err = opts.Streams(e.cfg.Tty)
		if err != nil {
			return err
		}
	}
	var stderrBuf strings.Builder
	var stdinPipe io.WriteCloser
	if !e.cfg.Tty {
		if e.cfg.AttachStdin && streams.Stdin != nil {
			stdinPipe, _ = cmd.StdinPipe()
		}
		if streams.Stdout != nil && e.cfg.AttachStdout {
			cmd.Stdout = streams.Stdout
		}
		if streams.Stderr != nil && e.cfg.AttachStderr {
			cmd.Stderr = io.MultiWriter(streams.Stderr, &stderrBuf)
		} else {
			cmd.Stderr = &stderrBuf
		}
	} else {
		cmd.Stderr = &stderrBuf
	}
	if err := cmd.Start(); err != nil {
		return errMsg(errdefs.ErrUnknown, "exec: %v", err)
	}
	e.mu.Lock()
	e.running = true
	e.mu.Unlock()
	d.containerEvent(c, events.Action("exec_start: "+strings.Join(e.cfg.Cmd, " ")), map[string]string{"execID": e.id})

	var copyWG sync.WaitGroup
	if e.cfg.Tty {
		pty, err := receivePty(consoleL, cmd)
		if err != nil {
			_ = cmd.Wait()
			return errMsg(errdefs.ErrUnknown, "exec: %v: %s", err, stderrBuf.String())
		}
		e.mu.Lock()
		e.pty = pty
		e.mu.Unlock()
		if opts.ConsoleSize != nil {
			_ = unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(opts.ConsoleSize[0]), Col: uint16(opts.ConsoleSize[1])})
		}
		if streams.Stdin != nil && e.cfg.AttachStdin {
			go func() { _, _ = io.Copy(pty, streams.Stdin) }()
		}
		copyWG.Add(1)
		go func() {
			defer copyWG.Done()
			if streams.Stdout != nil {
				_, _ = io.Copy(streams.Stdout, pty)
			} else {
				_, _ = io.Copy(io.Discard, pty)
			}
		}()
	} else if stdinPipe != nil {
		go func() {
			_, _ = io.Copy(stdinPipe, streams.Stdin)
			stdinPipe.Close()
		}()
	}
	if pb, err := os.ReadFile(filepath.Join(dir, "pid")); err == nil {
		fmt.Sscanf(string(pb), "%d", &e.pid)
	}
	waitErr := cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if code < 0 {
		code = 126
	}
	if e.pty != nil {
		copyWG.Wait()
		e.pty.Close()
	}
	e.mu.Lock()
	e.running = false
	e.exitCode = &code
	e.mu.Unlock()
	close(e.done)
	d.containerEvent(c, events.ActionExecDie, map[string]string{"execID": e.id, "exitCode": fmt.Sprint(code)})
	var ee *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &ee) {
		return waitErr
	}
	return nil
}

// receivePty accepts the runtime's connection on the console socket and
// takes the pty master it sends (SCM_RIGHTS).
func receivePty(l *net.UnixListener, cmd *exec.Cmd) (*os.File, error) {
	type res struct {
		f   *os.File
		err error
	}
	ch := make(chan res, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			ch <- res{nil, fmt.Errorf("no terminal received")}
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) == 0 {
			ch <- res{nil, fmt.Errorf("no terminal received")}
			return
		}
		ch <- res{os.NewFile(uintptr(fds[0]), "pty"), nil}
	}()
	r := <-ch
	return r.f, r.err
}

// ExecInspect implements backend.ExecBackend.
func (d *Daemon) ExecInspect(ctx context.Context, execID string) (container.ExecInspectResponse, error) {
	e, err := d.getExec(execID)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r := container.ExecInspectResponse{
		ID:          e.id,
		Running:     e.running,
		ExitCode:    e.exitCode,
		OpenStdin:   e.cfg.AttachStdin,
		OpenStdout:  e.cfg.AttachStdout,
		OpenStderr:  e.cfg.AttachStderr,
		ContainerID: e.c.ID,
		Pid:         e.pid,
		ProcessConfig: &container.ExecProcessConfig{
			Tty:        e.cfg.Tty,
			Entrypoint: e.cfg.Cmd[0],
			Arguments:  e.cfg.Cmd[1:],
			Privileged: &e.cfg.Privileged,
			User:       e.cfg.User,
		},
	}
	return r, nil
}

// ExecResize implements backend.ExecBackend.
func (d *Daemon) ExecResize(ctx context.Context, execID string, height, width uint) error {
	e, err := d.getExec(execID)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pty == nil {
		if !e.running {
			return errMsg(errConflict, "Exec %s is not running", execID)
		}
		return nil
	}
	return unix.IoctlSetWinsize(int(e.pty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(height), Col: uint16(width)})
}
