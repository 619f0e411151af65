package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const sampleCgroup = `10:hugetlb:/
9:name=systemd:/
4:memory:/process_api/abc
2:cpu,cpuacct:/user
0::/init.scope
`

const sampleMountinfo = `22 1 0:21 / /sys rw - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 30 0:31 /process_api /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
41 30 0:38 / /sys/fs/cgroup/huge\040tlb rw,relatime - cgroup cgroup rw,hugetlb
`

func TestParseHost(t *testing.T) {
	h := parseHost(sampleCgroup, sampleMountinfo)
	want := map[string]hierarchy{
		"cpu":          {mount: "/sys/fs/cgroup/cpu,cpuacct", root: "/", self: "/user"},
		"cpuacct":      {mount: "/sys/fs/cgroup/cpu,cpuacct", root: "/", self: "/user"},
		"memory":       {mount: "/sys/fs/cgroup/memory", root: "/process_api", self: "/process_api/abc"},
		"name=systemd": {mount: "/sys/fs/cgroup/systemd", root: "/", self: "/"},
		"hugetlb":      {mount: "/sys/fs/cgroup/huge tlb", root: "/", self: "/"},
	}
	if !reflect.DeepEqual(h.v1, want) {
		t.Errorf("v1 = %+v\nwant %+v", h.v1, want)
	}
	if h.unified != "/sys/fs/cgroup/unified" || h.unifiedSelf != "/init.scope" {
		t.Errorf("unified = %q self %q", h.unified, h.unifiedSelf)
	}
	// Absolute paths hang off the visible root, relative ones off our own
	// cgroup minus the mount's root.
	mem := h.v1["memory"]
	if got := resolve("/c1", mem.self, mem.root); got != "/c1" {
		t.Errorf("absolute: %q", got)
	}
	if got := resolve("c1", mem.self, mem.root); got != "/abc/c1" {
		t.Errorf("relative under bind root: %q", got)
	}
	cpu := h.v1["cpu"]
	if got := resolve("a/b", cpu.self, cpu.root); got != "/user/a/b" {
		t.Errorf("relative: %q", got)
	}
}

func TestCheckPath(t *testing.T) {
	for _, p := range []string{"", "/a/../b", "system.slice:docker:abc"} {
		if err := checkPath(p); err == nil {
			t.Errorf("checkPath(%q) accepted", p)
		}
	}
	if err := checkPath("system.slice:docker:abc"); !errdefs.IsNotImplemented(err) {
		t.Errorf("systemd path: %v", err)
	}
	for _, p := range []string{"/berth/abc", "berth/abc", "abc"} {
		if err := checkPath(p); err != nil {
			t.Errorf("checkPath(%q): %v", p, err)
		}
	}
}

