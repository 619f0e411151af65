package cgroups

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// runDeviceProgram interprets the few opcodes deviceProgram emits, so the
// filter's decisions are tested without loading it into a kernel.
func runDeviceProgram(t *testing.T, prog []bpfInsn, typ, access, major, minor uint32) bool {
	t.Helper()
	var r [11]uint64
	ctx := [3]uint32{typ | access<<16, major, minor}
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		dst, src := in.regs&0xf, in.regs>>4
		switch in.code {
		case bpfLdxMemH:
			r[dst] = uint64(ctx[in.off/4] & 0xffff)
		case bpfLdxMemW:
			r[dst] = uint64(ctx[in.off/4])
		case bpfAlu32Rsh:
			r[dst] = uint64(uint32(r[dst]) >> uint32(in.imm))
		case bpfAlu32And:
			r[dst] = uint64(uint32(r[dst]) & uint32(in.imm))
		case bpfAlu32Mov:
			r[dst] = uint64(uint32(in.imm))
		case bpfAlu32MovX:
			r[dst] = uint64(uint32(r[src]))
		case bpfJneK:
			if r[dst] != uint64(int64(in.imm)) {
				pc += int(in.off)
			}
		case bpfJneX:
			if r[dst] != r[src] {
				pc += int(in.off)
			}
		case bpfJeqK:
			if r[dst] == uint64(int64(in.imm)) {
				pc += int(in.off)
			}
		case bpfExit:
			return r[0] == 1
		default:
			t.Fatalf("unknown opcode %#x at %d", in.code, pc)
		}
	}
	t.Fatal("fell off the end of the program")
	return false
}

func TestDeviceProgram(t *testing.T) {
	const (
		c = unix.BPF_DEVCG_DEV_CHAR
		b = unix.BPF_DEVCG_DEV_BLOCK
		R = unix.BPF_DEVCG_ACC_READ
		W = unix.BPF_DEVCG_ACC_WRITE
		M = unix.BPF_DEVCG_ACC_MKNOD
	)
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"}, // null
		{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(5)), Access: "r"},   // zero, read only
		{Allow: true, Type: "c", Major: ptr(int64(136)), Access: "rw"},                      // pts
		{Allow: true, Type: "b", Major: ptr(int64(8)), Access: "rwm"},
		{Allow: false, Type: "b", Major: ptr(int64(8)), Minor: ptr(int64(0)), Access: "w"}, // deny writing sda
	}
	prog, err := deviceProgram(rules)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ, acc, maj, min uint32
		want               bool
	}{
		{c, R | W, 1, 3, true},
		{c, M, 1, 3, true},
		{c, R, 1, 5, true},
		{c, R | W, 1, 5, false}, // allow must cover every requested bit
		{c, R | W, 136, 7, true},
		{c, M, 136, 7, false},
		{c, R, 1, 9, false}, // not listed
		{b, R, 1, 3, false}, // wrong type
		{b, R, 8, 0, true},
		{b, R | W, 8, 0, false}, // a deny matches on any requested bit
		{b, W, 8, 1, true},
	} {
		if got := runDeviceProgram(t, prog, tc.typ, tc.acc, tc.maj, tc.min); got != tc.want {
			t.Errorf("type %d access %d %d:%d = %v, want %v", tc.typ, tc.acc, tc.maj, tc.min, got, tc.want)
		}
	}
	// A trailing allow-all wins over everything before it, and ends the program.
	all, err := deviceProgram(append(rules, specs.LinuxDeviceCgroup{Allow: true, Access: "rwm"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 7 || !runDeviceProgram(t, all, b, W, 8, 0) {
		t.Errorf("allow-all: %d insns", len(all))
	}
	if _, err := deviceProgram([]specs.LinuxDeviceCgroup{{Type: "x"}}); err == nil {
		t.Error("bad type accepted")
	}
}
