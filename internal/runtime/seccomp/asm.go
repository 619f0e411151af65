package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// A tiny classic-BPF assembler with forward labels.
//
// Conditional jumps in classic BPF reach at most 255 instructions ahead. The
// compiler emits jumps to labels without caring about distance; link() then
// relaxes every jump that is too far by routing it through an inserted
// unconditional JA (32-bit offset) placed right after it, repeating until every
// offset fits, and finally encodes the offsets.

type label int

type insn struct {
	code   uint16
	k      uint32
	jt, jf label // conditional jumps: targets; JA: jt is the target
}

type asm struct {
	ins    []insn
	labels []int // label → index of the instruction it precedes
}

const (
	opLdAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAnd   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJEQ   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJGT   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJGE   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opJA    = unix.BPF_JMP | unix.BPF_JA
	opRet   = unix.BPF_RET | unix.BPF_K
)

func isCondJump(code uint16) bool {
	return code&0x07 == unix.BPF_JMP && code&0xf0 != unix.BPF_JA
}

// newLabel returns an unbound label; bind it with here.
func (a *asm) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

// here binds l to the next instruction emitted.
func (a *asm) here(l label) { a.labels[l] = len(a.ins) }

// next returns a label bound to the instruction after the one about to be
// emitted: the fall-through target of a jump.
func (a *asm) next() label {
	l := a.newLabel()
	a.labels[l] = len(a.ins) + 1
	return l
}

func (a *asm) load(off uint32) { a.ins = append(a.ins, insn{code: opLdAbs, k: off}) }
func (a *asm) and(k uint32)    { a.ins = append(a.ins, insn{code: opAnd, k: k}) }
func (a *asm) ret(k uint32)    { a.ins = append(a.ins, insn{code: opRet, k: k}) }
func (a *asm) jmp(code uint16, k uint32, jt, jf label) {
	a.ins = append(a.ins, insn{code: code, k: k, jt: jt, jf: jf})
}

// link resolves labels and returns the encoded program.
func (a *asm) link() ([]unix.SockFilter, error) {
	for {
		type ins struct {
			at     int // insert before this old index
			target label
			self   label // label for the new JA
		}
		var adds []ins
		for i := range a.ins {
			if !isCondJump(a.ins[i].code) {
				continue
			}
			for _, t := range []*label{&a.ins[i].jt, &a.ins[i].jf} {
				off := a.labels[*t] - i - 1
				if off < 0 {
					return nil, fmt.Errorf("seccomp: internal error: backward or unbound jump at %d", i)
				}
				if off <= 255 {
					continue
				}
				self := a.newLabel()
				adds = append(adds, ins{at: i + 1, target: *t, self: self})
				*t = self
			}
		}
		if len(adds) == 0 {
			break
		}
		// Rebuild with the JAs inserted; every label at or after an
		// insertion point moves down by the number inserted before it.
		shift := make([]int, len(a.ins)+1)
		for _, ad := range adds {
			shift[ad.at]++
		}
		for i := 1; i < len(shift); i++ {
			shift[i] += shift[i-1]
		}
		out := make([]insn, 0, len(a.ins)+len(adds))
		j := 0
		for i, in := range a.ins {
			for ; j < len(adds) && adds[j].at == i; j++ {
				a.labels[adds[j].self] = len(out)
				out = append(out, insn{code: opJA, jt: adds[j].target})
			}
			out = append(out, in)
		}
		newSelf := map[label]bool{}
		for _, ad := range adds {
			newSelf[ad.self] = true
		}
		for l, p := range a.labels {
			if newSelf[label(l)] || p < 0 {
				continue
			}
			if p > len(shift)-1 {
				return nil, fmt.Errorf("seccomp: internal error: label %d past the end", l)
			}
			a.labels[l] = p + shift[p]
		}
		a.ins = out
	}

	if len(a.ins) == 0 || a.ins[len(a.ins)-1].code != opRet {
		return nil, fmt.Errorf("seccomp: internal error: program does not end in a return")
	}
	if len(a.ins) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("seccomp: filter has %d instructions, the kernel accepts at most %d", len(a.ins), unix.BPF_MAXINSNS)
	}
	prog := make([]unix.SockFilter, len(a.ins))
	for i, in := range a.ins {
		f := unix.SockFilter{Code: in.code, K: in.k}
		switch {
		case in.code == opJA:
			f.K = uint32(a.labels[in.jt] - i - 1)
		case isCondJump(in.code):
			f.Jt = uint8(a.labels[in.jt] - i - 1)
			f.Jf = uint8(a.labels[in.jf] - i - 1)
		}
		prog[i] = f
	}
	return prog, nil
}
