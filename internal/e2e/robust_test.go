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
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/testutil"
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

// startOwnBridge starts a daemon with its own default bridge device, so that
// it runs beside other test daemons (one bridge device has one owner), and
// deletes that device afterwards.
func startOwnBridge(t *testing.T) *daemon {
	t.Helper()
	testutil.RequireRoot(t)
	br := fmt.Sprintf("brt%d", time.Now().UnixNano()%1e9)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", br).Run() })
	return startDaemon(t, "--bridge", br)
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
	d := startOwnBridge(t)
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
	d := startOwnBridge(t)
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
			cli, err := client.New(client.WithHost("unix://" + d.sock))
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

// seqGap checks that out holds prefix-0 … prefix-N, each once and in order,
// and returns N+1.
func seqGap(t *testing.T, name, prefix, out string) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		if l != fmt.Sprintf("%s-%d", prefix, n) {
			t.Fatalf("%s: log line %d is %q, want %s-%d (gap or duplicate)", name, n, l, prefix, n)
		}
		n++
	}
	return n
}

func TestDaemonKilledTwentyContainers(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startOwnBridge(t)
	d.must("docker", "pull", bb)
	// 10 write a numbered line every 20 ms for ever, 5 sleep, 5 write 60
	// lines and exit with their own code while the daemon is down.
	var loggers, sleepers, short []string
	for i := 0; i < 10; i++ {
		loggers = append(loggers, strings.TrimSpace(d.must("docker", "run", "-d", bb, "sh", "-c", fmt.Sprintf("i=0; while true; do echo L%d-$i; i=$((i+1)); sleep 0.02; done", i))))
	}
	for i := 0; i < 5; i++ {
		sleepers = append(sleepers, strings.TrimSpace(d.must("docker", "run", "-d", bb, "sleep", "1000")))
	}
	for i := 0; i < 5; i++ {
		short = append(short, strings.TrimSpace(d.must("docker", "run", "-d", bb, "sh", "-c", fmt.Sprintf("sleep 1; i=0; while [ $i -lt 60 ]; do echo S%d-$i; i=$((i+1)); sleep 0.01; done; exit %d", i, 10+i))))
	}
	// How far the loggers got before the kill.
	seen := map[string]int{}
	for i, id := range loggers {
		seen[id] = seqGap(t, id[:12], fmt.Sprintf("L%d", i), d.must("docker", "logs", id))
	}
	var shortPids []int
	for _, id := range short {
		pid, _ := strconv.Atoi(strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.State.Pid}}", id)))
		shortPids = append(shortPids, pid)
	}
	d.kill()
	time.Sleep(4 * time.Second) // loggers keep writing
	// The short ones must have ended before the daemon comes back (a slow
	// machine takes longer than their 1.6 s).
	deadline := time.Now().Add(60 * time.Second)
	for _, pid := range shortPids {
		for pid > 0 && syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	d.start()
	for _, id := range append(append([]string{}, loggers...), sleepers...) {
		if out := d.must("docker", "inspect", "-f", "{{.State.Status}} {{.State.Pid}}", id); !strings.HasPrefix(out, "running ") {
			t.Fatalf("%s after daemon restart: %q", id[:12], out)
		}
	}
	if out := d.must("docker", "ps", "-q"); len(strings.Fields(out)) != 15 {
		t.Fatalf("docker ps after restart lists %d containers, want 15:\n%s", len(strings.Fields(out)), out)
	}
	for i, id := range loggers {
		n := seqGap(t, id[:12], fmt.Sprintf("L%d", i), d.must("docker", "logs", id))
		// 4 s down at one line per ~20 ms (plus sh's own time): far more
		// than 50 lines were written while the daemon was away.
		if n < seen[id]+50 {
			t.Fatalf("logger %d: %d lines before the kill, %d after restart", i, seen[id], n)
		}
	}
	for i, id := range short {
		waitFor(t, func() bool {
			out, _ := d.docker("inspect", "-f", "{{.State.Status}}", id)
			return strings.TrimSpace(out) == "exited"
		})
		if out := d.must("docker", "inspect", "-f", "{{.State.ExitCode}}", id); strings.TrimSpace(out) != fmt.Sprint(10+i) {
			t.Fatalf("short %d exit code %q, want %d", i, out, 10+i)
		}
		if n := seqGap(t, id[:12], fmt.Sprintf("S%d", i), d.must("docker", "logs", id)); n != 60 {
			t.Fatalf("short %d: %d log lines, want 60", i, n)
		}
		if _, err := d.docker("wait", id); exitCode(err) != 0 {
			t.Fatalf("docker wait %d: %v", i, err)
		}
	}
	// The survivors are still controllable by the new daemon.
	d.must("docker", "stop", "-t", "0", loggers[0])
	if out := d.must("docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", loggers[0]); strings.TrimSpace(out) != "exited 137" {
		t.Fatalf("stop after restart: %q", out)
	}
}

