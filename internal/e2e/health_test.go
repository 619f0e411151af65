package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// waitLong polls cond for up to a minute (probes run every second; the
// machine may be loaded).
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not reached in 60s", what)
}

func (d *daemon) health(name string) string {
	out, _ := d.docker("inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", name)
	return strings.TrimSpace(out)
}

func (d *daemon) psStatus(name string) string {
	out, _ := d.docker("ps", "-a", "--format", "{{.Names}}\t{{.Status}}")
	for _, l := range strings.Split(out, "\n") {
		if n, st, ok := strings.Cut(l, "\t"); ok && n == name {
			return st
		}
	}
	return ""
}

type healthLog struct {
	Status        string
	FailingStreak int
	Log           []struct {
		Start, End time.Time
		ExitCode   int
		Output     string
	}
}

func (d *daemon) healthLog(t *testing.T, name string) healthLog {
	t.Helper()
	var h healthLog
	out := d.must("docker", "inspect", "-f", "{{json .State.Health}}", name)
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("State.Health %q: %v", out, err)
	}
	return h
}

func TestHealthcheck(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startOwnBridge(t)
	d.must("docker", "pull", bb)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)

	// --health-* flags: starting → unhealthy (3 failures) → healthy.
	d.must("docker", "run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok", "--health-interval", "1s", "--health-retries", "5", bb, "sleep", "300")
	// Five failed probes one second apart are needed before "unhealthy".
	if h := d.health("hc"); h != "starting" {
		t.Fatalf("health right after run: %q", h)
	}
	if st := d.psStatus("hc"); !strings.HasPrefix(st, "Up ") || !strings.HasSuffix(st, " (health: starting)") {
		t.Fatalf("ps STATUS while starting: %q", st)
	}
	waitLong(t, "unhealthy", func() bool { return d.health("hc") == "unhealthy" })
	if st := d.psStatus("hc"); !strings.HasSuffix(st, " (unhealthy)") {
		t.Fatalf("ps STATUS when unhealthy: %q", st)
	}
	h := d.healthLog(t, "hc")
	if h.FailingStreak < 5 || len(h.Log) == 0 || h.Log[len(h.Log)-1].ExitCode != 1 {
		t.Fatalf("unhealthy State.Health: %+v", h)
	}
	if out := d.must("docker", "ps", "-q", "--filter", "health=unhealthy"); !strings.Contains(out, d.id("hc")[:12]) {
		t.Fatalf("ps --filter health=unhealthy: %q", out)
	}
	if out := d.must("docker", "ps", "-q", "--filter", "health=healthy"); strings.TrimSpace(out) != "" {
		t.Fatalf("ps --filter health=healthy: %q", out)
	}
	if out, err := d.docker("ps", "--filter", "health=bogus"); err == nil || !strings.Contains(out, "Unrecognised filter value for health: bogus") {
		t.Fatalf("ps --filter health=bogus: %v %q", err, out)
	}

	d.must("docker", "exec", "hc", "touch", "/tmp/ok")
	waitLong(t, "healthy", func() bool { return d.health("hc") == "healthy" })
	if st := d.psStatus("hc"); !strings.HasSuffix(st, " (healthy)") {
		t.Fatalf("ps STATUS when healthy: %q", st)
	}
	if out := d.must("docker", "ps", "-q", "--filter", "health=healthy"); !strings.Contains(out, d.id("hc")[:12]) {
		t.Fatalf("ps --filter health=healthy: %q", out)
	}
	// Five more probes: the log keeps the last five, oldest first, so
	// only successes remain.
	waitLong(t, "five successes in the log", func() bool {
		h = d.healthLog(t, "hc")
		for _, r := range h.Log {
			if r.ExitCode != 0 {
				return false
			}
		}
		return true
	})
	if h.FailingStreak != 0 || len(h.Log) != 5 {
		t.Fatalf("healthy State.Health: %+v", h)
	}
	for i, r := range h.Log {
		if r.End.Before(r.Start) || (i > 0 && r.Start.Before(h.Log[i-1].End)) {
			t.Fatalf("log entry %d: %+v", i, r)
		}
	}

	// Events: health_status changes, and the probes as execs.
	until := strconv.FormatInt(time.Now().Unix()+1, 10)
	out := d.must("docker", "events", "--since", since, "--until", until, "--filter", "container=hc", "--filter", "event=health_status", "--format", "{{.Action}}")
	if out != "health_status: unhealthy\nhealth_status: healthy\n" {
		t.Fatalf("health_status events:\n%s", out)
	}
	out = d.must("docker", "events", "--since", since, "--until", until, "--filter", "container=hc", "--format", "{{.Action}}")
	if !strings.Contains(out, "exec_start: /bin/sh -c test -f /tmp/ok\n") || !strings.Contains(out, "exec_die\n") {
		t.Fatalf("probe exec events:\n%s", out)
	}

	// The checker stops with the container (status unhealthy, as docker)
	// and starts again with it.
	d.must("docker", "stop", "-t", "1", "hc")
	if h := d.health("hc"); h != "unhealthy" {
		t.Fatalf("health after stop: %q", h)
	}
	d.must("docker", "start", "hc")
	if h := d.health("hc"); h != "starting" {
		t.Fatalf("health after start: %q", h)
	}
	waitLong(t, "healthy after start", func() bool { return d.health("hc") == "healthy" })
	d.must("docker", "pause", "hc")
	if h := d.health("hc"); h != "unhealthy" {
		t.Fatalf("health when paused: %q", h)
	}
	d.must("docker", "unpause", "hc")
	waitLong(t, "healthy after unpause", func() bool { return d.health("hc") == "healthy" })

	// After a daemon restart the checker runs again for running containers.
	d.kill()
	d.start()
	if h := d.health("hc"); h != "starting" {
		t.Fatalf("health after daemon restart: %q", h)
	}
	waitLong(t, "healthy after daemon restart", func() bool { return d.health("hc") == "healthy" })
	d.must("docker", "rm", "-f", "hc")

	// A probe over its timeout is killed and fails with docker's message.
	d.must("docker", "run", "-d", "--name", "slow", "--health-cmd", "sleep 7", "--health-timeout", "500ms",
		"--health-interval", "1s", "--health-retries", "1", bb, "sleep", "300")
	waitLong(t, "slow probe unhealthy", func() bool { return d.health("slow") == "unhealthy" })
	h = d.healthLog(t, "slow")
	if last := h.Log[len(h.Log)-1]; last.ExitCode != -1 || last.Output != "Health check exceeded timeout (500ms)" {
		t.Fatalf("timed-out probe: %+v", last)
	}
	// The probe's process was killed, not left running in the container.
	if out := d.must("docker", "exec", "slow", "ps", "-o", "args"); strings.Contains(out, "sleep 7") {
		time.Sleep(2 * time.Second) // a probe may be in flight right now
		if out := d.must("docker", "exec", "slow", "ps", "-o", "args"); strings.Count(out, "sleep 7") > 1 {
			t.Fatalf("timed-out probes left running:\n%s", out)
		}
	}
	d.must("docker", "rm", "-f", "slow")

	// Long output is cut at 4096 bytes with "...", as docker does.
	d.must("docker", "run", "-d", "--name", "chatty", "--health-cmd", "yes | head -c 10000", "--health-interval", "1s", bb, "sleep", "300")
	waitLong(t, "chatty healthy", func() bool { return d.health("chatty") == "healthy" })
	if o := d.healthLog(t, "chatty").Log[0].Output; len(o) != 4099 || !strings.HasSuffix(o, "y\n...") {
		t.Fatalf("probe output %d bytes, ends %q", len(o), o[max(0, len(o)-8):])
	}
	d.must("docker", "rm", "-f", "chatty")

	// Bad healthcheck options are refused as docker refuses them.
	if out, err := d.docker("run", "-d", "--health-cmd", "true", "--health-interval", "1us", bb); err == nil || !strings.Contains(out, "Interval in Healthcheck cannot be less than 1ms") {
		t.Fatalf("--health-interval 1us: %v %s", err, out)
	}

	// The image's HEALTHCHECK, merged with the request's; --no-healthcheck.
	loadHealthcheckImage(t, d, "hcimg:test", `{"Test":["CMD-SHELL","test -f /etc/passwd"],"Interval":1000000000,"Retries":2}`)
	if out := d.must("docker", "image", "inspect", "-f", "{{json .Config.Healthcheck}}", "hcimg:test"); !strings.Contains(out, `"Test":["CMD-SHELL","test -f /etc/passwd"]`) {
		t.Fatalf("image inspect Config.Healthcheck: %s", out)
	}
	d.must("docker", "run", "-d", "--name", "img", "hcimg:test", "sleep", "300")
	if out := d.must("docker", "inspect", "-f", "{{json .Config.Healthcheck}}", "img"); !strings.Contains(out, `"Test":["CMD-SHELL","test -f /etc/passwd"]`) || !strings.Contains(out, `"Retries":2`) {
		t.Fatalf("Config.Healthcheck from the image: %s", out)
	}
	waitLong(t, "image healthcheck healthy", func() bool { return d.health("img") == "healthy" })
	d.must("docker", "run", "-d", "--name", "merged", "--health-retries", "1", "--health-cmd", "false", "hcimg:test", "sleep", "300")
	if out := d.must("docker", "inspect", "-f", "{{json .Config.Healthcheck}}", "merged"); !strings.Contains(out, `"Test":["CMD-SHELL","false"]`) || !strings.Contains(out, `"Interval":1000000000`) || !strings.Contains(out, `"Retries":1`) {
		t.Fatalf("merged Config.Healthcheck: %s", out)
	}
	waitLong(t, "merged healthcheck unhealthy", func() bool { return d.health("merged") == "unhealthy" })
	d.must("docker", "run", "-d", "--name", "nohc", "--no-healthcheck", "hcimg:test", "sleep", "300")
	if h := d.health("nohc"); h != "none" {
		t.Fatalf("--no-healthcheck: health %q", h)
	}
	if st := d.psStatus("nohc"); strings.Contains(st, "(") {
		t.Fatalf("--no-healthcheck: ps STATUS %q", st)
	}
	if out := d.must("docker", "ps", "-q", "--filter", "health=none"); !strings.Contains(out, d.id("nohc")[:12]) || strings.Contains(out, d.id("img")[:12]) {
		t.Fatalf("ps --filter health=none: %q", out)
	}
}

