package runtime

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseSpecNamesField(t *testing.T) {
	cases := map[string]string{
		`{"ociVersion":"1.0.0","process":{"args":"true"}}`:                     `"process.args"`,
		`{"ociVersion":"1.0.0",`:                                               "unexpected EOF",
		`{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"args":["x"]}}`:  "process.cwd: missing",
		`{"root":{"path":"r"}}`:                                                "ociVersion: missing",
		`{"ociVersion":"1.0.0","process":{"args":["x"],"cwd":"/"},"linux":{}}`: "root.path: missing",
		`{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"args":["x"],"cwd":"/"},"linux":{"namespaces":[{"type":"bogus"}]}}`:          `unknown namespace type "bogus"`,
		`{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"args":["x"],"cwd":"/","rlimits":[{"type":"RLIMIT_FOO"}]},"linux":{}}`:       `unknown rlimit "RLIMIT_FOO"`,
		`{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"args":["x"],"cwd":"/","capabilities":{"bounding":["CAP_FLY"]}},"linux":{}}`: `unknown capability "CAP_FLY"`,
	}
	for in, want := range cases {
		_, err := ParseSpec([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSpec(%s) = %v, want error containing %s", in, err, want)
			continue
		}
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseSpec(%s): %v is not ErrInvalidArgument", in, err)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, id := range []string{"", ".", "..", "a/b", "../x", "a b"} {
		if validateID(id) == nil {
			t.Errorf("id %q accepted", id)
		}
	}
	for _, id := range []string{"abc", "a-b_c.d+e", "0123"} {
		if err := validateID(id); err != nil {
			t.Errorf("id %q: %v", id, err)
		}
	}
}

func TestParseMountOptions(t *testing.T) {
	f, prop, data := parseMountOptions([]string{"ro", "nosuid", "rbind", "rslave", "mode=755", "rw", "size=1k"})
	if f&unix.MS_RDONLY != 0 || f&unix.MS_NOSUID == 0 || f&unix.MS_BIND == 0 || f&unix.MS_REC == 0 {
		t.Errorf("flags %#x", f)
	}
	if len(prop) != 1 || prop[0] != unix.MS_SLAVE|unix.MS_REC {
		t.Errorf("propagation %v", prop)
	}
	if data != "mode=755,size=1k" {
		t.Errorf("data %q", data)
	}
}

func TestRunOutputAndExitCode(t *testing.T) {
	needRoot(t)
	out, code := run(t, sh("echo hello; hostname; exit 7"))
	if code != 7 || out != "hello\nberth-test\n" {
		t.Fatalf("got %q exit %d", out, code)
	}
}

func TestUserCapsRlimitsEnv(t *testing.T) {
	needRoot(t)
	s := sh(`id; umask; ulimit -n; ulimit -Hn; echo $FOO; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status; grep NoNewPrivs /proc/self/status; pwd`)
	s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: ptrU32(0o027)}
	s.Process.Env = append(s.Process.Env, "FOO=bar")
	s.Process.Cwd = "/tmp"
	s.Process.NoNewPrivileges = true
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 512, Soft: 256}}
	caps := []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: caps}
	out, code := run(t, s)
	want := []string{
		"uid=1000(user) gid=1000(user) groups=10,20", "0027", "256", "512", "bar",
		"CapInh:\t0000000000000420", "CapPrm:\t0000000000000420", "CapEff:\t0000000000000420",
		"CapBnd:\t0000000000000420", "CapAmb:\t0000000000000420", "NoNewPrivs:\t1", "/tmp",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in output:\n%s", w, out)
		}
	}
	if code != 0 {
		t.Errorf("exit %d", code)
	}
}

func ptrU32(v uint32) *uint32 { return &v }

