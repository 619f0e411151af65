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
// profile into a fresh thread (thread creation untimed), as a container's
// init does; trivial is a one-instruction filter for the kernel's fixed cost.
func BenchmarkLoad(b *testing.B) {
	skipWithoutSeccomp(b)
	prof := DefaultProfile()
	trivial := &Program{Filter: []unix.SockFilter{{Code: opRet, K: retAllow}}}
	for _, variant := range []string{"tree", "linear", "trivial"} {
		p := trivial
		if variant != "trivial" {
			var err error
			if p, err = compile(prof, kernelFeatures(), variant == "linear"); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(variant, func(b *testing.B) {
			b.ReportMetric(float64(len(p.Filter)), "insns")
			b.ResetTimer()
			// One load per fresh thread: stacked filters make each
			// further load slower, and a container loads one.
			per := 1
			for left := b.N; left > 0; left -= per {
				n := min(left, per)
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
		})
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
	// Since Linux 5.11 the kernel skips the filter for syscalls it proved
	// always allowed (getppid here); arguments checks (personality) and
	// denials (acct → EPERM) still run it on every call.
	calls := []struct {
		name string
		nr   uintptr
		arg  uintptr
	}{{"getppid", unix.SYS_GETPPID, 0}, {"personality", unix.SYS_PERSONALITY, 0xffffffff}, {"acct", unix.SYS_ACCT, 0}}
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
						unix.RawSyscall(c.nr, c.arg, 0, 0)
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
