package monitor

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// runtimeForTest is the OCI runtime the monitor drives: berth-runtime when
// BERTH_TEST_RUNTIME names one, else runc from the peers.
func runtimeForTest(t *testing.T) string {
	if r := os.Getenv("BERTH_TEST_RUNTIME"); r != "" {
		return r
	}
	return testutil.RequireBinary(t, "runc")
}

func bundle(t *testing.T, tty bool, args ...string) string {
	dir := t.TempDir()
	testutil.BusyboxRootfs(t, filepath.Join(dir, "rootfs"))
	runc := testutil.RequireBinary(t, "runc")
	if b, err := exec.Command(runc, "spec", "-b", dir).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v %s", err, b)
	}
	var spec map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	_ = json.Unmarshal(b, &spec)
	proc := spec["process"].(map[string]any)
	proc["terminal"] = tty
	proc["args"] = args
	b, _ = json.Marshal(spec)
	_ = os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	return dir
}

func start(t *testing.T, c Config) (*Process, func()) {
	t.Helper()
	rt := runtimeForTest(t)
	if c.Binary == "" {
		c.Binary = testutil.Binary(t, "berth-monitor")
	}
	c.Runtime = rt
	c.RuntimeRoot = t.TempDir()
	c.StateDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := Start(ctx, c)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	runtimeStart := func() {
		if b, err := exec.Command(rt, "--root", c.RuntimeRoot, "start", c.ID).CombinedOutput(); err != nil {
			t.Fatalf("runtime start: %v %s", err, b)
		}
	}
	t.Cleanup(func() {
		_ = exec.Command(rt, "--root", c.RuntimeRoot, "delete", "-f", c.ID).Run()
	})
	return p, runtimeStart
}

// demux reads docker's multiplexed frames until EOF.
func demux(t *testing.T, r io.Reader) (stdout, stderr string) {
	var o, e bytes.Buffer
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			break
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatalf("short frame: %v", err)
		}
		switch hdr[0] {
		case 1:
			o.Write(buf)
		case 2:
			e.Write(buf)
		default:
			t.Fatalf("bad stream %d", hdr[0])
		}
	}
	return o.String(), e.String()
}

