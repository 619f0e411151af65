// Package testutil gates privileged tests and builds what they need: berth's
// binaries and busybox root filesystems, without the network.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces, mounts or cgroups")
	}
}

// RequireBinary skips the test unless name is on PATH, and returns its path.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("needs %s on PATH", name)
	}
	return p
}

// RepoRoot is the module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
	buildDir   string
)

// Binary returns the path of one of berth's binaries ("berth", "berthd",
// "berth-runtime", "berth-monitor", "berth-init"): from $BERTH_BIN when the
// Makefile set it, else built once per test process into one temporary
// directory, where each finds the others beside it as when installed.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if dir := os.Getenv("BERTH_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[name]; ok {
		return p
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "berth-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
	}
	out := filepath.Join(buildDir, name)
	// The C helpers build with musl when it is there, as the Makefile does.
	cc := "gcc"
	if p, err := exec.LookPath("musl-gcc"); err == nil {
		cc = p
	}
	var cmd *exec.Cmd
	switch name {
	case "berth-monitor":
		cmd = exec.Command(cc, "-O2", "-static", "-o", out, filepath.Join(RepoRoot(), "internal/monitor/cmonitor/monitor.c"))
	case "berth-init":
		cmd = exec.Command(cc, "-O2", "-static", "-o", out, filepath.Join(RepoRoot(), "internal/monitor/cinit/init.c"))
	default:
		cmd = exec.Command("go", "build", "-o", out, "./cmd/"+name)
		cmd.Dir = RepoRoot()
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	buildCache[name] = out
	return out
}

// BusyboxRootfs fills dir with a minimal root filesystem made from Debian's
// busybox-static: /bin/busybox, its applet links, /etc/passwd and /etc/group.
func BusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	bb := "/bin/busybox"
	if _, err := os.Stat(bb); err != nil {
		t.Skip("needs busybox-static (/bin/busybox)")
	}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := exec.Command("cp", bb, filepath.Join(dir, "bin/busybox")).CombinedOutput(); err != nil {
		t.Fatalf("cp busybox: %v %s", err, b)
	}
	out, err := exec.Command(bb, "--list-full").Output()
	if err != nil {
		t.Fatalf("busybox --list-full: %v", err)
	}
	for _, l := range splitLines(string(out)) {
		if l == "" || l == "bin/busybox" {
			continue
		}
		p := filepath.Join(dir, l)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = os.Symlink("/bin/busybox", p)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
	write("etc/group", "root:x:0:\nnogroup:x:65534:\n")
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// DebianLayers are the gzip layers, base first, of the debian:bookworm OCI
// layout that shared/peers/make-images.sh builds (95 MB compressed, 204 MB
// unpacked); the test or benchmark skips when they are absent.
func DebianLayers(tb testing.TB) [][]byte {
	tb.Helper()
	const layout = "/var/lib/berth-bench/images/debian-oci/blobs/sha256/"
	var blobs [][]byte
	for _, l := range []string{
		"44960cdaff32ed3285635d46fabcc053ca0719c0dd738acee740dc063e845de9",
		"220685b098d8e99870763c7c8ac38473110da329afec3c31311708fbec3493c0",
		"3d405160b7721e7b1d8f1766b4eddfd7ecfafda23cb716e49199a64992cbd94f",
	} {
		data, err := os.ReadFile(layout + l)
		if err != nil {
			tb.Skip("debian layers not present (run shared/peers/make-images.sh): ", err)
		}
		blobs = append(blobs, data)
	}
	return blobs
}
