package runtime

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Each test here attempts a known runtime escape and asserts it fails.

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// runtimeBinary builds cmd/berth-runtime once (or takes $BERTH_BIN's).
func runtimeBinary(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-rt-bin-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "berth-runtime")
		if b := os.Getenv("BERTH_BIN"); b != "" {
			if data, err := os.ReadFile(filepath.Join(b, "berth-runtime")); err == nil {
				cliErr = os.WriteFile(cliPath, data, 0o755)
				return
			}
		}
		out, err := exec.Command("go", "build", "-o", cliPath, "github.com/berth-dev/berth/cmd/berth-runtime").CombinedOutput()
		if err != nil {
			cliErr = err
			cliPath = string(out)
		}
	})
	if cliErr != nil {
		t.Skipf("cannot build berth-runtime: %v %s", cliErr, cliPath)
	}
	return cliPath
}

// CVE-2019-5736: a container process keeps an O_PATH fd of the runtime
// binary from /proc/<init>/exe and, once the runtime stops running it,
// reopens it for writing to overwrite the host binary.
func TestCVE2019_5736OverwriteRuntimeBinary(t *testing.T) {
	needRoot(t)
	for _, mode := range []string{"rodclone", "memfd"} {
		t.Run(mode, func(t *testing.T) {
			bin := runtimeBinary(t)
			before, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			b := newBundle(t, testSpec("sleep", "100"))
			id := testID(t)
			rt := func(args ...string) error {
				cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
				cmd.Env = append(os.Environ(), "BERTH_EXE_PROTECT="+mode)
				// a file, not a pipe: the container init keeps its stdio
				logf, err := os.CreateTemp(root, "out")
				if err != nil {
					return err
				}
				defer logf.Close()
				cmd.Stdout, cmd.Stderr = logf, logf
				if err := cmd.Run(); err != nil {
					out, _ := os.ReadFile(logf.Name())
					t.Logf("%v: %s", args, out)
					return err
				}
				return nil
			}
			if err := rt("create", "--bundle", b, "--pid-file", filepath.Join(root, "pid"), id); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rt("delete", "-f", id) }()
			pidb, _ := os.ReadFile(filepath.Join(root, "pid"))
			pid, _ := strconv.Atoi(string(pidb))
			attemptExeOverwrite(t, pid, func() error { return rt("start", id) }, bin, before)
		})
	}
}

// attemptExeOverwrite is CVE-2019-5736's attack on a created container whose
// init pid still runs the runtime's code: it keeps an O_PATH fd of
// /proc/<pid>/exe, starts the container, and once the init has exec'd the
// container's program reopens the fd for writing. The host binary bin
// must still hold before.
func attemptExeOverwrite(t *testing.T, pid int, start func() error, bin string, before []byte) {
	t.Helper()
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := start(); err != nil {
		t.Fatal(err)
	}
	// wait until the init has exec'd the container's sleep
	for i := 0; i < 500; i++ {
		if l, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); strings.HasSuffix(l, "busybox") {
			break
		}
		unixSleepMs(10)
	}
	// the init has exec'd sleep: no one runs the runtime binary any more
	w, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		_, werr := unix.Write(w, []byte("#!/bin/sh\necho pwned\n"))
		unix.Close(w)
		if werr == nil {
			t.Error("wrote through /proc/<init>/exe")
		}
	} else if err != unix.EROFS && err != unix.EPERM {
		t.Errorf("reopen for writing failed with %v: want EROFS (read-only clone) or EPERM (sealed copy)", err)
	}
	after, _ := os.ReadFile(bin)
	if !bytes.Equal(before, after) {
		t.Fatal("the runtime binary on the host was modified")
	}
}

// CVE-2019-5736 when the runtime runs in another process (the daemon):
// Runtime.Exe names the binary the init runs, and it gets the same
// read-only clone as /proc/self/exe does.
func TestCVE2019_5736InProcessExe(t *testing.T) {
	needRoot(t)
	bin := runtimeBinary(t)
	before, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runtime{Root: t.TempDir(), Exe: bin}
	b := newBundle(t, testSpec("sleep", "100"))
	id := testID(t)
	ctx := context.Background()
	pid, err := r.CreateInit(ctx, id, b, &CreateOpts{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Delete(ctx, id, true) }()
	if l, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); strings.HasSuffix(l, ".test") {
		t.Fatalf("the init runs the test binary (%s), not Runtime.Exe", l)
	}
	attemptExeOverwrite(t, pid, func() error { return r.Start(ctx, id) }, bin, before)
}

