package spec

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func p64(v int64) *int64    { return &v }
func pu64(v uint64) *uint64 { return &v }
func pb(v bool) *bool       { return &v }

func TestMemory(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name string
		r    Resources
		want *specs.LinuxMemory
	}{
		{name: "none", want: &specs.LinuxMemory{DisableOOMKiller: pb(false)}},
		{name: "memory: swap defaults to 2x", r: Resources{Memory: 64 * mb},
			want: &specs.LinuxMemory{Limit: p64(64 * mb), Swap: p64(128 * mb), DisableOOMKiller: pb(false)}},
		{name: "swap set", r: Resources{Memory: 64 * mb, MemorySwap: 100 * mb},
			want: &specs.LinuxMemory{Limit: p64(64 * mb), Swap: p64(100 * mb), DisableOOMKiller: pb(false)}},
		{name: "swap unlimited", r: Resources{Memory: 64 * mb, MemorySwap: -1},
			want: &specs.LinuxMemory{Limit: p64(64 * mb), Swap: p64(-1), DisableOOMKiller: pb(false)}},
		{name: "swap equal memory: no swap", r: Resources{Memory: 64 * mb, MemorySwap: 64 * mb},
			want: &specs.LinuxMemory{Limit: p64(64 * mb), Swap: p64(64 * mb), DisableOOMKiller: pb(false)}},
		{name: "reservation, swappiness, oom-kill-disable", r: Resources{MemoryReservation: 32 * mb, MemorySwappiness: p64(10), OomKillDisable: pb(true)},
			want: &specs.LinuxMemory{Reservation: p64(32 * mb), Swappiness: pu64(10), DisableOOMKiller: pb(true)}},
		{name: "swappiness -1 is unset", r: Resources{MemorySwappiness: p64(-1)}, want: &specs.LinuxMemory{DisableOOMKiller: pb(false)}},
		{name: "kernel memory ignored", r: Resources{KernelMemory: 64 * mb}, want: &specs.LinuxMemory{DisableOOMKiller: pb(false)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts()
			o.Resources = tc.r
			eq(t, "memory", mustGen(t, busyboxImage, o).Linux.Resources.Memory, tc.want)
		})
	}
}

func TestCPUPidsBlkioHugetlb(t *testing.T) {
	o := baseOpts()
	o.Host.StatDevice = fakeStat
	o.Resources = Resources{
		NanoCPUs:             1_500_000_000,
		CPUShares:            512,
		CpusetCpus:           "0-1",
		CpusetMems:           "0",
		CPURealtimePeriod:    1000000,
		CPURealtimeRuntime:   950000,
		PidsLimit:            p64(100),
		BlkioWeight:          300,
		BlkioWeightDevice:    []WeightDevice{{Path: "/dev/sda", Weight: 200}},
		BlkioDeviceReadBps:   []ThrottleDevice{{Path: "/dev/sda", Rate: 1 << 20}},
		BlkioDeviceWriteIOps: []ThrottleDevice{{Path: "/dev/sda", Rate: 100}},
		HugepageLimits:       []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 30}},
	}
	r := mustGen(t, busyboxImage, o).Linux.Resources
	eq(t, "cpu", r.CPU, &specs.LinuxCPU{
		Shares: pu64(512), Quota: p64(150000), Period: pu64(100000),
		RealtimePeriod: pu64(1000000), RealtimeRuntime: p64(950000), Cpus: "0-1", Mems: "0",
	})
	eq(t, "pids", r.Pids, &specs.LinuxPids{Limit: p64(100)})
	w300, w200 := uint16(300), uint16(200)
	sda := specs.LinuxBlockIODevice{Major: 8, Minor: 0}
	eq(t, "blkio", r.BlockIO, &specs.LinuxBlockIO{
		Weight:                  &w300,
		WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: sda, Weight: &w200}},
		ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: sda, Rate: 1 << 20}},
		ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: sda, Rate: 100}},
	})
	eq(t, "hugetlb", r.HugepageLimits, []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 30}})

	// period/quota given directly
	o = baseOpts()
	o.Resources = Resources{CPUPeriod: 50000, CPUQuota: 25000}
	eq(t, "period/quota", mustGen(t, busyboxImage, o).Linux.Resources.CPU, &specs.LinuxCPU{Quota: p64(25000), Period: pu64(50000)})

	// pids 0 and -1 mean unlimited
	for _, v := range []int64{0, -1} {
		o = baseOpts()
		o.Resources.PidsLimit = p64(v)
		eq(t, "pids unlimited", mustGen(t, busyboxImage, o).Linux.Resources.Pids, &specs.LinuxPids{Limit: p64(-1)})
	}
}

func TestResourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Resources
		err  string
	}{
		{name: "memory 1k", r: Resources{Memory: 1024}, err: "Minimum memory limit allowed is 6MB"},
		{name: "swap below memory", r: Resources{Memory: 64 << 20, MemorySwap: 32 << 20}, err: "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{name: "swap without memory", r: Resources{MemorySwap: 64 << 20}, err: "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{name: "swappiness", r: Resources{MemorySwappiness: p64(101)}, err: "Invalid value: 101, valid memory swappiness range is 0-100"},
		{name: "reservation 1k", r: Resources{MemoryReservation: 1024}, err: "Minimum memory reservation allowed is 6MB"},
		{name: "memory below reservation", r: Resources{Memory: 10 << 20, MemoryReservation: 20 << 20}, err: "Minimum memory limit can not be less than memory reservation limit, see usage"},
		{name: "cpus too many", r: Resources{NanoCPUs: 3e9}, err: "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"},
		{name: "cpus negative", r: Resources{NanoCPUs: -1}, err: "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"},
		{name: "cpus + period", r: Resources{NanoCPUs: 1e9, CPUPeriod: 100000}, err: "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{name: "cpus + quota", r: Resources{NanoCPUs: 1e9, CPUQuota: 100000}, err: "Conflicting options: Nano CPUs and CPU Quota cannot both be set"},
		{name: "shares negative", r: Resources{CPUShares: -2}, err: "invalid CPU shares (-2): value must be a positive integer"},
		{name: "period small", r: Resources{CPUPeriod: 999}, err: "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"},
		{name: "quota small", r: Resources{CPUQuota: 999}, err: "CPU cfs quota can not be less than 1ms (i.e. 1000)"},
		{name: "cpuset unavailable", r: Resources{CpusetCpus: "0-3"}, err: "Requested CPUs are not available - requested 0-3, available: 0-1"},
		{name: "cpuset bad", r: Resources{CpusetCpus: "a"}, err: "Invalid value a for cpuset cpus: invalid format: a"},
		{name: "mems unavailable", r: Resources{CpusetMems: "1"}, err: "Requested memory nodes are not available - requested 1, available: 0"},
		{name: "blkio weight", r: Resources{BlkioWeight: 5}, err: "Range of blkio weight is from 10 to 1000"},
		{name: "blkio weight high", r: Resources{BlkioWeight: 1001}, err: "Range of blkio weight is from 10 to 1000"},
		{name: "weight device", r: Resources{BlkioWeightDevice: []WeightDevice{{Path: "/dev/sda", Weight: 5}}}, err: "invalid --blkio-weight-device /dev/sda:5: weight must be between 10 and 1000"},
		{name: "throttle missing device", r: Resources{BlkioDeviceReadBps: []ThrottleDevice{{Path: "/dev/nope", Rate: 1}}}, err: "stat /dev/nope: file does not exist"},
		{name: "hugetlb size", r: Resources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "16MB", Limit: 1}}}, err: "hugetlb page size 16MB is not supported by the host (available: 2MB, 1GB)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts()
			o.Host.StatDevice = fakeStat
			o.Resources = tc.r
			wantErr(t, genErr(t, busyboxImage, o), tc.err)
		})
	}
}