func TestMonitorAttachLogsExit(t *testing.T) {
	testutil.RequireRoot(t)
	dir := bundle(t, false, "sh", "-c", "read x; echo out:$x; echo err >&2; exit 7")
	logPath := filepath.Join(t.TempDir(), "c-json.log")
	p, runtimeStart := start(t, Config{ID: "mon-" + filepath.Base(dir), Bundle: dir, LogPath: logPath, Stdin: true, StdinOnce: true})
	if p.InitPid <= 0 {
		t.Fatalf("no init pid")
	}
	// Attach before start: no output may be lost.
	conn, err := Attach(context.Background(), p.StateDir, AttachStdin|AttachStdout|AttachStderr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	runtimeStart()
	if _, err := conn.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	o, e := demux(t, conn)
	if o != "out:hi\n" || e != "err\n" {
		t.Fatalf("attach got stdout %q stderr %q", o, e)
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, ok := ExitStatus(p.StateDir)
	if !ok || code != 7 {
		t.Fatalf("exit status %d %v, want 7", code, ok)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]string
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, m["time"]); err != nil {
			t.Fatalf("log time %q: %v", m["time"], err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 || lines[0]["log"] != "out:hi\n" || lines[0]["stream"] != "stdout" || lines[1]["log"] != "err\n" || lines[1]["stream"] != "stderr" {
		t.Fatalf("log lines %v", lines)
	}
}

func TestMonitorRotatesLog(t *testing.T) {
	testutil.RequireRoot(t)
	dir := bundle(t, false, "sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done")
	logPath := filepath.Join(t.TempDir(), "c-json.log")
	p, runtimeStart := start(t, Config{ID: "rot-" + filepath.Base(dir), Bundle: dir, LogPath: logPath, LogMaxSize: 2000, LogMaxFiles: 3})
	runtimeStart()
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{logPath, logPath + ".1", logPath + ".2"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatalf("rotated file missing: %v", err)
		}
		if st.Size() > 2000 {
			t.Fatalf("%s is %d bytes, over max-size", f, st.Size())
		}
	}
	if _, err := os.Stat(logPath + ".3"); err == nil {
		t.Fatalf("more files kept than max-file")
	}
	b, _ := os.ReadFile(logPath)
	if !strings.Contains(string(b), `"log":"line-199\n"`) {
		t.Fatalf("last line not in current log file")
	}
}

func TestMonitorTerminal(t *testing.T) {
	testutil.RequireRoot(t)
	dir := bundle(t, true, "sh", "-c", "stty size; echo tty:$(tty)")
	logPath := filepath.Join(t.TempDir(), "c-json.log")
	p, runtimeStart := start(t, Config{ID: "tty-" + filepath.Base(dir), Bundle: dir, LogPath: logPath, Terminal: true})
	if err := Resize(p.StateDir, 33, 77); err != nil {
		t.Fatal(err)
	}
	conn, err := Attach(context.Background(), p.StateDir, AttachStdout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(50 * time.Millisecond) // let the monitor read the resize line first
	runtimeStart()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, _ := io.ReadAll(conn)
	if !strings.Contains(string(out), "33 77") || !strings.Contains(string(out), "tty:/dev/pts/0") {
		t.Fatalf("terminal output %q", out)
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, ok := ExitStatus(p.StateDir); !ok || code != 0 {
		t.Fatalf("exit %d %v", code, ok)
	}
}

func TestMonitorCreateFailureReported(t *testing.T) {
	testutil.RequireRoot(t)
	dir := bundle(t, false, "/does/not/exist")
	_ = os.RemoveAll(filepath.Join(dir, "rootfs"))
	c := Config{ID: "fail-" + filepath.Base(dir), Bundle: dir, Binary: testutil.Binary(t, "berth-monitor"), Runtime: runtimeForTest(t), RuntimeRoot: t.TempDir(), StateDir: t.TempDir()}
	_, err := Start(context.Background(), c)
	if err == nil {
		t.Fatal("Start succeeded without a rootfs")
	}
	if !strings.Contains(err.Error(), "rootfs") {
		t.Fatalf("error does not name the rootfs: %v", err)
	}
}

func TestMonitorCompressesRotatedLogs(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireBinary(t, "gzip")
	dir := bundle(t, false, "sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done")
	logPath := filepath.Join(t.TempDir(), "c-json.log")
	// A compression a killed monitor left unfinished: swept at start.
	if err := os.WriteFile(logPath+".49.gz.tmp", []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}
	p, runtimeStart := start(t, Config{ID: "gz-" + filepath.Base(dir), Bundle: dir, LogPath: logPath, LogMaxSize: 1500, LogMaxFiles: 50, LogCompress: true})
	runtimeStart()
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The monitor waits for its last gzip child before it records the exit:
	// every rotated file is compressed now, none is left plain or half done.
	var all []string
	n := 1
	for ; ; n++ {
		if _, err := os.Stat(logPath + "." + strconv.Itoa(n)); err == nil {
			t.Fatalf("%s.%d left uncompressed", logPath, n)
		}
		f, err := os.Open(logPath + "." + strconv.Itoa(n) + ".gz")
		if err != nil {
			break
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s.%d.gz: %v", logPath, n, err)
		}
		b, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatalf("%s.%d.gz: %v", logPath, n, err)
		}
		all = append([]string{string(b)}, all...) // older files have higher numbers
	}
	if n < 3 {
		t.Fatalf("want at least 2 compressed files, got %d", n-1)
	}
	if m, _ := filepath.Glob(logPath + ".*.tmp"); len(m) > 0 {
		t.Fatalf("temporary files left: %v", m)
	}
	b, _ := os.ReadFile(logPath)
	all = append(all, string(b))
	i := 0
	for _, l := range strings.Split(strings.TrimSpace(strings.Join(all, "")), "\n") {
		var m map[string]string
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if want := "line-" + strconv.Itoa(i) + "\n"; m["log"] != want {
			t.Fatalf("line %d is %q, want %q", i, m["log"], want)
		}
		i++
	}
	if i != 300 {
		t.Fatalf("%d lines across the files, want 300", i)
	}
}

// The container starts with no signal blocked or ignored: the monitor's own
// (blocked SIGCHLD, ignored SIGPIPE/SIGHUP/SIGINT) and anything the way it
// starts the runtime might add must not reach it.
func TestMonitorCleanSignalState(t *testing.T) {
	testCleanSignalState(t, false)
}

// The same when whoever starts the monitor ignores signals (here a shell
// ignoring SIGUSR1 and signal 34): ignored dispositions survive exec, so
// the monitor resets them all for the runtime.
func TestMonitorCleanSignalStateInherited(t *testing.T) {
	testCleanSignalState(t, true)
}

func testCleanSignalState(t *testing.T, inherited bool) {
	testutil.RequireRoot(t)
	dir := bundle(t, false, "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status")
	logPath := filepath.Join(t.TempDir(), "c-json.log")
	cfg := Config{ID: "mon-" + filepath.Base(dir), Bundle: dir, LogPath: logPath}
	if inherited {
		wrapper := filepath.Join(t.TempDir(), "ignoring-monitor")
		script := "#!/bin/sh\ntrap '' USR1 34\nexec " + testutil.Binary(t, "berth-monitor") + " \"$@\"\n"
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		cfg.Binary = wrapper
	}
	p, runtimeStart := start(t, cfg)
	runtimeStart()
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// the log is JSON: a tab shows as \t
	for _, want := range []string{`SigBlk:\t0000000000000000`, `SigIgn:\t0000000000000000`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("container log lacks %s:\n%s", want, b)
		}
	}
}

func TestMonitorRuntimeMissing(t *testing.T) {
	testutil.RequireRoot(t)
	dir := bundle(t, false, "true")
	c := Config{ID: "missing-" + filepath.Base(dir), Bundle: dir, Binary: testutil.Binary(t, "berth-monitor"), Runtime: "/nonexistent/berth-runtime", StateDir: t.TempDir()}
	_, err := Start(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/berth-runtime") || !strings.Contains(strings.ToLower(err.Error()), "no such file") {
		t.Fatalf("Start with a missing runtime: %v", err)
	}
}
