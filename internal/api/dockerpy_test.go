package api_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// docker-py (what docker-compose 1.29 is built on) against the fake: API
// version auto-detection, legacy list-encoded filters, run (create, start,
// wait, logs) and a raw hijacked attach socket.
const dockerPyScript = `
import sys, docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1], version="auto")
assert c.api.api_version == "1.41", c.api.api_version
print("ping", c.ping())
out = c.containers.run("busybox", ["echo", "from", "python"], remove=True)
print("run", out.decode().strip())
names = sorted(x.name for x in c.containers.list(all=True, filters={"label": ["com.docker.compose.project=demo"]}))
print("list", ",".join(names))
print("images", ",".join(sorted(t for i in c.images.list() for t in i.tags)))
ctr = c.containers.create("busybox", ["echo", "attached"])
sock = c.api.attach_socket(ctr.id, params={"stdout": 1, "stderr": 1, "stream": 1})
ctr.start()
data = b""
raw = sock._sock
while True:
    chunk = raw.recv(4096)
    if not chunk:
        break
    data += chunk
print("attach", data[8:].decode().strip(), data[0])
try:
    c.containers.get("nosuch")
except docker.errors.NotFound as e:
    print("notfound", e.explanation)
`

func TestDockerPy(t *testing.T) {
	if err := exec.Command("python3", "-c", "import docker").Run(); err != nil {
		t.Skip("needs python3 with the docker module (docker-py)")
	}
	e := newEnv(t)
	e.create(t, "web", &container.Config{Labels: map[string]string{"com.docker.compose.project": "demo"}}, nil)
	e.create(t, "other", &container.Config{}, nil)
	cmd := exec.Command("python3", "-c", dockerPyScript, e.sock)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-py: %v\n%s\n%s", err, out, stderr.String())
	}
	want := []string{"ping True", "run from python", "list web", "images 127.0.0.1:5000/busybox:latest,busybox:latest",
		"attach attached 1", "notfound No such container: nosuch"}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("docker-py output:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
}
