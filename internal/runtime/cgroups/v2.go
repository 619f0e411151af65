package cgroups

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// eagerControllers are enabled for every container on v2: docker's stats
// need memory, cpu, io and pids even without limits. cpuset, hugetlb, rdma
// and misc cost a css per cgroup and are enabled only when Set needs them.
var eagerControllers = []string{"cpu", "io", "memory", "pids"}

// v2 is one directory in the unified hierarchy. Controllers are enabled by
// writing "+name" to cgroup.subtree_control of every ancestor below root.
type v2 struct {
	root string // hierarchy mount point; ancestors are enabled from here down
	dir  string
	ctrl map[string]bool // cgroup.controllers of dir, read lazily
}

func newV2(root, dir string) *v2 {
	return &v2{root: filepath.Clean(root), dir: filepath.Clean(dir)}
}

func (m *v2) Paths() map[string]string { return map[string]string{"": m.dir} }

func (m *v2) Apply(pid int) error {
	if err := mkdirAll(m.dir); err != nil {
		return err
	}
	if err := m.enable(eagerControllers, false); err != nil {
		return err
	}
	if pid == 0 {
		return nil
	}
	return m.Join(pid)
}

func (m *v2) Join(pid int) error {
	return writeFile(m.dir, "cgroup.procs", strconv.Itoa(pid))
}

func mkdirAll(dir string) error {
	err := unix.Mkdir(dir, 0o755)
	switch err {
	case nil, unix.EEXIST:
		return nil
	case unix.ENOENT:
		if p := filepath.Dir(dir); p != dir {
			if err := mkdirAll(p); err != nil {
				return err
			}
			if err := unix.Mkdir(dir, 0o755); err == nil || err == unix.EEXIST {
				return nil
			} else {
				return fmt.Errorf("cgroup: mkdir %s: %w", dir, err)
			}
		}
	}
	return fmt.Errorf("cgroup: mkdir %s: %w", dir, err)
}

// controllers returns the controllers usable in m.dir (its cgroup.controllers).
func (m *v2) controllers() (map[string]bool, error) {
	if m.ctrl != nil {
		return m.ctrl, nil
	}
	s, err := readFile(m.dir, "cgroup.controllers")
	if err != nil {
		return nil, err
	}
	c := map[string]bool{}
	for _, f := range strings.Fields(s) {
		c[f] = true
	}
	m.ctrl = c
	return c, nil
}

