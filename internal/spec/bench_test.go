package spec

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is this process's user+system CPU time. The bench machine is shared
// and loaded, so wall-clock ns/op swings; CPU ns/op (reported as cpu-ns/op)
// is the steadier number.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchGenerate(b *testing.B, o *Options) {
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if _, err := Generate(busyboxImage, o); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkGenerate is `docker run busybox` (default caps, seccomp from the
// cache, user lookup in a small /etc/passwd and /etc/group).
func BenchmarkGenerate(b *testing.B) {
	o := baseOpts()
	o.HostsPath, o.HostnamePath, o.ResolvConfPath = "/c/hosts", "/c/hostname", "/c/resolv.conf"
	benchGenerate(b, o)
}

// BenchmarkGenerateNoRootFS: the same without the passwd/group lookup.
func BenchmarkGenerateNoRootFS(b *testing.B) {
	o := baseOpts()
	o.RootFS = nil
	benchGenerate(b, o)
}

// BenchmarkGenerateFlags: a busier run (caps, binds, tmpfs, limits, ulimits).
func BenchmarkGenerateFlags(b *testing.B) {
	o := baseOpts()
	o.CapAdd = []string{"NET_ADMIN"}
	o.CapDrop = []string{"MKNOD"}
	o.Tty = true
	o.Env = []string{"A=1", "B=2", "C=3"}
	o.Mounts = []Mount{
		{Type: "bind", Source: "/srv/data", Destination: "/data", ReadOnly: true},
		{Type: "volume", Source: "/var/lib/berth/volumes/v/_data", Destination: "/var/lib/db"},
		{Type: "tmpfs", Destination: "/run", TmpfsOptions: "size=64m"},
	}
	o.Resources = Resources{Memory: 256 << 20, NanoCPUs: 5e8, PidsLimit: p64(100)}
	o.Ulimits = []Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}
	benchGenerate(b, o)
}

// BenchmarkRenderSeccompUncached is the cost the cache saves on each run.
func BenchmarkRenderSeccompUncached(b *testing.B) {
	caps := DefaultCapabilities()
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if _, err := renderSeccomp(defaultProfile(), "amd64", "6.18.0", caps); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}
