package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The C init (cinit.c, plan.go) and the Go init (init_linux.go) must build
// the same container: run one spec that uses every feature the C init
// handles through both and compare what the container sees.
func TestCInitMatchesGoInit(t *testing.T) {
	needRoot(t)
	t.Setenv("BERTH_INIT", "")
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	probe := `echo "id: $(id)"; echo "cwd: $(pwd)"; echo "host: $(hostname) $(cat /proc/sys/kernel/domainname)";
		echo "umask: $(umask)"; echo "nofile: $(ulimit -n)"; env | sort;
		grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status;
		cut -d' ' -f5,6,9- /proc/self/mountinfo | sed 's/ - / /' | sort;
		for f in /dev/* /dev/extra/*; do echo "$f $(stat -c '%F %t:%T %a %u:%g' $f)"; done;
		ls /proc/self/fd | tr '\n' ' '; echo;
		cat /proc/sys/net/ipv4/ip_forward; wc -c < /proc/timer_list; ls /sys/firmware | wc -l;
		mkdir /tmp/denied 2>&1 | sed 's/.*: //'; touch /newfile 2>&1 | sed 's/.*: //'`
	s := sh(probe)
	s.Process.Cwd = "/work/dir"
	s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5, 1000}, Umask: ptrU32(0o027)}
	s.Process.Env = append(s.Process.Env, "A=b")
	s.Process.NoNewPrivileges = true
	caps := []string{"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps[:1], Permitted: caps, Inheritable: caps[1:2], Ambient: caps[1:]}
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 512, Soft: 256}}
	s.Hostname, s.Domainname = "plan-test", "example.org"
	s.Root.Readonly = true
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/data/", Type: "bind", Source: host, Options: []string{"rbind", "ro", "nosuid"}},
		specs.Mount{Destination: "/data-file", Type: "bind", Source: filepath.Join(host, "f"), Options: []string{"bind", "rprivate"}},
		specs.Mount{Destination: "/scratch/deep", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "size=1m"}},
		specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nodev", "size=1m"}},
		specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	)
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/extra/full", Type: "c", Major: 1, Minor: 7, FileMode: fileMode(0o640), UID: ptrU32(1000), GID: ptrU32(5)}}
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	one := uint(1)
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &one}},
	}
	if !planOK(s, nil) {
		t.Fatal("spec not eligible for the C init")
	}
	outC, codeC := run(t, s)
	t.Setenv("BERTH_INIT", "go")
	outGo, codeGo := run(t, s)
	if codeC != 0 || codeGo != 0 || outC != outGo {
		t.Fatalf("C init (exit %d):\n%s\nGo init (exit %d):\n%s", codeC, outC, codeGo, outGo)
	}
	for _, w := range []string{"uid=1000(user) gid=1000(user) groups=5,1000(user)", "cwd: /work/dir", "host: plan-test example.org",
		"umask: 0027", "nofile: 256", "A=b", "HOME=/tmp", "NoNewPrivs:\t1", "/dev/extra/full character special file 1:7 640 1000:5",
		"/data ro,nosuid", "\n0 1 2 3 \n", "\n1\n0\n0\n", "not permitted", "Read-only file system"} {
		if !strings.Contains(outC, w) {
			t.Errorf("output lacks %q:\n%s", w, outC)
		}
	}
}

func fileMode(m os.FileMode) *os.FileMode { return &m }
