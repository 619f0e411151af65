package seccomp

import (
	"errors"
	"math/rand"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestOpsHiLo(t *testing.T) {
	values := []uint64{0, 5, 0xffffffff, 0x100000000, 0x1_00000005, 0xfffffffe_00000001, 0xffffffff_ffffffff}
	ops := map[specs.LinuxSeccompOperator]func(a, v uint64) bool{
		specs.OpEqualTo:      func(a, v uint64) bool { return a == v },
		specs.OpNotEqual:     func(a, v uint64) bool { return a != v },
		specs.OpLessThan:     func(a, v uint64) bool { return a < v },
		specs.OpLessEqual:    func(a, v uint64) bool { return a <= v },
		specs.OpGreaterThan:  func(a, v uint64) bool { return a > v },
		specs.OpGreaterEqual: func(a, v uint64) bool { return a >= v },
	}
	for op, want := range ops {
		for _, v := range values {
			// Rule on arg 2 so the offsets of other args would be caught.
			p := mustCompile(t, &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno,
					ErrnoRet: uintp(99), Args: []specs.LinuxSeccompArg{{Index: 2, Value: v, Op: op}}}},
			})
			m := newVM(t, p)
			probes := []uint64{v, v - 1, v + 1, v ^ 1<<32, v ^ 1, v + 1<<32, v - 1<<32, 0, ^uint64(0), v&0xffffffff | 0xffffffff<<32}
			for _, a := range probes {
				exp := uint32(retAllow)
				if want(a, v) {
					exp = errno(99)
				}
				if got := m.run(archX86_64, 0, 0, 0, a); got != exp {
					t.Errorf("%s %#x: arg %#x: got %#x, want %#x", op, v, a, got, exp)
				}
				// Another syscall is unaffected.
				if got := m.run(archX86_64, 1, 0, 0, a); got != retAllow {
					t.Errorf("write got %#x", got)
				}
			}
		}
	}
}

func TestMaskedEq(t *testing.T) {
	const mask = 0xff000000_0000ff00
	const datum = 0x12000000_00003400
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"ioctl"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: mask, ValueTwo: datum, Op: specs.OpMaskedEqual}}}},
	})
	m := newVM(t, p)
	ioctl := nr(t, tableX86_64, "ioctl")
	for _, a := range []uint64{datum, datum | 0x00ffffff_ffff00ff, 0x13000000_00003400, 0x12000000_00003500, 0, 0x00000000_00003400, 0x12000000_00000000} {
		exp := uint32(retAllow)
		if a&mask == datum {
			exp = errno(unix.EPERM)
		}
		if got := m.run(archX86_64, ioctl, 0, a); got != exp {
			t.Errorf("arg %#x: got %#x want %#x", a, got, exp)
		}
	}
}

// libseccomp masks the datum as well: mask 0xff, datum 0x1ff matches 0xff.
func TestMaskedEqDatumMasked(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"ioctl"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xff, ValueTwo: 0x1ff, Op: specs.OpMaskedEqual}}}},
	})
	m := newVM(t, p)
	if got := m.run(archX86_64, 16, 0, 0x3ff); got != errno(unix.EPERM) {
		t.Errorf("0x3ff: got %#x", got)
	}
	if got := m.run(archX86_64, 16, 0, 0x1fe); got != retAllow {
		t.Errorf("0x1fe: got %#x", got)
	}
}

func TestArgsAndOr(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			// Different args: ANDed.
			{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: uintp(1), Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 3, Op: specs.OpEqualTo}, {Index: 2, Value: 100, Op: specs.OpGreaterThan}}},
			// Same arg twice: ORed (runc compatibility).
			{Names: []string{"write"}, Action: specs.ActErrno, ErrnoRet: uintp(2), Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 7, Op: specs.OpEqualTo}, {Index: 0, Value: 9, Op: specs.OpEqualTo}}},
		},
	})
	m := newVM(t, p)
	cases := []struct {
		nr   uint32
		args []uint64
		want uint32
	}{
		{0, []uint64{3, 0, 101}, errno(1)},
		{0, []uint64{3, 0, 100}, retAllow},
		{0, []uint64{4, 0, 101}, retAllow},
		{1, []uint64{7}, errno(2)},
		{1, []uint64{9}, errno(2)},
		{1, []uint64{8}, retAllow},
	}
	for _, c := range cases {
		if got := m.run(archX86_64, c.nr, c.args...); got != c.want {
			t.Errorf("nr %d %v: got %#x want %#x", c.nr, c.args, got, c.want)
		}
	}
}