// CVE-2024-21626: a host directory fd leaked into the init and a cwd of
// /proc/self/fd/N pointing at it put the container process outside its root.
func TestCVE2024_21626LeakedFdAndCwd(t *testing.T) {
	needRoot(t)
	host := t.TempDir()
	// a host directory fd without O_CLOEXEC in the runtime's caller
	leak, err := unix.Open(host, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leak)
	for _, n := range []int{leak, 3, 4, 5, 6, 7, 8, 9} {
		s := sh(`pwd; touch escaped; ls ../../../../ | head -3`)
		s.Process.Cwd = "/proc/self/fd/" + strconv.Itoa(n)
		c, err := create(t, newBundle(t, s), nil)
		if err != nil {
			continue // refused at create: fine
		}
		out, code := c.startWait(t)
		if code == 0 && (strings.Contains(out, "unreachable") || !strings.HasPrefix(out, "/")) {
			t.Errorf("cwd /proc/self/fd/%d: container ran outside its root: %q", n, out)
		}
		if _, err := os.Stat(filepath.Join(host, "escaped")); err == nil {
			t.Fatalf("cwd /proc/self/fd/%d: container wrote into the host directory", n)
		}
	}
	// and no fd of the runtime (or the leaked one) reaches the container
	out, code := run(t, sh(`ls /proc/self/fd | tr '\n' ' '`))
	if code != 0 || out != "0 1 2 3 " {
		t.Errorf("container fds: %q (want 0 1 2 and ls's own 3)", out)
	}
}

