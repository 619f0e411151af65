package e2e

// Bad input, load and faults (issue 4): each test drives the real daemon with
// the real docker CLI or the moby Go client and asserts on docker's status
// codes, messages, exit codes and on what is left behind afterwards.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// api sends one raw request to the daemon and returns status and body.
func (d *daemon) api(method, path, body string) (int, string) {
	d.t.Helper()
	c := http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
		},
	}}
	req, err := http.NewRequest(method, "http://berth"+path, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// apiMessage is the "message" of a docker error body.
func apiMessage(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Message string }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not docker's JSON: %q", body)
	}
	return e.Message
}

func (d *daemon) mustAlive() {
	d.t.Helper()
	if code, body := d.api("GET", "/_ping", ""); code != 200 || body != "OK" {
		d.t.Fatalf("daemon not answering _ping: %d %q", code, body)
	}
}

func TestBadInput(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t)
	d.must("docker", "pull", bb)

	// Malformed JSON: 400 with the decoder's message, daemon stays up.
	code, body := d.api("POST", "/v1.41/containers/create", `{"Image": "busybox", bad`)
	if code != 400 || !strings.Contains(apiMessage(t, body), "invalid character") {
		t.Fatalf("malformed JSON: %d %s", code, body)
	}
	code, body = d.api("POST", "/v1.41/containers/create", `[1,2`)
	if code != 400 || apiMessage(t, body) == "" {
		t.Fatalf("truncated JSON: %d %s", code, body)
	}
	d.mustAlive()

	// Unknown container: 404 "No such container: x" over the API and the CLI.
	code, body = d.api("GET", "/v1.41/containers/x/json", "")
	if code != 404 || apiMessage(t, body) != "No such container: x" {
		t.Fatalf("unknown container: %d %s", code, body)
	}
	out, err := d.docker("stop", "x")
	if exitCode(err) != 1 || !strings.Contains(out, "Error response from daemon: No such container: x") {
		t.Fatalf("docker stop x: %v %q", err, out)
	}

	// Bad image reference: 400.
	code, body = d.api("POST", "/v1.41/containers/create", `{"Image":"Bad//Ref:::"}`)
	if code != 400 || !strings.Contains(apiMessage(t, body), "invalid reference format") {
		t.Fatalf("bad reference: %d %s", code, body)
	}
	d.mustAlive()

	// Name conflict: 409 and docker's message.
	d.must("docker", "create", "--name", "dup", bb, "true")
	code, body = d.api("POST", "/v1.41/containers/create?name=dup", `{"Image":"`+bb+`"}`)
	if code != 409 || !strings.Contains(apiMessage(t, body), `Conflict. The container name "/dup" is already in use by container`) {
		t.Fatalf("name conflict: %d %s", code, body)
	}
	out, err = d.docker("create", "--name", "dup", bb, "true")
	if exitCode(err) != 1 || !strings.Contains(out, `The container name "/dup" is already in use`) {
		t.Fatalf("docker create name conflict: %v %q", err, out)
	}

	// rm of a running container without -f: 409.
	d.must("docker", "run", "-d", "--name", "busy", bb, "sleep", "100")
	code, body = d.api("DELETE", "/v1.41/containers/busy", "")
	if code != 409 || !strings.Contains(apiMessage(t, body), "container is running: stop the container before removing or force remove") {
		t.Fatalf("rm running: %d %s", code, body)
	}
	out, err = d.docker("rm", "busy")
	if exitCode(err) != 1 || !strings.Contains(out, `cannot remove container "/busy": container is running`) {
		t.Fatalf("docker rm busy: %v %q", err, out)
	}
	if out := d.must("docker", "inspect", "-f", "{{.State.Status}}", "busy"); strings.TrimSpace(out) != "running" {
		t.Fatalf("after refused rm: %q", out)
	}

	// stop of a stopped container: 304 over the API, exit 0 in the CLI.
	d.must("docker", "stop", "-t", "0", "busy")
	code, _ = d.api("POST", "/v1.41/containers/busy/stop", "")
	if code != 304 {
		t.Fatalf("stop of a stopped container: %d", code)
	}
	if out, err := d.docker("stop", "busy"); err != nil || strings.TrimSpace(out) != "busy" {
		t.Fatalf("docker stop of a stopped container: %v %q", err, out)
	}
	// start of a started one is 304 too; the CLI prints the name.
	d.must("docker", "start", "busy")
	if code, _ := d.api("POST", "/v1.41/containers/busy/start", ""); code != 304 {
		t.Fatalf("start of a running container: %d", code)
	}
	d.mustAlive()
}