func TestParsers(t *testing.T) {
	kv := parseKV("cache 4096\nrss 8192\ntotal_inactive_file 12\nbad\n")
	if kv["cache"] != 4096 || kv["rss"] != 8192 || kv["total_inactive_file"] != 12 || len(kv) != 3 {
		t.Errorf("parseKV = %v", kv)
	}
	b := parseBlkioV1("8:0 Read 100\n8:0 Write 200\n8:0 Total 300\nTotal 300\n")
	if len(b) != 3 || b[1] != (BlkioEntry{Major: 8, Minor: 0, Op: "Write", Value: 200}) {
		t.Errorf("parseBlkioV1 = %v", b)
	}
	bytes, ios := parseIOStatV2("254:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
	wantB := []BlkioEntry{{254, 0, "Read", 10}, {254, 0, "Write", 20}, {254, 0, "Discard", 0}, {254, 0, "Total", 30}}
	wantI := []BlkioEntry{{254, 0, "Read", 1}, {254, 0, "Write", 2}, {254, 0, "Discard", 0}, {254, 0, "Total", 3}}
	if !reflect.DeepEqual(bytes, wantB) || !reflect.DeepEqual(ios, wantI) {
		t.Errorf("parseIOStatV2 = %v %v", bytes, ios)
	}
	if v, ok := parseUint("max\n"); ok || v != 0 {
		t.Error("max")
	}
	if hugeName(2<<20) != "2MB" || hugeName(1<<30) != "1GB" || hugeName(64<<10) != "64KB" {
		t.Error("hugeName")
	}
}

func TestConversions(t *testing.T) {
	for _, c := range []struct{ shares, weight uint64 }{{2, 1}, {1024, 39}, {262144, 10000}} {
		if got := cpuSharesToWeight(c.shares); got != c.weight {
			t.Errorf("shares %d → weight %d, want %d", c.shares, got, c.weight)
		}
	}
	if cpuWeightToShares(10000) != 262144 || cpuWeightToShares(1) != 2 {
		t.Error("weight → shares")
	}
	if blkioWeightToIOWeight(10) != 1 || blkioWeightToIOWeight(1000) != 10000 || blkioWeightToIOWeight(500) != 4950 {
		t.Errorf("blkio weight: %d", blkioWeightToIOWeight(500))
	}
	for _, c := range []struct{ swap, limit, want int64 }{
		{0, -1, -1}, {-1, 100, -1}, {0, 100, 0}, {300, 100, 200}, {100, 100, 0},
	} {
		got, err := swapToV2(c.swap, c.limit)
		if err != nil || got != c.want {
			t.Errorf("swapToV2(%d,%d) = %d, %v; want %d", c.swap, c.limit, got, err, c.want)
		}
	}
	for _, c := range [][2]int64{{200, 0}, {200, -1}, {50, 100}} {
		if _, err := swapToV2(c[0], c[1]); !errdefs.IsInvalidArgument(err) {
			t.Errorf("swapToV2(%d,%d) err = %v", c[0], c[1], err)
		}
	}
}

func TestDeviceRule(t *testing.T) {
	for _, c := range []struct {
		d    specs.LinuxDeviceCgroup
		want string
	}{
		{specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}, "a *:* rwm"},
		{specs.LinuxDeviceCgroup{Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"}, "c 1:3 rwm"},
		{specs.LinuxDeviceCgroup{Type: "c", Major: ptr(int64(136)), Access: "rw"}, "c 136:* rw"},
		{specs.LinuxDeviceCgroup{Type: "b", Major: ptr(int64(8)), Minor: ptr(int64(-1))}, "b 8:* rwm"},
	} {
		got, err := deviceRule(c.d)
		if err != nil || got != c.want {
			t.Errorf("deviceRule = %q, %v; want %q", got, err, c.want)
		}
	}
	if _, err := deviceRule(specs.LinuxDeviceCgroup{Type: "x"}); err == nil {
		t.Error("type x accepted")
	}
	if _, err := deviceRule(specs.LinuxDeviceCgroup{Type: "c", Access: "rwx"}); err == nil {
		t.Error("access x accepted")
	}
	if !isDenyAll(specs.LinuxDeviceCgroup{Access: "rwm"}) || isDenyAll(specs.LinuxDeviceCgroup{Type: "c", Access: "rwm"}) {
		t.Error("isDenyAll")
	}
}

// fakeTree builds a cgroup2-looking directory: root offering controllers,
// and the container dir with the files the kernel would create.
func fakeV2(t *testing.T, files map[string]string) *v2 {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "berth", "c1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, v string) {
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{root, filepath.Join(root, "berth")} {
		write(d+"/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
		write(d+"/cgroup.subtree_control", "")
	}
	write(dir+"/cgroup.controllers", "cpu io memory pids\n")
	for f, v := range files {
		write(dir+"/"+f, v)
	}
	return newV2(root, dir)
}

func TestV2SetTranslation(t *testing.T) {
	m := fakeV2(t, map[string]string{
		"memory.max": "max", "memory.swap.max": "max", "memory.low": "0",
		"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0",
		"pids.max": "max", "io.weight": "default 100", "io.max": "", "cpuset.cpus": "", "cpuset.mems": "",
		"hugetlb.2MB.max": "max", "memory.high": "max",
	})
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(96 << 20)), Reservation: ptr(int64(32 << 20)),
			Kernel:     ptr(int64(1 << 20)), //lint:ignore SA1019 checks that v2 ignores it
			Swappiness: ptr(uint64(10)), DisableOOMKiller: ptr(true)},
		CPU:     &specs.LinuxCPU{Shares: ptr(uint64(1024)), Quota: ptr(int64(50000)), Burst: ptr(uint64(1000)), Idle: ptr(int64(0)), Cpus: "0", Mems: "0"},
		Pids:    &specs.LinuxPids{Limit: ptr(int64(100))},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(500)), ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 254, Minor: 0}, Rate: 1048576}}},
		Unified: map[string]string{"memory.high": "50000000"},
	}
	if hasHuge2MB() {
		r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{
		"memory.max": "67108864", "memory.swap.max": "33554432", "memory.low": "33554432",
		"cpu.weight": "39", "cpu.max": "50000 100000", "cpu.max.burst": "1000", "pids.max": "100",
		"io.weight": "4950", "io.max": "254:0 rbps=1048576", "cpuset.cpus": "0", "cpuset.mems": "0",
		"memory.high": "50000000",
	} {
		if got := strings.TrimSpace(readOr(m.dir, f)); got != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
	// cpuset (and hugetlb) were not in the cgroup's controllers: they were
	// enabled top-down (the fake file keeps only the last write).
	want := "+cpuset"
	if hasHuge2MB() {
		want = "+hugetlb"
	}
	root := filepath.Dir(filepath.Dir(m.dir))
	for _, d := range []string{root, filepath.Dir(m.dir)} {
		if got := readOr(d, "cgroup.subtree_control"); got != want {
			t.Errorf("%s subtree_control = %q, want %s", d, got, want)
		}
	}
	if !m.ctrl["cpuset"] {
		t.Error("cpuset not recorded as enabled")
	}
	if hasHuge2MB() {
		if got := readOr(m.dir, "hugetlb.2MB.max"); got != "4194304" {
			t.Errorf("hugetlb.2MB.max = %q", got)
		}
	}
	// Period alone keeps the quota already in cpu.max.
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr(uint64(20000))}}); err != nil {
		t.Fatal(err)
	}
	if got := readOr(m.dir, "cpu.max"); got != "50000 20000" {
		t.Errorf("cpu.max = %q", got)
	}
}

