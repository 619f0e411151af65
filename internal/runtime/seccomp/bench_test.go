package seccomp

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// onThread runs f on a fresh OS thread that is thrown away afterwards (the
// goroutine exits still locked), taking any filter loaded there with it.
func onThread(f func()) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(done)
		f()
	}()
	<-done
}

func BenchmarkDefaultProfileRender(b *testing.B) {
	for b.Loop() {
		DefaultProfile()
	}
}

func BenchmarkCompileDockerDefault(b *testing.B) {
	prof := DefaultProfile()
	feat := kernelFeatures()
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			if _, err := compile(prof, feat, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		if _, err := Compile(prof, nil); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := Compile(prof, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("render+cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := Compile(DefaultProfile(), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("disk", func(b *testing.B) {
		o := &Options{CacheDir: b.TempDir()}
		if _, err := Compile(prof, o); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			clear(memCache.m)
			if _, err := Compile(prof, o); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLoad measures seccomp(SET_MODE_FILTER) of docker's default
// profile. Filters stack per thread and the kernel caps the total length,
// so a fresh thread takes over every 16 loads (the cap counts the eBPF translation).
func BenchmarkLoad(b *testing.B) {
	skipWithoutSeccomp(b)
	p, err := Compile(DefaultProfile(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(p.Filter)), "insns")
	b.ResetTimer()
	for left := b.N; left > 0; left -= 16 {
		n := min(left, 16)
		var err error
		b.StopTimer()
		onThread(func() {
			if err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				return
			}
			b.StartTimer()
			for range n {
				if _, err = Load(p); err != nil {
					break
				}
			}
			b.StopTimer()
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyscall measures a cheap syscall on a thread with no filter,
// docker's default profile compiled as a binary search (ours), and the same
// profile as a libseccomp-style linear chain.
func BenchmarkSyscall(b *testing.B) {
	skipWithoutSeccomp(b)
	prof := DefaultProfile()
	tree, err := compile(prof, kernelFeatures(), false)
	if err != nil {
		b.Fatal(err)
	}
	linear, err := compile(prof, kernelFeatures(), true)
	if err != nil {
		b.Fatal(err)
	}
	calls := []struct {
		name string
		nr   uintptr
	}{{"getppid", unix.SYS_GETPPID}, {"getrandom0", unix.SYS_GETRANDOM}}
	for _, c := range calls {
		for _, f := range []struct {
			name string
			p    *Program
		}{{"none", nil}, {"tree", tree}, {"linear", linear}} {
			b.Run(c.name+"/"+f.name, func(b *testing.B) {
				var err error
				onThread(func() {
					if f.p != nil {
						if err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
							return
						}
						if _, err = Load(f.p); err != nil {
							return
						}
					}
					b.ResetTimer()
					for range b.N {
						unix.RawSyscall(c.nr, 0, 0, 0)
					}
					b.StopTimer()
				})
				if err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
