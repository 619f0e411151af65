package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// probeSrc is a static helper run inside containers: each argument names a
// syscall attempt and it prints "name=ok" or "name=<errno>", so the tests
// assert on the exact errno rather than on busybox's wording. Only the
// standard library, so it builds offline without a module download.
const probeSrc = `package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

func res(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := err.(syscall.Errno); ok {
		return errName[e]
	}
	if pe, ok := err.(*os.PathError); ok {
		return res(pe.Err)
	}
	return err.Error()
}

var errName = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.EACCES: "EACCES", syscall.ENOSYS: "ENOSYS",
	syscall.ESRCH: "ESRCH", syscall.EROFS: "EROFS", syscall.EINVAL: "EINVAL",
	syscall.ENOENT: "ENOENT", syscall.ENOEXEC: "ENOEXEC", syscall.ENXIO: "ENXIO",
	syscall.ENODEV: "ENODEV", syscall.EEXIST: "EEXIST", syscall.EBADF: "EBADF",
}

func errno(_, _ uintptr, e syscall.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

func main() {
	for _, a := range os.Args[1:] {
		var err error
		switch {
		case a == "mount":
			err = syscall.Mount("x", "/tmp", "tmpfs", 0, "")
		case a == "init_module":
			img := []byte("not a module")
			p := []byte("\x00")
			err = errno(syscall.RawSyscall(syscall.SYS_INIT_MODULE, uintptr(unsafe.Pointer(&img[0])), uintptr(len(img)), uintptr(unsafe.Pointer(&p[0]))))
		case a == "finit_module":
			f, _ := os.Open("/proc/self/exe")
			p := []byte("\x00")
			err = errno(syscall.RawSyscall(313, f.Fd(), uintptr(unsafe.Pointer(&p[0])), 0))
		case a == "keyctl":
			// KEYCTL_JOIN_SESSION_KEYRING with a NULL name.
			err = errno(syscall.RawSyscall(syscall.SYS_KEYCTL, 1, 0, 0))
		case len(a) > 7 && a[:7] == "ptrace=":
			pid, _ := strconv.Atoi(a[7:])
			err = syscall.PtraceAttach(pid)
		case len(a) > 12 && a[:12] == "mknod-block=":
			// mknod-block=<major>:<minor>:<path>, then open it.
			var path string
			var maj, min int
			fmt.Sscanf(a[12:], "%d:%d:%s", &maj, &min, &path)
			if err = syscall.Mknod(path, syscall.S_IFBLK|0o600, maj<<8|min); err == nil {
				var f *os.File
				if f, err = os.Open(path); err == nil {
					f.Close()
				}
			}
		case a == "open_by_handle_at":
			// The "shocker" escape: a handle of an inode outside the
			// container's root. Any handle: the check comes first.
			h := make([]byte, 8+8)
			h[0] = 8
			err = errno(syscall.RawSyscall(304, uintptr(0xffffff9c), uintptr(unsafe.Pointer(&h[0])), 0))
		case a == "mkdir":
			err = os.Mkdir("/tmp/probe-dir", 0o755)
		case a == "euid":
			fmt.Printf("euid=%d\n", os.Geteuid())
			continue
		default:
			err = fmt.Errorf("unknown probe %q", a)
		}
		fmt.Printf("%s=%s\n", a, res(err))
	}
}
`

// probeImage is an image made from busybox with /probe (the helper above)
// and /suid (a setuid-root copy of it), committed with docker commit.
const probeImage = "berth-probe:test"

// buildProbe compiles the helper statically and commits it into probeImage.
func buildProbe(t *testing.T, d *daemon) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(probeSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module probe\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", "probe", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build probe: %v\n%s", err, out)
	}
	d.must("docker", "pull", "-q", bb)
	d.must("docker", "create", "--name", "probe-build", "--network", "none", bb, "sh", "-c", "cp /probe /suid && chmod 4755 /suid")
	d.must("docker", "cp", filepath.Join(dir, "probe"), "probe-build:/probe")
	d.must("docker", "start", "-a", "probe-build")
	d.must("docker", "commit", "probe-build", probeImage)
	d.must("docker", "rm", "probe-build")
}

// runIn runs a throwaway container without network and returns its output.
func (d *daemon) runIn(args ...string) (string, error) {
	return d.docker(append([]string{"run", "--rm", "--network", "none"}, args...)...)
}