// enable makes the wanted controllers usable in m.dir by enabling them in
// every ancestor's cgroup.subtree_control, top down. Controllers the root
// does not offer are skipped, or refused when strict.
func (m *v2) enable(want []string, strict bool) error {
	have, err := m.controllers()
	if err != nil {
		return err
	}
	var missing []string
	for _, c := range want {
		if !have[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rel, err := filepath.Rel(m.root, m.dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return m.unavailable(missing, strict)
	}
	rootAvail, err := readFile(m.root, "cgroup.controllers")
	if err != nil {
		return err
	}
	avail := map[string]bool{}
	for _, f := range strings.Fields(rootAvail) {
		avail[f] = true
	}
	var todo, absent []string
	for _, c := range missing {
		if avail[c] {
			todo = append(todo, c)
		} else {
			absent = append(absent, c)
		}
	}
	if len(absent) > 0 && strict {
		return m.unavailable(absent, true)
	}
	if len(todo) == 0 {
		return nil
	}
	cur := m.root
	for _, el := range strings.Split(rel, "/") {
		enabled, err := readFile(cur, "cgroup.subtree_control")
		if err != nil {
			return err
		}
		on := map[string]bool{}
		for _, f := range strings.Fields(enabled) {
			on[f] = true
		}
		var b strings.Builder
		for _, c := range todo {
			if !on[c] {
				if b.Len() > 0 {
					b.WriteByte(' ')
				}
				b.WriteString("+" + c)
			}
		}
		if b.Len() > 0 {
			if err := writeFile(cur, "cgroup.subtree_control", b.String()); err != nil {
				if errors.Is(err, unix.EBUSY) {
					return fmt.Errorf("%w (cgroup v2 forbids enabling controllers in a cgroup that has processes; use a cgroupsPath outside the caller's own cgroup)", err)
				}
				return err
			}
		}
		cur += "/" + el
	}
	for _, c := range todo {
		m.ctrl[c] = true
	}
	return nil
}

func (m *v2) unavailable(cs []string, strict bool) error {
	if !strict {
		return nil
	}
	return fmt.Errorf("cgroup v2 controller %s not available in %s (cgroup.controllers of the hierarchy lacks it): %w", strings.Join(cs, ", "), m.dir, ErrNotAvailable)
}

func (m *v2) need(c string) error { return m.enable([]string{c}, true) }

func (m *v2) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.Devices) > 0 {
		if err := setDevicesV2(m.dir, r.Devices); err != nil {
			return err
		}
	}
	if r.Memory != nil {
		if err := m.setMemory(r.Memory); err != nil {
			return err
		}
	}
	if r.CPU != nil {
		if err := m.setCPU(r.CPU); err != nil {
			return err
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		if err := m.need("pids"); err != nil {
			return err
		}
		v := "max"
		if *r.Pids.Limit > 0 {
			v = itoa(*r.Pids.Limit)
		}
		if err := writeFile(m.dir, "pids.max", v); err != nil {
			return err
		}
	}
	if r.BlockIO != nil {
		if err := m.setIO(r.BlockIO); err != nil {
			return err
		}
	}
	if len(r.HugepageLimits) > 0 {
		if err := m.need("hugetlb"); err != nil {
			return err
		}
		for _, h := range r.HugepageLimits {
			if err := checkHugeSize(h.Pagesize); err != nil {
				return err
			}
			v := utoa(h.Limit)
			if err := writeFile(m.dir, "hugetlb."+h.Pagesize+".max", v); err != nil {
				return err
			}
			if f := "hugetlb." + h.Pagesize + ".rsvd.max"; exists(m.dir + "/" + f) {
				if err := writeFile(m.dir, f, v); err != nil {
					return err
				}
			}
		}
	}
	if r.Network != nil && (r.Network.ClassID != nil || len(r.Network.Priorities) > 0) {
		return fmt.Errorf("cgroup: network classID/priorities need the v1 net_cls/net_prio controllers, absent on cgroup v2: %w", ErrNotAvailable)
	}
	if len(r.Rdma) > 0 {
		if err := m.need("rdma"); err != nil {
			return err
		}
		if err := setRdma(m.dir, r.Rdma); err != nil {
			return err
		}
	}
	if len(r.Unified) > 0 {
		if err := m.setUnified(r.Unified); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2) setMemory(mem *specs.LinuxMemory) error {
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	//lint:ignore SA1019 deprecated but still sent by older clients: acknowledged and ignored
	if k := mem.Kernel; k != nil && *k != 0 {
		slog.Debug("cgroup v2 has no kernel memory limit; ignoring", "kernel", *k)
	}
	if mem.KernelTCP != nil && *mem.KernelTCP != 0 {
		slog.Debug("cgroup v2 has no kernel TCP memory limit; ignoring", "kernelTCP", *mem.KernelTCP)
	}
	if mem.Swappiness != nil && int64(*mem.Swappiness) != -1 {
		slog.Debug("cgroup v2 has no per-cgroup swappiness; ignoring", "swappiness", *mem.Swappiness)
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		slog.Debug("cgroup v2 cannot disable the OOM killer; ignoring")
	}
	if mem.UseHierarchy != nil && !*mem.UseHierarchy {
		slog.Debug("cgroup v2 is always hierarchical; ignoring useHierarchy=false")
	}
	res := int64(0)
	if mem.Reservation != nil {
		res = *mem.Reservation
	}
	if limit == 0 && swap == 0 && res == 0 {
		return nil
	}
	if err := m.need("memory"); err != nil {
		return err
	}
	if limit > 0 && limit < pageSize {
		return errInvalid(m.dir+"/memory.max", limit, fmt.Sprintf("below the kernel minimum of one page (%d bytes)", pageSize))
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && limit > 0 {
		if s, err := readFile(m.dir, "memory.current"); err == nil {
			if u, ok := parseUint(s); ok && uint64(limit) < u {
				return errInvalid(m.dir+"/memory.max", limit, fmt.Sprintf("below current usage %d", u))
			}
		}
	}
	sw, err := swapToV2(swap, limit)
	if err != nil {
		return err
	}
	if sw != 0 {
		if exists(m.dir + "/memory.swap.max") {
			if err := writeFile(m.dir, "memory.swap.max", maxOr(sw)); err != nil {
				return err
			}
		} else if sw > 0 {
			return fmt.Errorf("cgroup: swap limit: %s/memory.swap.max missing (kernel without swap accounting): %w", m.dir, ErrNotAvailable)
		}
	}
	if limit != 0 {
		if err := writeFile(m.dir, "memory.max", maxOr(limit)); err != nil {
			return err
		}
	}
	if res != 0 {
		if err := writeFile(m.dir, "memory.low", maxOr(res)); err != nil {
			return err
		}
	}
	return nil
}

// maxOr renders a negative limit as v2's "max".
func maxOr(v int64) string {
	if v < 0 {
		return "max"
	}
	return itoa(v)
}

func (m *v2) setCPU(c *specs.LinuxCPU) error {
	if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 || c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
		return fmt.Errorf("cgroup: realtime cpu period/runtime are not supported on cgroup v2: %w", ErrNotAvailable)
	}
	hasShares := c.Shares != nil && *c.Shares != 0
	hasMax := c.Quota != nil && *c.Quota != 0 || c.Period != nil && *c.Period != 0
	if hasShares || hasMax || c.Burst != nil || c.Idle != nil {
		if err := m.need("cpu"); err != nil {
			return err
		}
	}
	if hasShares {
		s := *c.Shares
		if s < 2 || s > 262144 {
			return errInvalid(m.dir+"/cpu.weight", s, "cpu shares must be between 2 and 262144")
		}
		if err := writeFile(m.dir, "cpu.weight", utoa(cpuSharesToWeight(s))); err != nil {
			return err
		}
	}
	if hasMax {
		// cpu.max holds both; keep the half that is not being changed.
		cur, err := readTrim(m.dir, "cpu.max")
		if err != nil {
			return err
		}
		f := strings.Fields(cur)
		quota, period := "max", "100000"
		if len(f) == 2 {
			quota, period = f[0], f[1]
		}
		if c.Quota != nil && *c.Quota != 0 {
			q := *c.Quota
			if q > 0 && q < 1000 {
				return errInvalid(m.dir+"/cpu.max", q, "quota below the kernel minimum of 1000 (µs)")
			}
			quota = maxOr(q)
		}
		if c.Period != nil && *c.Period != 0 {
			p := *c.Period
			if p < 1000 || p > 1000000 {
				return errInvalid(m.dir+"/cpu.max", p, "period must be between 1000 and 1000000 (µs)")
			}
			period = utoa(p)
		}
		if err := writeFile(m.dir, "cpu.max", quota+" "+period); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := writeFile(m.dir, "cpu.max.burst", utoa(*c.Burst)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := writeFile(m.dir, "cpu.idle", itoa(*c.Idle)); err != nil {
			return err
		}
	}
	if c.Cpus != "" || c.Mems != "" {
		if err := m.need("cpuset"); err != nil {
			return err
		}
		return setCpuset(m.dir, "cpuset", c)
	}
	return nil
}

func (m *v2) setIO(b *specs.LinuxBlockIO) error {
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		slog.Debug("cgroup v2 has no blkio leaf weight; ignoring", "leafWeight", *b.LeafWeight)
	}
	hasWeight := b.Weight != nil && *b.Weight != 0 || len(b.WeightDevice) > 0
	hasMax := len(b.ThrottleReadBpsDevice)+len(b.ThrottleWriteBpsDevice)+len(b.ThrottleReadIOPSDevice)+len(b.ThrottleWriteIOPSDevice) > 0
	if !hasWeight && !hasMax {
		return nil
	}
	if err := m.need("io"); err != nil {
		return err
	}
	if hasWeight {
		// BFQ takes blkio's 1..1000 scale in io.bfq.weight; without BFQ,
		// io.weight (1..10000) needs the iocost controller.
		bfq := exists(m.dir + "/io.bfq.weight")
		conv := func(w uint16) string {
			if bfq {
				return utoa(uint64(w))
			}
			return utoa(blkioWeightToIOWeight(uint64(w)))
		}
		f := "io.weight"
		if bfq {
			f = "io.bfq.weight"
		} else if !exists(m.dir + "/io.weight") {
			return fmt.Errorf("cgroup: blkio weight: neither io.bfq.weight nor io.weight in %s: %w", m.dir, ErrNotAvailable)
		}
		if b.Weight != nil && *b.Weight != 0 {
			if *b.Weight < 10 || *b.Weight > 1000 {
				return errInvalid(m.dir+"/"+f, *b.Weight, "blkio weight must be between 10 and 1000")
			}
			if err := writeFile(m.dir, f, conv(*b.Weight)); err != nil {
				return err
			}
		}
		for _, wd := range b.WeightDevice {
			if wd.Weight == nil {
				continue
			}
			if err := writeFile(m.dir, f, itoa(wd.Major)+":"+itoa(wd.Minor)+" "+conv(*wd.Weight)); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice},
		{"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice},
		{"wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, td := range t.devs {
			v := "max"
			if td.Rate != 0 {
				v = utoa(td.Rate)
			}
			if err := writeFile(m.dir, "io.max", itoa(td.Major)+":"+itoa(td.Minor)+" "+t.key+"="+v); err != nil {
				return err
			}
		}
	}
	return nil
}

// setUnified writes raw v2 key/values. The key must name an existing file
// of a controller available here: an unknown key is an error, not a new file.
func (m *v2) setUnified(u map[string]string) error {
	keys := make([]string, 0, len(u))
	for k := range u {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ctl, _, ok := strings.Cut(k, ".")
		if !ok || ctl == "" || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
			return fmt.Errorf("cgroup: unified key %q is not a cgroup v2 file name (controller.file): %w", k, errInvalidArgument)
		}
		if ctl != "cgroup" {
			if err := m.need(ctl); err != nil {
				return fmt.Errorf("unified key %q: %w", k, err)
			}
		}
		if !exists(m.dir + "/" + k) {
			return fmt.Errorf("cgroup: unknown unified key %q: %s/%s does not exist: %w", k, m.dir, k, errInvalidArgument)
		}
		if err := writeFile(m.dir, k, u[k]); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2) Freeze() error {
	if err := writeFile(m.dir, "cgroup.freeze", "1"); err != nil {
		if errors.Is(err, unix.ENOENT) && exists(m.dir) {
			return fmt.Errorf("cgroup: freeze needs cgroup.freeze (kernel 5.2+): %w", ErrNotAvailable)
		}
		return err
	}
	ok, err := waitFor(10*time.Second, m.Frozen)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("cgroup: %s: not frozen after 10s", m.dir)
	}
	return nil
}

func (m *v2) Thaw() error {
	return writeFile(m.dir, "cgroup.freeze", "0")
}

func (m *v2) Frozen() (bool, error) {
	s, err := readFile(m.dir, "cgroup.events")
	if err != nil {
		return false, err
	}
	return parseKV(s)["frozen"] == 1, nil
}

func (m *v2) Pids() ([]int, error) { return readProcs(m.dir, nil) }

// Kill uses cgroup.kill (5.14+) for SIGKILL: one write, no race with fork.
// Other signals (or older kernels) freeze, signal each process, thaw.
func (m *v2) Kill(sig unix.Signal) error {
	if sig == unix.SIGKILL {
		err := writeFile(m.dir, "cgroup.kill", "1")
		if err == nil || errors.Is(err, unix.ENOENT) && !exists(m.dir) {
			return nil
		}
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	frozen := m.Freeze() == nil
	pids, err := m.Pids()
	if err == nil {
		err = signalAll(pids, sig)
	}
	if frozen {
		if terr := m.Thaw(); terr != nil && err == nil {
			err = terr
		}
	}
	return err
}

func (m *v2) Destroy() error {
	return destroyDirs([]string{m.dir}, func() error { return m.Kill(unix.SIGKILL) })
}

func (m *v2) OOMKills() (uint64, error) {
	s, err := readFile(m.dir, "memory.events")
	if err != nil {
		if errors.Is(err, unix.ENOENT) && exists(m.dir) {
			return 0, fmt.Errorf("cgroup: OOM kill count needs the memory controller in %s: %w", m.dir, ErrNotAvailable)
		}
		return 0, err
	}
	return parseKV(s)["oom_kill"], nil
}

func (m *v2) Stats() (*Stats, error) {
	st := &Stats{}
	s, err := readFile(m.dir, "cpu.stat")
	if err != nil {
		return nil, err
	}
	kv := parseKV(s)
	st.CPU.Usage = CPUUsage{Total: kv["usage_usec"] * 1000, User: kv["user_usec"] * 1000, System: kv["system_usec"] * 1000}
	st.CPU.Throttling = ThrottlingData{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_usec"] * 1000}
	read := func(f string) (uint64, bool) {
		s, err := readFile(m.dir, f)
		if err != nil {
			return 0, false
		}
		return parseUint(s)
	}
	if s, err := readFile(m.dir, "memory.stat"); err == nil {
		mem := &st.Memory
		mem.Stats = parseKV(s)
		mem.UseHierarchy = true
		mem.Usage, _ = read("memory.current")
		mem.MaxUsage, _ = read("memory.peak")
		mem.Limit, mem.HasLimit = read("memory.max")
		if s, err := readFile(m.dir, "memory.events"); err == nil {
			mem.Failcnt = parseKV(s)["max"]
		}
		mem.Swap.Usage, _ = read("memory.swap.current")
		mem.Swap.MaxUsage, _ = read("memory.swap.peak")
		mem.Swap.Limit, _ = read("memory.swap.max")
	}
	st.Pids.Current, _ = read("pids.current")
	st.Pids.Limit, _ = read("pids.max")
	if s, err := readFile(m.dir, "io.stat"); err == nil {
		st.Blkio.IoServiceBytesRecursive, st.Blkio.IoServicedRecursive = parseIOStatV2(s)
	}
	if sizes := hugePageSizes(); len(sizes) > 0 && exists(m.dir+"/hugetlb."+sizes[0]+".current") {
		st.Hugetlb = map[string]HugetlbStats{}
		for _, size := range sizes {
			p := "hugetlb." + size + "."
			var h HugetlbStats
			h.Usage, _ = read(p + "current")
			if s, err := readFile(m.dir, p+"events"); err == nil {
				h.Failcnt = parseKV(s)["max"]
			}
			st.Hugetlb[size] = h
		}
	}
	return st, nil
}