func (d *daemon) id(name string) string {
	return strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.Id}}", name))
}

// loadHealthcheckImage makes an image with a HEALTHCHECK (docker import and
// commit --change cannot set one): busybox saved, its config given a
// Healthcheck, and loaded back as a docker-archive under ref.
func loadHealthcheckImage(t *testing.T, d *daemon, ref, healthcheck string) {
	t.Helper()
	saved := filepath.Join(d.root, "bb.tar")
	d.must("docker", "save", "-o", saved, bb)
	raw, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var order []string
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
		order = append(order, h.Name)
	}
	var manifest []map[string]any
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("saved manifest.json: %v %s", err, files["manifest.json"])
	}
	var cfg map[string]any
	if err := json.Unmarshal(files[manifest[0]["Config"].(string)], &cfg); err != nil {
		t.Fatalf("saved config: %v", err)
	}
	var hc any
	_ = json.Unmarshal([]byte(healthcheck), &hc)
	cfg["config"].(map[string]any)["Healthcheck"] = hc
	cb, _ := json.Marshal(cfg)
	sum := sha256.Sum256(cb)
	cfgName := "blobs/sha256/" + hex.EncodeToString(sum[:])
	files[cfgName] = cb
	order = append(order, cfgName)
	manifest[0]["Config"] = cfgName
	manifest[0]["RepoTags"] = []string{ref}
	files["manifest.json"], _ = json.Marshal(manifest)
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, n := range order {
		if n == "index.json" || n == "oci-layout" || n == "repositories" {
			continue // the docker-archive manifest, not the OCI index, names the new config
		}
		_ = tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		_, _ = tw.Write(files[n])
	}
	_ = tw.Close()
	if o, err := d.run("docker", out.Bytes(), "load"); err != nil || !strings.Contains(o, ref) {
		t.Fatalf("docker load: %v %s", err, o)
	}
}

