package cgroups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroup v2 has no devices file: access is decided by a
// BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup. We generate and
// load it with raw bpf(2) calls instead of containerd/cgroups' DeviceFilter
// and cilium/ebpf: importing containerd/cgroups/v3/cgroup2 pulls protobuf,
// logrus and dbus into berth-runtime (10 MB binary, ~20 ms more process
// start here) and cilium/ebpf alone doubles the binary; the program itself
// is ~10 instructions per rule.
//
// The program, for rules r1..rn (the last matching rule wins, as in v1):
//
//	r2 = ctx->access_type & 0xffff    device type (BPF_DEVCG_DEV_*)
//	r3 = ctx->access_type >> 16       requested access (BPF_DEVCG_ACC_*)
//	r4 = ctx->major; r5 = ctx->minor
//	block(rn) … block(r1)             each: if it matches, r0 = allow; exit
//	r0 = 0; exit                      nothing matched: deny
//
// A block skips to the next one when the type, major or minor differ, or
// when the access does not match: an allow rule must cover all requested
// access bits, a deny rule matches if it covers any of them. A wildcard
// rule (type a, rwm, no major/minor) ends the program; earlier rules are
// unreachable and not emitted.

type bpfInsn struct {
	code uint8
	regs uint8 // dst in the low nibble, src in the high one
	off  int16
	imm  int32
}

const (
	bpfLdxMemW   = 0x61 // BPF_LDX|BPF_MEM|BPF_W
	bpfLdxMemH   = 0x69 // BPF_LDX|BPF_MEM|BPF_H
	bpfAlu32Rsh  = 0x74 // BPF_ALU|BPF_RSH|BPF_K
	bpfAlu32And  = 0x54 // BPF_ALU|BPF_AND|BPF_K
	bpfAlu32Mov  = 0xb4 // BPF_ALU|BPF_MOV|BPF_K
	bpfAlu32MovX = 0xbc // BPF_ALU|BPF_MOV|BPF_X
	bpfJneK      = 0x55 // BPF_JMP|BPF_JNE|BPF_K
	bpfJneX      = 0x5d // BPF_JMP|BPF_JNE|BPF_X
	bpfJeqK      = 0x15 // BPF_JMP|BPF_JEQ|BPF_K
	bpfExit      = 0x95 // BPF_JMP|BPF_EXIT
)

func ins(code, dst, src uint8, off int16, imm int32) bpfInsn {
	return bpfInsn{code: code, regs: dst | src<<4, off: off, imm: imm}
}

// deviceProgram compiles OCI device rules into a cgroup device program.
func deviceProgram(devs []specs.LinuxDeviceCgroup) ([]bpfInsn, error) {
	prog := []bpfInsn{
		ins(bpfLdxMemH, 2, 1, 0, 0),
		ins(bpfLdxMemW, 3, 1, 0, 0),
		ins(bpfAlu32Rsh, 3, 0, 0, 16),
		ins(bpfLdxMemW, 4, 1, 4, 0),
		ins(bpfLdxMemW, 5, 1, 8, 0),
	}
	for i := len(devs) - 1; i >= 0; i-- {
		d := devs[i]
		if _, err := deviceRule(d); err != nil {
			return nil, err
		}
		// Conditions, each a jump to the end of this block when it fails.
		var cond [][]bpfInsn
		switch d.Type {
		case "c":
			cond = append(cond, []bpfInsn{ins(bpfJneK, 2, 0, 0, unix.BPF_DEVCG_DEV_CHAR)})
		case "b":
			cond = append(cond, []bpfInsn{ins(bpfJneK, 2, 0, 0, unix.BPF_DEVCG_DEV_BLOCK)})
		}
		acc := int32(0)
		a := d.Access
		if a == "" {
			a = "rwm"
		}
		for _, c := range a {
			switch c {
			case 'r':
				acc |= unix.BPF_DEVCG_ACC_READ
			case 'w':
				acc |= unix.BPF_DEVCG_ACC_WRITE
			case 'm':
				acc |= unix.BPF_DEVCG_ACC_MKNOD
			}
		}
		if acc != unix.BPF_DEVCG_ACC_READ|unix.BPF_DEVCG_ACC_WRITE|unix.BPF_DEVCG_ACC_MKNOD {
			if d.Allow { // requested ⊆ acc: (r3 & acc) == r3
				cond = append(cond, []bpfInsn{ins(bpfAlu32MovX, 1, 3, 0, 0), ins(bpfAlu32And, 1, 0, 0, acc), ins(bpfJneX, 1, 3, 0, 0)})
			} else { // requested ∩ acc ≠ ∅
				cond = append(cond, []bpfInsn{ins(bpfAlu32MovX, 1, 3, 0, 0), ins(bpfAlu32And, 1, 0, 0, acc), ins(bpfJeqK, 1, 0, 0, 0)})
			}
		}
		for _, n := range [2]struct {
			reg uint8
			p   *int64
		}{{4, d.Major}, {5, d.Minor}} {
			if p := n.p; p != nil && *p >= 0 {
				if *p > 1<<31-1 {
					return nil, errInvalid("devices", *p, "device number out of range")
				}
				cond = append(cond, []bpfInsn{ins(bpfJneK, n.reg, 0, 0, int32(*p))})
			}
		}
		ret := int32(0)
		if d.Allow {
			ret = 1
		}
		var block []bpfInsn
		for _, c := range cond {
			block = append(block, c...)
		}
		block = append(block, ins(bpfAlu32Mov, 0, 0, 0, ret), ins(bpfExit, 0, 0, 0, 0))
		// Point every conditional jump past the end of the block.
		for j := range block {
			switch block[j].code {
			case bpfJneK, bpfJneX, bpfJeqK:
				block[j].off = int16(len(block) - j - 1)
			}
		}
		prog = append(prog, block...)
		if len(cond) == 0 {
			return prog, nil // wildcard: nothing before it can match
		}
	}
	return append(prog, ins(bpfAlu32Mov, 0, 0, 0, 0), ins(bpfExit, 0, 0, 0, 0)), nil
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if e != 0 {
		return int(r), e
	}
	return int(r), nil
}

