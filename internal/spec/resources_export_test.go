package spec

import (
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// CheckResources is the one copy of docker's resource checks: create's
// spec generation and the daemon's update both call it.
func TestCheckResources(t *testing.T) {
	h := Host{NCPU: 2, Cpus: "0-1", Mems: "0"}
	for _, tc := range []struct {
		r      Resources
		update bool
		want   string
	}{
		{Resources{MemorySwap: 64 << 20}, false, "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{Resources{MemorySwap: 64 << 20}, true, ""},
		{Resources{MemorySwappiness: p64(-1)}, false, ""},
		{Resources{MemorySwappiness: p64(101)}, true, "Invalid value: 101, valid memory swappiness range is 0-100"},
		{Resources{NanoCPUs: 3e9}, true, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"},
		{Resources{CpusetCpus: "0,7"}, false, "Requested CPUs are not available - requested 0,7, available: 0-1"},
		{Resources{CpusetMems: "x"}, true, "Invalid value x for cpuset mems: invalid format: x"},
		{Resources{BlkioWeight: 5}, true, "Range of blkio weight is from 10 to 1000"},
		{Resources{Memory: 16 << 20, MemorySwap: -1, NanoCPUs: 15e8, CpusetCpus: "1"}, false, ""},
	} {
		err := CheckResources(tc.r, h, tc.update)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want || !errdefs.IsInvalidArgument(err)) {
			t.Errorf("CheckResources(%+v, update=%v) = %v, want %q", tc.r, tc.update, err, tc.want)
		}
	}
	// An empty host cpuset is not checked.
	if err := CheckResources(Resources{CpusetCpus: "63"}, Host{}, false); err != nil {
		t.Errorf("unknown host cpuset: %v", err)
	}
}

func TestCPUAndPidsResources(t *testing.T) {
	if CPUResources(Resources{}) != nil || PidsResources(nil) != nil {
		t.Fatal("no CPU or pids limit must give nil (an update leaves the cgroup alone)")
	}
	eq(t, "cpus", CPUResources(Resources{NanoCPUs: 5e8, CPUShares: 512, CpusetCpus: "0"}),
		&specs.LinuxCPU{Period: pu64(100000), Quota: p64(50000), Shares: pu64(512), Cpus: "0"})
	eq(t, "period/quota", CPUResources(Resources{CPUPeriod: 40000, CPUQuota: 20000, CPURealtimePeriod: 1000, CPURealtimeRuntime: 500}),
		&specs.LinuxCPU{Period: pu64(40000), Quota: p64(20000), RealtimePeriod: pu64(1000), RealtimeRuntime: p64(500)})
	for in, want := range map[int64]int64{0: -1, -1: -1, -5: -1, 20: 20} {
		eq(t, "pids", PidsResources(p64(in)), &specs.LinuxPids{Limit: p64(want)})
	}
}
