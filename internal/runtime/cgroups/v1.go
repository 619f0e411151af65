package cgroups

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1 is a cgroup in every mounted v1 hierarchy. Co-mounted controllers
// (cpu,cpuacct) share a directory, which is created and joined once.
type v1 struct {
	paths map[string]string // controller → dir
	dirs  []string          // unique dirs, sorted
}

func newV1(paths map[string]string) *v1 {
	m := &v1{paths: paths}
	seen := map[string]bool{}
	for _, d := range paths {
		if !seen[d] {
			seen[d] = true
			m.dirs = append(m.dirs, d)
		}
	}
	sort.Strings(m.dirs)
	return m
}

func (m *v1) Paths() map[string]string {
	out := make(map[string]string, len(m.paths))
	for k, v := range m.paths {
		out[k] = v
	}
	return out
}

// need returns the directory of controller c or a clear error.
func (m *v1) need(c, what string) (string, error) {
	if d, ok := m.paths[c]; ok {
		return d, nil
	}
	return "", fmt.Errorf("cgroup v1 controller %q is not mounted (needed for %s): %w", c, what, ErrNotAvailable)
}

func (m *v1) Apply(pid int) error {
	cpuset := m.paths["cpuset"]
	for _, d := range m.dirs {
		if err := mkdirV1(d, d == cpuset); err != nil {
			return err
		}
	}
	if pid == 0 {
		return nil
	}
	return m.Join(pid)
}

func (m *v1) Join(pid int) error {
	p := strconv.Itoa(pid)
	for _, d := range m.dirs {
		if err := writeFile(d, "cgroup.procs", p); err != nil {
			return err
		}
	}
	return nil
}

// mkdirV1 creates dir and missing parents. A new cpuset cgroup starts with
// empty cpuset.cpus/mems and refuses tasks, so each new level copies its
// parent's.
func mkdirV1(dir string, cpuset bool) error {
	err := unix.Mkdir(dir, 0o755)
	switch err {
	case nil:
		if cpuset {
			return copyCpuset(dir)
		}
		return nil
	case unix.EEXIST:
		if cpuset {
			return ensureCpuset(dir)
		}
		return nil
	case unix.ENOENT:
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		if err := mkdirV1(parent, cpuset); err != nil {
			return err
		}
		return mkdirV1(dir, cpuset)
	}
	return fmt.Errorf("cgroup: mkdir %s: %w", dir, err)
}

func copyCpuset(dir string) error {
	parent := filepath.Dir(dir)
	for _, f := range [2]string{"cpuset.cpus", "cpuset.mems"} {
		v, err := readTrim(parent, f)
		if err != nil {
			return err
		}
		if v == "" {
			if err := ensureCpuset(parent); err != nil {
				return err
			}
			if v, err = readTrim(parent, f); err != nil {
				return err
			}
		}
		if err := writeFile(dir, f, v); err != nil {
			return err
		}
	}
	return nil
}

// ensureCpuset fills an existing cgroup's empty cpuset.cpus/mems from its
// parent (a cgroup some other tool created without them).
func ensureCpuset(dir string) error {
	cpus, err := readTrim(dir, "cpuset.cpus")
	if err != nil {
		return err
	}
	mems, err := readTrim(dir, "cpuset.mems")
	if err != nil {
		return err
	}
	if cpus != "" && mems != "" {
		return nil
	}
	if !exists(filepath.Dir(dir) + "/cpuset.cpus") {
		return fmt.Errorf("cgroup: %s has empty cpuset.cpus/mems and no parent to copy from", dir)
	}
	return copyCpuset(dir)
}

