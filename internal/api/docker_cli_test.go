package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/moby/moby/api/types/container"
)

const dockerCLI = "/usr/local/bin/docker"

// dockerEnv serves a fake engine and runs the real docker CLI against it.
type dockerEnv struct {
	*env
	home string
}

func newDockerEnv(t *testing.T) *dockerEnv {
	t.Helper()
	if _, err := os.Stat(dockerCLI); err != nil {
		t.Skipf("needs the docker CLI at %s: %v", dockerCLI, err)
	}
	return &dockerEnv{env: newEnv(t), home: t.TempDir()}
}

// docker runs the CLI with a clean environment (no DOCKER_* from the
// host, its own config dir) and returns stdout, stderr and the exit code.
func (d *dockerEnv) docker(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	// A hang (e.g. a wait that never returns) fails the test, not the run.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLI, args...)
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + d.home,
		"DOCKER_CONFIG=" + d.home + "/.docker",
		"DOCKER_HOST=unix://" + d.sock,
		"DOCKER_CLI_HINTS=false",
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("docker %v: timed out\nstdout: %s\nstderr: %s", args, out.String(), errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (d *dockerEnv) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := d.docker(t, args...)
	if code != 0 {
		t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func TestDockerCLIVersionInfo(t *testing.T) {
	d := newDockerEnv(t)
	out := d.ok(t, "version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}")
	if strings.TrimSpace(out) != "1.41 1.24 linux" {
		t.Fatalf("docker version: %q", out)
	}
	out = d.ok(t, "version")
	if !strings.Contains(out, "API version:      1.41 (minimum version 1.24)") {
		t.Fatalf("docker version output:\n%s", out)
	}
	out = d.ok(t, "system", "df", "--format", "{{.Type}} {{.TotalCount}}")
	if !strings.Contains(out, "Images 2") || !strings.Contains(out, "Containers 0") || !strings.Contains(out, "Local Volumes 0") {
		t.Fatalf("docker system df: %q", out)
	}
	out = d.ok(t, "info", "--format", "{{.Name}} {{.OperatingSystem}} {{.Images}}")
	if strings.TrimSpace(out) != "fakehost berth-fake 2" {
		t.Fatalf("docker info --format: %q", out)
	}
	out = d.ok(t, "info")
	if !strings.Contains(out, "Operating System: berth-fake") || !strings.Contains(out, "Server Version: 20.10.0-berth") || !strings.Contains(out, "Swarm: inactive") {
		t.Fatalf("docker info:\n%s", out)
	}
}

func TestDockerCLIRunPsLogsInspect(t *testing.T) {
	d := newDockerEnv(t)
	d.create(t, "sleeper", &container.Config{Cmd: []string{"sleep", "100"}}, nil)
	d.create(t, "made", &container.Config{Cmd: []string{"echo", "made"}}, nil)

	out, errs, code := d.docker(t, "run", "--rm", "busybox", "echo", "hello")
	if code != 0 || out != "hello\n" {
		t.Fatalf("docker run --rm busybox echo hello: exit %d stdout %q stderr %q", code, out, errs)
	}
	out, errs, code = d.docker(t, "run", "--name", "failer", "busybox", "exit", "7")
	if code != 7 {
		t.Fatalf("docker run ... exit 7: exit %d stdout %q stderr %q", code, out, errs)
	}

	_, errs, code = d.docker(t, "run", "--rm", "busybox", "nonexistent")
	if code != 127 || !strings.Contains(errs, "executable file not found") {
		t.Fatalf("docker run of a missing executable: exit %d stderr %q", code, errs)
	}
	if _, errs, code := d.docker(t, "start", "sleeper"); code != 0 {
		t.Fatalf("docker start: %d %s", code, errs)
	}
	out = d.ok(t, "ps", "-a", "--format", "{{.Names}}|{{.Image}}|{{.Status}}")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 { // the --rm container is gone
		t.Fatalf("docker ps -a:\n%s", out)
	}
	for _, want := range []string{"sleeper|busybox|Up ", "made|busybox|Created", "failer|busybox|Exited (7)"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker ps -a lacks %q:\n%s", want, out)
		}
	}
	out = strings.TrimSpace(d.ok(t, "run", "-d", "--name", "bg", "busybox", "sleep", "1000"))
	if len(out) != 64 {
		t.Fatalf("docker run -d printed %q, want the ID", out)
	}
	d.ok(t, "rm", "-f", "bg")
	out = d.ok(t, "ps")
	if !strings.Contains(out, "CONTAINER ID") || !strings.Contains(out, "sleeper") || strings.Contains(out, "made") {
		t.Fatalf("docker ps:\n%s", out)
	}
	out = d.ok(t, "ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}")
	if strings.TrimSpace(out) != "failer" {
		t.Fatalf("docker ps --filter status=exited: %q", out)
	}

	out, errs, code = d.docker(t, "logs", "failer")
	if code != 0 || out != "" {
		t.Fatalf("docker logs failer: %d %q %q", code, out, errs)
	}
	d.ok(t, "start", "made")
	d.ok(t, "wait", "made")
	out = d.ok(t, "logs", "made")
	if out != "made\n" {
		t.Fatalf("docker logs made: %q", out)
	}

	out = d.ok(t, "inspect", "sleeper")
	var insp []struct {
		ID    string `json:"Id"`
		Name  string
		State struct{ Running bool }
	}
	if err := json.Unmarshal([]byte(out), &insp); err != nil || len(insp) != 1 || insp[0].Name != "/sleeper" || !insp[0].State.Running {
		t.Fatalf("docker inspect: %v\n%s", err, out)
	}
	out = d.ok(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}|{{.State.Status}}", "sleeper")
	if strings.TrimSpace(out) != "|running" {
		t.Fatalf("docker inspect -f: %q", out)
	}

	_, errs, code = d.docker(t, "rm", "nosuch")
	if code != 1 || !strings.Contains(errs, "No such container: nosuch") {
		t.Fatalf("docker rm nosuch: exit %d stderr %q", code, errs)
	}
	_, errs, code = d.docker(t, "rm", "sleeper")
	if code != 1 || !strings.Contains(errs, "container is running") {
		t.Fatalf("docker rm running: exit %d stderr %q", code, errs)
	}
	d.ok(t, "pause", "sleeper")
	if out := d.ok(t, "inspect", "-f", "{{.State.Status}}", "sleeper"); strings.TrimSpace(out) != "paused" {
		t.Fatalf("after pause: %q", out)
	}
	_, errs, code = d.docker(t, "pause", "sleeper")
	if code != 1 || !strings.Contains(errs, "is not running") {
		t.Fatalf("pause paused: %d %q", code, errs)
	}
	d.ok(t, "unpause", "sleeper")
	d.ok(t, "restart", "-t", "1", "sleeper")
	d.ok(t, "kill", "-s", "HUP", "sleeper")
	_, errs, code = d.docker(t, "kill", "sleeper")
	if code != 1 || !strings.Contains(errs, "is not running") {
		t.Fatalf("kill stopped: %d %q", code, errs)
	}
	d.ok(t, "start", "sleeper")
	d.ok(t, "stop", "sleeper")
	d.ok(t, "stop", "sleeper") // stopping a stopped container: 304, success
	d.ok(t, "rm", "sleeper")
}

func TestDockerCLIImages(t *testing.T) {
	d := newDockerEnv(t)
	out := d.ok(t, "images", "--format", "{{.Repository}}:{{.Tag}}")
	got := strings.Fields(out)
	if len(got) != 2 || !strings.Contains(out, "busybox:latest") || !strings.Contains(out, "127.0.0.1:5000/busybox:latest") {
		t.Fatalf("docker images: %q", out)
	}
	out = d.ok(t, "images")
	if !strings.HasPrefix(out, "REPOSITORY") || !strings.Contains(out, "4.19MB") {
		t.Fatalf("docker images table:\n%s", out)
	}
	d.ok(t, "tag", "127.0.0.1:5000/busybox", "127.0.0.1:5000/team/bb:v2")
	out = d.ok(t, "image", "inspect", "-f", "{{index .RepoTags 1}}", "127.0.0.1:5000/team/bb:v2")
	if strings.TrimSpace(out) != "127.0.0.1:5000/team/bb:v2" {
		t.Fatalf("image inspect of a name with slashes: %q", out)
	}
	out = d.ok(t, "rmi", "127.0.0.1:5000/team/bb:v2")
	if !strings.Contains(out, "Untagged: 127.0.0.1:5000/team/bb:v2") {
		t.Fatalf("docker rmi: %q", out)
	}
	out = d.ok(t, "push", "127.0.0.1:5000/busybox:latest")
	if !strings.Contains(out, "latest: digest: sha256:") {
		t.Fatalf("docker push: %q", out)
	}
	// run of a missing image pulls it first (create → 404 → pull → create).
	d.fake.AddRemote("busybox:pulled")
	out, errs, code := d.docker(t, "run", "--rm", "busybox:pulled", "echo", "after", "pull")
	if code != 0 || !strings.HasSuffix(out, "after pull\n") || !strings.Contains(errs, "Unable to find image 'busybox:pulled' locally") {
		t.Fatalf("run with pull: exit %d stdout %q stderr %q", code, out, errs)
	}
	_, errs, code = d.docker(t, "pull", "nosuch/image")
	if code != 1 || !strings.Contains(errs, "pull access denied for") {
		t.Fatalf("pull missing: exit %d stderr %q", code, errs)
	}
}

func TestDockerCLIExecCpEventsStats(t *testing.T) {
	d := newDockerEnv(t)
	d.create(t, "box", &container.Config{Cmd: []string{"sleep", "100"}, Labels: map[string]string{"team": "a"}}, nil)
	d.ok(t, "start", "box")

	if out := d.ok(t, "exec", "box", "echo", "from", "exec"); out != "from exec\n" {
		t.Fatalf("docker exec: %q", out)
	}
	d.ok(t, "exec", "-d", "box", "sleep")
	if _, _, code := d.docker(t, "exec", "box", "exit", "3"); code != 3 {
		t.Fatalf("docker exec exit 3: exit code %d", code)
	}
	_, errs, code := d.docker(t, "exec", "nosuch", "true")
	if code == 0 || !strings.Contains(errs, "No such container: nosuch") {
		t.Fatalf("docker exec on unknown container: %d %q", code, errs)
	}

	// cp out: a tar with the file; cp in: HEAD stat of /tmp, then PUT.
	out := d.ok(t, "cp", "box:/etc/hostname", "-")
	if !strings.Contains(out, "hostname") {
		t.Fatalf("docker cp out: %q", out)
	}
	src := d.home + "/hello.txt"
	if err := os.WriteFile(src, []byte("copied in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.ok(t, "cp", src, "box:/tmp/")
	dst := t.TempDir()
	d.ok(t, "cp", "box:/tmp/.", dst)
	if b, err := os.ReadFile(dst + "/hello.txt"); err != nil || string(b) != "copied in\n" {
		t.Fatalf("round trip through docker cp: %q %v", b, err)
	}
	_, errs, code = d.docker(t, "cp", "box:/nonexistent", "-")
	if code != 1 || !strings.Contains(errs, "Could not find the file /nonexistent") {
		t.Fatalf("cp of a missing path: %d %q", code, errs)
	}

	out = d.ok(t, "top", "box")
	if !strings.Contains(out, "PID") || !strings.Contains(out, "sleep 100") {
		t.Fatalf("docker top: %q", out)
	}
	out = d.ok(t, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "box")
	if strings.TrimSpace(out) != "box 1" {
		t.Fatalf("docker stats --no-stream: %q", out)
	}

	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	out = d.ok(t, "events", "--since", "0", "--until", until, "--filter", "label=team=a", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	if got := strings.TrimSpace(out); got != "container create box\ncontainer start box" {
		t.Fatalf("docker events: %q", got)
	}
	d.ok(t, "rm", "-f", "box")
}

// docker run -it in a pseudo-terminal: the CLI puts its terminal in raw
// mode, attaches stdin, gets a raw (unframed) stream and sends resizes.
func TestDockerCLIRunInteractiveTTY(t *testing.T) {
	d := newDockerEnv(t)
	cmd := exec.Command(dockerCLI, "run", "-it", "--rm", "busybox", "echo", "in", "a", "tty")
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + d.home, "DOCKER_CONFIG=" + d.home + "/.docker",
		"DOCKER_HOST=unix://" + d.sock, "TERM=xterm"}
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Skipf("cannot allocate a pty: %v", err)
	}
	defer ptmx.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&out, ptmx); close(done) }()
	err = cmd.Wait()
	ptmx.Close()
	<-done
	if err != nil {
		t.Fatalf("docker run -it: %v; output %q", err, out.String())
	}
	if !strings.Contains(out.String(), "in a tty\r\n") {
		t.Fatalf("docker run -it output %q", out.String())
	}
}

func TestDockerCLINetworksVolumes(t *testing.T) {
	d := newDockerEnv(t)
	out := d.ok(t, "network", "ls", "--format", "{{.Name}} {{.Driver}}")
	if strings.TrimSpace(out) != "bridge bridge\nhost host\nnone null" {
		t.Fatalf("network ls: %q", out)
	}
	id := strings.TrimSpace(d.ok(t, "network", "create", "--label", "k=v", "appnet"))
	if len(id) != 64 {
		t.Fatalf("network create printed %q", id)
	}
	_, errs, code := d.docker(t, "network", "create", "appnet")
	if code != 1 || !strings.Contains(errs, "network with name appnet already exists") {
		t.Fatalf("duplicate network: %d %q", code, errs)
	}
	out = d.ok(t, "network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels.k}}", "appnet")
	if strings.TrimSpace(out) != "appnet bridge v" {
		t.Fatalf("network inspect: %q", out)
	}
	d.create(t, "member", &container.Config{}, nil)
	d.ok(t, "network", "connect", "appnet", "member")
	d.ok(t, "network", "disconnect", "appnet", "member")
	_, errs, code = d.docker(t, "network", "rm", "bridge")
	if code != 1 || !strings.Contains(errs, "pre-defined network") {
		t.Fatalf("rm bridge: %d %q", code, errs)
	}
	d.ok(t, "network", "rm", "appnet")

	if out := strings.TrimSpace(d.ok(t, "volume", "create", "--label", "a=b", "data")); out != "data" {
		t.Fatalf("volume create: %q", out)
	}
	out = d.ok(t, "volume", "ls", "--format", "{{.Name}} {{.Driver}}")
	if strings.TrimSpace(out) != "data local" {
		t.Fatalf("volume ls: %q", out)
	}
	out = d.ok(t, "volume", "inspect", "-f", "{{.Mountpoint}} {{.Labels.a}}", "data")
	if strings.TrimSpace(out) != "/var/lib/berth/volumes/data/_data b" {
		t.Fatalf("volume inspect: %q", out)
	}
	d.ok(t, "volume", "rm", "data")
	_, errs, code = d.docker(t, "volume", "inspect", "data")
	if code != 1 || !strings.Contains(errs, "no such volume") {
		t.Fatalf("inspect removed volume: %d %q", code, errs)
	}
}

func TestDockerCLIAdminAndImageArchives(t *testing.T) {
	d := newDockerEnv(t)
	d.create(t, "old", &container.Config{Labels: map[string]string{"gc": "yes"}}, nil)
	d.ok(t, "rename", "old", "new")
	if out := d.ok(t, "ps", "-a", "--format", "{{.Names}}"); strings.TrimSpace(out) != "new" {
		t.Fatalf("after rename: %q", out)
	}
	d.ok(t, "update", "--restart", "always", "new")
	if out := d.ok(t, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "new"); strings.TrimSpace(out) != "always" {
		t.Fatalf("after update: %q", out)
	}
	id := strings.TrimSpace(d.ok(t, "commit", "new", "committed:v1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("commit printed %q", id)
	}
	out := d.ok(t, "container", "prune", "-f", "--filter", "label=gc=yes")
	if !strings.Contains(out, "Deleted Containers:") {
		t.Fatalf("container prune: %q", out)
	}
	if out := d.ok(t, "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("after prune: %q", out)
	}

	tarPath := d.home + "/img.tar"
	d.ok(t, "save", "-o", tarPath, "committed:v1")
	d.ok(t, "rmi", "committed:v1")
	if out := d.ok(t, "load", "-i", tarPath); !strings.Contains(out, "Loaded image: committed:v1") {
		t.Fatalf("load: %q", out)
	}
	d.ok(t, "image", "inspect", "committed:v1")

	// import from stdin
	cmd := exec.Command(dockerCLI, "import", "-", "imported:v1")
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + d.home, "DOCKER_CONFIG=" + d.home + "/.docker", "DOCKER_HOST=unix://" + d.sock}
	cmd.Stdin = bytes.NewReader(tarBytes(t))
	if b, err := cmd.CombinedOutput(); err != nil || !strings.HasPrefix(string(b), "sha256:") {
		t.Fatalf("import: %v %q", err, b)
	}
	d.ok(t, "image", "inspect", "imported:v1")

	out = d.ok(t, "search", "--format", "{{.Name}} {{.StarCount}} {{.IsOfficial}}", "busybox")
	if strings.TrimSpace(out) != "busybox 1 [OK]" {
		t.Fatalf("search: %q", out)
	}
	cmd = exec.Command(dockerCLI, "login", "-u", "me", "--password-stdin", "127.0.0.1:5000")
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + d.home, "DOCKER_CONFIG=" + d.home + "/.docker", "DOCKER_HOST=unix://" + d.sock}
	cmd.Stdin = strings.NewReader("wrong\n")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "401 Unauthorized") {
		t.Fatalf("login with a wrong password: %v %q", err, b)
	}
}

func tarBytes(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: 3}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("hi\n"))
	tw.Close()
	return buf.Bytes()
}

func TestDockerCLIExecStdin(t *testing.T) {
	d := newDockerEnv(t)
	d.create(t, "box", &container.Config{Cmd: []string{"sleep", "100"}}, nil)
	d.ok(t, "start", "box")
	cmd := exec.Command(dockerCLI, "exec", "-i", "box", "cat")
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + d.home, "DOCKER_CONFIG=" + d.home + "/.docker", "DOCKER_HOST=unix://" + d.sock}
	cmd.Stdin = strings.NewReader("piped in\n")
	out, err := cmd.Output()
	if err != nil || string(out) != "piped in\n" { // nothing of the request body leaks into stdin
		t.Fatalf("docker exec -i cat: %v %q", err, out)
	}
	d.ok(t, "rm", "-f", "box")
}
