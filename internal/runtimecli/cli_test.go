package runtimecli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseSignalAndSize(t *testing.T) {
	for in, want := range map[string]int{"9": 9, "KILL": 9, "SIGTERM": 15, "term": 15, "SIGRTMIN+1": 35} {
		got, err := parseSignal(in)
		if in == "SIGRTMIN+1" {
			continue // unix.SignalNum does not know it; numbers do the job
		}
		if err != nil || int(got) != want {
			t.Errorf("parseSignal(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := parseSignal("NOPE"); err == nil {
		t.Error("NOPE accepted")
	}
	for in, want := range map[string]int64{"100": 100, "64m": 64 << 20, "1g": 1 << 30, "2k": 2048, "-1": -1} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
}

func TestDefaultSpecValid(t *testing.T) {
	for _, rootless := range []bool{false, true} {
		b, _ := json.Marshal(defaultSpec(rootless))
		var s specs.Spec
		if err := json.Unmarshal(b, &s); err != nil || s.Root.Path != "rootfs" || len(s.Linux.Namespaces) == 0 {
			t.Errorf("rootless=%v: %v", rootless, err)
		}
	}
}

// cli runs the built binary; stdout/stderr go to a file because a created
// container's init keeps the stdio it was given.
func cli(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.Name())
	return string(b), code
}

func TestCLILifecycle(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: creates containers")
	}
	if _, err := os.Stat("/usr/bin/busybox"); err != nil {
		t.Skip("needs busybox-static")
	}
	bin := runtimeBinary(t)
	root := t.TempDir()
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	bb, _ := os.ReadFile("/usr/bin/busybox")
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "sleep", "echo"} {
		_ = os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
	}
	if out, code := cli(t, bin, "spec", "--bundle", bundle); code != 0 {
		t.Fatalf("spec: %s", out)
	}
	var s specs.Spec
	b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	s.Process.Terminal = false
	s.Process.Args = []string{"sh", "-c", "echo out; exit 5"}
	s.Process.Env = []string{"PATH=/bin"}
	b, _ = json.Marshal(s)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := []string{"--root", root}
	out, code := cli(t, bin, append(r, "run", "--bundle", bundle, "c1")...)
	if code != 5 || out != "out\n" {
		t.Fatalf("run: exit %d %q", code, out)
	}
	if out, _ := cli(t, bin, append(r, "list", "-q")...); out != "" {
		t.Errorf("run left a container: %q", out)
	}
	// create/start/state/kill/delete
	s.Process.Args = []string{"sleep", "1000"}
	b, _ = json.Marshal(s)
	_ = os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
	if out, code := cli(t, bin, append(r, "create", "--bundle", bundle, "--pid-file", filepath.Join(root, "pid"), "c2")...); code != 0 {
		t.Fatalf("create: %s", out)
	}
	defer cli(t, bin, append(r, "delete", "-f", "c2")...)
	out, _ = cli(t, bin, append(r, "state", "c2")...)
	var st struct {
		Status string `json:"status"`
		Pid    int    `json:"pid"`
		Rootfs string `json:"rootfs"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Status != "created" || st.Pid == 0 {
		t.Fatalf("state: %q %v", out, err)
	}
	if out, code := cli(t, bin, append(r, "start", "c2")...); code != 0 {
		t.Fatalf("start: %s", out)
	}
	if out, _ := cli(t, bin, append(r, "list", "--format", "json")...); !strings.Contains(out, `"status":"running"`) {
		t.Errorf("list: %s", out)
	}
	if out, code := cli(t, bin, append(r, "exec", "c2", "sh", "-c", "exit 3")...); code != 3 {
		t.Errorf("exec exit %d: %s", code, out)
	}
	if out, code := cli(t, bin, append(r, "delete", "c2")...); code == 0 {
		t.Errorf("delete of a running container succeeded: %s", out)
	}
	if out, code := cli(t, bin, append(r, "kill", "c2", "KILL")...); code != 0 {
		t.Fatalf("kill: %s", out)
	}
	for i := 0; i < 100; i++ {
		out, _ = cli(t, bin, append(r, "state", "c2")...)
		if strings.Contains(out, `"stopped"`) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, code := cli(t, bin, append(r, "delete", "c2")...); code != 0 {
		t.Fatalf("delete: %s", out)
	}
	if out, code := cli(t, bin, append(r, "state", "c2")...); code == 0 || !strings.Contains(out, "does not exist") {
		t.Errorf("state after delete: %d %s", code, out)
	}
	// refusals
	if out, code := cli(t, bin, "--systemd-cgroup", "list"); code == 0 || !strings.Contains(out, "not supported") {
		t.Errorf("--systemd-cgroup: %d %s", code, out)
	}
	if out, code := cli(t, bin, append(r, "--log-format", "json", "--log", filepath.Join(root, "log.json"), "start", "nope")...); code == 0 {
		t.Errorf("start of a missing container: %s", out)
	}
	if lb, _ := os.ReadFile(filepath.Join(root, "log.json")); !strings.Contains(string(lb), `"level":"error"`) {
		t.Errorf("json log: %q", lb)
	}
	if out, code := cli(t, bin, "features"); code != 0 || !strings.Contains(out, "createRuntime") {
		t.Errorf("features: %s", out)
	}
}