func TestArches(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(uint(unix.ENOTSUP)),
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchAARCH64},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid", "socketcall", "no_such_syscall"}, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 5, Op: specs.OpEqualTo}}},
			{Names: []string{"exit_group"}, Action: specs.ActAllow},
		},
	}
	m := newVM(t, mustCompile(t, s))
	def := errno(unix.ENOTSUP)
	cases := []struct {
		name     string
		arch, nr uint32
		arg0     uint64
		want     uint32
	}{
		{"x86_64 getpid", archX86_64, 39, 0, retAllow},
		{"i386 getpid", archI386, 20, 0, retAllow},
		{"i386 socketcall", archI386, 102, 0, retAllow},
		{"x86_64 has no socketcall: 102 is getuid", archX86_64, 102, 0, def},
		{"i386 nr 39 is mkdir", archI386, 39, 0, def},
		{"x86_64 personality(5)", archX86_64, 135, 5, retAllow},
		{"x86_64 personality(5|1<<32)", archX86_64, 135, 5 | 1<<32, def},
		{"i386 personality(5|1<<32): 32-bit ABI sees the low half", archI386, 136, 5 | 1<<32, retAllow},
		{"i386 personality(6)", archI386, 136, 6, def},
		{"x32 not listed", archX86_64, x32Bit + 39, 0, badArchRet},
		{"x86_64 nr -1 reaches the default", archX86_64, 0xffffffff, 0, def},
		{"aarch64 listed but never dispatched", unix.AUDIT_ARCH_AARCH64, 39, 0, badArchRet},
		{"arm", unix.AUDIT_ARCH_ARM, 20, 0, badArchRet},
		{"x86_64 past highest named nr", archX86_64, 300, 0, errno(unix.ENOSYS)},
		{"i386 past highest named nr", archI386, 400, 0, errno(unix.ENOSYS)},
	}
	for _, c := range cases {
		if got := m.run(c.arch, c.nr, c.arg0); got != c.want {
			t.Errorf("%s: got %#x want %#x", c.name, got, c.want)
		}
	}

	// With x32 listed, x32 numbers dispatch on their own table.
	s.Architectures = []specs.Arch{specs.ArchX32}
	m = newVM(t, mustCompile(t, s))
	if got := m.run(archX86_64, x32Bit+39, 0); got != retAllow {
		t.Errorf("x32 getpid: got %#x", got)
	}
	if got := m.run(archX86_64, 39, 0); got != retAllow {
		t.Errorf("x86_64 (native, always in the filter) when only x32 listed: got %#x", got)
	}
	if got := m.run(archI386, 20, 0); got != badArchRet {
		t.Errorf("i386 when only x32 listed: got %#x", got)
	}

	// No architectures: native only.
	s.Architectures = nil
	m = newVM(t, mustCompile(t, s))
	if got := m.run(archI386, 20, 0); got != badArchRet {
		t.Errorf("i386 with native-only filter: got %#x", got)
	}
	if got := m.run(archX86_64, 39, 0); got != retAllow {
		t.Errorf("native getpid: got %#x", got)
	}
}

func TestActions(t *testing.T) {
	acts := []struct {
		a     specs.LinuxSeccompAction
		errno *uint
		want  uint32
	}{
		{specs.ActKill, nil, retKillThread},
		{specs.ActKillThread, nil, retKillThread},
		{specs.ActKillProcess, nil, retKillProcess},
		{specs.ActTrap, nil, retTrap},
		{specs.ActErrno, nil, errno(unix.EPERM)},
		{specs.ActErrno, uintp(1234), retErrno | 1234},
		{specs.ActTrace, nil, retTrace | uint32(unix.EPERM)},
		{specs.ActTrace, uintp(7), retTrace | 7},
		{specs.ActLog, nil, retLog},
		{specs.ActNotify, nil, retNotify},
	}
	var rules []specs.LinuxSyscall
	names := []string{"read", "write", "open", "close", "stat", "fstat", "lstat", "poll", "lseek", "mmap"}
	for i, a := range acts {
		rules = append(rules, specs.LinuxSyscall{Names: []string{names[i]}, Action: a.a, ErrnoRet: a.errno})
	}
	p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/x.sock", Syscalls: rules})
	if !p.NeedsListener || p.Flags&flagNewListener == 0 {
		t.Errorf("NOTIFY rule: NeedsListener %v flags %#x", p.NeedsListener, p.Flags)
	}
	m := newVM(t, p)
	for i, a := range acts {
		if got := m.run(archX86_64, uint32(i)); got != a.want {
			t.Errorf("%s: got %#x want %#x", a.a, got, a.want)
		}
	}
	if got := m.run(archX86_64, 10); got != retAllow {
		t.Errorf("mprotect: got %#x", got)
	}

	// defaultErrnoRet, and a rule equal to the default is dropped.
	p = mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(38),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow},
			{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: uintp(38), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}},
			{Names: []string{"write"}, Action: specs.ActAllow},
		}})
	m = newVM(t, p)
	if got := m.run(archX86_64, 0, 1); got != retAllow {
		t.Errorf("read(1): got %#x", got)
	}
	if got := m.run(archX86_64, 2); got != errno(38) {
		t.Errorf("open: got %#x want errno 38", got)
	}
}

