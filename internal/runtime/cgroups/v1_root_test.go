package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// newV1Test creates a real v1 cgroup below the hierarchy roots, or skips.
func newV1Test(t *testing.T) (*v1, string) {
	t.Helper()
	needRoot(t)
	if Mode() == Unified {
		t.Skip("needs cgroup v1 hierarchies: host is unified")
	}
	name := "/" + testName(t)
	mgr, err := New(name)
	if err != nil {
		t.Fatal(err)
	}
	m := mgr.(*v1)
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup destroy: %v", err)
		}
	})
	return m, name
}

func TestV1ApplyPaths(t *testing.T) {
	m, name := newV1Test(t)
	h, _ := hosts()
	cs := slices.Sorted(func(yield func(string) bool) {
		for c := range h.v1 {
			if !yield(c) {
				return
			}
		}
	})
	paths := m.Paths()
	for _, c := range cs {
		if paths[c] != h.v1[c].mount+name {
			t.Errorf("path[%s] = %q, want %q", c, paths[c], h.v1[c].mount+name)
		}
	}
	sl := startSleep(t)
	if err := m.Apply(sl.Process.Pid); err != nil {
		t.Fatal(err)
	}
	// The process is in every hierarchy, named ones (name=systemd) included.
	own, err := os.ReadFile("/proc/" + strconv.Itoa(sl.Process.Pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if parts[1] == "" {
			continue // the controller-less cgroup2 of a hybrid host is not ours
		}
		if parts[2] != name {
			t.Errorf("/proc/pid/cgroup: %q, want path %s", line, name)
		}
	}
	// cpuset was initialised from the parent, or the move would have failed.
	if d := paths["cpuset"]; d != "" {
		if mustRead(t, d, "cpuset.cpus") == "" || mustRead(t, d, "cpuset.mems") == "" {
			t.Error("cpuset.cpus/mems empty")
		}
	}
	pids, err := m.Pids()
	if err != nil || !slices.Equal(pids, []int{sl.Process.Pid}) {
		t.Errorf("Pids = %v, %v", pids, err)
	}
	// Load finds it again.
	l, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if lp := l.Paths(); lp["memory"] != paths["memory"] {
		t.Errorf("Load paths %v", lp)
	}
	// LoadPaths rebuilds it from saved Paths (what the runtime stores in its state).
	lp, err := LoadPaths(paths)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := lp.Pids(); err != nil || !slices.Equal(got, []int{sl.Process.Pid}) {
		t.Errorf("LoadPaths Pids = %v, %v", got, err)
	}
	// Destroy with a live process kills it and removes every directory.
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, sl); st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("sleep exit: %v", st)
	}
	for c, d := range paths {
		if exists(d) {
			t.Errorf("%s: %s still exists", c, d)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if _, err := Load(name); err == nil {
		t.Error("Load of a destroyed cgroup succeeded")
	}
}

func TestV1RelativePath(t *testing.T) {
	needRoot(t)
	if Mode() == Unified {
		t.Skip("needs cgroup v1")
	}
	name := testName(t)
	m, err := New(name)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destroy()
	h, _ := hosts()
	mem, ok := h.v1["memory"]
	if !ok {
		t.Skip("no memory hierarchy")
	}
	want := filepath.Join(mem.mount, mem.self, name)
	if got := m.Paths()["memory"]; got != want {
		t.Errorf("relative memory path = %q, want %q (below our own cgroup)", got, want)
	}
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	if !exists(want) {
		t.Errorf("%s not created", want)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if exists(want) {
		t.Errorf("%s left behind", want)
	}
}

func TestV1SetReal(t *testing.T) {
	m, _ := newV1Test(t)
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	r := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(5)), Access: "rw"},
		},
		Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Reservation: ptr(int64(32 << 20)), Swappiness: ptr(uint64(10)), DisableOOMKiller: ptr(false)},
		CPU: &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000)), Cpus: "0", Mems: "0", Idle: ptr(int64(0)),
			RealtimePeriod: ptr(uint64(1000000)), RealtimeRuntime: ptr(int64(10000))},
		Pids: &specs.LinuxPids{Limit: ptr(int64(42))},
	}
	swap := exists(m.paths["memory"] + "/memory.memsw.limit_in_bytes")
	if swap {
		r.Memory.Swap = ptr(int64(128 << 20))
	}
	if hasHuge2MB() {
		r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
	}
	dev := blockDev(t)
	if dev != "" {
		maj, min, _ := parseDev(dev)
		r.BlockIO = &specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: int64(maj), Minor: int64(min)}, Rate: 1 << 20}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: int64(maj), Minor: int64(min)}, Rate: 100}},
		}
		if exists(m.paths["blkio"]+"/blkio.weight") || exists(m.paths["blkio"]+"/blkio.bfq.weight") {
			r.BlockIO.Weight = ptr(uint16(500))
		}
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	p := m.paths
	expectFile(t, p["devices"], "devices.list", "c 1:3 rwm\nc 1:5 rw")
	expectFile(t, p["memory"], "memory.limit_in_bytes", "67108864")
	expectFile(t, p["memory"], "memory.soft_limit_in_bytes", "33554432")
	expectFile(t, p["memory"], "memory.swappiness", "10")
	if swap {
		expectFile(t, p["memory"], "memory.memsw.limit_in_bytes", "134217728")
	}
	expectFile(t, p["cpu"], "cpu.shares", "512")
	expectFile(t, p["cpu"], "cpu.cfs_quota_us", "50000")
	expectFile(t, p["cpu"], "cpu.cfs_period_us", "100000")
	expectFile(t, p["cpuset"], "cpuset.cpus", "0")
	expectFile(t, p["cpu"], "cpu.rt_period_us", "1000000")
	expectFile(t, p["cpu"], "cpu.rt_runtime_us", "10000")
	expectFile(t, p["pids"], "pids.max", "42")
	if hasHuge2MB() {
		expectFile(t, p["hugetlb"], "hugetlb.2MB.limit_in_bytes", "4194304")
	}
	if dev != "" {
		expectFile(t, p["blkio"], "blkio.throttle.read_bps_device", dev+" 1048576")
		expectFile(t, p["blkio"], "blkio.throttle.write_iops_device", dev+" 100")
		if r.BlockIO.Weight != nil {
			f := "blkio.weight"
			if !exists(p["blkio"] + "/" + f) {
				f = "blkio.bfq.weight"
			}
			expectFile(t, p["blkio"], f, "500")
		}
	}
	// update: lower memory below the old memsw (limit first), then raise both.
	if swap {
		if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(16 << 20)), Swap: ptr(int64(16 << 20))}}); err != nil {
			t.Fatal(err)
		}
		expectFile(t, p["memory"], "memory.memsw.limit_in_bytes", "16777216")
		if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(256 << 20)), Swap: ptr(int64(512 << 20))}}); err != nil {
			t.Fatal(err)
		}
		expectFile(t, p["memory"], "memory.limit_in_bytes", "268435456")
		expectFile(t, p["memory"], "memory.memsw.limit_in_bytes", "536870912")
		if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(-1))}}); err != nil {
			t.Fatal(err)
		}
		if v, _ := parseUint(mustRead(t, p["memory"], "memory.memsw.limit_in_bytes")); v < 1<<60 {
			t.Errorf("unlimited memory left memsw at %d", v)
		}
	}
	// Kernel refusals come back naming the file and the value.
	err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "4096"}})
	var we *WriteError
	if !errors.As(err, &we) || !strings.HasSuffix(we.File, "/cpuset.cpus") || !strings.Contains(err.Error(), `"4096"`) {
		t.Errorf("bad cpuset: %v", err)
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1024))}}); err == nil || !strings.Contains(err.Error(), "memory.limit_in_bytes") {
		t.Errorf("memory 1k: %v", err)
	}
	if err := m.Set(&specs.LinuxResources{Unified: map[string]string{"memory.bogus": "1"}}); err == nil || !strings.Contains(err.Error(), "memory.bogus") {
		t.Errorf("unknown unified key: %v", err)
	}
	if err := m.Set(&specs.LinuxResources{Unified: map[string]string{"pids.max": "7"}}); err != nil {
		t.Error(err)
	}
	expectFile(t, p["pids"], "pids.max", "7")
	if _, ok := p["net_cls"]; !ok {
		if err := m.Set(&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr(uint32(1))}}); !errors.Is(err, ErrNotAvailable) {
			t.Errorf("net_cls not mounted: %v", err)
		}
	}
}

