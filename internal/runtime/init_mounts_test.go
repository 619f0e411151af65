package runtime

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The mounts, device nodes and links the init makes in the tmpfs mounts it
// made itself (/dev, /sys/fs/cgroup), seen from inside the container: the
// cgroup hierarchies read-only nosuid,nodev,noexec binds of the
// container's own cgroups, device nodes with the spec's mode whatever the
// caller's umask, the /dev links, file and directory binds in /dev, and
// the same mount table from the C and the Go init. A destination named
// twice and a second tmpfs over /dev are in the spec too.
func TestInitDevAndCgroupMounts(t *testing.T) {
	needRoot(t)
	t.Setenv("BERTH_INIT", "")
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "hostname"), []byte("fresh-test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// mountinfo as "mount-point options fstype source super-options"
	probe := `sed -E 's/^([^ ]+ ){4}([^ ]+) ([^ ]+).* - /\2 \3 /' /proc/self/mountinfo | sort;
		for f in /dev/* /dev/pts/ptmx; do echo "$f $(stat -c '%F %t:%T %a %u:%g' $f)"; done;
		ls -l /dev/ptmx /dev/fd /dev/stdout | sed 's/.*[0-9] \/dev/\/dev/'; cat /etc/hostname /dev/hostfile; ls /dev/hostdir;
		grep -E ':(memory|pids|):' /proc/self/cgroup | cut -d: -f3 | sort -u;
		touch /sys/fs/cgroup/x 2>&1 | sed 's/.*: //'`
	s := sh(probe)
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm2", Options: []string{"nosuid", "size=1m"}},
		specs.Mount{Destination: "/etc/hostname", Type: "bind", Source: filepath.Join(host, "hostname"), Options: []string{"rbind", "rprivate"}},
		// binds in the new /dev: a file and a directory, both remounted
		specs.Mount{Destination: "/dev/hostfile", Type: "bind", Source: filepath.Join(host, "hostname"), Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/dev/hostdir", Type: "bind", Source: host, Options: []string{"rbind", "ro", "nosuid", "rprivate"}},
	)
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/full2", Type: "c", Major: 1, Minor: 7, FileMode: fileMode(0o640), UID: ptrU32(1000), GID: ptrU32(5)}}
	s.Linux.CgroupsPath = "/berth-test-fresh/" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth-test-fresh")
		for _, d := range dirs {
			_ = os.Remove(d)
		}
	})
	if !planOK(s, nil) {
		t.Fatal("spec not eligible for the C init")
	}
	// mknod honours the umask: the nodes must get their mode anyway. The
	// bundles (and the busybox copy they link) are made before.
	bundles := []string{newBundle(t, s), newBundle(t, s)}
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	outC, codeC := runBundle(t, bundles[0])
	t.Setenv("BERTH_INIT", "go")
	outGo, codeGo := runBundle(t, bundles[1])
	syscall.Umask(old)
	if codeC != 0 || codeGo != 0 || outC != outGo {
		t.Fatalf("C init (exit %d):\n%s\nGo init (exit %d):\n%s", codeC, outC, codeGo, outGo)
	}
	for _, w := range []string{
		"/dev/null character special file 1:3 666 0:0", "/dev/urandom character special file 1:9 666 0:0",
		"/dev/tty character special file 5:0 666 0:0", "/dev/full2 character special file 1:7 640 1000:5",
		"/dev/pts/ptmx character special file 5:2 666 0:0", "/dev/ptmx -> pts/ptmx", "/dev/fd -> /proc/self/fd",
		"/dev/stdout -> /proc/self/fd/1", "\nfresh-test\nfresh-test\nhostname\n", "/dev/hostfile ro,", "/dev/hostdir ro,nosuid,", "/dev/mqueue rw,nosuid,nodev,noexec,relatime mqueue",
		"/dev/pts rw,nosuid,noexec,relatime devpts", "/dev/shm rw,nosuid,nodev,noexec,relatime tmpfs shm ", "/dev/shm rw,nosuid,relatime tmpfs shm2 ",
		"/etc/hostname rw,", "\n" + s.Linux.CgroupsPath + "\n", "\nRead-only file system\n",
	} {
		if !strings.Contains(outC, w) {
			t.Errorf("output lacks %q:\n%s", w, outC)
		}
	}
	// the cgroup view: a read-only tmpfs and one read-only bind per
	// hierarchy (on a v1 or hybrid host)
	if !regexp.MustCompile(`(?m)^/sys/fs/cgroup (ro,nosuid,nodev,noexec\S* tmpfs|\S+ cgroup2) `).MatchString(outC) {
		t.Errorf("/sys/fs/cgroup is not a read-only tmpfs or cgroup2:\n%s", outC)
	}
	hier := regexp.MustCompile(`(?m)^/sys/fs/cgroup/(\S+) (\S+) (cgroup2?) `).FindAllStringSubmatch(outC, -1)
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type != 0x63677270 && len(hier) == 0 {
		t.Errorf("no cgroup hierarchy mounted under /sys/fs/cgroup:\n%s", outC)
	}
	for _, h := range hier {
		for _, o := range []string{"ro", "nosuid", "nodev", "noexec"} {
			if !strings.Contains(","+h[2]+",", ","+o+",") {
				t.Errorf("/sys/fs/cgroup/%s options %s lack %s", h[1], h[2], o)
			}
		}
	}
	// /dev covered by a second tmpfs: the nodes and links go in the top one
	s.Mounts = append(s.Mounts[:1:1], s.Mounts[1], s.Mounts[1])
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"newinstance", "ptmxmode=0666"}})
	s.Process.Args = []string{"sh", "-c", `grep -c ' /dev rw' /proc/self/mountinfo; stat -c '%a' /dev/null; ls -l /dev/ptmx | sed 's/.*-> //'`}
	for _, init := range []string{"", "go"} {
		t.Setenv("BERTH_INIT", init)
		if out, code := run(t, s); code != 0 || out != "2\n666\npts/ptmx\n" {
			t.Errorf("BERTH_INIT=%q, /dev twice: exit %d, output %q", init, code, out)
		}
	}
}

func runBundle(t *testing.T, bundle string) (string, int) {
	t.Helper()
	c, err := create(t, bundle, nil)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return c.startWait(t)
}
