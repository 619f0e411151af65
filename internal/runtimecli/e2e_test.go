package runtimecli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// End-to-end: real dockerd and podman drive berth-runtime. A private
// dockerd (own socket, data-root, exec-root, containerd namespace; no
// bridge) is started with berth registered in its daemon.json, because
// dockerd 20.10 only takes runtimes from its config, and stopped after.

const (
	dockerd    = "/usr/sbin/dockerd"
	dockerCLI  = "/usr/bin/docker" // Debian's 20.10 client, not /usr/local/bin's
	containerd = "/run/containerd/containerd.sock"
	bbRef      = "127.0.0.1:5000/busybox:v2s2"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" && binErr == nil {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func runtimeBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-e2e-bin-")
		if err != nil {
			binErr = err
			return
		}
		// world-readable: dockerd's shim and podman exec it
		_ = os.Chmod(dir, 0o755)
		binPath = filepath.Join(dir, "berth-runtime")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/berth-dev/berth/cmd/berth-runtime").CombinedOutput()
		if err != nil {
			binErr = err
			binPath = string(out)
		}
	})
	if binErr != nil {
		t.Skipf("cannot build berth-runtime: %v %s", binErr, binPath)
	}
	return binPath
}

func needPeers(t *testing.T, bins ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped in -short mode")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root: drives dockerd/podman")
	}
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (see /work/shared/peers/setup-peers.sh)", b)
		}
	}
}

func runCmd(t *testing.T, timeout time.Duration, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return string(out), code
}