func TestMountsReadonlyMasked(t *testing.T) {
	needRoot(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := sh(`cat /data/f; touch /data/x 2>/dev/null && echo data-writable; touch /newfile 2>/dev/null && echo root-writable;
		grep -c ' /scratch .*tmpfs' /proc/self/mountinfo; grep ' /scratch ' /proc/self/mountinfo | grep -o 'noexec' ;
		wc -c < /proc/timer_list; ls /sys/firmware | wc -l; (echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo proc-sys-writable;
		ls -l /dev/stdout /dev/fd | sed 's/.*-> //'; test -c /dev/null && test -c /dev/urandom && echo devices-ok`)
	s.Root.Readonly = true
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/data/", Type: "bind", Source: host, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/scratch/deep", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "size=1m"}},
		specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "size=1m"}},
	)
	out, code := run(t, s)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"from-host", "1", "noexec", "0", "0", "/proc/self/fd", "/proc/self/fd/1", "devices-ok"}
	if code != 0 || strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("exit %d, output:\n%s\nwant lines %q", code, out, want)
	}
	if _, err := os.Stat(filepath.Join(host, "x")); err == nil {
		t.Error("read-only bind mount was written")
	}
}

func TestSysctlDomainnameAnnotations(t *testing.T) {
	needRoot(t)
	s := sh(`cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/domainname`)
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	s.Domainname = "example.org"
	s.Annotations = map[string]string{"a": "b"}
	c, err := create(t, newBundle(t, s), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.r.State(context.Background(), c.id)
	if err != nil || st.Annotations["a"] != "b" || st.Status != specs.StateCreated {
		t.Fatalf("state %+v %v", st, err)
	}
	out, code := c.startWait(t)
	if code != 0 || out != "1\nexample.org\n" {
		t.Fatalf("exit %d output %q", code, out)
	}
}

func TestLifecycleExecPauseKillDelete(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	c, err := create(t, newBundle(t, testSpec("sleep", "1000")), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.r
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, c.id); err == nil {
		t.Error("second start succeeded")
	}
	if err := r.Delete(ctx, c.id, false); !errdefs.IsConflict(err) {
		t.Errorf("delete of a running container: %v, want conflict", err)
	}
	pr, pw, _ := os.Pipe()
	p, err := r.Exec(ctx, c.id, &specs.Process{Args: []string{"sh", "-c", "echo $$; cat /proc/1/cmdline; exit 3"}, Cwd: "/", Env: []string{"PATH=/bin"}}, &ExecOpts{Stdout: pw, Stderr: pw})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := readAll(pr)
	code, err := p.Wait()
	if err != nil || code != 3 {
		t.Fatalf("exec exit %d %v", code, err)
	}
	if !strings.HasSuffix(out, "sleep\x001000\x00") || strings.HasPrefix(out, "1\n") {
		t.Errorf("exec output %q: want the container's pid namespace", out)
	}
	pids, err := r.Ps(ctx, c.id)
	if err != nil || len(pids) != 1 || pids[0] != c.pid {
		t.Errorf("ps = %v %v, want [%d]", pids, err, c.pid)
	}
	if err := r.Pause(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.State(ctx, c.id); st.Status != "paused" {
		t.Errorf("status %s after pause", st.Status)
	}
	if err := r.Resume(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	lim := int64(64 << 20)
	if err := r.Update(ctx, c.id, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &lim}, Pids: &specs.LinuxPids{Limit: ptrI64(50)}}); err != nil {
		t.Fatal(err)
	}
	st, _ := r.readState(c.id)
	cg, err := r.cgroup(st)
	if err != nil {
		t.Fatal(err)
	}
	if dir, ok := cg.Paths()["memory"]; ok {
		b, _ := os.ReadFile(filepath.Join(dir, "memory.limit_in_bytes"))
		if strings.TrimSpace(string(b)) != strconv.FormatInt(lim, 10) {
			t.Errorf("memory.limit_in_bytes = %s", b)
		}
	}
	if err := r.Kill(ctx, c.id, unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if code, _ := waitExit(c.pid); code != 137 {
		t.Errorf("exit %d after SIGKILL", code)
	}
	if st, _ := r.State(ctx, c.id); st.Status != specs.StateStopped {
		t.Errorf("status %s after kill", st.Status)
	}
	if err := r.Delete(ctx, c.id, false); err != nil {
		t.Fatal(err)
	}
	for _, d := range cg.Paths() {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left behind", d)
		}
	}
	if _, err := r.State(ctx, c.id); !errdefs.IsNotFound(err) {
		t.Errorf("state after delete: %v", err)
	}
}

func ptrI64(v int64) *int64 { return &v }

func readAll(f *os.File) string {
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}

func TestCgroupLimitsApplied(t *testing.T) {
	needRoot(t)
	s := sh(`cat /proc/self/cgroup | grep -E ':(memory|pids):'`)
	lim := int64(32 << 20)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &lim}
	s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptrI64(20)}
	s.Linux.CgroupsPath = "/berth-test/" + strconv.Itoa(os.Getpid())
	// runs after the container's own cleanup (LIFO): drop the parent too
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth-test")
		for _, d := range dirs {
			_ = os.Remove(d)
		}
	})
	c, err := create(t, newBundle(t, s), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := c.r.readState(c.id)
	cg, _ := c.r.cgroup(st)
	if dir, ok := cg.Paths()["pids"]; ok {
		b, _ := os.ReadFile(filepath.Join(dir, "pids.max"))
		if strings.TrimSpace(string(b)) != "20" {
			t.Errorf("pids.max = %q", b)
		}
	}
	if dir, ok := cg.Paths()["memory"]; ok {
		b, _ := os.ReadFile(filepath.Join(dir, "memory.limit_in_bytes"))
		if strings.TrimSpace(string(b)) != strconv.FormatInt(lim, 10) {
			t.Errorf("memory.limit_in_bytes = %q", b)
		}
	}
	out, _ := c.startWait(t)
	if !strings.Contains(out, s.Linux.CgroupsPath) {
		t.Errorf("container not in its cgroup: %q", out)
	}
}