// mustRun is runIn that fails the test on a non-zero exit.
func (d *daemon) mustRun(args ...string) string {
	d.t.Helper()
	out, err := d.runIn(args...)
	if err != nil {
		d.t.Fatalf("docker run %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// probes runs /probe with the given probes (after the run options) and
// returns name → result.
func (d *daemon) probes(opts []string, names ...string) map[string]string {
	d.t.Helper()
	args := append(append(append([]string{}, opts...), probeImage, "/probe"), names...)
	out := d.mustRun(args...)
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if i := strings.LastIndex(l, "="); i > 0 {
			m[l[:i]] = l[i+1:]
		}
	}
	return m
}

// capEff returns the CapEff line of a container's init.
func (d *daemon) capEff(opts ...string) string {
	d.t.Helper()
	out := d.mustRun(append(opts, bb, "grep", "CapEff", "/proc/self/status")...)
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "CapEff:"))
}

// noContainer fails if a refused create left a container behind.
func (d *daemon) noContainer(name string) {
	d.t.Helper()
	if out, _ := d.docker("ps", "-aq", "--filter", "name=^"+name+"$"); strings.TrimSpace(out) != "" {
		d.t.Errorf("a refused create left container %s behind", name)
		_, _ = d.docker("rm", "-f", name)
	}
}

// hostCapBnd is the test's (and so the daemon's) capability bounding set.
func hostCapBnd(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return ""
}

func expectProbe(t *testing.T, got map[string]string, name, want string) {
	t.Helper()
	if got[name] != want {
		t.Errorf("probe %s = %q, want %q (all: %v)", name, got[name], want, got)
	}
}

// hostMaskedPaths are docker's default masked paths; the test checks those
// present on this host.
var hostMaskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}