func TestV2BadInput(t *testing.T) {
	m := fakeV2(t, map[string]string{"memory.max": "max", "cpu.weight": "100", "cpu.max": "max 100000"})
	for name, c := range map[string]struct {
		r    *specs.LinuxResources
		want string
	}{
		"memory 1k":    {&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1024))}}, "memory.max: invalid value 1024"},
		"unknown key":  {&specs.LinuxResources{Unified: map[string]string{"memory.bogus": "1"}}, `unknown unified key "memory.bogus"`},
		"bad key":      {&specs.LinuxResources{Unified: map[string]string{"../x": "1"}}, "not a cgroup v2 file name"},
		"shares 1":     {&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(uint64(1))}}, "cpu.weight: invalid value 1"},
		"quota 10":     {&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr(int64(10))}}, "cpu.max: invalid value 10"},
		"realtime":     {&specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr(int64(10))}}, "realtime"},
		"swap no mem":  {&specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr(int64(1 << 30))}}, "needs a memory limit"},
		"net_cls":      {&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr(uint32(1))}}, "net_cls"},
		"rdma missing": {&specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx": {}}}, "rdma"},
	} {
		err := m.Set(c.r)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
	// A controller the hierarchy does not offer at all.
	m2 := fakeV2(t, nil)
	os.WriteFile(filepath.Dir(filepath.Dir(m2.dir))+"/cgroup.controllers", []byte("cpu pids\n"), 0o644)
	os.WriteFile(m2.dir+"/cgroup.controllers", []byte("cpu pids\n"), 0o644)
	err := m2.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 30))}})
	if !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), "memory") {
		t.Errorf("memory without controller: %v", err)
	}
}

