package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// A container the runtime created but the daemon holds no record of (a
// crash between the runtime's create and the record's write) is swept when
// the daemon starts: its init killed, its runtime state and cgroup removed.
func TestRestoreSweepsUnrecordedRuntimeState(t *testing.T) {
	d := startDaemon(t, "--bridge", "none")
	bundle := t.TempDir()
	testutil.BusyboxRootfs(t, filepath.Join(bundle, "rootfs"))
	rt := testutil.Binary(t, "berth-runtime")
	errf, err := os.CreateTemp(t.TempDir(), "err")
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command(rt, args...)
		cmd.Dir, cmd.Stderr = dir, errf // stdio a file: the init keeps it
		if err := cmd.Run(); err != nil {
			b, _ := os.ReadFile(errf.Name())
			t.Fatalf("berth-runtime %v: %v %s", args, err, b)
		}
	}
	run(bundle, "spec")
	var spec map[string]any
	b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"], proc["args"] = false, []string{"sleep", "1000"}
	id := "orphan" + strconv.Itoa(os.Getpid())
	spec["linux"].(map[string]any)["cgroupsPath"] = "/berth/" + id
	b, _ = json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(d.root, "exec", "runtime")
	pidFile := filepath.Join(t.TempDir(), "pid")
	run("", "--root", root, "create", "--bundle", bundle, "--pid-file", pidFile, id)
	pb, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pb)))
	if pid <= 0 {
		t.Fatalf("pid file %q", pb)
	}
	alive := func() bool {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err == nil && !strings.Contains(string(st), ") Z ")
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/berth/" + id)
	if v2, _ := filepath.Glob("/sys/fs/cgroup/berth/" + id); len(v2) > 0 {
		cgroups = append(cgroups, v2...)
	}
	if !alive() || len(cgroups) == 0 {
		t.Fatalf("orphan not set up: alive %v, cgroups %v", alive(), cgroups)
	}
	t.Cleanup(func() { _ = exec.Command(rt, "--root", root, "delete", "-f", id).Run() })

	d.kill()
	d.start("--bridge", "none")
	waitFor(t, func() bool { return !alive() })
	if _, err := os.Stat(filepath.Join(root, id)); !os.IsNotExist(err) {
		t.Errorf("runtime state of %s left: %v", id, err)
	}
	for _, cg := range cgroups {
		if _, err := os.Stat(cg); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left: %v", cg, err)
		}
	}
}