// Precedence as libseccomp 2.5.4 builds it (checked with seccomp_export_pfc):
// an unconditional rule beats conditional ones in either order, the first
// unconditional rule beats later ones, overlapping conditions on one
// argument go in profile order.
func TestRulePrecedence(t *testing.T) {
	a0 := func(op specs.LinuxSeccompOperator, v uint64) []specs.LinuxSeccompArg {
		return []specs.LinuxSeccompArg{{Index: 0, Value: v, Op: op}}
	}
	p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"write"}, Action: specs.ActAllow},
		{Names: []string{"write"}, Action: specs.ActErrno, ErrnoRet: uintp(5), Args: a0(specs.OpEqualTo, 2)},
		{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: uintp(6), Args: a0(specs.OpEqualTo, 2)},
		{Names: []string{"read"}, Action: specs.ActAllow},
		{Names: []string{"close"}, Action: specs.ActAllow},
		{Names: []string{"close"}, Action: specs.ActTrap},
		{Names: []string{"open"}, Action: specs.ActErrno, ErrnoRet: uintp(5), Args: a0(specs.OpGreaterThan, 10)},
		{Names: []string{"open"}, Action: specs.ActTrap, Args: a0(specs.OpGreaterThan, 5)},
	}})
	m := newVM(t, p)
	for _, c := range []struct {
		nr   uint32
		arg  uint64
		want uint32
	}{
		{1, 2, retAllow}, {1, 1, retAllow},
		{0, 2, retAllow},
		{3, 0, retAllow},
		{2, 11, errno(5)}, {2, 6, retTrap}, {2, 5, errno(unix.EPERM)},
	} {
		if got := m.run(archX86_64, c.nr, c.arg); got != c.want {
			t.Errorf("nr %d arg %d: got %#x want %#x", c.nr, c.arg, got, c.want)
		}
	}
}

func TestBadInput(t *testing.T) {
	base := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno}}}
	}
	cases := []struct {
		mut  func(s *specs.LinuxSeccomp)
		want string
	}{
		{func(s *specs.LinuxSeccomp) { s.DefaultAction = "SCMP_ACT_BOGUS" }, `"SCMP_ACT_BOGUS"`},
		{func(s *specs.LinuxSeccomp) { s.DefaultAction = "" }, "missing action"},
		{func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = "SCMP_ACT_NOPE" }, `syscalls[0]: unknown action "SCMP_ACT_NOPE"`},
		{func(s *specs.LinuxSeccomp) { s.Architectures = []specs.Arch{"SCMP_ARCH_Z80"} }, `"SCMP_ARCH_Z80"`},
		{func(s *specs.LinuxSeccomp) { s.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"} }, `"SECCOMP_FILTER_FLAG_BOGUS"`},
		{func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_LIKE"}}
		}, `"SCMP_CMP_LIKE"`},
		{func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}
		}, "index 6"},
		{func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names = nil }, "no syscall names"},
		{func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = specs.ActAllow; s.Syscalls[0].ErrnoRet = uintp(1) }, "errnoRet is only valid"},
		{func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = uintp(1) }, "defaultAction: errnoRet"},
		{func(s *specs.LinuxSeccomp) { s.DefaultAction = specs.ActNotify }, "cannot be the default"},
		{func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = specs.ActNotify }, "listenerPath"},
		{func(s *specs.LinuxSeccomp) {
			s.ListenerPath = "/x"
			s.Syscalls[0].Action = specs.ActNotify
			s.Syscalls[0].Names = []string{"read", "write"}
		}, "write syscall"},
	}
	for _, c := range cases {
		s := base()
		c.mut(s)
		_, err := Compile(s, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want error containing %q, got %v", c.want, err)
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%v: not ErrInvalidArgument", err)
		}
	}
	if _, err := Compile(nil, nil); err == nil {
		t.Error("nil section accepted")
	}
}