func TestLogCompress(t *testing.T) {
	dockerCLI(t)
	testutil.RequireBinary(t, "gzip") // the monitor compresses with it
	requireRegistry(t)
	d := startOwnBridge(t)
	d.must("docker", "pull", bb)
	const n = 400
	id := strings.TrimSpace(d.must("docker", "run", "-d", "--log-opt", "max-size=2k", "--log-opt", "max-file=100", "--log-opt", "compress=true",
		bb, "sh", "-c", fmt.Sprintf("i=1; while [ $i -le %d ]; do echo line-$i; i=$((i+1)); done", n)))
	d.must("docker", "wait", id)
	logPath := strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.LogPath}}", id))
	gz, _ := filepath.Glob(logPath + ".*.gz")
	if len(gz) < 3 {
		t.Fatalf("want several .gz files beside %s, got %v", logPath, gz)
	}
	for _, f := range gz {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := io.ReadAll(zr); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if plain, _ := filepath.Glob(logPath + ".[0-9]"); len(plain) > 0 {
		t.Fatalf("rotated files left uncompressed: %v", plain)
	}
	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "line-%d\n", i)
	}
	if out := d.must("docker", "logs", id); out != want.String() {
		t.Fatalf("docker logs across .gz files: %d bytes, want %d; starts %q", len(out), want.Len(), out[:min(len(out), 40)])
	}
	if out := d.must("docker", "logs", "--tail", "2", id); out != fmt.Sprintf("line-%d\nline-%d\n", n-1, n) {
		t.Fatalf("docker logs --tail 2: %q", out)
	}
	// docker's rule: compress needs rotation.
	if out, err := d.docker("run", "--log-opt", "compress=true", bb, "true"); err == nil || !strings.Contains(out, "compress cannot be true when max-file is less than 2 or max-size is not set") {
		t.Fatalf("compress without rotation: %v %s", err, out)
	}
}

