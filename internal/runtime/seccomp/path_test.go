package seccomp

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// pathLen interprets p (only the instructions the compiler emits) for one
// syscall and returns how many instructions ran: the per-syscall cost of the
// filter, independent of a noisy clock.
func pathLen(t testing.TB, p *Program, arch, nr uint32, args ...uint64) (ret uint32, steps int) {
	var data [64]byte
	binary.LittleEndian.PutUint32(data[0:], nr)
	binary.LittleEndian.PutUint32(data[4:], arch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[16+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(p.Filter); pc++ {
		steps++
		f := p.Filter[pc]
		switch f.Code {
		case opLdAbs:
			acc = binary.LittleEndian.Uint32(data[f.K:])
		case opAnd:
			acc &= f.K
		case opJA:
			pc += int(f.K)
		case opJEQ, opJGT, opJGE:
			ok := acc == f.K
			if f.Code == opJGT {
				ok = acc > f.K
			} else if f.Code == opJGE {
				ok = acc >= f.K
			}
			if ok {
				pc += int(f.Jt)
			} else {
				pc += int(f.Jf)
			}
		case opRet:
			return f.K, steps
		default:
			t.Fatalf("unexpected opcode %#x", f.Code)
		}
	}
	t.Fatal("fell off the program")
	return 0, 0
}

// filterCost returns the mean and worst path length over x86_64 syscalls
// 0..470, with arguments that pass the docker profile's checks.
func filterCost(t testing.TB, p *Program) (mean float64, worst int) {
	total := 0
	const n = 471
	for nr := uint32(0); nr < n; nr++ {
		_, s := pathLen(t, p, unix.AUDIT_ARCH_X86_64, nr, 0xffffffff, 0, 0)
		total += s
		worst = max(worst, s)
	}
	return float64(total) / n, worst
}

func TestTreeIsShallow(t *testing.T) {
	prof := DefaultProfile()
	tree := mustCompile(t, prof)
	linear, err := compile(prof, kernelFeatures(), true)
	if err != nil {
		t.Fatal(err)
	}
	// The interpreter agrees with x/net/bpf.
	vm := newVM(t, tree)
	for nr := uint32(0); nr < 471; nr++ {
		r, _ := pathLen(t, tree, unix.AUDIT_ARCH_X86_64, nr, 0xffffffff)
		if want := vm.run(unix.AUDIT_ARCH_X86_64, nr, 0xffffffff); r != want {
			t.Fatalf("nr %d: interpreter %#x, x/net/bpf %#x", nr, r, want)
		}
	}
	tm, tw := filterCost(t, tree)
	lm, lw := filterCost(t, linear)
	t.Logf("docker profile, x86_64: tree mean %.1f worst %d insns/syscall; linear mean %.1f worst %d", tm, tw, lm, lw)
	if tm*3 > lm {
		t.Errorf("binary search (mean %.1f) is not clearly shorter than the linear chain (%.1f)", tm, lm)
	}
}

func BenchmarkFilterPath(b *testing.B) {
	prof := DefaultProfile()
	for _, linear := range []bool{false, true} {
		p, err := compile(prof, kernelFeatures(), linear)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(map[bool]string{false: "tree", true: "linear"}[linear], func(b *testing.B) {
			var mean float64
			var worst int
			for b.Loop() {
				mean, worst = filterCost(b, p)
			}
			b.ReportMetric(mean, "insns/syscall")
			b.ReportMetric(float64(worst), "worst-insns")
			b.ReportMetric(float64(len(p.Filter)), "prog-insns")
		})
	}
}