// rssKB reads a field (VmRSS, VmHWM) of /proc/<pid>/status in kB.
func rssKB(t *testing.T, pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func TestFloodAndEarlyExit(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startOwnBridge(t)
	d.must("docker", "pull", bb)

	// 200000 lines of 100 bytes (20 MB) as fast as the container can write,
	// attached: the client gets every byte, and so does docker logs.
	const flood = `yes 012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678 | head -c 20000000`
	out, err := d.docker("run", "--name", "flood", bb, "sh", "-c", flood)
	if err != nil || len(out) != 20000000 || strings.Count(out, "\n") != 200000 {
		t.Fatalf("attached flood: %v, %d bytes, %d lines", err, len(out), strings.Count(out, "\n"))
	}
	out = d.must("docker", "logs", "flood")
	if len(out) != 20000000 || strings.Count(out, "\n") != 200000 {
		t.Fatalf("docker logs of the flood: %d bytes, %d lines", len(out), strings.Count(out, "\n"))
	}
	out = d.must("docker", "logs", "--tail", "3", "flood")
	if strings.Count(out, "\n") != 3 {
		t.Fatalf("logs --tail 3: %q", out)
	}
	// With rotation (3 files of 1 MB): logs ends with the last line, and no
	// line is torn at a file boundary.
	d.must("docker", "run", "--name", "rot", "--log-opt", "max-size=1m", "--log-opt", "max-file=3", bb, "sh", "-c", flood)
	out = d.must("docker", "logs", "rot")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(out) > 3<<20 || len(lines) < 10000 || lines[len(lines)-1] != strings.Fields(flood)[1] {
		t.Fatalf("rotated logs: %d bytes, %d lines", len(out), len(lines))
	}
	for i, l := range lines {
		if len(l) != 99 {
			t.Fatalf("rotated logs: line %d is %d bytes: %q", i, len(l), l)
		}
	}
	// The daemon streams; it does not hold the log in memory.
	if hwm := rssKB(t, d.cmd.Process.Pid, "VmHWM"); hwm > 150*1024 {
		t.Fatalf("daemon peak RSS %d kB after a 20 MB log", hwm)
	}

	// Containers that exit before the client attaches: no hang, right code.
	for i := 0; i < 20; i++ {
		if out, err := d.docker("run", "--rm", bb, "true"); err != nil || out != "" {
			t.Fatalf("run true #%d: %v %q", i, err, out)
		}
	}
	for i := 0; i < 5; i++ {
		if out, err := d.docker("run", "--rm", bb, "sh", "-c", fmt.Sprintf("echo x%d; exit %d", i, 3+i)); exitCode(err) != 3+i || out != fmt.Sprintf("x%d\n", i) {
			t.Fatalf("run exit %d: %v %q", 3+i, err, out)
		}
	}
	d.must("docker", "create", "--name", "early", bb, "sh", "-c", "echo hi; exit 3")
	for i := 0; i < 3; i++ {
		out, err := d.docker("start", "-a", "early")
		if exitCode(err) != 3 || out != "hi\n" {
			t.Fatalf("start -a #%d of an exited container: %v %q", i, err, out)
		}
	}
	if out := d.must("docker", "logs", "early"); out != "hi\nhi\nhi\n" {
		t.Fatalf("logs of early: %q", out)
	}
	d.mustAlive()
}

func restartCount(d *daemon, id string) (string, int) {
	out := d.must("docker", "inspect", "-f", "{{.State.Status}} {{.RestartCount}}", id)
	f := strings.Fields(out)
	n, _ := strconv.Atoi(f[1])
	return f[0], n
}

func TestRestartPolicies(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startOwnBridge(t)
	d.must("docker", "pull", bb)

	// on-failure:2: the first run and exactly two restarts.
	d.must("docker", "run", "-d", "--name", "fail", "--restart", "on-failure:2", bb, "sh", "-c", "echo run; exit 1")
	waitFor(t, func() bool { st, n := restartCount(d, "fail"); return st == "exited" && n == 2 })
	time.Sleep(1500 * time.Millisecond) // a third restart would come after 400 ms
	if st, n := restartCount(d, "fail"); st != "exited" || n != 2 {
		t.Fatalf("on-failure:2 ended %s with %d restarts", st, n)
	}
	if out := d.must("docker", "logs", "fail"); out != "run\nrun\nrun\n" {
		t.Fatalf("on-failure:2 logs %q", out)
	}
	if out := d.must("docker", "inspect", "-f", "{{.State.ExitCode}}", "fail"); strings.TrimSpace(out) != "1" {
		t.Fatalf("on-failure exit code %q", out)
	}
	// on-failure does not restart after success.
	d.must("docker", "run", "-d", "--name", "ok", "--restart", "on-failure", bb, "true")
	waitFor(t, func() bool { st, _ := restartCount(d, "ok"); return st == "exited" })
	time.Sleep(500 * time.Millisecond)
	if st, n := restartCount(d, "ok"); st != "exited" || n != 0 {
		t.Fatalf("on-failure after exit 0: %s %d", st, n)
	}

	// always: restarts after a clean exit.
	d.must("docker", "run", "-d", "--name", "always", "--restart", "always", bb, "sh", "-c", "echo run; sleep 0.3")
	waitFor(t, func() bool { _, n := restartCount(d, "always"); return n >= 2 })
	// docker stop keeps it stopped.
	d.must("docker", "stop", "always")
	time.Sleep(1500 * time.Millisecond)
	if st, _ := restartCount(d, "always"); st != "exited" {
		t.Fatalf("always after docker stop: %s", st)
	}

	// always: a container that dies while the daemon is down is restarted
	// when it comes back.
	id := strings.TrimSpace(d.must("docker", "run", "-d", "--restart", "always", bb, "sleep", "1000"))
	pid, _ := strconv.Atoi(strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.State.Pid}}", id)))
	if pid <= 0 {
		t.Fatalf("pid %d", pid)
	}
	// One that is between two policy restarts when the daemon dies (back-off
	// 3.2 s after 5 restarts), one always and one unless-stopped stopped by hand.
	d.must("docker", "run", "-d", "--name", "flap", "--restart", "always", bb, "sh", "-c", "exit 5")
	waitFor(t, func() bool { st, n := restartCount(d, "flap"); return st == "restarting" && n >= 5 })
	_, flaps := restartCount(d, "flap")
	d.must("docker", "run", "-d", "--name", "stopped", "--restart", "always", bb, "sleep", "1000")
	d.must("docker", "stop", "-t", "0", "stopped")
	d.must("docker", "run", "-d", "--name", "us", "--restart", "unless-stopped", bb, "sleep", "1000")
	d.must("docker", "stop", "-t", "0", "us")
	d.kill()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	d.start()
	waitFor(t, func() bool { st, n := restartCount(d, id); return st == "running" && n >= 1 })
	if out := d.must("docker", "inspect", "-f", "{{.State.Pid}}", id); strings.TrimSpace(out) == fmt.Sprint(pid) {
		t.Fatalf("same pid after restart: %s", out)
	}
	// The flapping one keeps its real exit code and goes on restarting.
	if out := d.must("docker", "inspect", "-f", "{{.State.ExitCode}}/{{.State.Error}}", "flap"); strings.TrimSpace(out) != "5/" {
		t.Fatalf("flapping container after daemon restart: %q", out)
	}
	waitFor(t, func() bool { _, n := restartCount(d, "flap"); return n > flaps })
	// docker starts a stopped always container with the daemon, not an
	// unless-stopped one.
	waitFor(t, func() bool { st, _ := restartCount(d, "stopped"); return st == "running" })
	if st, _ := restartCount(d, "us"); st != "exited" {
		t.Fatalf("unless-stopped container stopped by hand is %s after daemon restart", st)
	}
	d.must("docker", "rm", "-f", id)
}

