package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The test binary imports this package, so it carries the init personality:
// the runtime re-executes the test binary as the container init.

func TestMain(m *testing.M) {
	if os.Getuid() == 0 {
		// containers in new pid namespaces are our grandchildren: become
		// their subreaper to wait for them
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	code := m.Run()
	// per-run copies made by newRootfs and runtimeBinary
	if bbDir != "" {
		os.RemoveAll(bbDir)
	}
	if cliPath != "" && cliErr == nil {
		os.RemoveAll(filepath.Dir(cliPath))
	}
	os.Exit(code)
}

const busyboxPath = "/usr/bin/busybox"

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: creates namespaces, mounts and cgroups")
	}
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Skip("needs busybox-static at " + busyboxPath)
	}
	out, err := exec.Command("file", "-L", busyboxPath).Output()
	if err == nil && strings.Contains(string(out), "dynamically") {
		t.Skip(busyboxPath + " is not static")
	}
}

var (
	bbOnce    sync.Once
	bbDir     string
	bbApplets []string
	bbErr     error
	idSeq     atomic.Int64
)

// newRootfs makes a busybox rootfs in dir: /bin/busybox hard-linked from a
// per-run copy plus one symlink per applet.
func newRootfs(t *testing.T, dir string) {
	t.Helper()
	bbOnce.Do(func() {
		bbDir, bbErr = os.MkdirTemp("", "berth-bb-")
		if bbErr != nil {
			return
		}
		var b []byte
		if b, bbErr = os.ReadFile(busyboxPath); bbErr != nil {
			return
		}
		if bbErr = os.WriteFile(filepath.Join(bbDir, "busybox"), b, 0o755); bbErr != nil {
			return
		}
		var out []byte
		out, bbErr = exec.Command(busyboxPath, "--list").Output()
		bbApplets = strings.Fields(string(out))
	})
	if bbErr != nil {
		t.Fatal(bbErr)
	}
	for _, d := range []string{"bin", "etc", "tmp", "proc", "dev", "sys", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(bbDir, "busybox"), filepath.Join(dir, "bin/busybox")); err != nil {
		b, _ := os.ReadFile(filepath.Join(bbDir, "busybox"))
		if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range bbApplets {
		if a != "busybox" {
			_ = os.Symlink("busybox", filepath.Join(dir, "bin", a))
		}
	}
	_ = os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\nuser:x:1000:\n"), 0o644)
}

// testSpec is runc's default spec without a terminal.
func testSpec(args ...string) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args: args, Cwd: "/",
			Env:          []string{"PATH=/bin"},
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		},
		Hostname: "berth-test",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/timer_list"},
			ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/bus"},
		},
	}
}

// newBundle writes a bundle with a fresh busybox rootfs.
func newBundle(t *testing.T, s *specs.Spec) string {
	t.Helper()
	dir := t.TempDir()
	newRootfs(t, filepath.Join(dir, "rootfs"))
	writeSpec(t, dir, s)
	return dir
}

func writeSpec(t *testing.T, dir string, s *specs.Spec) {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

var nonID = regexp.MustCompile(`[^a-zA-Z0-9]+`)

func testID(t *testing.T) string {
	n := nonID.ReplaceAllString(t.Name(), "-")
	if len(n) > 40 {
		n = n[:40]
	}
	return fmt.Sprintf("bt-%s-%d-%d", n, os.Getpid(), idSeq.Add(1))
}

type container struct {
	r   *Runtime
	id  string
	out io.ReadCloser
	pid int
}

// create creates a container with stdout+stderr on a pipe; cleanup deletes it.
func create(t *testing.T, bundle string, o *CreateOpts) (*container, error) {
	t.Helper()
	r := &Runtime{Root: filepath.Join(os.TempDir(), "berth-runtime-test")}
	id := testID(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if o == nil {
		o = &CreateOpts{}
	}
	o.Stdout, o.Stderr = pw, pw
	err = r.Create(context.Background(), id, bundle, o)
	pw.Close()
	c := &container{r: r, id: id, out: pr}
	t.Cleanup(func() {
		pr.Close()
		_ = r.Delete(context.Background(), id, true)
	})
	if err != nil {
		return c, err
	}
	st, err := r.State(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	c.pid = st.Pid
	return c, nil
}

// startWait starts the container and returns its output and exit status.
func (c *container) startWait(t *testing.T) (string, int) {
	t.Helper()
	if err := c.r.Start(context.Background(), c.id); err != nil {
		t.Fatalf("start: %v", err)
	}
	b, _ := io.ReadAll(c.out)
	code, err := waitExit(c.pid)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return string(b), code
}

// run creates, starts and waits for a container made from s.
func run(t *testing.T, s *specs.Spec) (string, int) {
	t.Helper()
	c, err := create(t, newBundle(t, s), nil)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return c.startWait(t)
}

func sh(script string) *specs.Spec { return testSpec("sh", "-c", script) }