func TestDockerEndToEnd(t *testing.T) {
	needPeers(t, dockerd, dockerCLI, "script")
	if _, err := os.Stat(containerd); err != nil {
		t.Skip("needs a running containerd at " + containerd)
	}
	bin := runtimeBinary(t)
	dir := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"runtimes": map[string]any{"berth": map[string]string{"path": bin}}})
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	ns := "berth-e2e-" + strconv.Itoa(os.Getpid())
	// A bridge of its own: dockerd started with --bridge none deletes the
	// host's docker0 (moby's removeDefaultBridgeInterface), which breaks
	// the host's own dockerd.
	br := "bde" + strconv.Itoa(os.Getpid()%100000)
	if out, err := exec.Command("sh", "-c", "ip link add "+br+" type bridge && ip addr add 10.213."+strconv.Itoa(os.Getpid()%250)+".1/24 dev "+br).CombinedOutput(); err != nil {
		t.Skipf("cannot create a test bridge: %v: %s", err, out)
	}
	defer func() { _ = exec.Command("ip", "link", "del", br).Run() }()
	logf, _ := os.Create(filepath.Join(dir, "dockerd.log"))
	defer logf.Close()
	d := exec.Command(dockerd, "--config-file", filepath.Join(dir, "daemon.json"), "-H", "unix://"+sock,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "--bridge", br, "--iptables=false", "--ip-masq=false",
		"--containerd", containerd, "--containerd-namespace", ns, "--containerd-plugins-namespace", ns+"-plugins")
	d.Stdout, d.Stderr = logf, logf
	if err := d.Start(); err != nil {
		t.Skip("cannot start dockerd: " + err.Error())
	}
	docker := func(timeout time.Duration, args ...string) (string, int) {
		return runCmd(t, timeout, dockerCLI, append([]string{"-H", "unix://" + sock}, args...)...)
	}
	defer func() {
		out, _ := docker(30*time.Second, "ps", "-aq")
		for _, id := range strings.Fields(out) {
			docker(30*time.Second, "rm", "-f", id)
		}
		_ = d.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = d.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = d.Process.Kill()
			<-done
		}
		// data-root holds overlay mounts until the daemon is gone
		_ = exec.Command("sh", "-c", "grep -o ' "+dir+"[^ ]*' /proc/self/mountinfo | xargs -r -n1 umount -l").Run()
	}()
	ready := false
	for i := 0; i < 100 && !ready; i++ {
		_, code := docker(5*time.Second, "version")
		ready = code == 0
		if !ready {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !ready {
		b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
		t.Skipf("private dockerd did not come up: %s", b)
	}
	if out, code := docker(2*time.Minute, "pull", "-q", bbRef); code != 0 {
		t.Skipf("cannot pull %s (run make-images.sh): %s", bbRef, out)
	}
	if out, code := docker(time.Minute, "run", "--runtime", "berth", "--rm", bbRef, "echo", "hi"); code != 0 || out != "hi\n" {
		t.Fatalf("docker run echo hi: exit %d %q", code, out)
	}
	if _, code := docker(time.Minute, "run", "--runtime", "berth", "--rm", bbRef, "sh", "-c", "exit 42"); code != 42 {
		t.Errorf("exit status %d, want 42", code)
	}
	out, code := runCmd(t, time.Minute, "script", "-qec", dockerCLI+" -H unix://"+sock+" run --runtime berth --rm -it "+bbRef+" tty", "/dev/null")
	if code != 0 || !strings.Contains(out, "/dev/pts/0") {
		t.Errorf("docker run -it: exit %d %q", code, out)
	}
	if out, code := docker(time.Minute, "run", "--runtime", "berth", "-d", "--name", "e2e", "--memory", "64m", bbRef, "sleep", "1000"); code != 0 {
		t.Fatalf("docker run -d: %s", out)
	}
	if out, code := docker(time.Minute, "exec", "e2e", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); code != 0 || strings.TrimSpace(out) != "67108864" {
		t.Errorf("docker exec: exit %d %q", code, out)
	}
	if out, code := docker(time.Minute, "pause", "e2e"); code != 0 {
		t.Errorf("pause: %s", out)
	}
	if out, _ := docker(time.Minute, "inspect", "-f", "{{.State.Status}}", "e2e"); strings.TrimSpace(out) != "paused" {
		t.Errorf("status after pause: %q", out)
	}
	if out, code := docker(time.Minute, "unpause", "e2e"); code != 0 {
		t.Errorf("unpause: %s", out)
	}
	if out, code := docker(time.Minute, "stop", "-t", "1", "e2e"); code != 0 {
		t.Errorf("stop: %s", out)
	}
	if out, _ := docker(time.Minute, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "e2e"); strings.TrimSpace(out) != "exited 137" {
		t.Errorf("after stop: %q", out)
	}
}

func TestPodmanEndToEnd(t *testing.T) {
	needPeers(t, "podman")
	bin := runtimeBinary(t)
	podman := func(args ...string) (string, int) {
		return runCmd(t, 2*time.Minute, "podman", append([]string{"--runtime", bin}, args...)...)
	}
	ref := "127.0.0.1:5000/busybox"
	if out, code := podman("run", "--rm", ref, "echo", "hi"); code != 0 || out != "hi\n" {
		if strings.Contains(out, "pull") || strings.Contains(out, "manifest") {
			t.Skipf("image unavailable: %s", out)
		}
		t.Fatalf("podman run: exit %d %q", code, out)
	}
	name := "berth-e2e-" + strconv.Itoa(os.Getpid())
	defer podman("rm", "-f", name)
	if out, code := podman("run", "-d", "--name", name, ref, "sleep", "1000"); code != 0 {
		t.Fatalf("podman run -d: %s", out)
	}
	if out, code := podman("exec", name, "sh", "-c", "echo exec-ok"); code != 0 || out != "exec-ok\n" {
		t.Errorf("podman exec: %d %q", code, out)
	}
	if out, code := podman("pause", name); code != 0 {
		t.Errorf("pause: %s", out)
	}
	if out, code := podman("unpause", name); code != 0 {
		t.Errorf("unpause: %s", out)
	}
	if out, code := podman("stop", "-t", "1", name); code != 0 {
		t.Errorf("stop: %s", out)
	}
}