// blockDev returns "maj:min" of a real disk, for throttle rules.
func blockDev(t *testing.T) string {
	for _, d := range []string{"vda", "sda", "nvme0n1", "xvda"} {
		if b, err := os.ReadFile("/sys/block/" + d + "/dev"); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

func TestV1DevicesEnforced(t *testing.T) {
	m, _ := newV1Test(t)
	if _, ok := m.paths["devices"]; !ok {
		t.Skip("no devices hierarchy")
	}
	run := func(dev string) string {
		c := startChild(t, "open "+dev)
		if err := m.Apply(c.pid()); err != nil {
			t.Fatal(err)
		}
		return c.goLine(t)
	}
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
	}}); err != nil {
		t.Fatal(err)
	}
	if out := run("/dev/zero"); !strings.Contains(out, "operation not permitted") {
		t.Errorf("/dev/zero in a deny-all cgroup: %q", out)
	}
	if out := run("/dev/null"); out != "ok" {
		t.Errorf("/dev/null allowed: %q", out)
	}
}

func TestV1FreezeKillStats(t *testing.T) {
	m, _ := newV1Test(t)
	c := startChild(t, "alloc 40")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(256 << 20))}, Pids: &specs.LinuxPids{Limit: ptr(int64(64))}}); err != nil {
		t.Fatal(err)
	}
	if out := c.goLine(t); out != "ready" {
		t.Fatalf("child: %q", out)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.Usage < 40<<20 || st.Memory.MaxUsage < st.Memory.Usage {
		t.Errorf("memory usage %d max %d, want >= 40 MiB", st.Memory.Usage, st.Memory.MaxUsage)
	}
	if st.Memory.Limit != 256<<20 || !st.Memory.HasLimit {
		t.Errorf("memory limit %d", st.Memory.Limit)
	}
	if st.Memory.Stats["rss"] < 40<<20 || st.Memory.Stats["total_inactive_file"] > st.Memory.Usage {
		t.Errorf("memory.stat rss %d (map %d keys)", st.Memory.Stats["rss"], len(st.Memory.Stats))
	}
	if st.Pids.Current < 1 || st.Pids.Limit != 64 {
		t.Errorf("pids %+v", st.Pids)
	}
	if _, ok := m.paths["cpuacct"]; ok {
		u := st.CPU.Usage
		if u.Total == 0 || len(u.PerCPU) == 0 || u.User+u.System == 0 {
			t.Errorf("cpu usage %+v", u)
		}
	}
	if _, ok := m.paths["freezer"]; ok {
		if err := m.Freeze(); err != nil {
			t.Fatal(err)
		}
		expectFile(t, m.paths["freezer"], "freezer.state", "FROZEN")
		if f, err := m.Frozen(); err != nil || !f {
			t.Errorf("Frozen = %v, %v", f, err)
		}
		if err := m.Thaw(); err != nil {
			t.Fatal(err)
		}
		expectFile(t, m.paths["freezer"], "freezer.state", "THAWED")
	}
	if n, err := m.OOMKills(); err != nil || n != 0 {
		t.Errorf("OOMKills = %d, %v", n, err)
	}
	if err := m.Kill(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, c.cmd); st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("exit %v, want SIGTERM", st)
	}
}

