package seccomp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Kernel tests load real filters. A filter cannot be removed, so each case
// runs in a child: the test binary re-executed with BERTH_SECCOMP_CHILD set,
// which locks its main goroutine to a thread, sets no_new_privs, loads, makes
// syscalls and prints key=value lines for the parent to check.

const childEnv = "BERTH_SECCOMP_CHILD"

func TestMain(m *testing.M) {
	if c := os.Getenv(childEnv); c != "" {
		os.Exit(child(c))
	}
	os.Exit(m.Run())
}

func skipWithoutSeccomp(t testing.TB) {
	t.Helper()
	a := uint32(retAllow)
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&a))); e != 0 {
		t.Skipf("needs seccomp filters in the kernel: seccomp(GET_ACTION_AVAIL): %v", e)
	}
}

func runChild(t *testing.T, name string) (map[string]string, *exec.ExitError) {
	t.Helper()
	skipWithoutSeccomp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("child %s: %v", name, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("child %s timed out; stderr:\n%s", name, stderr.String())
	}
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		kv[k] = v
	}
	if kv["error"] != "" {
		t.Fatalf("child %s: %s\nstderr:\n%s", name, kv["error"], stderr.String())
	}
	if ee != nil && ee.ExitCode() == 1 {
		t.Logf("child stderr:\n%s", stderr.String())
	}
	return kv, ee
}

func expect(t *testing.T, kv map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if kv[k] != v {
			t.Errorf("%s = %q, want %q", k, kv[k], v)
		}
	}
}

func TestKernelErrnoAndArgs(t *testing.T) {
	kv, ee := runChild(t, "errno")
	if ee != nil {
		t.Fatalf("child failed: %v", ee)
	}
	expect(t, kv, map[string]string{
		"mkdir":           "EPERM",
		"chdir":           "ENOMEDIUM",
		"getpid":          "ok",
		"getprio_process": "ok",
		"getprio_pgrp":    "EXDEV",
		"lseek_small":     "ok",
		"lseek_hi":        "EDOM",
		"lseek_lo_only":   "ok",
		"seccomp_mode":    "2",
	})
}

func TestKernelDockerDefault(t *testing.T) {
	kv, ee := runChild(t, "docker")
	if ee != nil {
		t.Fatalf("child failed: %v", ee)
	}
	expect(t, kv, map[string]string{
		"mount":          "EPERM",
		"unshare_user":   "EPERM",
		"kexec_load":     "EPERM",
		"clone3":         "ENOSYS",
		"socket_vsock":   "EPERM",
		"socket_inet":    "ok",
		"personality":    "ok",
		"read":           "ok",
		"personality_22": "EPERM",
	})
}

func TestKernelNotify(t *testing.T) {
	kv, ee := runChild(t, "notify")
	if ee != nil {
		t.Fatalf("child failed: %v", ee)
	}
	expect(t, kv, map[string]string{"listener": "ok", "notif_nr": fmt.Sprint(unix.SYS_GETPPID), "getppid": "4242"})
}

func TestKernelKillProcess(t *testing.T) {
	kv, ee := runChild(t, "kill")
	if kv["loaded"] != "ok" {
		t.Fatalf("filter not loaded: %v", kv)
	}
	if kv["after"] != "" {
		t.Fatalf("process survived SCMP_ACT_KILL_PROCESS: %v", kv)
	}
	if ee == nil {
		t.Fatal("child exited 0")
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("child ended with %v, want SIGSYS", ee)
	}
}

func TestKernelFlags(t *testing.T) {
	kv, ee := runChild(t, "flags")
	if ee != nil {
		t.Fatalf("child failed: %v", ee)
	}
	for _, k := range []string{"log_spec_allow", "tsync", "wait_killable_recv"} {
		if v := kv[k]; v != "ok" && !strings.HasPrefix(v, "unsupported") {
			t.Errorf("%s: %s", k, v)
		} else if v != "ok" {
			t.Logf("%s: %s (kernel too old)", k, v)
		}
	}
}

// ---- child side ----

func ename(err error) string {
	if err == nil {
		return "ok"
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	return err.Error()
}

func rawErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func load(s *specs.LinuxSeccomp) (int, error) {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, err
	}
	p, err := Compile(s, nil)
	if err != nil {
		return -1, err
	}
	return Load(p)
}