// fakeV1 builds one directory per controller with the files named.
func fakeV1(t *testing.T, files map[string]map[string]string) *v1 {
	t.Helper()
	root := t.TempDir()
	paths := map[string]string{}
	for ctl, fs := range files {
		d := filepath.Join(root, ctl, "c1")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, v := range fs {
			os.WriteFile(d+"/"+f, []byte(v), 0o644)
		}
		paths[ctl] = d
	}
	return newV1(paths)
}

func TestV1SetTranslation(t *testing.T) {
	m := fakeV1(t, map[string]map[string]string{
		"memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "9223372036854771712",
			"memory.soft_limit_in_bytes": "", "memory.swappiness": "60", "memory.oom_control": ""},
		"cpu":     {"cpu.shares": "1024", "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"},
		"pids":    {"pids.max": "max"},
		"blkio":   {"blkio.bfq.weight": "100", "blkio.throttle.write_iops_device": ""},
		"devices": {"devices.allow": "", "devices.deny": ""},
	})
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(128 << 20)), Reservation: ptr(int64(1 << 20)), Swappiness: ptr(uint64(5)), DisableOOMKiller: ptr(true)},
		CPU:     &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(20000)), Period: ptr(uint64(50000))},
		Pids:    &specs.LinuxPids{Limit: ptr(int64(-1))},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(300)), ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 50}}},
		Devices: []specs.LinuxDeviceCgroup{{Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm", Allow: true}},
		Unified: map[string]string{"cpu.weight": "10000"},
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	for ctl, want := range map[string]map[string]string{
		"memory": {"memory.limit_in_bytes": "67108864", "memory.memsw.limit_in_bytes": "134217728",
			"memory.soft_limit_in_bytes": "1048576", "memory.swappiness": "5", "memory.oom_control": "1"},
		"cpu":     {"cpu.shares": "262144", "cpu.cfs_quota_us": "20000", "cpu.cfs_period_us": "50000"},
		"pids":    {"pids.max": "max"},
		"blkio":   {"blkio.bfq.weight": "300", "blkio.throttle.write_iops_device": "8:0 50"},
		"devices": {"devices.deny": "a", "devices.allow": "c 1:3 rwm"}, // a deny-all comes first
	} {
		for f, w := range want {
			if got := readOr(m.paths[ctl], f); got != w {
				t.Errorf("%s/%s = %q, want %q", ctl, f, got, w)
			}
		}
	}
	// Unified keys without a v1 equivalent, and controllers not mounted.
	if err := m.Set(&specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "memory.high") {
		t.Errorf("unmappable unified key: %v", err)
	}
	if err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}}}); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("hugetlb not mounted: %v", err)
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1024))}}); err == nil || !strings.Contains(err.Error(), "memory.limit_in_bytes: invalid value 1024") {
		t.Errorf("memory 1k: %v", err)
	}
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(uint64(1))}}); err == nil || !strings.Contains(err.Error(), "cpu.shares: invalid value 1") {
		t.Errorf("shares 1: %v", err)
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr(uint64(101))}}); err == nil || !strings.Contains(err.Error(), "memory.swappiness") {
		t.Errorf("swappiness 101: %v", err)
	}
}

func readOr(dir, f string) string {
	b, _ := os.ReadFile(dir + "/" + f)
	return strings.TrimSpace(string(b))
}

func hasHuge2MB() bool {
	return checkHugeSize("2MB") == nil
}