func (m *v1) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.Devices) > 0 {
		if err := m.setDevices(r.Devices); err != nil {
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
		d, err := m.need("pids", "pids.limit")
		if err != nil {
			return err
		}
		v := "max"
		if *r.Pids.Limit > 0 {
			v = itoa(*r.Pids.Limit)
		}
		if err := writeFile(d, "pids.max", v); err != nil {
			return err
		}
	}
	if r.BlockIO != nil {
		if err := m.setBlkio(r.BlockIO); err != nil {
			return err
		}
	}
	if len(r.HugepageLimits) > 0 {
		d, err := m.need("hugetlb", "hugepageLimits")
		if err != nil {
			return err
		}
		for _, h := range r.HugepageLimits {
			if err := checkHugeSize(h.Pagesize); err != nil {
				return err
			}
			v := utoa(h.Limit)
			if err := writeFile(d, "hugetlb."+h.Pagesize+".limit_in_bytes", v); err != nil {
				return err
			}
			// Reservations (5.7+) must be limited too or a mmap can reserve past the limit.
			if f := "hugetlb." + h.Pagesize + ".rsvd.limit_in_bytes"; exists(d + "/" + f) {
				if err := writeFile(d, f, v); err != nil {
					return err
				}
			}
		}
	}
	if r.Network != nil {
		if r.Network.ClassID != nil {
			d, err := m.need("net_cls", "network.classID")
			if err != nil {
				return err
			}
			if err := writeFile(d, "net_cls.classid", utoa(uint64(*r.Network.ClassID))); err != nil {
				return err
			}
		}
		if len(r.Network.Priorities) > 0 {
			d, err := m.need("net_prio", "network.priorities")
			if err != nil {
				return err
			}
			for _, p := range r.Network.Priorities {
				if err := writeFile(d, "net_prio.ifpriomap", p.Name+" "+utoa(uint64(p.Priority))); err != nil {
					return err
				}
			}
		}
	}
	if len(r.Rdma) > 0 {
		d, err := m.need("rdma", "rdma")
		if err != nil {
			return err
		}
		if err := setRdma(d, r.Rdma); err != nil {
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

// setDevices replaces the device list: deny everything, then apply the
// rules in order, as runc does. The deny-all is skipped when the first rule
// already is one (the usual OCI spec).
func (m *v1) setDevices(devs []specs.LinuxDeviceCgroup) error {
	d, err := m.need("devices", "devices")
	if err != nil {
		return err
	}
	// Each file is opened once: the kernel takes one rule per write(2), and
	// a default spec has a dozen rules.
	fds := map[string]int{}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	write := func(name, rule string) error {
		p := d + "/" + name
		fd, ok := fds[name]
		if !ok {
			var err error
			if fd, err = openWrite(p); err != nil {
				return &WriteError{File: p, Value: rule, Err: err}
			}
			fds[name] = fd
		}
		return writeFd(fd, p, rule)
	}
	if !isDenyAll(devs[0]) {
		if err := write("devices.deny", "a"); err != nil {
			return err
		}
	}
	for _, dev := range devs {
		rule, err := deviceRule(dev)
		if err != nil {
			return err
		}
		f := "devices.deny"
		if dev.Allow {
			f = "devices.allow"
		}
		if err := write(f, rule); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setMemory(mem *specs.LinuxMemory) error {
	d, err := m.need("memory", "memory limits")
	if err != nil {
		return err
	}
	const (
		limitF = "memory.limit_in_bytes"
		swapF  = "memory.memsw.limit_in_bytes"
	)
	if mem.Limit != nil && *mem.Limit > 0 && *mem.Limit < pageSize {
		return errInvalid(d+"/"+limitF, *mem.Limit, fmt.Sprintf("below the kernel minimum of one page (%d bytes)", pageSize))
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && mem.Limit != nil && *mem.Limit > 0 {
		if s, err := readFile(d, "memory.usage_in_bytes"); err == nil {
			if u, ok := parseUint(s); ok && uint64(*mem.Limit) < u {
				return errInvalid(d+"/"+limitF, *mem.Limit, fmt.Sprintf("below current usage %d", u))
			}
		}
	}
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	hasSwap := exists(d + "/" + swapF)
	if limit == -1 && swap == 0 && hasSwap {
		swap = -1 // "unlimited memory" lifts the memsw ceiling too
	}
	if swap != 0 && !hasSwap {
		if swap != -1 && swap != limit {
			return fmt.Errorf("cgroup: swap limit %d: %s missing (kernel without swap accounting): %w", swap, d+"/"+swapF, ErrNotAvailable)
		}
		swap = 0
	}
	if swap != 0 && swap != -1 && limit > 0 && swap < limit {
		return errInvalid(d+"/"+swapF, swap, fmt.Sprintf("memory+swap must be >= memory limit %d", limit))
	}
	// The kernel keeps limit <= memsw at every step: raise memsw first when
	// it grows past the current limit, otherwise lower the limit first.
	switch {
	case limit != 0 && swap != 0:
		cur, err := readFile(d, limitF)
		if err != nil {
			return err
		}
		c, _ := strconv.ParseInt(strings.TrimSpace(cur), 10, 64)
		if swap == -1 || c <= swap {
			err = writeMany(d, swapF, itoa(swap), limitF, itoa(limit))
		} else {
			err = writeMany(d, limitF, itoa(limit), swapF, itoa(swap))
		}
		if err != nil {
			return err
		}
	case limit != 0:
		if err := writeFile(d, limitF, itoa(limit)); err != nil {
			return err
		}
	case swap != 0:
		if err := writeFile(d, swapF, itoa(swap)); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(d, "memory.soft_limit_in_bytes", itoa(*mem.Reservation)); err != nil {
			return err
		}
	}
	//lint:ignore SA1019 the brief asks to honour kernel memory where the v1 kernel still has the file
	if err := optionalWrite(d, "memory.kmem.limit_in_bytes", mem.Kernel); err != nil {
		return err
	}
	if err := optionalWrite(d, "memory.kmem.tcp.limit_in_bytes", mem.KernelTCP); err != nil {
		return err
	}
	if mem.Swappiness != nil && int64(*mem.Swappiness) != -1 {
		if *mem.Swappiness > 100 {
			return errInvalid(d+"/memory.swappiness", *mem.Swappiness, "must be between 0 and 100")
		}
		if err := writeFile(d, "memory.swappiness", utoa(*mem.Swappiness)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil {
		if err := writeFile(d, "memory.oom_control", boolStr(*mem.DisableOOMKiller)); err != nil {
			return err
		}
	}
	if mem.UseHierarchy != nil {
		if err := writeFile(d, "memory.use_hierarchy", boolStr(*mem.UseHierarchy)); err != nil {
			return err
		}
	}
	return nil
}

// optionalWrite writes deprecated kernel-memory knobs where the kernel still
// has the file and logs otherwise.
func optionalWrite(d, f string, v *int64) error {
	if v == nil || *v == 0 {
		return nil
	}
	if !exists(d + "/" + f) {
		slog.Debug("cgroup: ignoring kernel memory limit, file absent", "file", d+"/"+f, "value", *v)
		return nil
	}
	return writeFile(d, f, itoa(*v))
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func writeMany(d string, kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if err := writeFile(d, kv[i], kv[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setCPU(c *specs.LinuxCPU) error {
	needCPU := c.Shares != nil && *c.Shares != 0 || c.Quota != nil && *c.Quota != 0 ||
		c.Period != nil && *c.Period != 0 || c.Burst != nil || c.RealtimePeriod != nil && *c.RealtimePeriod != 0 ||
		c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 || c.Idle != nil
	if needCPU {
		d, err := m.need("cpu", "cpu limits")
		if err != nil {
			return err
		}
		if c.Shares != nil && *c.Shares != 0 {
			s := *c.Shares
			if s < 2 || s > 262144 {
				return errInvalid(d+"/cpu.shares", s, "must be between 2 and 262144")
			}
			if err := writeFile(d, "cpu.shares", utoa(s)); err != nil {
				return err
			}
		}
		if err := setQuotaPeriod(d, "cpu.cfs_quota_us", "cpu.cfs_period_us", c.Quota, c.Period); err != nil {
			return err
		}
		if c.Burst != nil {
			if !exists(d + "/cpu.cfs_burst_us") {
				return fmt.Errorf("cgroup: cpu burst: %s/cpu.cfs_burst_us missing: %w", d, ErrNotAvailable)
			}
			if err := writeFile(d, "cpu.cfs_burst_us", utoa(*c.Burst)); err != nil {
				return err
			}
		}
		if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
			if err := writeFile(d, "cpu.rt_period_us", utoa(*c.RealtimePeriod)); err != nil {
				return err
			}
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
			if err := writeFile(d, "cpu.rt_runtime_us", itoa(*c.RealtimeRuntime)); err != nil {
				return err
			}
		}
		if c.Idle != nil {
			if !exists(d + "/cpu.idle") {
				return fmt.Errorf("cgroup: cpu idle: %s/cpu.idle missing: %w", d, ErrNotAvailable)
			}
			if err := writeFile(d, "cpu.idle", itoa(*c.Idle)); err != nil {
				return err
			}
		}
	}
	return setCpuset(m.paths["cpuset"], "cpuset", c)
}

// setQuotaPeriod writes CFS quota and period. A new period smaller than the
// current one can be refused (EINVAL) while the old quota is in place, so on
// EINVAL it is retried after the quota, as runc does.
func setQuotaPeriod(d, quotaF, periodF string, quota *int64, period *uint64) error {
	pendingPeriod := ""
	if period != nil && *period != 0 {
		p := *period
		if p < 1000 || p > 1000000 {
			return errInvalid(d+"/"+periodF, p, "must be between 1000 and 1000000 (µs)")
		}
		if err := writeFile(d, periodF, utoa(p)); err != nil {
			if !errors.Is(err, unix.EINVAL) || quota == nil || *quota == 0 {
				return err
			}
			pendingPeriod = utoa(p)
		}
	}
	if quota != nil && *quota != 0 {
		q := *quota
		if q > 0 && q < 1000 {
			return errInvalid(d+"/"+quotaF, q, "below the kernel minimum of 1000 (µs)")
		}
		if q < 0 {
			q = -1
		}
		if err := writeFile(d, quotaF, itoa(q)); err != nil {
			return err
		}
		if pendingPeriod != "" {
			return writeFile(d, periodF, pendingPeriod)
		}
	}
	return nil
}

func setCpuset(d, ctl string, c *specs.LinuxCPU) error {
	if c.Cpus == "" && c.Mems == "" {
		return nil
	}
	if d == "" {
		return fmt.Errorf("cgroup: %s controller not available (needed for cpus/mems): %w", ctl, ErrNotAvailable)
	}
	if c.Cpus != "" {
		if err := writeFile(d, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := writeFile(d, "cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setBlkio(b *specs.LinuxBlockIO) error {
	d, err := m.need("blkio", "blockIO")
	if err != nil {
		return err
	}
	// CFQ's blkio.weight is gone since 5.0; BFQ offers blkio.bfq.weight.
	weightF, weightDevF, min := "blkio.weight", "blkio.weight_device", uint16(10)
	if !exists(d + "/" + weightF) {
		weightF, weightDevF, min = "blkio.bfq.weight", "blkio.bfq.weight_device", 1
	}
	if b.Weight != nil && *b.Weight != 0 {
		if !exists(d + "/" + weightF) {
			return fmt.Errorf("cgroup: blkio weight: neither blkio.weight nor blkio.bfq.weight in %s (no CFQ/BFQ): %w", d, ErrNotAvailable)
		}
		if *b.Weight < min || *b.Weight > 1000 {
			return errInvalid(d+"/"+weightF, *b.Weight, fmt.Sprintf("must be between %d and 1000", min))
		}
		if err := writeFile(d, weightF, utoa(uint64(*b.Weight))); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if !exists(d + "/blkio.leaf_weight") {
			return fmt.Errorf("cgroup: blkio leafWeight: %s/blkio.leaf_weight missing (CFQ only): %w", d, ErrNotAvailable)
		}
		if err := writeFile(d, "blkio.leaf_weight", utoa(uint64(*b.LeafWeight))); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		dev := itoa(wd.Major) + ":" + itoa(wd.Minor) + " "
		if wd.Weight != nil {
			if err := writeFile(d, weightDevF, dev+utoa(uint64(*wd.Weight))); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil {
			if err := writeFile(d, "blkio.leaf_weight_device", dev+utoa(uint64(*wd.LeafWeight))); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		f    string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, td := range t.devs {
			if err := writeFile(d, t.f, itoa(td.Major)+":"+itoa(td.Minor)+" "+utoa(td.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func setRdma(d string, rdma map[string]specs.LinuxRdma) error {
	for dev, l := range rdma {
		h, o := "max", "max"
		if l.HcaHandles != nil {
			h = utoa(uint64(*l.HcaHandles))
		}
		if l.HcaObjects != nil {
			o = utoa(uint64(*l.HcaObjects))
		}
		if err := writeFile(d, "rdma.max", dev+" hca_handle="+h+" hca_object="+o); err != nil {
			return err
		}
	}
	return nil
}

// setUnified maps the cgroup v2 keys that have a v1 equivalent; any other
// key is refused.
func (m *v1) setUnified(u map[string]string) error {
	keys := make([]string, 0, len(u))
	for k := range u {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(u[k])
		var err error
		switch k {
		case "memory.max":
			l := int64(-1)
			if v != "max" {
				l, err = strconv.ParseInt(v, 10, 64)
			}
			if err == nil {
				err = m.setMemory(&specs.LinuxMemory{Limit: &l})
			}
		case "memory.low":
			l := int64(-1)
			if v != "max" {
				l, err = strconv.ParseInt(v, 10, 64)
			}
			if err == nil {
				err = m.setMemory(&specs.LinuxMemory{Reservation: &l})
			}
		case "pids.max":
			l := int64(0)
			if v != "max" {
				l, err = strconv.ParseInt(v, 10, 64)
			}
			if err == nil {
				err = m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &l}})
			}
		case "cpu.weight":
			var w uint64
			if w, err = strconv.ParseUint(v, 10, 64); err == nil {
				if w < 1 || w > 10000 {
					return errInvalid("unified cpu.weight", v, "must be between 1 and 10000")
				}
				s := cpuWeightToShares(w)
				err = m.setCPU(&specs.LinuxCPU{Shares: &s})
			}
		case "cpu.max":
			q, p, perr := parseCPUMax(v)
			if perr != nil {
				return perr
			}
			err = m.setCPU(&specs.LinuxCPU{Quota: &q, Period: p})
		case "cpu.idle":
			var i int64
			if i, err = strconv.ParseInt(v, 10, 64); err == nil {
				err = m.setCPU(&specs.LinuxCPU{Idle: &i})
			}
		case "cpuset.cpus":
			err = m.setCPU(&specs.LinuxCPU{Cpus: v})
		case "cpuset.mems":
			err = m.setCPU(&specs.LinuxCPU{Mems: v})
		default:
			return fmt.Errorf("cgroup: unified resource %q has no cgroup v1 equivalent on this host: %w", k, errInvalidArgument)
		}
		if err != nil {
			if errors.Is(err, strconv.ErrSyntax) || errors.Is(err, strconv.ErrRange) {
				return errInvalid("unified "+k, v, "not a number")
			}
			return err
		}
	}
	return nil
}

// parseCPUMax parses "quota period" or "max [period]".
func parseCPUMax(v string) (int64, *uint64, error) {
	f := strings.Fields(v)
	if len(f) == 0 || len(f) > 2 {
		return 0, nil, errInvalid("cpu.max", v, `want "quota [period]"`)
	}
	q := int64(-1)
	if f[0] != "max" {
		var err error
		if q, err = strconv.ParseInt(f[0], 10, 64); err != nil {
			return 0, nil, errInvalid("cpu.max", v, "quota is not a number")
		}
	}
	var p *uint64
	if len(f) == 2 {
		x, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return 0, nil, errInvalid("cpu.max", v, "period is not a number")
		}
		p = &x
	}
	return q, p, nil
}

// Freezer: writing FROZEN starts freezing; the state reads FREEZING until
// every task stopped. A task stuck in the kernel can stall that, so the
// freeze is retried (thaw and refreeze) now and then, as runc does.
func (m *v1) Freeze() error {
	d, err := m.need("freezer", "freeze")
	if err != nil {
		return err
	}
	for try := 0; try < 10; try++ {
		if err := writeFile(d, "freezer.state", "FROZEN"); err != nil {
			return err
		}
		ok, err := waitFor(100*time.Millisecond, func() (bool, error) {
			s, err := readTrim(d, "freezer.state")
			return s == "FROZEN", err
		})
		if err != nil || ok {
			return err
		}
		if err := writeFile(d, "freezer.state", "THAWED"); err != nil {
			return err
		}
	}
	return fmt.Errorf("cgroup: %s: could not freeze (stuck in FREEZING)", d)
}

func (m *v1) Thaw() error {
	d, err := m.need("freezer", "thaw")
	if err != nil {
		return err
	}
	return writeFile(d, "freezer.state", "THAWED")
}

func (m *v1) Frozen() (bool, error) {
	d, err := m.need("freezer", "freezer state")
	if err != nil {
		return false, err
	}
	s, err := readTrim(d, "freezer.state")
	return s == "FROZEN", err
}

// Pids lists the processes of every hierarchy's subtree: normally the same
// set in each, but a process moved into a sub-cgroup of one hierarchy only
// (systemd inside a container) or out of some must still be found, or Kill
// and Destroy would miss it.
func (m *v1) Pids() ([]int, error) {
	var all []int
	for _, d := range m.dirs {
		var err error
		if all, err = readProcs(d, all); err != nil {
			return nil, err
		}
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

// Kill freezes the cgroup (when a freezer is mounted) so that nothing forks
// while we signal, signals every process and thaws.
func (m *v1) Kill(sig unix.Signal) error {
	frozen := false
	if _, ok := m.paths["freezer"]; ok {
		if err := m.Freeze(); err == nil {
			frozen = true
		}
	}
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

func (m *v1) Destroy() error {
	if err := destroyDirs(m.dirs, func() error { return m.Kill(unix.SIGKILL) }); err != nil {
		return err
	}
	return nil
}

func (m *v1) OOMKills() (uint64, error) {
	d, err := m.need("memory", "OOM kill count")
	if err != nil {
		return 0, err
	}
	s, err := readFile(d, "memory.oom_control")
	if err != nil {
		return 0, err
	}
	return parseKV(s)["oom_kill"], nil
}

func (m *v1) Stats() (*Stats, error) {
	st := &Stats{}
	if d, ok := m.paths["cpuacct"]; ok {
		if s, err := readFile(d, "cpuacct.usage"); err == nil {
			st.CPU.Usage.Total, _ = parseUint(s)
		} else {
			return nil, err
		}
		if s, err := readFile(d, "cpuacct.usage_percpu"); err == nil {
			st.CPU.Usage.PerCPU = parseUints(s)
		}
		// usage_user/usage_sys are in ns (4.6+); cpuacct.stat is in USER_HZ.
		if s, err := readFile(d, "cpuacct.usage_user"); err == nil {
			st.CPU.Usage.User, _ = parseUint(s)
			if s, err := readFile(d, "cpuacct.usage_sys"); err == nil {
				st.CPU.Usage.System, _ = parseUint(s)
			}
		} else if s, err := readFile(d, "cpuacct.stat"); err == nil {
			kv := parseKV(s)
			const nsPerTick = 1e9 / 100 // USER_HZ is 100 on every Linux ABI
			st.CPU.Usage.User = kv["user"] * nsPerTick
			st.CPU.Usage.System = kv["system"] * nsPerTick
		}
	}
	if d, ok := m.paths["cpu"]; ok {
		if s, err := readFile(d, "cpu.stat"); err == nil {
			kv := parseKV(s)
			st.CPU.Throttling = ThrottlingData{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_time"]}
		}
	}
	if d, ok := m.paths["memory"]; ok {
		mem := &st.Memory
		s, err := readFile(d, "memory.stat")
		if err != nil {
			return nil, err
		}
		mem.Stats = parseKV(s)
		read := func(f string) uint64 {
			s, err := readFile(d, f)
			if err != nil {
				return 0
			}
			v, _ := parseUint(s)
			return v
		}
		mem.Usage = read("memory.usage_in_bytes")
		mem.MaxUsage = read("memory.max_usage_in_bytes")
		mem.Limit = read("memory.limit_in_bytes")
		mem.HasLimit = mem.Limit != 0 && mem.Limit < 1<<62
		mem.Failcnt = read("memory.failcnt")
		mem.UseHierarchy = read("memory.use_hierarchy") == 1
		if exists(d + "/memory.memsw.usage_in_bytes") {
			mem.Swap = MemoryData{
				Usage:    read("memory.memsw.usage_in_bytes"),
				MaxUsage: read("memory.memsw.max_usage_in_bytes"),
				Limit:    read("memory.memsw.limit_in_bytes"),
				Failcnt:  read("memory.memsw.failcnt"),
			}
		}
	}
	if d, ok := m.paths["pids"]; ok {
		if s, err := readFile(d, "pids.current"); err == nil {
			st.Pids.Current, _ = parseUint(s)
		}
		if s, err := readFile(d, "pids.max"); err == nil {
			st.Pids.Limit, _ = parseUint(s)
		}
	}
	if d, ok := m.paths["blkio"]; ok {
		// The CFQ files are gone on modern kernels; the throttle layer sees
		// every bio, so its counters are the fallback (runc does the same).
		for _, pre := range []string{"blkio.", "blkio.throttle."} {
			s, err := readFile(d, pre+"io_service_bytes_recursive")
			if err != nil {
				continue
			}
			b := parseBlkioV1(s)
			if len(b) == 0 && pre == "blkio." {
				continue
			}
			st.Blkio.IoServiceBytesRecursive = b
			if s, err := readFile(d, pre+"io_serviced_recursive"); err == nil {
				st.Blkio.IoServicedRecursive = parseBlkioV1(s)
			}
			break
		}
	}
	if d, ok := m.paths["hugetlb"]; ok {
		st.Hugetlb = map[string]HugetlbStats{}
		for _, size := range hugePageSizes() {
			p := "hugetlb." + size + "."
			var h HugetlbStats
			if s, err := readFile(d, p+"usage_in_bytes"); err == nil {
				h.Usage, _ = parseUint(s)
			}
			if s, err := readFile(d, p+"max_usage_in_bytes"); err == nil {
				h.MaxUsage, _ = parseUint(s)
			}
			if s, err := readFile(d, p+"failcnt"); err == nil {
				h.Failcnt, _ = parseUint(s)
			}
			st.Hugetlb[size] = h
		}
	}
	return st, nil
}