// TestRacingOperations starts, restarts, stops and force-removes the same
// containers at once: only docker's refusals may come back, and nothing of
// a removed container may survive, not even across a daemon restart.
func TestRacingOperations(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startOwnBridge(t)
	d.must("docker", "pull", bb)
	d.must("docker", "run", "--rm", bb, "true")
	before := d.countLeaks()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli, err := client.New(client.WithHost("unix://" + d.sock))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var ids []string
	for i := 0; i < 30; i++ {
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: bb, Cmd: []string{"sleep", "100"}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	// What docker itself answers when an operation loses the race.
	allowed := []string{"No such container", "marked for removal", "is already in progress", "is not running"}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(ids))
	for _, id := range ids {
		for k := 0; k < 4; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				zero := 0
				time.Sleep(time.Duration(k) * 30 * time.Millisecond)
				var err error
				switch k {
				case 0:
					_, err = cli.ContainerStart(ctx, id, client.ContainerStartOptions{})
				case 1:
					_, err = cli.ContainerRestart(ctx, id, client.ContainerRestartOptions{Timeout: &zero})
				case 2:
					_, err = cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &zero})
				case 3:
					_, err = cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
				}
				if err == nil {
					return
				}
				for _, a := range allowed {
					if strings.Contains(err.Error(), a) {
						return
					}
				}
				errs <- fmt.Errorf("op %d on %s: %w", k, id[:12], err)
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("racing operations did not finish in 3 minutes (deadlock?)")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range ids {
		_, _ = d.docker("rm", "-f", id)
	}
	d.kill()
	d.start()
	if out := d.must("docker", "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("removed containers are back after a daemon restart: %q", out)
	}
	after := d.countLeaks()
	if after.mounts != before.mounts || after.netns != before.netns || after.monitors != before.monitors {
		t.Errorf("leaks: before %+v after %+v", before, after)
	}
	for _, id := range ids {
		if m := cgroupDirs(id); len(m) > 0 {
			t.Errorf("cgroups left: %v", m)
		}
		for _, p := range []string{filepath.Join(d.root, "exec", "containers", id), filepath.Join(d.root, "data", "containers", id), filepath.Join(d.root, "exec", "runtime", id)} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("left behind: %s", p)
			}
		}
	}
}

