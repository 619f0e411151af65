package spec

import (
	"runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// linuxMinMemory is docker's smallest accepted memory limit (6 MiB).
const linuxMinMemory = 6 * 1024 * 1024

func (g *gen) resourcesObj() *specs.LinuxResources {
	if g.s.Linux.Resources == nil {
		g.s.Linux.Resources = &specs.LinuxResources{}
	}
	return g.s.Linux.Resources
}

// CheckResources validates r as moby's verifyPlatformContainerResources
// does, with its messages, for create (update=false) and for docker update
// (update=true), which relaxes what moby relaxes there: a swap limit
// without a memory limit (the stored memory limit applies). h gives NCPU
// (0: runtime.NumCPU()) and the cpuset the daemon may use (Cpus, Mems;
// empty: not checked).
func CheckResources(r Resources, h Host, update bool) error {
	if r.MemorySwappiness != nil && *r.MemorySwappiness == -1 {
		r.MemorySwappiness = nil // docker's "unset"
	}

	// memory
	if r.Memory != 0 && r.Memory < linuxMinMemory {
		return invalidf("Minimum memory limit allowed is 6MB")
	}
	if r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return invalidf("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.Memory == 0 && r.MemorySwap > 0 && !update {
		return invalidf("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if r.MemorySwappiness != nil && (*r.MemorySwappiness < 0 || *r.MemorySwappiness > 100) {
		return invalidf("Invalid value: %v, valid memory swappiness range is 0-100", *r.MemorySwappiness)
	}
	if r.MemoryReservation > 0 && r.MemoryReservation < linuxMinMemory {
		return invalidf("Minimum memory reservation allowed is 6MB")
	}
	if r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation {
		return invalidf("Minimum memory limit can not be less than memory reservation limit, see usage")
	}

	// cpu
	if r.NanoCPUs > 0 && r.CPUPeriod > 0 {
		return invalidf("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs > 0 && r.CPUQuota > 0 {
		return invalidf("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	if r.NanoCPUs != 0 {
		nc := h.NCPU
		if nc <= 0 {
			nc = runtime.NumCPU()
		}
		if r.NanoCPUs < 0 || r.NanoCPUs > int64(nc)*1e9 {
			return invalidf("Range of CPUs is from 0.01 to %[1]d.00, as there are only %[1]d CPUs available", nc)
		}
	}
	if r.CPUShares < 0 {
		return invalidf("invalid CPU shares (%d): value must be a positive integer", r.CPUShares)
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return invalidf("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	}
	if r.CPUQuota > 0 && r.CPUQuota < 1000 {
		return invalidf("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	}
	if err := checkCpuset(r.CpusetCpus, h.Cpus, "cpus", "CPUs"); err != nil {
		return err
	}
	if err := checkCpuset(r.CpusetMems, h.Mems, "mems", "memory nodes"); err != nil {
		return err
	}

	// blkio
	if r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return invalidf("Range of blkio weight is from 10 to 1000")
	}
	return nil
}

// CPUResources is the CPU part of r in OCI form, as moby's getCPUResources
// (and for update its toContainerdResources) converts it: --cpus becomes a
// quota over a 100 ms period; an explicit period or quota wins (they
// exclude --cpus, see CheckResources). Nil when r sets no CPU limit.
func CPUResources(r Resources) *specs.LinuxCPU {
	cpu := specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
	if r.CPUShares > 0 {
		sh := uint64(r.CPUShares)
		cpu.Shares = &sh
	}
	if r.NanoCPUs > 0 {
		period := uint64(100000)
		quota := r.NanoCPUs * int64(period) / 1e9
		cpu.Period, cpu.Quota = &period, &quota
	}
	if r.CPUPeriod != 0 {
		p := uint64(r.CPUPeriod)
		cpu.Period = &p
	}
	if r.CPUQuota != 0 {
		q := r.CPUQuota
		cpu.Quota = &q
	}
	if r.CPURealtimePeriod != 0 {
		p := uint64(r.CPURealtimePeriod)
		cpu.RealtimePeriod = &p
	}
	if r.CPURealtimeRuntime != 0 {
		q := r.CPURealtimeRuntime
		cpu.RealtimeRuntime = &q
	}
	if cpu == (specs.LinuxCPU{}) {
		return nil
	}
	return &cpu
}

// PidsResources is --pids-limit in OCI form: nil when unset; 0 and
// negative values lift the limit, which the runtime wants as -1.
func PidsResources(limit *int64) *specs.LinuxPids {
	if limit == nil {
		return nil
	}
	lim := *limit
	if lim <= 0 {
		lim = -1
	}
	return &specs.LinuxPids{Limit: &lim}
}

// resources checks (CheckResources) and converts like moby's
// getMemoryResources/getCPUResources/getPidsLimit and blkio helpers, with
// adaptContainerSettings's defaults (swap = 2×memory, OomKillDisable=false).
func (g *gen) resources() error {
	r := g.o.Resources
	h := &g.o.Host
	if r.MemorySwappiness != nil && *r.MemorySwappiness == -1 {
		r.MemorySwappiness = nil
	}
	if err := CheckResources(r, *h, false); err != nil {
		return err
	}

	res := g.resourcesObj()

	mem := &specs.LinuxMemory{}
	if r.Memory > 0 {
		mem.Limit = &r.Memory
		swap := r.MemorySwap
		if swap == 0 {
			swap = 2 * r.Memory
		}
		// -1 is written out (docker omits it): "unlimited" must not depend on
		// the runtime's reading of an absent swap limit.
		mem.Swap = &swap
	}
	if r.MemoryReservation > 0 {
		mem.Reservation = &r.MemoryReservation
	}
	if r.MemorySwappiness != nil {
		sw := uint64(*r.MemorySwappiness)
		mem.Swappiness = &sw
	}
	oomOff := false
	if r.OomKillDisable != nil {
		oomOff = *r.OomKillDisable
	}
	mem.DisableOOMKiller = &oomOff
	res.Memory = mem

	res.CPU = CPUResources(r)
	res.Pids = PidsResources(r.PidsLimit)

	bio := &specs.LinuxBlockIO{}
	if r.BlkioWeight != 0 {
		w := r.BlkioWeight
		bio.Weight = &w
	}
	for _, wd := range r.BlkioWeightDevice {
		if wd.Weight != 0 && (wd.Weight < 10 || wd.Weight > 1000) {
			return invalidf("invalid --blkio-weight-device %s:%d: weight must be between 10 and 1000", wd.Path, wd.Weight)
		}
		d, err := g.blkioDevice(wd.Path)
		if err != nil {
			return err
		}
		w := wd.Weight
		bio.WeightDevice = append(bio.WeightDevice, specs.LinuxWeightDevice{
			LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: d.Major, Minor: d.Minor}, Weight: &w,
		})
	}
	var err error
	if bio.ThrottleReadBpsDevice, err = g.throttle(r.BlkioDeviceReadBps); err != nil {
		return err
	}
	if bio.ThrottleWriteBpsDevice, err = g.throttle(r.BlkioDeviceWriteBps); err != nil {
		return err
	}
	if bio.ThrottleReadIOPSDevice, err = g.throttle(r.BlkioDeviceReadIOps); err != nil {
		return err
	}
	if bio.ThrottleWriteIOPSDevice, err = g.throttle(r.BlkioDeviceWriteIOps); err != nil {
		return err
	}
	res.BlockIO = bio

	for _, hp := range r.HugepageLimits {
		if !slices.Contains(h.HugepageSizes, hp.Pagesize) {
			return invalidf("hugetlb page size %s is not supported by the host (available: %s)", hp.Pagesize, strings.Join(h.HugepageSizes, ", "))
		}
		res.HugepageLimits = append(res.HugepageLimits, hp)
	}
	return nil
}

func (g *gen) blkioDevice(path string) (HostDevice, error) {
	if g.o.Host.StatDevice == nil {
		return HostDevice{}, invalidf("stat %s: %w", path, errNoStat)
	}
	d, err := g.o.Host.StatDevice(path)
	if err != nil {
		return HostDevice{}, invalid(err)
	}
	return d, nil
}

func (g *gen) throttle(devs []ThrottleDevice) ([]specs.LinuxThrottleDevice, error) {
	if len(devs) == 0 {
		return nil, nil
	}
	out := make([]specs.LinuxThrottleDevice, 0, len(devs))
	for _, td := range devs {
		d, err := g.blkioDevice(td.Path)
		if err != nil {
			return nil, err
		}
		out = append(out, specs.LinuxThrottleDevice{
			LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: d.Major, Minor: d.Minor}, Rate: td.Rate,
		})
	}
	return out, nil
}

// checkCpuset validates a cpuset list ("0-2,4") and, when the host's set is
// known, that it is a subset (docker's IsCpusetCpusAvailable).
func checkCpuset(req, avail, what, noun string) error {
	if req == "" {
		return nil
	}
	want, err := parseCPUList(req)
	if err != nil {
		return invalidf("Invalid value %s for cpuset %s: %w", req, what, err)
	}
	if avail == "" {
		return nil
	}
	have, err := parseCPUList(avail)
	if err != nil {
		return nil // the host's own list is not the user's problem
	}
	for c := range want {
		if !have[c] {
			return invalidf("Requested %s are not available - requested %s, available: %s", noun, req, avail)
		}
	}
	return nil
}

func parseCPUList(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, invalidf("invalid format: %s", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, invalidf("invalid format: %s", s)
			}
		}
		if b-a > 1<<16 {
			return nil, invalidf("invalid format: %s", s)
		}
		for i := a; i <= b; i++ {
			out[i] = true
		}
	}
	return out, nil
}
