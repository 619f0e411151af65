package daemon

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/spec"
)

func i64(v int64) *int64 { return &v }

func TestVerifyResources(t *testing.T) {
	host := spec.Host{NCPU: 2, Cpus: "0-1", Mems: "0"}
	for _, tc := range []struct {
		name   string
		r      container.Resources
		update bool
		want   string // "" = accepted
	}{
		{"memory 1k", container.Resources{Memory: 1024}, false, "Minimum memory limit allowed is 6MB"},
		{"memory 6m", container.Resources{Memory: 6 << 20}, false, ""},
		{"swap below memory", container.Resources{Memory: 16 << 20, MemorySwap: 8 << 20}, false, "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{"swap unlimited", container.Resources{Memory: 16 << 20, MemorySwap: -1}, false, ""},
		{"swap without memory", container.Resources{MemorySwap: 64 << 20}, false, "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{"swap without memory on update", container.Resources{MemorySwap: 64 << 20}, true, ""},
		{"reservation 1k", container.Resources{MemoryReservation: 1024}, false, "Minimum memory reservation allowed is 6MB"},
		{"reservation above memory", container.Resources{Memory: 8 << 20, MemoryReservation: 16 << 20}, false, "Minimum memory limit can not be less than memory reservation limit, see usage"},
		{"swappiness 101", container.Resources{MemorySwappiness: i64(101)}, false, "Invalid value: 101, valid memory swappiness range is 0-100"},
		{"swappiness -1", container.Resources{MemorySwappiness: i64(-1)}, false, ""},
		{"cpus 3 of 2", container.Resources{NanoCPUs: 3e9}, false, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"},
		{"cpus 2 of 2", container.Resources{NanoCPUs: 2e9}, false, ""},
		{"cpus and period", container.Resources{NanoCPUs: 1e9, CPUPeriod: 50000}, false, "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{"cpus and quota", container.Resources{NanoCPUs: 1e9, CPUQuota: 50000}, false, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"},
		{"period 500", container.Resources{CPUPeriod: 500}, false, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"},
		{"quota 500", container.Resources{CPUQuota: 500}, false, "CPU cfs quota can not be less than 1ms (i.e. 1000)"},
		{"negative shares", container.Resources{CPUShares: -1}, false, "invalid CPU shares (-1): value must be a positive integer"},
		{"cpuset garbage", container.Resources{CpusetCpus: "1-x"}, false, "Invalid value 1-x for cpuset cpus: invalid format: 1-x"},
		{"cpuset absent cpu", container.Resources{CpusetCpus: "0,7"}, false, "Requested CPUs are not available - requested 0,7, available: 0-1"},
		{"cpuset ok", container.Resources{CpusetCpus: "0-1", CpusetMems: "0"}, false, ""},
		{"mems absent", container.Resources{CpusetMems: "1"}, false, "Requested memory nodes are not available - requested 1, available: 0"},
		{"blkio weight 5", container.Resources{BlkioWeight: 5}, false, "Range of blkio weight is from 10 to 1000"},
		{"blkio weight 300", container.Resources{BlkioWeight: 300}, false, ""},
		{"io maximum (windows only)", container.Resources{IOMaximumBandwidth: 1 << 20}, true, "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyResources(&tc.r, tc.update, host)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("%v is not an invalid-argument error (HTTP 400)", err)
			}
		})
	}
}

func TestCreateResourcesDefaultSwap(t *testing.T) {
	d := &Daemon{}
	hc := &container.HostConfig{Resources: container.Resources{Memory: 16 << 20}}
	if err := d.createResources(hc); err != nil {
		t.Fatal(err)
	}
	if hc.MemorySwap != 32<<20 {
		t.Fatalf("MemorySwap %d, want twice the memory as docker records it", hc.MemorySwap)
	}
	hc = &container.HostConfig{Resources: container.Resources{Memory: 16 << 20, MemorySwap: -1}}
	if err := d.createResources(hc); err != nil || hc.MemorySwap != -1 {
		t.Fatalf("unlimited swap changed to %d (%v)", hc.MemorySwap, err)
	}
	hc = &container.HostConfig{Resources: container.Resources{Memory: 1 << 10}}
	if err := d.createResources(hc); err == nil {
		t.Fatal("1k memory accepted")
	}
}

func TestMergeResources(t *testing.T) {
	withMem := container.Resources{Memory: 16 << 20, MemorySwap: 32 << 20, NanoCPUs: 5e8, PidsLimit: i64(32)}
	for _, tc := range []struct {
		name string
		cur  container.Resources
		req  container.Resources
		want string // error text; "" = accepted
		chk  func(t *testing.T, m container.Resources)
	}{
		{"memory within swap", withMem, container.Resources{Memory: 24 << 20}, "", func(t *testing.T, m container.Resources) {
			if m.Memory != 24<<20 || m.MemorySwap != 32<<20 || m.NanoCPUs != 5e8 || *m.PidsLimit != 32 {
				t.Fatalf("%+v", m)
			}
		}},
		{"memory above swap", withMem, container.Resources{Memory: 64 << 20}, "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time", nil},
		// docker refuses this too: a container made without limits has MemorySwap 0.
		{"memory on unlimited container", container.Resources{}, container.Resources{Memory: 64 << 20}, "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time", nil},
		{"memory and swap", withMem, container.Resources{Memory: 64 << 20, MemorySwap: 128 << 20}, "", func(t *testing.T, m container.Resources) {
			if m.Memory != 64<<20 || m.MemorySwap != 128<<20 {
				t.Fatalf("%+v", m)
			}
		}},
		{"memory and unlimited swap", withMem, container.Resources{Memory: 64 << 20, MemorySwap: -1}, "", nil},
		{"swap below stored memory", withMem, container.Resources{MemorySwap: 8 << 20}, "Minimum memoryswap limit should be larger than memory limit, see usage", nil},
		{"quota after cpus", withMem, container.Resources{CPUQuota: 20000}, "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set", nil},
		{"period after cpus", withMem, container.Resources{CPUPeriod: 20000}, "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set", nil},
		{"cpus after quota", container.Resources{CPUQuota: 20000}, container.Resources{NanoCPUs: 1e9}, "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set", nil},
		{"cpus after period", container.Resources{CPUPeriod: 20000}, container.Resources{NanoCPUs: 1e9}, "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set", nil},
		{"pids unlimited", withMem, container.Resources{PidsLimit: i64(0)}, "", func(t *testing.T, m container.Resources) {
			if m.PidsLimit == nil || *m.PidsLimit != 0 {
				t.Fatalf("pids %v", m.PidsLimit)
			}
		}},
		{"cpuset shares blkio", withMem, container.Resources{CpusetCpus: "0", CPUShares: 512, BlkioWeight: 300}, "", func(t *testing.T, m container.Resources) {
			if m.CpusetCpus != "0" || m.CPUShares != 512 || m.BlkioWeight != 300 || m.Memory != 16<<20 {
				t.Fatalf("%+v", m)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := tc.cur
			if cur.PidsLimit != nil {
				cur.PidsLimit = i64(*cur.PidsLimit)
			}
			m, err := mergeResources(cur, tc.req)
			if tc.want != "" {
				if err == nil || err.Error() != tc.want || !errdefs.IsConflict(err) {
					t.Fatalf("got %v, want conflict %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.chk != nil {
				tc.chk(t, m)
			}
			if tc.cur.PidsLimit != nil && *tc.cur.PidsLimit != 32 {
				t.Fatal("merge changed the stored resources")
			}
		})
	}
}

func TestUpdateResources(t *testing.T) {
	merged := container.Resources{Memory: 24 << 20, MemorySwap: 32 << 20}
	r := updateResources(container.Resources{Memory: 24 << 20}, merged)
	if r.Memory == nil || *r.Memory.Limit != 24<<20 || r.Memory.Swap == nil || *r.Memory.Swap != 32<<20 {
		t.Fatalf("memory change must carry the merged memory+swap: %+v", r.Memory)
	}
	if r.CPU != nil || r.Pids != nil || r.BlockIO != nil {
		t.Fatalf("untouched limits written: %+v", r)
	}

	r = updateResources(container.Resources{NanoCPUs: 5e8, CPUShares: 512, CpusetCpus: "0"}, container.Resources{})
	if r.CPU == nil || *r.CPU.Period != 100000 || *r.CPU.Quota != 50000 || *r.CPU.Shares != 512 || r.CPU.Cpus != "0" {
		t.Fatalf("cpu %+v", r.CPU)
	}
	if r.Memory != nil {
		t.Fatalf("memory written: %+v", r.Memory)
	}

	r = updateResources(container.Resources{CPUQuota: 20000, CPUPeriod: 40000}, container.Resources{})
	if *r.CPU.Quota != 20000 || *r.CPU.Period != 40000 {
		t.Fatalf("cpu %+v", r.CPU)
	}

	for in, want := range map[int64]int64{0: -1, -1: -1, 64: 64} {
		r = updateResources(container.Resources{PidsLimit: i64(in)}, container.Resources{})
		if r.Pids == nil || *r.Pids.Limit != want {
			t.Fatalf("pids %d → %+v, want %d", in, r.Pids, want)
		}
	}

	r = updateResources(container.Resources{BlkioWeight: 300, MemoryReservation: 8 << 20}, container.Resources{})
	if *r.BlockIO.Weight != 300 || *r.Memory.Reservation != 8<<20 || r.Memory.Limit != nil {
		t.Fatalf("blkio %+v memory %+v", r.BlockIO, r.Memory)
	}
}

// TestCLIRuntimeUpdate checks what a runc-compatible runtime receives:
// `update -r FILE ID` with the resources as OCI JSON.
func TestCLIRuntimeUpdate(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "got")
	script := filepath.Join(dir, "rt")
	body := "#!/bin/sh\necho \"$@\" > " + out + ".args\nwhile [ $# -gt 0 ]; do [ \"$1\" = -r ] && cp \"$2\" " + out + "; shift; done\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	rt := cliRuntime{path: script, root: "/run/x"}
	lim := int64(64)
	if err := rt.Update(context.Background(), "abc", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &lim}}); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(out + ".args")
	if f := strings.Fields(string(args)); len(f) != 6 || f[0] != "--root" || f[1] != "/run/x" || f[2] != "update" || f[3] != "-r" || f[5] != "abc" {
		t.Fatalf("runtime called with %q", args)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got specs.LinuxResources
	if err := json.Unmarshal(b, &got); err != nil || got.Pids == nil || *got.Pids.Limit != 64 {
		t.Fatalf("resources file %s (%v)", b, err)
	}
}