// TestStdinHalfClose: output written after the client closed its stdin
// (echo x | docker run -i) still reaches the client, as with docker.
func TestStdinHalfClose(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startOwnBridge(t)
	d.must("docker", "pull", bb)
	for i := 0; i < 3; i++ {
		out, err := d.run("docker", []byte("hello\nworld\n"), "run", "-i", "--rm", bb, "sh", "-c", "cat; echo post; exit 6")
		if exitCode(err) != 6 || out != "hello\nworld\npost\n" {
			t.Fatalf("docker run -i #%d: %v %q", i, err, out)
		}
	}
	out, err := d.run("docker", []byte{}, "run", "-i", "--rm", bb, "sh", "-c", "echo after-eof")
	if err != nil || out != "after-eof\n" {
		t.Fatalf("docker run -i with empty stdin: %v %q", err, out)
	}
	out, err = d.run(d.bin, []byte("x\n"), "run", "-i", "--rm", bb, "wc", "-l")
	if err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("berth run -i: %v %q", err, out)
	}
}

// TestKillPaused: docker kill of a paused container ends it (a frozen
// process only dies of SIGKILL once thawed), as do stop and rm -f.
func TestKillPaused(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startOwnBridge(t)
	d.must("docker", "pull", bb)
	for _, how := range [][]string{{"kill"}, {"stop", "-t", "1"}} {
		d.must("docker", "run", "-d", "--name", "pz", bb, "sleep", "1000")
		d.must("docker", "pause", "pz")
		d.must("docker", append(how, "pz")...)
		if out, err := d.docker("wait", "pz"); err != nil || strings.TrimSpace(out) != "137" {
			t.Fatalf("%s of a paused container, then wait: %v %q", how[0], err, out)
		}
		if out := d.must("docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "pz"); strings.TrimSpace(out) != "exited 137" {
			t.Fatalf("%s of a paused container: %q", how[0], out)
		}
		d.must("docker", "rm", "pz")
	}
	d.must("docker", "run", "-d", "--name", "pz", bb, "sleep", "1000")
	d.must("docker", "pause", "pz")
	d.must("docker", "rm", "-f", "pz")
	if out, _ := d.docker("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("rm -f of a paused container left %q", out)
	}
}