func TestConsoleSocket(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *os.File, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 64), make([]byte, 64)
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- nil
			return
		}
		cms, _ := unix.ParseSocketControlMessage(oob[:oobn])
		fds, _ := unix.ParseUnixRights(&cms[0])
		got <- os.NewFile(uintptr(fds[0]), "master")
	}()
	s := sh(`tty; readlink /proc/self/fd/0; stat -c %t:%T /dev/console`)
	s.Process.Terminal = true
	c, err := create(t, newBundle(t, s), &CreateOpts{ConsoleSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	master := <-got
	if master == nil {
		t.Fatal("no pty master received")
	}
	defer master.Close()
	if err := c.r.Start(context.Background(), c.id); err != nil {
		t.Fatal(err)
	}
	out := readAll(master)
	code, _ := waitExit(c.pid)
	if code != 0 || !strings.Contains(out, "/dev/pts/0\r\n/dev/pts/0\r\n88:0") {
		t.Fatalf("exit %d, terminal output %q", code, out)
	}
}

func TestHooks(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "hooks.log")
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", `read s; echo "` + name + ` $s" >> ` + log}}
	}
	s := testSpec("true")
	s.Hooks = &specs.Hooks{
		CreateRuntime: []specs.Hook{hook("createRuntime")},
		Poststart:     []specs.Hook{hook("poststart")},
		Poststop:      []specs.Hook{hook("poststop")},
	}
	//lint:ignore SA1019 prestart is deprecated but still honoured
	s.Hooks.Prestart = []specs.Hook{hook("prestart")}
	// createContainer and startContainer run in the container's mount
	// namespace before and after pivot_root: write into the rootfs.
	s.Hooks.CreateContainer = []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > /tmp/cc.json"}}}
	s.Hooks.StartContainer = []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > /tmp/sc.json"}}}
	b := newBundle(t, s)
	c, err := create(t, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.startWait(t)
	if err := c.r.Delete(context.Background(), c.id, false); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var kinds []string
	for _, l := range lines {
		kinds = append(kinds, strings.Fields(l)[0])
		if !strings.Contains(l, `"id":"`+c.id+`"`) {
			t.Errorf("hook state without id: %s", l)
		}
	}
	if strings.Join(kinds, ",") != "prestart,createRuntime,poststart,poststop" {
		t.Errorf("hooks ran: %v\n%s", kinds, data)
	}
	// createContainer ran before pivot_root, in the container's mount
	// namespace: /tmp there is the host's /tmp. startContainer ran inside.
	if sc, err := os.ReadFile(filepath.Join(b, "rootfs/tmp/sc.json")); err != nil || !strings.Contains(string(sc), c.id) {
		t.Errorf("startContainer hook: %q %v", sc, err)
	}
}

