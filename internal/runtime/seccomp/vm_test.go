package seccomp

import (
	"encoding/binary"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// vm runs a compiled program in golang.org/x/net/bpf's interpreter, an
// implementation independent of ours.
type vm struct {
	t  testing.TB
	vm *bpf.VM
	n  int
}

func newVM(t testing.TB, p *Program) *vm {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(p.Filter))
	for i, f := range p.Filter {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("program has instructions x/net/bpf cannot decode")
	}
	v, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("x/net/bpf rejects the program: %v", err)
	}
	return &vm{t: t, vm: v, n: len(p.Filter)}
}

// run evaluates the filter for one syscall. The kernel loads seccomp_data
// words in host order (little endian); the x/net VM loads them big endian,
// so each 32-bit word is laid out big endian here to give the VM the values
// the kernel would see. 64-bit args are two words: low half first.
func (v *vm) run(arch, nr uint32, args ...uint64) uint32 {
	v.t.Helper()
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], nr)
	binary.BigEndian.PutUint32(b[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[16+8*i+4:], uint32(a>>32))
	}
	r, err := v.vm.Run(b)
	if err != nil {
		v.t.Fatalf("vm: %v", err)
	}
	return uint32(r)
}

func mustCompile(t testing.TB, s *specs.LinuxSeccomp) *Program {
	t.Helper()
	p, err := compile(s, kernelFeatures(), false)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

func nr(t testing.TB, tab sysTable, name string) uint32 {
	t.Helper()
	n, ok := tab.lookup(name)
	if !ok {
		t.Fatalf("no syscall %q", name)
	}
	return n
}

func errno(e unix.Errno) uint32 { return retErrno | uint32(e) }

func uintp(v uint) *uint { return &v }

const (
	archX86_64 = unix.AUDIT_ARCH_X86_64
	archI386   = unix.AUDIT_ARCH_I386
)