// TestBreakout tries to escape a default container in the ways container
// escapes have worked, and checks each fails with the errno docker gives;
// then checks --privileged and the security options do what docker's do.
func TestBreakout(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t, "--bridge", "none")
	buildProbe(t, d)

	t.Run("defaults", func(t *testing.T) {
		d := *d
		d.t = t
		p := d.probes(nil, "mount", "init_module", "finit_module", "keyctl", "open_by_handle_at",
			fmt.Sprintf("ptrace=%d", d.cmd.Process.Pid), "mknod-block=7:0:/tmp/loop0", "ptrace=1")
		expectProbe(t, p, "mount", "EPERM")
		expectProbe(t, p, "init_module", "EPERM")
		expectProbe(t, p, "finit_module", "EPERM")
		expectProbe(t, p, "keyctl", "EPERM")
		// CVE-2014-3519 style open_by_handle_at needs CAP_DAC_READ_SEARCH.
		expectProbe(t, p, "open_by_handle_at", "EPERM")
		// The daemon's pid does not exist in the container's pid namespace.
		expectProbe(t, p, fmt.Sprintf("ptrace=%d", d.cmd.Process.Pid), "ESRCH")
		// Default capabilities allow mknod; the device cgroup refuses the open.
		expectProbe(t, p, "mknod-block=7:0:/tmp/loop0", "EPERM")
		// pid 1 is the container's own init, which the probe may or may not
		// trace (yama decides); it must exist, so ESRCH above means "outside".
		if p["ptrace=1"] == "ESRCH" {
			t.Errorf("pid 1 not visible in the container")
		}

		// Busybox's view of the same: mount and insmod fail.
		out, err := d.runIn(bb, "mount", "-t", "tmpfs", "x", "/mnt")
		if err == nil || !strings.Contains(out, "permission denied") {
			t.Errorf("mount in a default container: %v %q", err, out)
		}
		out, err = d.runIn(bb, "sh", "-c", "echo junk > /tmp/dummy.ko; insmod /tmp/dummy.ko")
		if err == nil || !strings.Contains(out, "not permitted") {
			t.Errorf("insmod in a default container: %v %q", err, out)
		}
		// No CAP_SYS_MODULE (bit 16), no CAP_SYS_ADMIN (21), no CAP_SYS_PTRACE (19).
		if c := d.capEff(); c != "00000000a80425fb" {
			t.Errorf("default CapEff %s, want docker's 00000000a80425fb", c)
		}

		// Only its own processes: ps lists pid 1 (sh) and ps itself.
		out = d.mustRun(bb, "sh", "-c", "ps -o pid,comm; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls -d /proc/[0-9]* | wc -l")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 5 || !strings.HasPrefix(strings.TrimSpace(lines[1]), "1 sh") || !strings.HasPrefix(lines[3], "sh -c ps") {
			t.Errorf("process view:\n%s", out)
		}
		if n := strings.TrimSpace(lines[len(lines)-1]); n != "3" && n != "2" {
			t.Errorf("%s pids in /proc, want the container's only:\n%s", n, out)
		}

		// /proc/sys and /sys are read-only.
		for _, f := range []string{"/proc/sys/kernel/domainname", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/vm/overcommit_memory", "/proc/sys/kernel/core_pattern", "/sys/kernel/uevent_helper"} {
			out, err := d.runIn(bb, "sh", "-c", "echo x > "+f)
			if err == nil || !strings.Contains(out, "Read-only file system") {
				t.Errorf("write %s: %v %q", f, err, out)
			}
		}
		// The cgroup release_agent escape (CVE-2022-0492) needs a writable
		// cgroupfs or a new cgroup mount: both refused.
		out, err = d.runIn(bb, "sh", "-c", "mkdir /sys/fs/cgroup/memory/escape || mkdir /sys/fs/cgroup/escape")
		if err == nil || !strings.Contains(out, "Read-only file system") {
			t.Errorf("mkdir in /sys/fs/cgroup: %v %q", err, out)
		}
		out, err = d.runIn(bb, "sh", "-c", "mount -t cgroup -o memory cgroup /tmp")
		if err == nil || !strings.Contains(out, "permission denied") {
			t.Errorf("mount of a cgroup hierarchy: %v %q", err, out)
		}
		out, err = d.runIn(bb, "touch", "/sys/x")
		if err == nil || !strings.Contains(out, "Read-only file system") {
			t.Errorf("touch /sys/x: %v %q", err, out)
		}

		// Masked paths read empty (files: /dev/null; directories: an empty
		// read-only tmpfs).
		var files, dirs []string
		for _, p := range hostMaskedPaths {
			if st, err := os.Stat(p); err == nil {
				if st.IsDir() {
					dirs = append(dirs, p)
				} else {
					files = append(files, p)
				}
			}
		}
		if len(files) == 0 {
			t.Fatal("no maskable file on this host")
		}
		script := "for f in " + strings.Join(files, " ") + "; do echo \"$f $(head -c 64 $f | wc -c)\"; done;"
		if len(dirs) > 0 {
			script += "for d in " + strings.Join(dirs, " ") + "; do echo \"$d $(ls -A $d | wc -l)\"; done"
		}
		out = d.mustRun(bb, "sh", "-c", script)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) != 2 || f[1] != "0" {
				t.Errorf("masked path not empty: %q", l)
			}
		}

		// The daemon's socket and data root are not in the container.
		out = d.mustRun(bb, "sh", "-c", fmt.Sprintf("ls -d %s %s %s /run/berth/berth.sock /var/run/docker.sock /var/lib/berth 2>/dev/null; echo end", d.sock, d.root, filepath.Join(d.root, "data")))
		if strings.TrimSpace(out) != "end" {
			t.Errorf("daemon paths visible in the container:\n%s", out)
		}

		// The host's devices are not there; the device cgroup refuses one
		// made with mknod (above).
		out = d.mustRun(bb, "ls", "/dev")
		for _, dev := range []string{"loop0", "mem", "kmsg", "vda"} {
			if strings.Contains(" "+strings.Join(strings.Fields(out), " ")+" ", " "+dev+" ") {
				t.Errorf("/dev/%s in a default container", dev)
			}
		}
	})

	t.Run("no-new-privileges", func(t *testing.T) {
		d := *d
		d.t = t
		// /suid is setuid root: without no-new-privileges it raises euid.
		if out := d.mustRun("-u", "65534", probeImage, "/suid", "euid"); strings.TrimSpace(out) != "euid=0" {
			t.Fatalf("setuid binary without no-new-privileges: %q", out)
		}
		if out := d.mustRun("-u", "65534", "--security-opt", "no-new-privileges", probeImage, "/suid", "euid"); strings.TrimSpace(out) != "euid=65534" {
			t.Errorf("setuid binary with no-new-privileges: %q", out)
		}
		if out := d.mustRun("--security-opt", "no-new-privileges=true", bb, "grep", "NoNewPrivs", "/proc/self/status"); !strings.Contains(out, "1") {
			t.Errorf("NoNewPrivs: %q", out)
		}
	})

	t.Run("privileged", func(t *testing.T) {
		d := *d
		d.t = t
		out := d.mustRun("--privileged", bb, "sh", "-c",
			"mount -t tmpfs x /tmp && echo mounted; echo berth.test > /proc/sys/kernel/domainname && cat /proc/sys/kernel/domainname; "+
				"echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward; grep -E 'Seccomp:|CapEff' /proc/self/status; ls /dev; "+
				"mount | grep ' /sys ' ")
		for _, want := range []string{"mounted\n", "berth.test\n", "1\n", "Seccomp:\t0", "loop0", "sysfs on /sys type sysfs (rw"} {
			if !strings.Contains(out, want) {
				t.Errorf("privileged: no %q in:\n%s", want, out)
			}
		}
		// All the daemon has: its bounding set (CAP_SYS_RESOURCE is missing here).
		if bnd := hostCapBnd(t); !strings.Contains(out, "CapEff:\t"+bnd) {
			t.Errorf("privileged CapEff, want the bounding set %s:\n%s", bnd, out)
		}
		p := d.probes([]string{"--privileged"}, "mknod-block=7:0:/tmp/loop0", "keyctl")
		expectProbe(t, p, "mknod-block=7:0:/tmp/loop0", "ok")
		expectProbe(t, p, "keyctl", "ok")
	})

	t.Run("capabilities", func(t *testing.T) {
		d := *d
		d.t = t
		if c := d.capEff("--cap-drop", "ALL"); c != "0000000000000000" {
			t.Errorf("--cap-drop ALL: CapEff %s", c)
		}
		if c := d.capEff("--cap-drop", "ALL", "--cap-add", "chown"); c != "0000000000000001" {
			t.Errorf("--cap-drop ALL --cap-add chown: CapEff %s", c)
		}
		// default 0xa80425fb + NET_ADMIN (bit 12) − MKNOD (bit 27)
		if c := d.capEff("--cap-add", "NET_ADMIN", "--cap-drop", "CAP_MKNOD"); c != "00000000a00435fb" {
			t.Errorf("--cap-add NET_ADMIN --cap-drop MKNOD: CapEff %s", c)
		}
		if c := d.capEff("--cap-add", "ALL"); c != hostCapBnd(t) {
			t.Errorf("--cap-add ALL: CapEff %s", c)
		}
		// CAP_SYS_ADMIN also opens docker's seccomp profile for mount.
		p := d.probes([]string{"--cap-add", "SYS_ADMIN"}, "mount")
		expectProbe(t, p, "mount", "ok")

		for _, tc := range []struct{ flag, want string }{
			{"--cap-add", `invalid CapAdd: unknown capability: "CAP_FOO"`},
			{"--cap-drop", `invalid CapDrop: unknown capability: "CAP_FOO"`},
		} {
			out, err := d.docker("create", "--name", "badcap", tc.flag, "foo", bb, "true")
			if err == nil || !strings.Contains(out, "Error response from daemon: "+tc.want) {
				t.Errorf("%s foo: %v %q", tc.flag, err, out)
			}
			d.noContainer("badcap")
		}
	})

	t.Run("seccomp", func(t *testing.T) {
		d := *d
		d.t = t
		prof := filepath.Join(t.TempDir(), "nomkdir.json")
		if err := os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		p := d.probes([]string{"--security-opt", "seccomp=" + prof}, "mkdir")
		expectProbe(t, p, "mkdir", "EPERM")
		p = d.probes(nil, "mkdir")
		expectProbe(t, p, "mkdir", "ok")
		out, err := d.runIn("--security-opt", "seccomp="+prof, bb, "mkdir", "/tmp/x")
		if err == nil || !strings.Contains(out, "Operation not permitted") {
			t.Errorf("mkdir under a profile blocking it: %v %q", err, out)
		}

		missing := filepath.Join(t.TempDir(), "missing.json")
		out, err = d.runIn("--security-opt", "seccomp="+missing, bb, "true")
		if exitCode(err) != 125 || !strings.Contains(out, fmt.Sprintf("opening seccomp profile (%s) failed: open %s: no such file or directory", missing, missing)) {
			t.Errorf("missing profile: %v %q", err, out)
		}

		// unconfined: no filter, so keyctl and unshare -U work.
		out = d.mustRun("--security-opt", "seccomp=unconfined", bb, "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true && echo unshared")
		if !strings.Contains(out, "Seccomp:\t0") || !strings.Contains(out, "unshared") {
			t.Errorf("seccomp=unconfined:\n%s", out)
		}
		p = d.probes([]string{"--security-opt", "seccomp=unconfined"}, "keyctl")
		expectProbe(t, p, "keyctl", "ok")
		// Under the default profile unshare of a user namespace is refused.
		out, err = d.runIn(bb, "unshare", "-U", "true")
		if err == nil || !strings.Contains(out, "Operation not permitted") {
			t.Errorf("unshare -U under the default profile: %v %q", err, out)
		}
	})

	t.Run("lsm", func(t *testing.T) {
		d := *d
		d.t = t
		if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.TrimSpace(string(b)) == "Y" {
			t.Skip("AppArmor is enabled here; the test checks the refusal on hosts without it")
		}
		if _, err := os.Stat("/sys/fs/selinux/enforce"); err == nil {
			t.Skip("SELinux is on here")
		}
		for _, tc := range []struct{ opt, want string }{
			{"apparmor=berth-test", "AppArmor is not enabled on this host: cannot apply --security-opt apparmor=berth-test"},
			{"label=type:container_t", "SELinux is not enabled on this host: cannot apply --security-opt label=type:container_t"},
		} {
			out, err := d.docker("create", "--name", "badlsm", "--security-opt", tc.opt, bb, "true")
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("--security-opt %s: %v %q", tc.opt, err, out)
			}
			d.noContainer("badlsm")
		}
		// Asking for no confinement is satisfied on a host without the LSM.
		d.mustRun("--security-opt", "apparmor=unconfined", "--security-opt", "label=disable", bb, "true")
	})

	t.Run("devices", func(t *testing.T) {
		d := *d
		d.t = t
		out := d.mustRun("--device", "/dev/null:/dev/mynull", bb, "sh", "-c", "ls -l /dev/mynull; echo x > /dev/mynull && echo written")
		if !strings.HasPrefix(out, "crw") || !strings.Contains(out, "1,   3") || !strings.Contains(out, "written") {
			t.Errorf("--device /dev/null:/dev/mynull:\n%s", out)
		}
		// A cgroup rule lets the container open a device it made.
		p := d.probes([]string{"--device-cgroup-rule", "b 7:* rmw"}, "mknod-block=7:0:/tmp/loop0")
		expectProbe(t, p, "mknod-block=7:0:/tmp/loop0", "ok")
		out, err := d.docker("create", "--name", "baddev", "--device", "/nonexistent-dev", bb, "true")
		d.noContainer("baddev")
		if err == nil || !strings.Contains(out, `error gathering device information while adding custom device "/nonexistent-dev": no such file or directory`) {
			t.Errorf("--device of a missing path: %v %q", err, out)
		}
	})

	t.Run("group-add sysctl userns", func(t *testing.T) {
		d := *d
		d.t = t
		if out := d.mustRun("--group-add", "1234", "--group-add", "nogroup", bb, "id", "-G"); strings.TrimSpace(out) != "0 10 1234 65534" && strings.TrimSpace(out) != "0 1234 65534" {
			t.Errorf("--group-add: id -G = %q", out)
		}
		if out := d.mustRun("--sysctl", "net.ipv4.ip_forward=1", bb, "cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(out) != "1" {
			t.Errorf("--sysctl net.ipv4.ip_forward=1: %q", out)
		}
		if out := d.mustRun("--sysctl", "kernel.shmmni=2048", bb, "cat", "/proc/sys/kernel/shmmni"); strings.TrimSpace(out) != "2048" {
			t.Errorf("--sysctl kernel.shmmni: %q", out)
		}
		// The docker CLI refuses non-namespaced sysctls itself; the daemon
		// refuses a net.* sysctl in the host's network namespace.
		out, err := d.docker("run", "--rm", "--sysctl", "vm.swappiness=1", bb, "true")
		if exitCode(err) != 125 || !strings.Contains(out, "sysctl 'vm.swappiness=1' is not allowed") {
			t.Errorf("--sysctl vm.swappiness: %v %q", err, out)
		}
		out, err = d.docker("create", "--name", "badsysctl", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", bb, "true")
		if err == nil || !strings.Contains(out, "sysctl net.ipv4.ip_forward is not allowed in the host's or another container's network namespace") {
			t.Errorf("--network host --sysctl net.*: %v %q", err, out)
		}
		d.noContainer("badsysctl")

		// --userns host without remapping: the initial user namespace.
		if out := d.mustRun("--userns", "host", bb, "cat", "/proc/self/uid_map"); strings.Join(strings.Fields(out), " ") != "0 0 4294967295" {
			t.Errorf("--userns host uid_map: %q", out)
		}
	})
}
