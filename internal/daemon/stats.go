package daemon

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/runtime/cgroups"
)

// cgroupPath is where spec generation puts a container's cgroup.
func cgroupPath(c *Container) string {
	parent := c.HostConfig.CgroupParent
	if parent == "" {
		parent = "/berth"
	}
	return parent + "/" + c.ID
}

// systemCPUUsage is the host's total CPU time in nanoseconds, from
// /proc/stat, as docker reports system_cpu_usage.
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[0] == "cpu" {
			var total uint64
			for _, v := range fields[1:8] {
				n, _ := strconv.ParseUint(v, 10, 64)
				total += n
			}
			return total * (1e9 / 100) // USER_HZ is 100 on Linux
		}
	}
	return 0
}

func (d *Daemon) sample(c *Container) (container.StatsResponse, error) {
	m, err := cgroups.Load(cgroupPath(c))
	if err != nil {
		return container.StatsResponse{ID: c.ID, Name: c.Name, OSType: "linux", Read: time.Now()}, err
	}
	st, err := m.Stats()
	if err != nil {
		return container.StatsResponse{ID: c.ID, Name: c.Name, OSType: "linux", Read: time.Now()}, err
	}
	var si unixSysinfo
	r := statsResponse(st, probeHost().NCPU, si.total())
	r.ID, r.Name, r.Read = c.ID, c.Name, time.Now()
	r.CPUStats.SystemUsage = systemCPUUsage()
	if nm := string(c.HostConfig.NetworkMode); nm != "host" && nm != "none" && !strings.HasPrefix(nm, "container:") {
		r.Networks = netStats(d.netnsPath(c.ID))
	}
	return r, nil
}

// statsResponse is docker's stats JSON for one cgroup sample, on either
// hierarchy. Memory goes out as the kernel reports it, with memory.stat
// whole: the client subtracts the inactive page cache (v1
// total_inactive_file, v2 inactive_file) as docker's CLI does. With no
// memory limit the limit shown is the host's RAM, as dockerd reports it.
func statsResponse(st *cgroups.Stats, ncpu int, hostMem uint64) container.StatsResponse {
	r := container.StatsResponse{OSType: "linux"}
	r.CPUStats = container.CPUStats{
		CPUUsage: container.CPUUsage{
			TotalUsage:        st.CPU.Usage.Total,
			PercpuUsage:       st.CPU.Usage.PerCPU,
			UsageInKernelmode: st.CPU.Usage.System,
			UsageInUsermode:   st.CPU.Usage.User,
		},
		OnlineCPUs:     uint32(ncpu),
		ThrottlingData: container.ThrottlingData{Periods: st.CPU.Throttling.Periods, ThrottledPeriods: st.CPU.Throttling.ThrottledPeriods, ThrottledTime: st.CPU.Throttling.ThrottledTime},
	}
	limit := st.Memory.Limit
	if !st.Memory.HasLimit || (hostMem > 0 && limit > hostMem) {
		limit = hostMem
	}
	r.MemoryStats = container.MemoryStats{Usage: st.Memory.Usage, MaxUsage: st.Memory.MaxUsage, Stats: st.Memory.Stats, Failcnt: st.Memory.Failcnt, Limit: limit}
	r.PidsStats = container.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit}
	conv := func(in []cgroups.BlkioEntry) []container.BlkioStatEntry {
		out := []container.BlkioStatEntry{}
		for _, e := range in {
			out = append(out, container.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
		}
		return out
	}
	r.BlkioStats = container.BlkioStats{IoServiceBytesRecursive: conv(st.Blkio.IoServiceBytesRecursive), IoServicedRecursive: conv(st.Blkio.IoServicedRecursive)}
	return r
}

// netStats reads the interface counters inside a network namespace.
func netStats(nsPath string) map[string]container.NetworkStats {
	out := map[string]container.NetworkStats{}
	_ = network.InNamespace(nsPath, func() error {
		b, err := os.ReadFile("/proc/self/net/dev")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n")[2:] {
			name, rest, ok := strings.Cut(l, ":")
			name = strings.TrimSpace(name)
			if !ok || name == "lo" {
				continue
			}
			f := strings.Fields(rest)
			if len(f) < 16 {
				continue
			}
			n := func(i int) uint64 { v, _ := strconv.ParseUint(f[i], 10, 64); return v }
			out[name] = container.NetworkStats{RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3), TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11)}
		}
		return nil
	})
	return out
}

// ContainerStats implements backend.ContainerInfoBackend.
func (d *Daemon) ContainerStats(ctx context.Context, id string, opts backend.StatsOptions) (<-chan container.StatsResponse, error) {
	c, err := d.ctrs.get(id)
	if err != nil {
		return nil, err
	}
	out := make(chan container.StatsResponse, 1)
	go func() {
		defer close(out)
		var prev container.StatsResponse
		first := true
		for {
			c.mu.Lock()
			running := c.State.running()
			c.mu.Unlock()
			var s container.StatsResponse
			if running {
				s, _ = d.sample(c)
			} else {
				s = container.StatsResponse{ID: c.ID, Name: c.Name, OSType: "linux", Read: time.Now()}
			}
			s.PreCPUStats, s.PreRead = prev.CPUStats, prev.Read
			// One-shot without a previous sample: take a second one so the
			// client can compute CPU %, unless the client asked for one-shot.
			if first && !opts.Stream && !opts.OneShot && running {
				prev = s
				first = false
				select {
				case <-time.After(time.Second):
					continue
				case <-ctx.Done():
					return
				}
			}
			select {
			case out <- s:
			case <-ctx.Done():
				return
			}
			if !opts.Stream {
				return
			}
			prev = s
			first = false
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			case <-c.removedCh:
				return
			}
		}
	}()
	return out, nil
}

type unixSysinfo struct{}

func (unixSysinfo) total() uint64 {
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	return uint64(si.Totalram) * uint64(si.Unit)
}