func child(name string) int {
	runtime.LockOSThread()
	out := func(k, v string) { fmt.Printf("%s=%s\n", k, v) }
	fail := func(err error) int { out("error", err.Error()); return 1 }
	dir, err := os.MkdirTemp("", "seccomp-test")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)

	switch name {
	case "errno":
		_, err := load(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno},
			{Names: []string{"chdir"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOMEDIUM))},
			{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV)),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: unix.PRIO_PGRP, Op: specs.OpEqualTo}}},
			// 64-bit offset: only values with a high half are refused.
			{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EDOM)),
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: 1 << 32, Op: specs.OpGreaterEqual}}},
		}})
		if err != nil {
			return fail(err)
		}
		out("mkdir", ename(unix.Mkdir(dir+"/x", 0o755)))
		out("chdir", ename(unix.Chdir(dir)))
		out("getpid", map[bool]string{true: "ok", false: "bad"}[unix.Getpid() == os.Getpid()])
		_, err = unix.Getpriority(unix.PRIO_PROCESS, 0)
		out("getprio_process", ename(err))
		_, err = unix.Getpriority(unix.PRIO_PGRP, 0)
		out("getprio_pgrp", ename(err))
		f, err := os.Create(dir + "/f")
		if err != nil {
			return fail(err)
		}
		fd := int(f.Fd())
		_, err = unix.Seek(fd, 5, 0)
		out("lseek_small", ename(err))
		_, err = unix.Seek(fd, 1<<32+5, 0)
		out("lseek_hi", ename(err))
		_, err = unix.Seek(fd, 0xfffffff0, 0) // low half large, high half 0
		out("lseek_lo_only", ename(err))
		st, _ := os.ReadFile("/proc/thread-self/status")
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "Seccomp:"); ok {
				out("seccomp_mode", strings.TrimSpace(v))
			}
		}
	case "docker":
		if _, err := load(DefaultProfile()); err != nil {
			return fail(err)
		}
		out("mount", ename(unix.Mount("none", dir, "tmpfs", 0, "")))
		out("unshare_user", ename(unix.Unshare(unix.CLONE_NEWUSER)))
		_, _, e := unix.RawSyscall(unix.SYS_KEXEC_LOAD, 0, 0, 0)
		out("kexec_load", ename(rawErr(e)))
		_, _, e = unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
		out("clone3", ename(rawErr(e)))
		s, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
		out("socket_vsock", ename(err))
		if err == nil {
			unix.Close(s)
		}
		s, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		out("socket_inet", ename(err))
		if err == nil {
			unix.Close(s)
		}
		_, _, e = unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
		out("personality", ename(rawErr(e)))
		_, _, e = unix.RawSyscall(unix.SYS_PERSONALITY, 22, 0, 0)
		out("personality_22", ename(rawErr(e)))
		b, err := os.ReadFile("/proc/self/stat")
		if err == nil && len(b) == 0 {
			err = errors.New("empty read")
		}
		out("read", ename(err))
	case "notify":
		fd, err := load(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/unused",
			Flags:    []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}}})
		if err != nil {
			return fail(err)
		}
		if fd < 0 {
			return fail(fmt.Errorf("no listener fd: %d", fd))
		}
		out("listener", "ok")
		// Answer the notification from another goroutine (thread).
		got := make(chan uint32, 1)
		go func() {
			var req struct {
				ID    uint64
				Pid   uint32
				Flags uint32
				Nr    int32
				Arch  uint32
				IP    uint64
				Args  [6]uint64
			}
			for {
				_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req)))
				if e == unix.EINTR {
					continue
				}
				if e != 0 {
					got <- 0
					return
				}
				break
			}
			got <- uint32(req.Nr)
			resp := struct {
				ID    uint64
				Val   int64
				Error int32
				Flags uint32
			}{ID: req.ID, Val: 4242}
			unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
		}()
		r, _, _ := unix.Syscall(unix.SYS_GETPPID, 0, 0, 0)
		out("notif_nr", fmt.Sprint(<-got))
		out("getppid", fmt.Sprint(r))
	case "kill":
		if _, err := load(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActKillProcess}}}); err != nil {
			return fail(err)
		}
		out("loaded", "ok")
		os.Stdout.Sync()
		unix.Getppid()
		out("after", "survived")
	case "flags":
		try := func(key string, s *specs.LinuxSeccomp) {
			p, err := Compile(s, nil)
			if errors.Is(err, ErrUnsupported) {
				out(key, "unsupported: "+err.Error())
				return
			}
			if err == nil {
				_, err = Load(p)
			}
			out(key, ename(err))
		}
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fail(err)
		}
		allow := specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"acct"}, Action: specs.ActErrno}}}
		s := allow
		s.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}
		try("log_spec_allow", &s)
		s = allow
		s.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"}
		try("tsync", &s)
		s = allow
		s.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}
		s.ListenerPath = "/unused"
		s.Syscalls = []specs.LinuxSyscall{{Names: []string{"acct"}, Action: specs.ActNotify}}
		try("wait_killable_recv", &s)
	default:
		return fail(fmt.Errorf("unknown child %q", name))
	}
	return 0
}