func TestFlags(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{
		"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv}}
	p, err := compile(s, ^features(0), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint32(flagTSYNC | flagLog | flagSpecAllow); p.Flags != want {
		t.Errorf("flags %#x, want %#x (WAIT_KILLABLE_RECV dropped without a listener)", p.Flags, want)
	}
	s.ListenerPath = "/x"
	s.Syscalls = []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}}
	p, err = compile(s, ^features(0), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint32(flagTSYNC | flagLog | flagSpecAllow | flagWaitKillableRecv | flagNewListener | flagTSYNCESRCH); p.Flags != want {
		t.Errorf("flags %#x, want %#x", p.Flags, want)
	}
	// A kernel without the flag: a clear error naming it.
	_, err = compile(s, ^features(0)&^features(flagWaitKillableRecv), false)
	if err == nil || !strings.Contains(err.Error(), "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") || !errors.Is(err, ErrUnsupported) {
		t.Errorf("missing flag: %v", err)
	}
	_, err = compile(s, ^features(0)&^featNotify, false)
	if err == nil || !strings.Contains(err.Error(), "SCMP_ACT_NOTIFY") {
		t.Errorf("missing action: %v", err)
	}
}

func TestDockerDefault(t *testing.T) {
	p, err := Compile(DefaultProfile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("docker default: %d instructions", len(p.Filter))
	m := newVM(t, p)
	eperm := errno(unix.EPERM)
	n := func(name string) uint32 { return nr(t, tableX86_64, name) }
	cases := []struct {
		name string
		nr   uint32
		args []uint64
		want uint32
	}{
		{"read", n("read"), nil, retAllow},
		{"write", n("write"), nil, retAllow},
		{"futex", n("futex"), nil, retAllow},
		{"mount", n("mount"), nil, eperm},
		{"umount2", n("umount2"), nil, eperm},
		{"kexec_load", n("kexec_load"), nil, eperm},
		{"init_module", n("init_module"), nil, eperm},
		{"unshare(CLONE_NEWUSER)", n("unshare"), []uint64{unix.CLONE_NEWUSER}, eperm},
		{"clone(SIGCHLD)", n("clone"), []uint64{uint64(unix.SIGCHLD)}, retAllow},
		{"clone(CLONE_THREAD|CLONE_VM...)", n("clone"), []uint64{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD}, retAllow},
		{"clone(CLONE_NEWNS)", n("clone"), []uint64{unix.CLONE_NEWNS | uint64(unix.SIGCHLD)}, eperm},
		{"clone(CLONE_NEWUSER)", n("clone"), []uint64{unix.CLONE_NEWUSER}, eperm},
		{"clone(CLONE_NEWNET)", n("clone"), []uint64{unix.CLONE_NEWNET}, eperm},
		{"clone3", n("clone3"), nil, errno(unix.ENOSYS)},
		{"personality(0)", n("personality"), []uint64{0}, retAllow},
		{"personality(0xffffffff)", n("personality"), []uint64{0xffffffff}, retAllow},
		{"personality(PER_LINUX32)", n("personality"), []uint64{8}, retAllow},
		{"personality(READ_IMPLIES_EXEC)", n("personality"), []uint64{0x0400000}, eperm},
		{"socket(AF_INET)", n("socket"), []uint64{unix.AF_INET}, retAllow},
		{"socket(AF_UNIX)", n("socket"), []uint64{unix.AF_UNIX}, retAllow},
		{"socket(AF_VSOCK)", n("socket"), []uint64{unix.AF_VSOCK}, eperm},
		{"ptrace", n("ptrace"), nil, retAllow},
		{"bpf", n("bpf"), nil, eperm},
		{"setns", n("setns"), nil, eperm},
		{"reboot", n("reboot"), nil, eperm},
	}
	for _, c := range cases {
		if got := m.run(archX86_64, c.nr, c.args...); got != c.want {
			t.Errorf("%s: got %#x want %#x", c.name, got, c.want)
		}
	}
	// The 32-bit ABI is in the profile too.
	n32 := func(name string) uint32 { return nr(t, tableX86, name) }
	if got := m.run(archI386, n32("socketcall")); got != retAllow {
		t.Errorf("i386 socketcall: %#x", got)
	}
	if got := m.run(archI386, n32("mount")); got != eperm {
		t.Errorf("i386 mount: %#x", got)
	}
	if got := m.run(archX86_64, x32Bit+n("read")); got != retAllow {
		t.Errorf("x32 read: %#x", got)
	}
	if got := m.run(unix.AUDIT_ARCH_AARCH64, 63); got != badArchRet {
		t.Errorf("aarch64: %#x", got)
	}

	// CAP_SYS_ADMIN unlocks mount and namespaces, as in docker.
	sa, err := DefaultProfileFor(append([]string{"CAP_SYS_ADMIN"}, DockerDefaultCaps...))
	if err != nil {
		t.Fatal(err)
	}
	m = newVM(t, mustCompile(t, sa))
	if got := m.run(archX86_64, n("mount")); got != retAllow {
		t.Errorf("SYS_ADMIN mount: %#x", got)
	}
	if got := m.run(archX86_64, n("clone"), unix.CLONE_NEWNS); got != retAllow {
		t.Errorf("SYS_ADMIN clone(NEWNS): %#x", got)
	}
}

// ref evaluates a profile directly, with the semantics documented in the
// package comment, as an oracle for the compiled program.
func ref(s *specs.LinuxSeccomp, ab *abi, nr uint32, args []uint64) uint32 {
	def, _ := actionRet(s.DefaultAction, s.DefaultErrnoRet, "")
	hit := func(c specs.LinuxSeccompArg) bool {
		a, v, v2 := args[c.Index], c.Value, c.ValueTwo
		if ab.bits32 {
			a, v, v2 = a&0xffffffff, v&0xffffffff, v2&0xffffffff
		}
		switch c.Op {
		case specs.OpEqualTo:
			return a == v
		case specs.OpNotEqual:
			return a != v
		case specs.OpLessThan:
			return a < v
		case specs.OpLessEqual:
			return a <= v
		case specs.OpGreaterThan:
			return a > v
		case specs.OpGreaterEqual:
			return a >= v
		case specs.OpMaskedEqual:
			return a&v == v2&v
		}
		panic(c.Op)
	}
	// The first unconditional rule for nr decides.
	for _, sc := range s.Syscalls {
		r, _ := actionRet(sc.Action, sc.ErrnoRet, "")
		if r == def || len(sc.Args) > 0 {
			continue
		}
		for _, name := range sc.Names {
			if n, ok := ab.table.lookup(name); ok && n == nr {
				return r
			}
		}
	}
	maxNr := uint32(0)
	named := false
	for _, sc := range s.Syscalls {
		for _, name := range sc.Names {
			if n, ok := ab.table.lookup(name); ok {
				maxNr = max(maxNr, n)
				named = true
			}
		}
	}
	for _, sc := range s.Syscalls {
		r, _ := actionRet(sc.Action, sc.ErrnoRet, "")
		if r == def {
			continue
		}
		match := false
		for _, name := range sc.Names {
			if n, ok := ab.table.lookup(name); ok && n == nr {
				match = true
			}
		}
		if !match {
			continue
		}
		if len(sc.Args) == 0 {
			continue
		}
		idx := map[uint]bool{}
		for _, a := range sc.Args {
			idx[a.Index] = true
		}
		all, any := true, false
		for _, a := range sc.Args {
			h := hit(a)
			all = all && h
			any = any || h
		}
		if (len(idx) == len(sc.Args) && all) || (len(idx) != len(sc.Args) && any) {
			return r
		}
	}
	if named && nr > maxNr && def != retAllow && def != retLog && def&0xffff0000 != retTrace {
		return errno(unix.ENOSYS)
	}
	return def
}

// Random profiles, random syscalls: the compiled program (tree and linear
// forms) must agree with ref.
func TestRandomAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	names := []string{"read", "write", "open", "close", "ioctl", "mmap", "clone", "socket", "personality", "getpid", "kill", "futex", "openat", "unshare", "setns", "mount", "waitid", "statx", "io_uring_setup", "chown32"}
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	acts := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKillProcess, specs.ActTrap, specs.ActLog, specs.ActTrace}
	vals := []uint64{0, 1, 2, 0xffffffff, 1 << 32, 1<<32 | 2, ^uint64(0), 0x8000_0000_0000_0000}
	pick := func() uint64 {
		v := vals[rng.Intn(len(vals))]
		if rng.Intn(3) == 0 {
			v += uint64(rng.Intn(3)) - 1
		}
		return v
	}
	for iter := 0; iter < 300; iter++ {
		s := &specs.LinuxSeccomp{DefaultAction: acts[rng.Intn(len(acts))], Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}}
		if s.DefaultAction == specs.ActErrno {
			s.DefaultErrnoRet = uintp(uint(rng.Intn(3) + 1))
		}
		for r := rng.Intn(40); r > 0; r-- {
			sc := specs.LinuxSyscall{Action: acts[rng.Intn(len(acts))]}
			if sc.Action == specs.ActErrno {
				sc.ErrnoRet = uintp(uint(rng.Intn(3) + 1))
			}
			for k := rng.Intn(3) + 1; k > 0; k-- {
				sc.Names = append(sc.Names, names[rng.Intn(len(names))])
			}
			for k := rng.Intn(4); k > 0; k-- {
				sc.Args = append(sc.Args, specs.LinuxSeccompArg{Index: uint(rng.Intn(3)), Op: ops[rng.Intn(len(ops))], Value: pick(), ValueTwo: pick()})
			}
			s.Syscalls = append(s.Syscalls, sc)
		}
		tree := newVM(t, mustCompile(t, s))
		lp, err := compile(s, kernelFeatures(), true)
		if err != nil {
			t.Fatal(err)
		}
		lin := newVM(t, lp)
		for probe := 0; probe < 200; probe++ {
			ab := []*abi{abiX86_64, abiX86, abiX32}[rng.Intn(3)]
			var n uint32
			if rng.Intn(4) == 0 {
				n = ab.nrLo + uint32(rng.Intn(600))
			} else {
				n, _ = ab.table.lookup(names[rng.Intn(len(names))])
				if n == 0 {
					continue
				}
			}
			args := []uint64{pick(), pick(), pick()}
			want := ref(s, ab, n, args)
			if got := tree.run(ab.audit, n, args...); got != want {
				t.Fatalf("iter %d %s nr %#x args %#x: tree %#x want %#x\nprofile %+v", iter, ab.name, n, args, got, want, s)
			}
			if got := lin.run(ab.audit, n, args...); got != want {
				t.Fatalf("iter %d %s nr %#x args %#x: linear %#x want %#x", iter, ab.name, n, args, got, want)
			}
		}
	}
}

