// Package e2e runs the real berth daemon and drives it with the real docker
// CLI (28.2 at /usr/local/bin/docker) and the berth CLI, as users do.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// registry is the local registry the peers script starts, with test images.
const registry = "127.0.0.1:5000"

// daemon is one berth daemon with its own roots and socket.
type daemon struct {
	t       *testing.T
	bin     string
	root    string
	sock    string
	cmd     *exec.Cmd
	logFile string
	runtime string
}

func requireRegistry(t *testing.T) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + registry + "/v2/")
	if err != nil {
		t.Skipf("needs the local registry on %s (../shared/peers/setup-peers.sh and make-images.sh): %v", registry, err)
	}
	resp.Body.Close()
}

func startDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	testutil.RequireRoot(t)
	d := &daemon{t: t, bin: testutil.Binary(t, "berth"), root: t.TempDir()}
	testutil.Binary(t, "berthd") // `berth daemon` execs berthd beside berth
	testutil.Binary(t, "berth-monitor")
	d.runtime = os.Getenv("BERTH_TEST_RUNTIME")
	if d.runtime == "" {
		d.runtime = testutil.Binary(t, "berth-runtime")
	}
	// berth finds berthd, and the daemon berth-monitor and berth-runtime, beside
	// their binaries.
	binDir := filepath.Dir(d.bin)
	for _, n := range []string{"berthd", "berth-monitor", "berth-runtime", "berth-init"} {
		if _, err := os.Stat(filepath.Join(binDir, n)); err != nil {
			src := testutil.Binary(t, n)
			if err := os.Symlink(src, filepath.Join(binDir, n)); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
		}
	}
	d.sock = filepath.Join(d.root, "berth.sock")
	d.logFile = filepath.Join(d.root, "daemon.log")
	d.start(extra...)
	t.Cleanup(d.cleanup)
	return d
}

func (d *daemon) start(extra ...string) {
	t := d.t
	args := []string{"daemon", "--data-root", filepath.Join(d.root, "data"), "--exec-root", filepath.Join(d.root, "exec"),
		"-H", "unix://" + d.sock, "--config-file", filepath.Join(d.root, "none.json"), "--debug"}
	// The default runtime is berth's own, as in production: the daemon
	// creates containers in-process and the monitor forks the init. The
	// same binary is also registered as "test", driven through its
	// runc-compatible CLI (--runtime test); BERTH_TEST_RUNTIME makes another
	// runtime (runc, crun) the default.
	if strings.Contains(d.runtime, "/") {
		cfg := fmt.Sprintf(`{"runtimes":{"test":{"path":%q}}}`, d.runtime)
		if os.Getenv("BERTH_TEST_RUNTIME") != "" {
			cfg = fmt.Sprintf(`{"runtimes":{"test":{"path":%q}},"default-runtime":"test"}`, d.runtime)
		}
		_ = os.WriteFile(filepath.Join(d.root, "none.json"), []byte(cfg), 0o644)
	}
	args = append(args, extra...)
	logf, err := os.OpenFile(d.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(d.bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", d.sock); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(d.logFile)
	t.Fatalf("daemon did not come up:\n%s", b)
}

// kill stops the daemon with SIGKILL (containers must survive).
func (d *daemon) kill() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_ = d.cmd.Wait()
}

func (d *daemon) cleanup() {
	// Remove every container, then stop the daemon, then check leftovers.
	out, _ := d.docker("ps", "-aq")
	for _, id := range strings.Fields(out) {
		_, _ = d.docker("rm", "-f", id)
	}
	if d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		_ = d.cmd.Wait()
	}
	if d.t.Failed() {
		b, _ := os.ReadFile(d.logFile)
		d.t.Logf("daemon log:\n%s", b)
	}
	// Unmount anything left below the test root so TempDir cleanup works.
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], d.root) {
			_ = syscall.Unmount(f[4], syscall.MNT_DETACH)
		}
	}
}

// docker runs the real docker CLI against the daemon.
func (d *daemon) docker(args ...string) (string, error) {
	return d.run("docker", nil, args...)
}

// berth runs the berth CLI against the daemon.
func (d *daemon) berth(args ...string) (string, error) {
	return d.run(d.bin, nil, args...)
}

