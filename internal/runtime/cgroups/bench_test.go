package cgroups

import (
	"strconv"
	"testing"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// dockerResources is what `docker run -m 256m --pids-limit 100` sends: the
// default device list plus memory, cpu shares and pids.
func dockerResources() *specs.LinuxResources {
	dev := func(allow bool, typ string, maj, min int64, acc string) specs.LinuxDeviceCgroup {
		d := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: acc}
		if maj >= 0 {
			d.Major = ptr(maj)
		}
		if min >= 0 {
			d.Minor = ptr(min)
		}
		return d
	}
	return &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{
			dev(false, "a", -1, -1, "rwm"),
			dev(true, "c", 1, 5, "rwm"), dev(true, "c", 1, 3, "rwm"), dev(true, "c", 1, 9, "rwm"),
			dev(true, "c", 1, 8, "rwm"), dev(true, "c", 5, 0, "rwm"), dev(true, "c", 5, 1, "rwm"),
			dev(false, "c", 10, 229, "rwm"), dev(true, "c", 136, -1, "rwm"), dev(true, "c", 5, 2, "rwm"),
			dev(true, "c", 1, 7, "rwm"), dev(true, "c", 10, 200, "rwm"),
		},
		Memory: &specs.LinuxMemory{Limit: ptr(int64(256 << 20))},
		CPU:    &specs.LinuxCPU{Shares: ptr(uint64(1024))},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(100))},
	}
}

// BenchmarkApplySetDestroy: what `run` costs in cgroup work on this host.
func BenchmarkApplySetDestroy(b *testing.B) {
	needRoot(b)
	r := dockerResources()
	base := "/" + testName(b) + "-"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := New(base + strconv.Itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Apply(0); err != nil {
			b.Fatal(err)
		}
		if err := m.Set(r); err != nil {
			b.Fatal(err)
		}
		if err := m.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkContainerdCgroup1 does the same through containerd/cgroups v3,
// for the record of why we write the files ourselves.
func BenchmarkContainerdCgroup1(b *testing.B) {
	needRoot(b)
	if Mode() == Unified {
		b.Skip("v1 only")
	}
	r := dockerResources()
	base := "/" + testName(b) + "-"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cg, err := cgroup1.New(cgroup1.StaticPath(base+strconv.Itoa(i)), r)
		if err != nil {
			b.Fatal(err)
		}
		if err := cg.Delete(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkV2ApplyDestroy: create, join, leave and remove on the cgroup2
// mount (no controllers on a hybrid host, so no limits).
func BenchmarkV2ApplyDestroy(b *testing.B) {
	needRoot(b)
	h, _ := hosts()
	if h.unified == "" {
		b.Skip("no cgroup2 mount")
	}
	base := h.unified + "/" + testName(b) + "-"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := newV2(h.unified, base+strconv.Itoa(i))
		if err := m.Apply(0); err != nil {
			b.Fatal(err)
		}
		if err := m.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
}