// CVE-2021-30465 class: a mount destination that is a symlink pointing out
// of the rootfs must resolve inside it.
func TestCVE2021_30465MountTargetSymlink(t *testing.T) {
	needRoot(t)
	host := t.TempDir()
	s := sh(`grep -c " ` + host + `/sub .* tmpfs" /proc/self/mountinfo; ls ` + host + ` | wc -l`)
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/evil/sub", Type: "tmpfs", Source: "tmpfs"})
	b := newBundle(t, s)
	if err := os.Symlink("/../../../../../../.."+host, filepath.Join(b, "rootfs/evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "marker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := create(t, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, code := c.startWait(t)
	// inside: the symlink led to rootfs/<host>/sub, a tmpfs there, and the
	// host directory (with its marker) is not visible
	if code != 0 || out != "1\n1\n" {
		t.Fatalf("exit %d output %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(b, "rootfs", host, "sub")); err != nil {
		t.Errorf("mount target not created inside the rootfs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(host, "sub")); err == nil {
		t.Error("mount target created in the host directory")
	}
}

func TestMkdirInRootStaysInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink("../../../../../../.."+outside, filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	fd, err := mkdirInRoot(rfd, "/a/b/c", false)
	if err != nil {
		if err == unix.ENOSYS {
			t.Skip("no openat2")
		}
		t.Fatal(err)
	}
	unix.Close(fd)
	if _, err := os.Stat(filepath.Join(outside, "b")); err == nil {
		t.Fatal("mkdirInRoot followed a symlink out of the root")
	}
	if _, err := os.Stat(filepath.Join(root, outside, "b/c")); err != nil {
		t.Fatalf("not created inside the root: %v", err)
	}
}

// CVE-2019-19921 class: /proc overmounted (or made a symlink) so that the
// runtime's writes to /proc land in a file the container controls.
func TestCVE2019_19921FakeProc(t *testing.T) {
	needRoot(t)
	t.Run("bind over /proc/sys/kernel", func(t *testing.T) {
		fake := t.TempDir()
		if err := os.WriteFile(filepath.Join(fake, "domainname"), []byte("orig"), 0o644); err != nil {
			t.Fatal(err)
		}
		s := testSpec("true")
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc/sys/kernel", Type: "bind", Source: fake, Options: []string{"bind"}})
		s.Linux.Sysctl = map[string]string{"kernel.domainname": "x"}
		_, err := create(t, newBundle(t, s), nil)
		if err == nil || !strings.Contains(err.Error(), "not on procfs") {
			t.Fatalf("create = %v, want a refusal to write to a fake /proc", err)
		}
		if b, _ := os.ReadFile(filepath.Join(fake, "domainname")); string(b) != "orig" {
			t.Fatalf("fake /proc file written: %q", b)
		}
	})
	t.Run("/proc a symlink", func(t *testing.T) {
		s := testSpec("true")
		s.Linux.Sysctl = map[string]string{"kernel.domainname": "x"}
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		b := newBundle(t, s)
		os.Remove(filepath.Join(b, "rootfs/proc"))
		if err := os.MkdirAll(filepath.Join(b, "rootfs/fake/sys/kernel"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("fake", filepath.Join(b, "rootfs/proc")); err != nil {
			t.Fatal(err)
		}
		_, err := create(t, b, nil)
		if err == nil || !strings.Contains(err.Error(), "sysctl") {
			t.Fatalf("create = %v, want the sysctl refused", err)
		}
		if _, err := os.Stat(filepath.Join(b, "rootfs/fake/sys/kernel/domainname")); err == nil {
			t.Fatal("sysctl written into the fake /proc")
		}
	})
}

// devDir makes a host directory, bind-mounted as the container's /dev,
// holding name as a symlink to a procfs file (the attack of CVE-2025-31133
// on /dev/null and of CVE-2025-52565 on /dev/console).
func devDir(t *testing.T, name string) string {
	d := t.TempDir()
	_ = os.Chmod(d, 0o755)
	if err := os.Symlink("/proc/sys/kernel/core_pattern", filepath.Join(d, name)); err != nil {
		t.Fatal(err)
	}
	if name != "null" {
		if err := unix.Mknod(filepath.Join(d, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(d, "pts"), 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func withDevBind(s *specs.Spec, dir string) {
	var ms []specs.Mount
	for _, m := range s.Mounts {
		if m.Destination == "/dev" {
			m = specs.Mount{Destination: "/dev", Type: "bind", Source: dir, Options: []string{"rbind"}}
		}
		ms = append(ms, m)
	}
	s.Mounts = ms
}

func TestCVE2025_31133MaskedPathViaDevNullSymlink(t *testing.T) {
	needRoot(t)
	before, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
	s := sh(`echo '|/bin/evil' > /proc/timer_list; cat /proc/sys/kernel/core_pattern`)
	withDevBind(s, devDir(t, "null"))
	c, err := create(t, newBundle(t, s), nil)
	if err == nil {
		out, _ := c.startWait(t)
		t.Errorf("create with /dev/null -> core_pattern succeeded; container said %q", out)
	} else if !strings.Contains(err.Error(), "/dev/null") {
		t.Errorf("create failed for another reason: %v", err)
	}
	after, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
	if !bytes.Equal(before, after) {
		_ = os.WriteFile("/proc/sys/kernel/core_pattern", before, 0)
		t.Fatal("host core_pattern changed")
	}
}

func TestCVE2025_52565ConsoleSymlink(t *testing.T) {
	needRoot(t)
	before, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
	sock := filepath.Join(t.TempDir(), "c.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	s := sh(`echo '|/bin/evil' > /dev/console`)
	s.Process.Terminal = true
	withDevBind(s, devDir(t, "console"))
	_, err = create(t, newBundle(t, s), &CreateOpts{ConsoleSocket: sock})
	if err == nil || !strings.Contains(err.Error(), "/dev/console") {
		t.Errorf("create with /dev/console -> core_pattern: %v, want a refusal naming /dev/console", err)
	}
	after, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
	if !bytes.Equal(before, after) {
		_ = os.WriteFile("/proc/sys/kernel/core_pattern", before, 0)
		t.Fatal("host core_pattern changed")
	}
}

// CVE-2022-29162: with a non-empty inheritable set, a binary carrying
// inheritable file capabilities gains capabilities the container lacks.
func TestCVE2022_29162InheritableCaps(t *testing.T) {
	needRoot(t)
	setcap, err := exec.LookPath("setcap")
	if err != nil {
		t.Skip("needs setcap (libcap2-bin)")
	}
	s := testSpec("/capbin/sh", "-c", `grep -E '^Cap(Inh|Eff|Prm|Amb)' /proc/self/status`)
	// the bounding set allows CAP_NET_ADMIN, but the container is not given it
	caps := []string{"CAP_KILL"}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_NET_ADMIN"}, Effective: caps, Permitted: caps}
	s.Process.User = specs.User{UID: 1000, GID: 1000}
	b := newBundle(t, s)
	_ = os.Mkdir(filepath.Join(b, "rootfs/capbin"), 0o755)
	bb := filepath.Join(b, "rootfs/capbin/sh")
	data, _ := os.ReadFile(filepath.Join(b, "rootfs/bin/busybox"))
	if err := os.WriteFile(bb, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(setcap, "cap_net_admin+ei", bb).CombinedOutput(); err != nil {
		t.Skipf("setcap: %v %s", err, out)
	}
	c, err := create(t, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, code := c.startWait(t)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[1] != "0000000000000000" {
			t.Errorf("%s (exit %d): the file capability was gained", l, code)
		}
	}
	if !strings.Contains(out, "CapInh") {
		t.Fatalf("no output: %q (exit %d)", out, code)
	}
	// exec inherits the same rule
	c2, err := create(t, newBundle(t, testSpec("sleep", "100")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.r.Start(context.Background(), c2.id); err != nil {
		t.Fatal(err)
	}
	pr, pw, _ := os.Pipe()
	p, err := c2.r.Exec(context.Background(), c2.id, &specs.Process{Args: []string{"grep", "CapInh", "/proc/self/status"}, Cwd: "/", Env: []string{"PATH=/bin"},
		Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}}, &ExecOpts{Stdout: pw, Stderr: pw})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	eout := readAll(pr)
	_, _ = p.Wait()
	if strings.TrimSpace(eout) != "CapInh:\t0000000000000000" {
		t.Errorf("exec: %q", eout)
	}
}