// leaks counts what containers leave behind on the host.
type leaks struct {
	mounts, netns, monitors, fds int
}

func (d *daemon) countLeaks() leaks {
	var l leaks
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], d.root) {
			l.mounts++
		}
	}
	ns, _ := os.ReadDir(filepath.Join(d.root, "exec", "netns"))
	l.netns = len(ns)
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if strings.Contains(string(b), "berth-monitor") && strings.Contains(string(b), d.root) {
			l.monitors++
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
	l.fds = len(fds)
	return l
}

// cgroupDirs lists the cgroup directories that exist for id.
func cgroupDirs(id string) []string {
	m, _ := filepath.Glob("/sys/fs/cgroup/*/berth/" + id)
	return m
}

func TestHundredClients(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t)
	d.must("docker", "pull", bb)
	// One warm-up run so lazily opened daemon files count in the baseline.
	d.must("docker", "run", "--rm", bb, "true")
	before := d.countLeaks()

	const n = 100
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var ids []string
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cli, err := client.New(client.WithHost("unix://"+d.sock))
			if err != nil {
				errs <- err
				return
			}
			defer cli.Close()
			cfg := &container.Config{Image: bb, Cmd: []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"}}
			res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, Name: fmt.Sprintf("load%03d", i)})
			if err != nil {
				errs <- fmt.Errorf("create %d: %w", i, err)
				return
			}
			mu.Lock()
			ids = append(ids, res.ID)
			mu.Unlock()
			if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
				errs <- fmt.Errorf("start %d: %w", i, err)
				return
			}
			// Half stop gracefully, half are killed at once.
			timeout := 5
			if i%2 == 1 {
				timeout = 0
			}
			if _, err := cli.ContainerStop(ctx, res.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
				errs <- fmt.Errorf("stop %d: %w", i, err)
				return
			}
			ins, err := cli.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
			if err != nil {
				errs <- fmt.Errorf("inspect %d: %w", i, err)
				return
			}
			if st := ins.Container.State; st.Status != container.StateExited {
				errs <- fmt.Errorf("container %d after stop: %s", i, st.Status)
				return
			}
			if _, err := cli.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{}); err != nil {
				errs <- fmt.Errorf("remove %d: %w", i, err)
				return
			}
			if _, err := cli.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
				errs <- fmt.Errorf("inspect %d after remove: %v", i, err)
			}
		}(i)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("100 concurrent clients did not finish in 4 minutes (deadlock?)")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(ids) != n {
		t.Fatalf("%d of %d containers created", len(ids), n)
	}
	if out, _ := d.docker("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left: %q", out)
	}
	after := d.countLeaks()
	if after.mounts != before.mounts || after.netns != before.netns || after.monitors != before.monitors {
		t.Errorf("leaks: before %+v after %+v", before, after)
	}
	if after.fds > before.fds+5 {
		t.Errorf("daemon fds: %d before, %d after", before.fds, after.fds)
	}
	for _, id := range ids {
		if m := cgroupDirs(id); len(m) > 0 {
			t.Errorf("cgroups left: %v", m)
			break
		}
		for _, p := range []string{filepath.Join(d.root, "exec", "containers", id), filepath.Join(d.root, "data", "containers", id), filepath.Join(d.root, "exec", "runtime", id)} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("left behind: %s", p)
			}
		}
	}
	d.mustAlive()
}
