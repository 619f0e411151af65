package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Message types on the init socket. 1-5 are spoken by nsexec.c (see the
// table there); the rest by the Go init once the C constructor is done:
//
//	parent (berth-runtime)                    child (Go init)
//	------------------------------------------------------------------------
//	CONFIG  json initConfig            ---->
//	                                   <----  HOOKS       (spec has prestart or
//	run prestart + createRuntime                           createRuntime hooks)
//	hooks, state on their stdin        ---->  HOOKS_DONE
//	                                   <----  CONSOLE     pty master (SCM_RIGHTS)
//	forward it to --console-socket
//	                                   <----  SECCOMP_FD  listener fd (SCM_RIGHTS)
//	send it + state to listenerPath
//	                                   <----  READY       set up; next the child
//	                                                      blocks on exec.fifo
//	                                   <----  ERROR text  (any step; child exits)
const (
	msgBootstrap  = 1
	msgUsermapReq = 2
	msgUsermapAck = 3
	msgChildPid   = 4
	msgError      = 5
	msgConfig     = 10
	msgHooks      = 11
	msgHooksDone  = 12
	msgConsole    = 13
	msgSeccompFd  = 14
	msgReady      = 15
)

// Records inside the BOOTSTRAP payload (nsexec.c).
const (
	recCloneFlags = 1
	recNsPath     = 2
	recTimens     = 3
	recPlan       = 4 // the C init's plan (plan.go, cinit.c)
)

type msg struct {
	typ  uint32
	data []byte
	fd   int // received with SCM_RIGHTS, -1 if none
}

// sendMsg writes one framed message; fd >= 0 travels with it.
func sendMsg(sock *os.File, typ uint32, data []byte, fd int) error {
	if fd < 0 {
		return sendParts(sock, typ, nil, data)
	}
	buf := make([]byte, 8+len(data))
	binary.NativeEndian.PutUint32(buf[0:], typ)
	binary.NativeEndian.PutUint32(buf[4:], uint32(len(data)))
	copy(buf[8:], data)
	if fd >= 0 {
		rc, err := sock.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = rc.Write(func(s uintptr) bool {
			serr = unix.Sendmsg(int(s), buf[:8], unix.UnixRights(fd), nil, 0)
			return serr != unix.EAGAIN
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
		buf = buf[8:]
	}
	_, err := sock.Write(buf)
	return err
}

// sendParts writes one framed message whose payload is head then tail: the
// header and head in one write, and a large tail (a plan, a spec) in a
// second one instead of copied behind them into fresh memory.
func sendParts(sock *os.File, typ uint32, head, tail []byte) error {
	n := len(head)
	if len(tail) <= 4096 {
		n += len(tail)
	}
	buf := make([]byte, 8, 8+n)
	binary.NativeEndian.PutUint32(buf[0:], typ)
	binary.NativeEndian.PutUint32(buf[4:], uint32(len(head)+len(tail)))
	buf = append(buf, head...)
	if len(tail) <= 4096 {
		_, err := sock.Write(append(buf, tail...))
		return err
	}
	if _, err := sock.Write(buf); err != nil {
		return err
	}
	_, err := sock.Write(tail)
	return err
}

// recvMsg reads one framed message. The header is read with recvmsg so that
// a passed fd is picked up.
func recvMsg(sock *os.File) (msg, error) {
	m := msg{fd: -1}
	hdr := make([]byte, 8)
	oob := make([]byte, unix.CmsgSpace(4))
	rc, err := sock.SyscallConn()
	if err != nil {
		return m, err
	}
	got := 0
	for got < 8 {
		var n, oobn int
		var rerr error
		err = rc.Read(func(s uintptr) bool {
			n, oobn, _, _, rerr = unix.Recvmsg(int(s), hdr[got:], oob, unix.MSG_CMSG_CLOEXEC)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return m, err
		}
		if n == 0 {
			return m, io.EOF
		}
		if oobn > 0 {
			if cms, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil && len(cms) > 0 {
				if fds, perr := unix.ParseUnixRights(&cms[0]); perr == nil && len(fds) > 0 {
					m.fd = fds[0]
				}
			}
		}
		got += n
	}
	m.typ = binary.NativeEndian.Uint32(hdr[0:])
	n := binary.NativeEndian.Uint32(hdr[4:])
	if n > 64<<20 {
		return m, fmt.Errorf("init socket: message of %d bytes", n)
	}
	m.data = make([]byte, n)
	if _, err := io.ReadFull(sock, m.data); err != nil {
		return m, err
	}
	return m, nil
}

// expect reads the next message and turns ERROR into an error.
func expect(sock *os.File, want uint32) (msg, error) {
	m, err := recvMsg(sock)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return m, errors.New("container init exited before reporting")
		}
		return m, err
	}
	if m.typ == msgError {
		return m, errors.New(string(m.data))
	}
	if want != 0 && m.typ != want {
		return m, fmt.Errorf("init socket: got message %d, want %d", m.typ, want)
	}
	return m, nil
}

func appendRecord(b []byte, kind uint32, val []byte) []byte {
	b = binary.NativeEndian.AppendUint32(b, kind)
	b = binary.NativeEndian.AppendUint32(b, uint32(len(val)))
	return append(b, val...)
}