func TestHookTimeout(t *testing.T) {
	needRoot(t)
	s := testSpec("true")
	one := 1
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "10"}, Timeout: &one}}}
	_, err := create(t, newBundle(t, s), nil)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("create with a hanging hook: %v", err)
	}
}

func TestUserNamespace(t *testing.T) {
	needRoot(t)
	s := sh(`id -u; cat /proc/self/uid_map; touch /tmp/f && stat -c %u /tmp/f`)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b := newBundle(t, s)
	// the container's root (host uid 100000) must reach the rootfs
	for d := b; d != "/"; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	if err := filepath.Walk(filepath.Join(b, "rootfs"), func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Lchown(p, 100000, 100000)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c, err := create(t, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, code := c.startWait(t)
	fields := strings.Fields(out)
	if code != 0 || len(fields) != 5 || fields[0] != "0" || fields[2] != "100000" || fields[4] != "0" {
		t.Fatalf("exit %d output %q", code, out)
	}
	st, err := os.Stat(filepath.Join(b, "rootfs/tmp/f"))
	if err != nil || st.Sys().(*syscall.Stat_t).Uid != 100000 {
		t.Errorf("file made by container root: %v", err)
	}
}

func TestJoinNamespaceByPath(t *testing.T) {
	needRoot(t)
	holder := exec.Command("unshare", "--net", "--uts", "sh", "-c", "hostname joined-uts; ip link add dummy7 type dummy 2>/dev/null; sleep 100")
	if err := holder.Start(); err != nil {
		t.Skip("unshare: " + err.Error())
	}
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()
	for i := 0; i < 100; i++ {
		if out, _ := exec.Command("nsenter", "-t", strconv.Itoa(holder.Process.Pid), "-u", "hostname").Output(); strings.TrimSpace(string(out)) == "joined-uts" {
			break
		}
		unixSleepMs(10)
	}
	s := sh(`hostname; ls /sys/class/net | tr '\n' ' '`)
	s.Hostname = ""
	pid := strconv.Itoa(holder.Process.Pid)
	for i, ns := range s.Linux.Namespaces {
		switch ns.Type {
		case specs.NetworkNamespace:
			s.Linux.Namespaces[i].Path = "/proc/" + pid + "/ns/net"
		case specs.UTSNamespace:
			s.Linux.Namespaces[i].Path = "/proc/" + pid + "/ns/uts"
		}
	}
	out, code := run(t, s)
	if code != 0 || !strings.HasPrefix(out, "joined-uts\n") {
		t.Fatalf("exit %d output %q", code, out)
	}
}

func unixSleepMs(ms int) {
	ts := unix.NsecToTimespec(int64(ms) * 1e6)
	_ = unix.Nanosleep(&ts, nil)
}

func TestBadInputLeavesNothing(t *testing.T) {
	needRoot(t)
	cases := map[string]func(*specs.Spec){
		"missing bind source": func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/nonexistent-berth", Options: []string{"bind"}})
		},
		"unknown namespace": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		},
		"bad namespace path": func(s *specs.Spec) {
			s.Linux.Namespaces[1].Path = "/tmp"
		},
		"rlimit above hard": func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1 << 30, Soft: 1024}}
		},
		"missing rootfs": func(s *specs.Spec) { s.Root.Path = "nope" },
		"bad sysctl":     func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.nope_nope": "1"} },
	}
	if !hasCap(capSysResource) {
		cases["negative oom_score_adj"] = func(s *specs.Spec) { v := -500; s.Process.OOMScoreAdj = &v }
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			s := testSpec("true")
			mut(s)
			c, err := create(t, newBundle(t, s), nil)
			if err == nil {
				t.Fatal("create succeeded")
			}
			if _, serr := os.Stat(c.r.dir(c.id)); serr == nil {
				t.Errorf("state dir left behind after: %v", err)
			}
			for _, h := range []string{"pids", "memory", "cpu", "freezer", "devices", "unified"} {
				if _, serr := os.Stat("/sys/fs/cgroup/" + h + "/berth/" + c.id); serr == nil {
					t.Errorf("cgroup %s left behind", h)
				}
			}
			t.Log(err)
		})
	}
	// an id that exists
	c, err := create(t, newBundle(t, testSpec("true")), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.r.Create(context.Background(), c.id, newBundle(t, testSpec("true")), nil)
	if !errdefs.IsAlreadyExists(err) {
		t.Errorf("second create with the same id: %v", err)
	}
	if st, _ := c.r.State(context.Background(), c.id); st == nil || st.Status != specs.StateCreated {
		t.Error("the failed duplicate create damaged the first container")
	}
}