// Attribute layouts of union bpf_attr (include/uapi/linux/bpf.h).
type bpfProgLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
}

type bpfAttachAttr struct {
	targetFd    uint32
	attachBpfFd uint32
	attachType  uint32
	attachFlags uint32
	replaceFd   uint32
}

type bpfQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

type bpfGetIDAttr struct {
	id       uint32
	nextID   uint32
	openFlag uint32
}

func loadDeviceProgram(prog []bpfInsn) (int, error) {
	raw := make([]byte, 8*len(prog))
	for i, in := range prog {
		raw[8*i] = in.code
		raw[8*i+1] = in.regs
		binary.LittleEndian.PutUint16(raw[8*i+2:], uint16(in.off))
		binary.LittleEndian.PutUint32(raw[8*i+4:], uint32(in.imm))
	}
	license := []byte("Apache\x00")
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(prog)),
		insns:    uint64(uintptr(unsafe.Pointer(&raw[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(raw)
	runtime.KeepAlive(license)
	if err == nil {
		return fd, nil
	}
	// Load again with the verifier log for a useful error.
	log := make([]byte, 64<<10)
	attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
	fd, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(raw)
	runtime.KeepAlive(license)
	runtime.KeepAlive(log)
	if err2 == nil {
		return fd, nil
	}
	n := 0
	for n < len(log) && log[n] != 0 {
		n++
	}
	return -1, fmt.Errorf("bpf prog load: %w: %s", err, log[:n])
}

// setDevicesV2 attaches a new device program, then detaches the ones that
// were there (a previous Set), so the cgroup is never unprotected; with
// BPF_F_ALLOW_MULTI every attached program must allow an access.
func setDevicesV2(dir string, devs []specs.LinuxDeviceCgroup) error {
	prog, err := deviceProgram(devs)
	if err != nil {
		return err
	}
	cg, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroup: open %s: %w", dir, err)
	}
	defer unix.Close(cg)
	old := queryDevicePrograms(cg)
	pfd, err := loadDeviceProgram(prog)
	if err == nil {
		attach := bpfAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(pfd), attachType: unix.BPF_CGROUP_DEVICE, attachFlags: unix.BPF_F_ALLOW_MULTI}
		_, err = bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach))
		unix.Close(pfd) // the attachment holds the program
		if err != nil {
			err = fmt.Errorf("bpf prog attach: %w", err)
		}
	}
	if err != nil {
		if allDeny(devs) {
			// Nothing is allowed anyway; without eBPF (old kernel, no
			// CAP_BPF) there is nothing better to do, as in runc.
			return nil
		}
		return fmt.Errorf("cgroup: device filter for %s: %w", dir, err)
	}
	var errs []error
	for _, id := range old {
		get := bpfGetIDAttr{id: id}
		ofd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
		if err != nil {
			continue // already gone
		}
		det := bpfAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(ofd), attachType: unix.BPF_CGROUP_DEVICE}
		if _, err := bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&det), unsafe.Sizeof(det)); err != nil && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("cgroup: detach old device filter %d: %w", id, err))
		}
		unix.Close(ofd)
	}
	return errors.Join(errs...)
}

// queryDevicePrograms lists the ids of device programs attached directly
// to the cgroup open at fd.
func queryDevicePrograms(fd int) []uint32 {
	ids := make([]uint32, 64)
	q := bpfQueryAttr{targetFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE, progIDs: uint64(uintptr(unsafe.Pointer(&ids[0]))), progCnt: uint32(len(ids))}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&q), unsafe.Sizeof(q))
	runtime.KeepAlive(ids)
	if err != nil {
		return nil
	}
	return ids[:q.progCnt]
}

func allDeny(devs []specs.LinuxDeviceCgroup) bool {
	for _, d := range devs {
		if d.Allow {
			return false
		}
	}
	return true
}
