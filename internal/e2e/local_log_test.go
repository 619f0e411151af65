package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// seqLines is what docker logs prints for lines from..to of writer.
func seqLines(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "%05d %090d\n", i, 0)
	}
	return b.String()
}

// writer prints n numbered 96-byte lines, sleeping between batches.
func writer(n int, pause string) string {
	return fmt.Sprintf(`i=0; while [ $i -lt %d ]; do i=$((i+1)); printf "%%05d %%090d\n" $i 0; if [ $((i %% 100)) = 0 ]; then sleep %s; fi; done`, n, pause)
}

// TestLocalLogDriver: the local log driver as dockerd 20.10 runs it, with
// the daemon's --log-driver local and log-opts: inspect shows the merged
// LogConfig and no LogPath; logs, --tail and logs -f read across rotated
// and compressed files; max-file bounds what is kept; unknown options get
// dockerd's words; with no options the defaults are 20m × 5, compressed.
func TestLocalLogDriver(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	testutil.RequireBinary(t, "gzip") // the monitor compresses with it
	d := startDaemon(t, "--bridge", "none", "--log-driver", "local", "--log-opt", "max-size=20k", "--log-opt", "max-file=3")
	d.must("docker", "pull", "-q", bb)
	logDir := func(id string) string { return filepath.Join(d.root, "data", "containers", id) }

	// The daemon's driver and options, as inspect shows them.
	id := strings.TrimSpace(d.must("docker", "run", "-d", "--network", "none", "--name", "lg", bb, "sh", "-c", writer(2000, "0")))
	d.must("docker", "wait", id)
	if out := d.must("docker", "inspect", "-f", "{{json .HostConfig.LogConfig}}|{{.LogPath}}", id); out != `{"Type":"local","Config":{"max-file":"3","max-size":"20k"}}|`+"\n" {
		t.Errorf("inspect LogConfig|LogPath: %s", out)
	}
	// 2000 × ~140 bytes of JSON in 20k files: only the last three files are
	// kept, the rotated ones gzipped.
	base := filepath.Join(logDir(id), id+"-json.log")
	waitFor(t, func() bool {
		_, err1 := os.Stat(base + ".1.gz")
		_, err2 := os.Stat(base + ".2.gz")
		return err1 == nil && err2 == nil
	})
	if extra, _ := filepath.Glob(base + ".3*"); len(extra) > 0 {
		t.Errorf("max-file=3 kept more: %v", extra)
	}
	out := d.must("docker", "logs", id)
	first := 0
	if _, err := fmt.Sscanf(out, "%05d", &first); err != nil || first < 1000 || out != seqLines(first, 2000) {
		t.Fatalf("docker logs across rotated files: %d bytes, from %d: %.200q", len(out), first, out)
	}
	if out := d.must("docker", "logs", "--tail", "3", id); out != seqLines(1998, 2000) {
		t.Errorf("logs --tail 3: %q", out)
	}
	if out := d.must("docker", "logs", "--tail", "0", id); out != "" {
		t.Errorf("logs --tail 0: %q", out)
	}

	// logs -f from the start follows the writer across rotations: every
	// line once, in order, and ends when the container exits.
	fid := strings.TrimSpace(d.must("docker", "run", "-d", "--network", "none", "--log-opt", "max-file=100", bb, "sh", "-c", "sleep 1; "+writer(1500, "0.05")))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "logs", "-f", fid)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(d.root, "dockercfg"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		got.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("logs -f: %v", err)
	}
	if got.String() != seqLines(1, 1500) {
		t.Errorf("logs -f across rotations: %d bytes, want %d; ends %q", got.Len(), len(seqLines(1, 1500)), got.String()[max(0, got.Len()-200):])
	}
	if gz, _ := filepath.Glob(filepath.Join(logDir(fid), fid+"-json.log.*.gz")); len(gz) < 3 {
		t.Errorf("want several rotated .gz files under %s, got %v", logDir(fid), gz)
	}

	// --log-driver local given explicitly is the daemon's driver: the
	// daemon's options fill the unset ones. Another driver gets none.
	d.must("docker", "create", "--name", "explicit", "--log-driver", "local", "--log-opt", "max-size=1m", bb, "true")
	if out := d.must("docker", "inspect", "-f", "{{json .HostConfig.LogConfig}}", "explicit"); out != `{"Type":"local","Config":{"max-file":"3","max-size":"1m"}}`+"\n" {
		t.Errorf("explicit local: %s", out)
	}
	d.must("docker", "create", "--name", "jf", "--log-driver", "json-file", bb, "true")
	if out := d.must("docker", "inspect", "-f", "{{json .HostConfig.LogConfig}}|{{.LogPath}}", "jf"); !strings.HasPrefix(out, `{"Type":"json-file","Config":{}}|/`) || !strings.HasSuffix(out, "-json.log\n") {
		t.Errorf("json-file: %s", out)
	}

	// dockerd's option checks for local.
	for opt, msg := range map[string]string{
		"tag=x":    "unknown log opt 'tag' for log driver local",
		"labels=a": "unknown log opt 'labels' for log driver local",
		"mode=bad": "logger: logging mode not supported: bad",
	} {
		out, err := d.docker("create", "--log-opt", opt, bb, "true")
		if exitCode(err) != 1 || out != "Error response from daemon: "+msg+"\n" {
			t.Errorf("--log-opt %s: exit %d %q, want %q", opt, exitCode(err), out, msg)
		}
	}
}

// TestLocalLogDefaults: --log-driver local with no options rotates at 20 MB
// and compresses, as dockerd's local driver does, and logs reads it all.
func TestLocalLogDefaults(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	testutil.RequireBinary(t, "gzip")
	d := startDaemon(t, "--bridge", "none")
	d.must("docker", "pull", "-q", bb)
	// 21000 lines of 1001 bytes: about 22.5 MB as JSON lines, one rotation.
	id := strings.TrimSpace(d.must("docker", "run", "-d", "--network", "none", "--log-driver", "local", bb, "sh", "-c",
		"head -c 21000000 /dev/zero | tr '\\0' x | fold -w 1000; echo"))
	d.must("docker", "wait", id)
	if out := d.must("docker", "inspect", "-f", "{{json .HostConfig.LogConfig}}|{{.LogPath}}", id); out != `{"Type":"local","Config":{}}|`+"\n" {
		t.Errorf("inspect: %s", out)
	}
	base := filepath.Join(d.root, "data", "containers", id, id+"-json.log")
	waitLong(t, "FILE.1.gz", func() bool { _, err := os.Stat(base + ".1.gz"); return err == nil })
	cur, err := os.Stat(base)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Size() == 0 || cur.Size() > 20<<20 {
		t.Errorf("current file %d bytes after one rotation at 20 MB", cur.Size())
	}
	if more, _ := filepath.Glob(base + ".2*"); len(more) > 0 {
		t.Errorf("a second rotation before 40 MB: %v", more)
	}
	out := d.must("docker", "logs", id)
	if n := strings.Count(out, "\n"); n != 21000 || len(out) != 21000*1001 {
		t.Errorf("docker logs: %d lines, %d bytes; want 21000, %d", n, len(out), 21000*1001)
	}
}