// Many argument rules make a program whose jumps exceed the 255-instruction
// reach of a conditional jump: the assembler must route them through JA.
func TestLongJumps(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	var allNames []string
	for _, e := range tableX86_64[:300] {
		allNames = append(allNames, e.name)
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{e.name}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: uint64(e.nr), Op: specs.OpEqualTo}, {Index: 0, Value: 1 << 33, Op: specs.OpLessThan}}})
	}
	p := mustCompile(t, s)
	ja := 0
	for _, f := range p.Filter {
		if f.Code == opJA {
			ja++
		}
	}
	if ja == 0 || len(p.Filter) < 1000 {
		t.Fatalf("expected a long program with JA trampolines: %d insns, %d JA", len(p.Filter), ja)
	}
	m := newVM(t, p)
	for _, name := range allNames {
		n := nr(t, tableX86_64, name)
		if got := m.run(archX86_64, n, 5, uint64(n)); got != retAllow {
			t.Fatalf("%s: got %#x", name, got)
		}
		if got := m.run(archX86_64, n, 1<<33, uint64(n)); got != errno(unix.EPERM) {
			t.Fatalf("%s arg0 too big: got %#x", name, got)
		}
		if got := m.run(archX86_64, n, 5, uint64(n)+1); got != errno(unix.EPERM) {
			t.Fatalf("%s wrong arg1: got %#x", name, got)
		}
	}
}

func TestTablesMatchXSys(t *testing.T) {
	// Spot checks against x/sys, an independent source.
	checks := map[string]uint32{"read": unix.SYS_READ, "mount": unix.SYS_MOUNT, "clone3": unix.SYS_CLONE3, "personality": unix.SYS_PERSONALITY, "openat2": unix.SYS_OPENAT2, "cachestat": 451}
	for name, want := range checks {
		if got := nr(t, tableX86_64, name); got != want {
			t.Errorf("x86_64 %s = %d, want %d", name, got, want)
		}
		if got := nr(t, tableX32, name); name != "personality" && got != want+x32Bit && want >= 424 {
			t.Errorf("x32 %s = %#x", name, got)
		}
	}
	if got := nr(t, tableX86, "socketcall"); got != 102 {
		t.Errorf("i386 socketcall = %d", got)
	}
	if _, ok := tableX86_64.lookup("socketcall"); ok {
		t.Error("x86_64 has no socketcall")
	}
}