func (d *daemon) run(bin string, stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "BERTH_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(d.root, "dockercfg"))
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (d *daemon) must(bin string, args ...string) string {
	d.t.Helper()
	var out string
	var err error
	if bin == "docker" {
		out, err = d.docker(args...)
	} else {
		out, err = d.berth(args...)
	}
	if err != nil {
		d.t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return out
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

const bb = registry + "/busybox:latest"

func dockerCLI(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("needs the docker CLI")
	}
}

func TestDockerCLILifecycle(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t)

	if out := d.must("docker", "version", "--format", "{{.Server.APIVersion}}"); strings.TrimSpace(out) != "1.41" {
		t.Fatalf("server API version %q", out)
	}
	d.must("docker", "info")
	out := d.must("docker", "pull", bb)
	if !strings.Contains(out, "Status: Downloaded newer image for "+bb) && !strings.Contains(out, "Image is up to date") {
		t.Fatalf("pull output:\n%s", out)
	}
	// The local registry has no auth: the daemon's check against it passes.
	if out := d.must("docker", "login", "-u", "u", "-p", "p", registry); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: %s", out)
	}
	if out := d.must("docker", "images"); !strings.Contains(out, registry+"/busybox") {
		t.Fatalf("images:\n%s", out)
	}

	// run --rm with output and exit status.
	if out := d.must("docker", "run", "--rm", bb, "echo", "hello"); out != "hello\n" {
		t.Fatalf("run --rm printed %q", out)
	}
	if _, err := d.docker("run", "--rm", bb, "sh", "-c", "exit 3"); exitCode(err) != 3 {
		t.Fatalf("exit status: %v", err)
	}
	if out, _ := d.docker("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("--rm left containers: %q", out)
	}

	// -d, ps, logs, exec, pause/unpause, stop, start, restart, rm.
	id := strings.TrimSpace(d.must("docker", "run", "-d", "--name", "web", bb, "sh", "-c", "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	waitFor(t, func() bool { out, _ := d.docker("logs", "web"); return strings.Contains(out, "started") })
	if out := d.must("docker", "ps"); !strings.Contains(out, "web") || !strings.Contains(out, "Up ") {
		t.Fatalf("ps:\n%s", out)
	}
	if out := d.must("docker", "exec", "web", "cat", "/etc/hostname"); strings.TrimSpace(out) != id[:12] {
		t.Fatalf("exec hostname %q", out)
	}
	if _, err := d.docker("exec", "web", "sh", "-c", "exit 5"); exitCode(err) != 5 {
		t.Fatalf("exec exit status: %v", err)
	}
	d.must("docker", "pause", "web")
	if out := d.must("docker", "inspect", "-f", "{{.State.Status}}", "web"); strings.TrimSpace(out) != "paused" {
		t.Fatalf("after pause: %q", out)
	}
	d.must("docker", "unpause", "web")
	if out := d.must("docker", "top", "web"); !strings.Contains(out, "sleep") && !strings.Contains(out, "sh -c") {
		t.Fatalf("top:\n%s", out)
	}
	d.must("docker", "stop", "web")
	if out := d.must("docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web"); strings.TrimSpace(out) != "exited 0" {
		t.Fatalf("after stop: %q", out)
	}
	if out := d.must("docker", "logs", "web"); out != "started\nbye\n" {
		t.Fatalf("logs after stop %q", out)
	}
	d.must("docker", "start", "web")
	d.must("docker", "restart", "-t", "1", "web")
	if out := d.must("docker", "ps", "-a", "--format", "{{.Names}} {{.Status}}"); !strings.Contains(out, "web Up") {
		t.Fatalf("ps after restart:\n%s", out)
	}
	if _, err := d.docker("rm", "web"); err == nil {
		t.Fatal("rm of a running container succeeded")
	}
	d.must("docker", "rm", "-f", "web")
	if out, err := d.docker("rm", "web"); err == nil || !strings.Contains(out, "No such container: web") {
		t.Fatalf("rm of a removed container: %v %s", err, out)
	}

	// A container that ignores SIGTERM: stop escalates to SIGKILL.
	d.must("docker", "run", "-d", "--name", "stubborn", bb, "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
	start := time.Now()
	d.must("docker", "stop", "-t", "1", "stubborn")
	if el := time.Since(start); el > 15*time.Second {
		t.Fatalf("stop took %v", el)
	}
	if out := d.must("docker", "inspect", "-f", "{{.State.ExitCode}}", "stubborn"); strings.TrimSpace(out) != "137" {
		t.Fatalf("killed container exit code %q", out)
	}
	d.must("docker", "rm", "stubborn")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met in 10s")
}

func TestDaemonKilledContainersSurvive(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t)
	d.must("docker", "pull", bb)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, strings.TrimSpace(d.must("docker", "run", "-d", bb, "sh", "-c", fmt.Sprintf("i=0; while [ $i -lt 40 ]; do echo c%d-$i; i=$((i+1)); sleep 0.05; done; exit %d", i, i))))
	}
	long := strings.TrimSpace(d.must("docker", "run", "-d", bb, "sleep", "1000"))
	d.kill()
	time.Sleep(3 * time.Second) // the short ones exit while the daemon is down
	d.start()
	for i, id := range ids {
		waitFor(t, func() bool {
			out, _ := d.docker("inspect", "-f", "{{.State.Status}}", id)
			return strings.TrimSpace(out) == "exited"
		})
		if out := d.must("docker", "inspect", "-f", "{{.State.ExitCode}}", id); strings.TrimSpace(out) != fmt.Sprint(i) {
			t.Fatalf("container %d exit code %q", i, out)
		}
		out := d.must("docker", "logs", id)
		if n := strings.Count(out, "\n"); n != 40 {
			t.Fatalf("container %d: %d log lines after daemon restart, want 40:\n%s", i, n, out)
		}
	}
	if out := d.must("docker", "inspect", "-f", "{{.State.Status}}", long); strings.TrimSpace(out) != "running" {
		t.Fatalf("long-running container after daemon restart: %q", out)
	}
	d.must("docker", "rm", "-f", long)
}
