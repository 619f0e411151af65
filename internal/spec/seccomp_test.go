package spec

import (
	"errors"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func allowed(sc *specs.LinuxSeccomp, name string) bool {
	for _, s := range sc.Syscalls {
		if s.Action == specs.ActAllow && len(s.Args) == 0 && slices.Contains(s.Names, name) {
			return true
		}
	}
	return false
}

func seccompFor(t *testing.T, set func(o *Options)) *specs.LinuxSeccomp {
	t.Helper()
	o := baseOpts()
	if set != nil {
		set(o)
	}
	return mustGen(t, busyboxImage, o).Linux.Seccomp
}

// TestSeccompMatchesMoby checks the renderer against moby's own
// GetDefaultProfile, which filters for the running kernel and GOARCH.
func TestSeccompMatchesMoby(t *testing.T) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Skipf("uname: %v", err)
	}
	kernel := unix.ByteSliceToString(uts.Release[:])
	for _, caps := range [][]string{
		DefaultCapabilities(),
		append(DefaultCapabilities(), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"),
		allCapabilities,
		{},
	} {
		want, err := seccomp.GetDefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := renderSeccomp(defaultProfile(), runtime.GOARCH, kernel, caps)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "rendered default profile vs moby's", got, want)
	}
}

func TestSeccompFilters(t *testing.T) {
	def := seccompFor(t, nil)
	if def.DefaultAction != specs.ActErrno || def.DefaultErrnoRet == nil || *def.DefaultErrnoRet != 1 {
		t.Fatalf("default action %v %v", def.DefaultAction, def.DefaultErrnoRet)
	}
	// caps: mount needs CAP_SYS_ADMIN; ptrace is allowed from 4.8 on.
	if allowed(def, "mount") || allowed(def, "reboot") {
		t.Fatal("default profile allows mount/reboot")
	}
	if !allowed(def, "ptrace") || !allowed(def, "arch_prctl") || !allowed(def, "read") {
		t.Fatal("default profile misses ptrace/arch_prctl/read on amd64, 6.18")
	}
	admin := seccompFor(t, func(o *Options) { o.CapAdd = []string{"SYS_ADMIN"} })
	if !allowed(admin, "mount") || !allowed(admin, "setns") {
		t.Fatal("CAP_SYS_ADMIN does not open mount/setns")
	}
	old := seccompFor(t, func(o *Options) { o.Host.Kernel = "4.4.0" })
	if allowed(old, "ptrace") {
		t.Fatal("kernel 4.4: ptrace must stay blocked (minKernel 4.8)")
	}
	arm := seccompFor(t, func(o *Options) { o.Host.Arch = "arm64" })
	if allowed(arm, "arch_prctl") {
		t.Fatal("arm64: arch_prctl is amd64-only")
	}
	eq(t, "arm64 arches", arm.Architectures, []specs.Arch{specs.ArchAARCH64, specs.ArchARM})
}

func TestSeccompModes(t *testing.T) {
	if seccompFor(t, func(o *Options) { o.SecurityOpt = []string{"seccomp=unconfined"} }) != nil {
		t.Fatal("seccomp=unconfined")
	}
	if seccompFor(t, func(o *Options) { o.SecurityOpt = []string{"seccomp:unconfined"} }) != nil {
		t.Fatal("seccomp:unconfined")
	}
	if seccompFor(t, func(o *Options) { o.Daemon.SeccompProfile = "unconfined" }) != nil {
		t.Fatal("daemon unconfined")
	}
	if seccompFor(t, func(o *Options) { o.Host.NoSeccomp = true }) != nil {
		t.Fatal("kernel without seccomp: default profile must be skipped")
	}
	if sc := seccompFor(t, func(o *Options) { o.SecurityOpt = []string{"seccomp=builtin"} }); sc == nil || !allowed(sc, "read") {
		t.Fatal("seccomp=builtin")
	}

	custom := `{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],
	  "syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO"},
	              {"names":["chmod"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_FOWNER"]}},
	              {"names":["chown"],"action":"SCMP_ACT_ERRNO","includes":{"arches":["arm64"]}}]}`
	sc := seccompFor(t, func(o *Options) { o.SecurityOpt = []string{"seccomp=" + custom} })
	eq(t, "custom", sc, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}},
	})
	sc = seccompFor(t, func(o *Options) {
		o.SecurityOpt = []string{"seccomp=/etc/profile.json"}
		o.Host.ReadFile = func(p string) ([]byte, error) {
			if p != "/etc/profile.json" {
				return nil, os.ErrNotExist
			}
			return []byte(custom), nil
		}
		o.CapDrop = []string{"fowner"}
	})
	if len(sc.Syscalls) != 2 {
		t.Fatalf("profile from a path, without CAP_FOWNER: %+v", sc.Syscalls)
	}

	for _, tc := range []struct {
		name string
		set  func(o *Options)
		err  string
	}{
		{name: "bad json", set: func(o *Options) { o.SecurityOpt = []string{"seccomp={bad"} },
			err: "Decoding seccomp profile failed: invalid character 'b' looking for beginning of object key string"},
		{name: "missing file", set: func(o *Options) {
			o.SecurityOpt = []string{"seccomp=/nope.json"}
			o.Host.ReadFile = func(string) ([]byte, error) { return nil, errors.New("open /nope.json: no such file or directory") }
		}, err: "opening seccomp profile (/nope.json) failed: open /nope.json: no such file or directory"},
		{name: "both arch fields", set: func(o *Options) {
			o.SecurityOpt = []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`}
		}, err: "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"},
		{name: "name and names", set: func(o *Options) {
			o.SecurityOpt = []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}`}
		}, err: "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'"},
		{name: "custom on a kernel without seccomp", set: func(o *Options) {
			o.Host.NoSeccomp = true
			o.SecurityOpt = []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`}
		}, err: "seccomp is not enabled in your kernel, cannot run a custom seccomp profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts()
			tc.set(o)
			wantErr(t, genErr(t, busyboxImage, o), tc.err)
		})
	}
}

// TestSeccompCache: one render per (profile, arch, kernel, caps set), and the
// default profile itself is never modified by rendering.
func TestSeccompCache(t *testing.T) {
	a := seccompFor(t, nil)
	b := seccompFor(t, nil)
	if a != b {
		t.Fatal("same caps/arch/kernel: not served from the cache")
	}
	c := seccompFor(t, func(o *Options) { o.Host.Kernel = "6.18.9-other" })
	if a != c {
		t.Fatal("kernel patch level must not split the cache")
	}
	d := seccompFor(t, func(o *Options) { o.CapAdd = []string{"SYS_ADMIN"} })
	if a == d {
		t.Fatal("different caps served the same profile")
	}
	e := seccompFor(t, func(o *Options) { o.CapDrop = []string{"CAP_CHOWN"}; o.CapAdd = []string{"CHOWN"} })
	if a != e {
		t.Fatal("same cap set in another order: not shared")
	}
	if n := len(defaultProfile().Syscalls); n == 0 || defaultProfile().LinuxSeccomp.Syscalls != nil {
		t.Fatal("default profile modified by rendering")
	}
}

// TestConcurrentGenerate exercises the shared cache from many goroutines
// (meaningful under -race).
func TestConcurrentGenerate(t *testing.T) {
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			o := baseOpts()
			if i%2 == 0 {
				o.CapAdd = []string{"SYS_PTRACE"}
			}
			if i%3 == 0 {
				o.Host.Arch = "arm64"
			}
			_, err := Generate(busyboxImage, o)
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