func TestDeleteForceAfterCrashedCreate(t *testing.T) {
	needRoot(t)
	r := &Runtime{Root: t.TempDir()}
	id := testID(t)
	// what a create killed right after mkdir + state.json leaves
	if err := os.MkdirAll(r.dir(id), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := r.writeState(&containerState{ID: id, CgroupPath: "/berth/" + id}); err != nil {
		t.Fatal(err)
	}
	_ = os.Mkdir("/sys/fs/cgroup/pids/berth", 0o755)
	_ = os.Mkdir("/sys/fs/cgroup/pids/berth/"+id, 0o755)
	if err := r.Delete(context.Background(), id, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.dir(id)); err == nil {
		t.Error("state dir left")
	}
	if _, err := os.Stat("/sys/fs/cgroup/pids/berth/" + id); err == nil {
		t.Error("cgroup left")
	}
	if err := r.Delete(context.Background(), id, true); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestSeccompAndTimeNamespace(t *testing.T) {
	needRoot(t)
	s := sh(`mkdir /tmp/x 2>&1; echo mkdir=$?; cut -d. -f1 /proc/uptime`)
	one := uint(1)
	s.Process.NoNewPrivileges = true
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &one}},
	}
	if _, err := os.Stat("/proc/self/ns/time"); err == nil {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1000000}}
	}
	out, code := run(t, s)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.Contains(lines[0], "not permitted") || lines[1] != "mkdir=1" {
		t.Fatalf("exit %d output %q", code, out)
	}
	if s.Linux.TimeOffsets != nil {
		if up, _ := strconv.Atoi(lines[2]); up < 1000000 {
			t.Errorf("uptime %s in a time namespace with a boottime offset of 1e6 s", lines[2])
		}
	}
}

func TestExecIntoUserNamespace(t *testing.T) {
	needRoot(t)
	s := testSpec("sleep", "1000")
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	b := newBundle(t, s)
	for d := b; d != "/"; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	c, err := create(t, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.r.Start(context.Background(), c.id); err != nil {
		t.Fatal(err)
	}
	pr, pw, _ := os.Pipe()
	p, err := c.r.Exec(context.Background(), c.id, &specs.Process{Args: []string{"sh", "-c", "id -u; cat /proc/self/uid_map"}, Cwd: "/", Env: []string{"PATH=/bin"}}, &ExecOpts{Stdout: pw, Stderr: pw})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := readAll(pr)
	if code, _ := p.Wait(); code != 0 || len(strings.Fields(out)) != 4 || strings.Fields(out)[2] != "200000" {
		t.Fatalf("exit %d output %q", code, out)
	}
}