func TestExecUserName(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startOwnBridge(t)
	d.must("docker", "pull", bb)
	d.must("docker", "run", "-d", "--name", "usr", "--group-add", "1234", bb, "sleep", "300")
	if out := d.must("docker", "exec", "-u", "nobody", "usr", "id", "-u"); strings.TrimSpace(out) != "65534" {
		t.Fatalf("exec -u nobody: id -u %q", out)
	}
	// Primary group from passwd, then --group-add, as docker.
	groups := map[string]bool{}
	for _, g := range strings.Fields(d.must("docker", "exec", "-u", "nobody", "usr", "id", "-G")) {
		groups[g] = true
	}
	if len(groups) != 2 || !groups["65534"] || !groups["1234"] {
		t.Fatalf("exec -u nobody: groups %v, want 65534 and 1234", groups)
	}
	if out := d.must("docker", "exec", "-u", "nobody:root", "usr", "id", "-g"); strings.TrimSpace(out) != "0" {
		t.Fatalf("exec -u nobody:root: id -g %q", out)
	}
	// A user that is in a supplementary group in /etc/group gets it.
	d.must("docker", "exec", "usr", "sh", "-c", "echo 'tester:x:4242:4242::/:/bin/sh' >> /etc/passwd && echo 'extra:x:777:tester' >> /etc/group")
	if out := d.must("docker", "exec", "-u", "tester", "usr", "id"); !strings.Contains(out, "uid=4242") || !strings.Contains(out, "777(extra)") {
		t.Fatalf("exec -u tester: id %q", out)
	}
	if out, err := d.docker("exec", "-u", "nosuch", "usr", "true"); err == nil || !strings.Contains(out, "unable to find user nosuch") {
		t.Fatalf("exec -u nosuch: %v %q", err, out)
	}
	// /etc/passwd made a symlink to an absolute path resolves inside the
	// container (/tmp/pw there), never on the host.
	d.must("docker", "exec", "usr", "sh", "-c", "echo 'evil:x:4343:4343::/:/bin/sh' > /tmp/pw && rm /etc/passwd && ln -s /../../../tmp/pw /etc/passwd")
	if out := d.must("docker", "exec", "-u", "evil", "usr", "id", "-u"); strings.TrimSpace(out) != "4343" {
		t.Fatalf("exec -u through a symlinked passwd: %q", out)
	}
	if out, err := d.docker("exec", "-u", "nobody", "usr", "true"); err == nil || !strings.Contains(out, "unable to find user nobody") {
		t.Fatalf("host's passwd used? %v %q", err, out)
	}
}
