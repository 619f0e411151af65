package monitor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Fork mode (monitor.c, "Fork mode"): the daemon creates the container with
// berth's runtime in its own process, and the monitor only forks the init,
// so that the init is the monitor's child. This saves the runtime process
// that create otherwise starts per container: on a machine where a Go
// process costs 15 ms to start, most of create.

// startForkMode starts a monitor that waits for Fork requests on a
// SOCK_SEQPACKET socket (one message per packet, fds with SCM_RIGHTS).
func startForkMode(c Config, args []string) (*Process, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	p, err := startMonitor(c, args, os.NewFile(uintptr(fds[1]), "monitor-sync"))
	if err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	p.sock = fds[0]
	return p, nil
}

// Fork has the monitor clone and exec the container's init; it has the
// signature of runtime.CreateOpts.Fork. exe and files are only lent: the
// monitor gets its own copies.
func (p *Process) Fork(exe int, argv, env []string, files []int, cloneFlags uintptr) (int, error) {
	if p.sock < 0 {
		return 0, errors.New("monitor: not in fork mode")
	}
	msg := []byte{'F'}
	msg = binary.NativeEndian.AppendUint64(msg, uint64(cloneFlags))
	msg = binary.NativeEndian.AppendUint32(msg, uint32(len(argv)))
	msg = binary.NativeEndian.AppendUint32(msg, uint32(len(env)))
	for _, s := range append(append([]string{}, argv...), env...) {
		msg = append(append(msg, s...), 0)
	}
	if err := unix.Sendmsg(p.sock, msg, unix.UnixRights(append([]int{exe}, files...)...), nil, 0); err != nil {
		return 0, fmt.Errorf("monitor: fork request: %w", err)
	}
	buf := make([]byte, 1024)
	n, _, _, _, err := unix.Recvmsg(p.sock, buf, nil, 0)
	for err == unix.EINTR {
		n, _, _, _, err = unix.Recvmsg(p.sock, buf, nil, 0)
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("monitor: fork reply: %w", err)
	case n == 0:
		return 0, errors.New("monitor exited before forking the container init")
	case buf[0] == 'P':
		pid, err := strconv.Atoi(string(buf[1:n]))
		if err != nil || pid <= 0 {
			return 0, fmt.Errorf("monitor: bad fork reply %q", buf[:n])
		}
		return pid, nil
	case buf[0] == 'X':
		return 0, errors.New(string(buf[1:n]))
	}
	return 0, fmt.Errorf("monitor: bad fork reply %q", buf[:n])
}

// SendConsole hands the container's pty master to the monitor (a terminal
// container), then closes it here; it has the signature of
// runtime.CreateOpts.OnConsole. A failure shows in Created.
func (p *Process) SendConsole(master *os.File) {
	defer master.Close()
	if p.sock >= 0 {
		_ = unix.Sendmsg(p.sock, []byte{'C'}, unix.UnixRights(int(master.Fd())), nil, 0)
	}
}

// Created tells the monitor the container is created with init pid; the
// monitor then holds it as in the usual mode.
func (p *Process) Created(pid int) error {
	p.InitPid = pid
	err := p.say("O" + strconv.Itoa(pid))
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	return nil
}

// Abort tells the monitor creation failed (it exits) and waits for it.
func (p *Process) Abort(reason string) {
	_ = p.say("E" + reason)
	p.reap()
}

func (p *Process) say(msg string) error {
	if p.sock < 0 {
		return errors.New("not in fork mode")
	}
	err := unix.Sendmsg(p.sock, []byte(msg), nil, nil, 0)
	unix.Close(p.sock)
	p.sock = -1
	return err
}
