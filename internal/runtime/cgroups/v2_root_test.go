package cgroups

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// newV2Test makes a real cgroup v2 directory: below the unified root on a
// v2 host, or in the controller-less cgroup2 of a hybrid host (core files
// only: procs, freeze, kill, events, eBPF device programs).
func newV2Test(t *testing.T) *v2 {
	t.Helper()
	needRoot(t)
	h, err := hosts()
	if err != nil {
		t.Fatal(err)
	}
	if h.unified == "" {
		t.Skip("needs a cgroup2 mount")
	}
	m := newV2(h.unified, h.unified+"/"+testName(t))
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup destroy: %v", err)
		}
	})
	return m
}

func TestV2Lifecycle(t *testing.T) {
	m := newV2Test(t)
	sl := startSleep(t)
	if err := m.Apply(sl.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, m.dir, "cgroup.procs"); got != itoa(int64(sl.Process.Pid)) {
		t.Errorf("cgroup.procs = %q", got)
	}
	pids, err := m.Pids()
	if err != nil || !slices.Equal(pids, []int{sl.Process.Pid}) {
		t.Errorf("Pids = %v, %v", pids, err)
	}
	lp, err := LoadPaths(m.Paths())
	if err != nil {
		t.Fatal(err)
	}
	if got := lp.(*v2); got.dir != m.dir || got.root != m.root {
		t.Errorf("LoadPaths = %+v", got)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen(); err != nil || !f {
		t.Errorf("Frozen = %v, %v", f, err)
	}
	if !strings.Contains(mustRead(t, m.dir, "cgroup.events"), "frozen 1") {
		t.Error("cgroup.events does not say frozen")
	}
	if st, _ := readFile("/proc/"+itoa(int64(sl.Process.Pid)), "stat"); !strings.Contains(st, ") S ") && !strings.Contains(st, ") D ") {
		t.Logf("stat of frozen sleep: %s", st)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if f, _ := m.Frozen(); f {
		t.Error("still frozen after Thaw")
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cpu usage %d ns", st.CPU.Usage.Total)
	// Without controllers, limits are refused clearly.
	ctl, _ := m.controllers()
	if !ctl["memory"] {
		err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20))}})
		if !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), "controller memory not available") {
			t.Errorf("memory on a controller-less cgroup2: %v", err)
		}
		if _, err := m.OOMKills(); !errors.Is(err, ErrNotAvailable) {
			t.Errorf("OOMKills: %v", err)
		}
	}
	if err := m.Set(&specs.LinuxResources{Unified: map[string]string{"cgroup.bogus": "1"}}); err == nil || !strings.Contains(err.Error(), `unknown unified key "cgroup.bogus"`) {
		t.Errorf("unknown unified key: %v", err)
	}
	if err := m.Set(&specs.LinuxResources{Unified: map[string]string{"cgroup.max.descendants": "5"}}); err != nil {
		t.Errorf("core unified key: %v", err)
	}
	expectFile(t, m.dir, "cgroup.max.descendants", "5")
	// SIGKILL goes through cgroup.kill.
	if err := m.Kill(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, sl); st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("exit %v", st)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if exists(m.dir) {
		t.Error("directory left behind")
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestV2DestroyBusy(t *testing.T) {
	m := newV2Test(t)
	sl := startSleep(t)
	if err := m.Apply(sl.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Freeze(); err != nil { // a paused container
		t.Fatal(err)
	}
	sub := newV2(m.root, m.dir+"/nested")
	if err := sub.Apply(0); err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	waitExit(t, sl)
	if exists(m.dir) {
		t.Error("left behind")
	}
}

func TestV2DevicesEBPF(t *testing.T) {
	m := newV2Test(t)
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	run := func(dev string) string {
		c := startChild(t, "open "+dev)
		if err := m.Apply(c.pid()); err != nil {
			t.Fatal(err)
		}
		return c.goLine(t)
	}
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
	}
	if err := m.Set(&specs.LinuxResources{Devices: rules}); err != nil {
		if strings.Contains(err.Error(), "operation not permitted") {
			t.Skipf("cannot load BPF programs here: %v", err)
		}
		t.Fatal(err)
	}
	if out := run("/dev/zero"); !strings.Contains(out, "operation not permitted") {
		t.Errorf("/dev/zero with deny-all filter: %q", out)
	}
	if out := run("/dev/null"); out != "ok" {
		t.Errorf("/dev/null allowed: %q", out)
	}
	// An update replaces the program instead of stacking another one.
	rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(5)), Access: "r"})
	if err := m.Set(&specs.LinuxResources{Devices: rules}); err != nil {
		t.Fatal(err)
	}
	if out := run("/dev/zero"); out != "ok" {
		t.Errorf("/dev/zero after update: %q", out)
	}
	fd, err := unix.Open(m.dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if ids := queryDevicePrograms(fd); len(ids) != 1 {
		t.Errorf("%d device programs attached, want 1", len(ids))
	}
}

// On a unified host, New itself yields a v2 manager with real controllers.
func TestV2UnifiedHost(t *testing.T) {
	needRoot(t)
	if Mode() != Unified {
		t.Skipf("needs a cgroup v2 host (this one is %v); v2 is covered by the cgroup2 mount and fake-tree tests", Mode())
	}
	mgr, err := New("/" + testName(t))
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Destroy()
	m := mgr.(*v2)
	c := startChild(t, "alloc 20")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr(int64(128 << 20))},
		CPU:    &specs.LinuxCPU{Shares: ptr(uint64(1024)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000))},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(20))},
	}); err != nil {
		t.Fatal(err)
	}
	expectFile(t, m.dir, "memory.max", "134217728")
	expectFile(t, m.dir, "cpu.weight", "39")
	expectFile(t, m.dir, "cpu.max", "50000 100000")
	expectFile(t, m.dir, "pids.max", "20")
	c.goLine(t)
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.Usage < 20<<20 || st.Memory.Stats["anon"] == 0 {
		t.Errorf("memory %+v", st.Memory)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
}
