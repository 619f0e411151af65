package daemon

import (
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/runtime/cgroups"
)

// noCache is the docker CLI's calculateMemUsageUnixNoCache: what `docker
// stats` shows as MEM USAGE.
func noCache(m container.MemoryStats) uint64 {
	if v, ok := m.Stats["total_inactive_file"]; ok && v < m.Usage {
		return m.Usage - v
	}
	if v := m.Stats["inactive_file"]; v < m.Usage {
		return m.Usage - v
	}
	return m.Usage
}

func TestStatsResponseMemory(t *testing.T) {
	const hostMem = 24 << 30
	for _, tc := range []struct {
		name      string
		mem       cgroups.MemoryStats
		wantUsage uint64
		wantLimit uint64
	}{
		{
			// cgroup v1: memory.usage_in_bytes includes the page cache; the
			// hierarchical total_inactive_file is what docker subtracts.
			name: "v1",
			mem: cgroups.MemoryStats{Usage: 8876032, Limit: 64 << 20, HasLimit: true,
				Stats: map[string]uint64{"inactive_file": 8388608, "total_inactive_file": 8388608, "total_active_anon": 4096}},
			wantUsage: 8876032 - 8388608, wantLimit: 64 << 20,
		},
		{
			// cgroup v2: memory.current and memory.stat's inactive_file;
			// memory.max "max" reads as no limit: the host's RAM.
			name: "v2",
			mem: cgroups.MemoryStats{Usage: 5 << 20, HasLimit: false,
				Stats: map[string]uint64{"inactive_file": 1 << 20, "anon": 4 << 20}},
			wantUsage: 4 << 20, wantLimit: hostMem,
		},
		{
			// v1 without a limit: limit_in_bytes is 2^63 rounded to pages.
			name:      "v1 unlimited",
			mem:       cgroups.MemoryStats{Usage: 1 << 20, Limit: 9223372036854771712, HasLimit: false, Stats: map[string]uint64{"total_inactive_file": 0}},
			wantUsage: 1 << 20, wantLimit: hostMem,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &cgroups.Stats{Memory: tc.mem}
			st.CPU.Usage.Total = 42
			st.Pids.Current, st.Pids.Limit = 3, 32
			r := statsResponse(st, 2, hostMem)
			if got := noCache(r.MemoryStats); got != tc.wantUsage {
				t.Fatalf("docker stats would show %d, want %d", got, tc.wantUsage)
			}
			if r.MemoryStats.Limit != tc.wantLimit {
				t.Fatalf("limit %d, want %d", r.MemoryStats.Limit, tc.wantLimit)
			}
			if r.CPUStats.CPUUsage.TotalUsage != 42 || r.CPUStats.OnlineCPUs != 2 || r.PidsStats.Current != 3 || r.PidsStats.Limit != 32 {
				t.Fatalf("cpu/pids %+v %+v", r.CPUStats, r.PidsStats)
			}
		})
	}
}