func TestV1OOMKill(t *testing.T) {
	m, _ := newV1Test(t)
	c := startChild(t, "alloc 200")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	lim := int64(32 << 20)
	mem := &specs.LinuxMemory{Limit: &lim}
	if exists(m.paths["memory"] + "/memory.memsw.limit_in_bytes") {
		mem.Swap = &lim
	}
	if err := m.Set(&specs.LinuxResources{Memory: mem}); err != nil {
		t.Fatal(err)
	}
	c.in.Write([]byte("go\n"))
	if st := waitExit(t, c.cmd); st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("exit %v, want SIGKILL from the OOM killer", st)
	}
	if n, err := m.OOMKills(); err != nil || n < 1 {
		t.Errorf("OOMKills = %d, %v", n, err)
	}
}

// A memory limit below what the cgroup already uses is refused by the
// kernel (no swap to push it to); the error names the file and value.
func TestV1MemoryBelowUsage(t *testing.T) {
	m, _ := newV1Test(t)
	c := startChild(t, "alloc 30")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if c.goLine(t) != "ready" {
		t.Fatal("child not ready")
	}
	if b, _ := os.ReadFile("/proc/swaps"); strings.Count(string(b), "\n") > 1 {
		t.Skip("host has swap: the kernel would swap out instead of refusing")
	}
	lim := int64(8 << 20)
	mem := &specs.LinuxMemory{Limit: &lim}
	err := m.Set(&specs.LinuxResources{Memory: mem})
	var we *WriteError
	if !errors.As(err, &we) || !strings.HasSuffix(we.File, "memory.limit_in_bytes") || !errors.Is(err, unix.EBUSY) {
		t.Errorf("limit below usage: %v", err)
	} else {
		t.Log(err)
	}
}

func TestV1KillAllNested(t *testing.T) {
	m, _ := newV1Test(t)
	// sh forks a sleep: Kill must reach both.
	c := startChild(t, "wait")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	c.goLine(t)
	sub := m.paths["pids"] + "/sub"
	if m.paths["pids"] == "" {
		t.Skip("no pids hierarchy")
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	sl := startSleep(t)
	if err := writeFile(sub, "cgroup.procs", strconv.Itoa(sl.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	pids, err := m.Pids()
	if err != nil || len(pids) != 2 || !slices.Contains(pids, sl.Process.Pid) || !slices.Contains(pids, c.pid()) {
		t.Fatalf("Pids = %v, %v; want both, recursively", pids, err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	waitExit(t, sl)
	waitExit(t, c.cmd)
	if exists(sub) || exists(m.paths["pids"]) {
		t.Error("sub-cgroup left behind")
	}
}

// delete --force of a paused container: Destroy must get through a frozen
// cgroup (killed tasks only die once thawed).
func TestV1DestroyFrozen(t *testing.T) {
	m, _ := newV1Test(t)
	if _, ok := m.paths["freezer"]; !ok {
		t.Skip("no freezer hierarchy")
	}
	sl := startSleep(t)
	if err := m.Apply(sl.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, sl); st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("exit %v", st)
	}
	for _, d := range m.paths {
		if exists(d) {
			t.Errorf("%s left behind", d)
		}
	}
}
