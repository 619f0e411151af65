package seccomp

import (
	"sort"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

//go:generate go run ./gen -o zsyscalls_x86.go

// sysEntry is one row of a generated syscall table.
type sysEntry struct {
	name string
	nr   uint32
}

// sysTable is sorted by name (see gen/), so lookups are a binary search over
// static data and loading the tables costs nothing at program start.
type sysTable []sysEntry

func (t sysTable) lookup(name string) (uint32, bool) {
	i := sort.Search(len(t), func(i int) bool { return t[i].name >= name })
	if i < len(t) && t[i].name == name {
		return t[i].nr, true
	}
	return 0, false
}

// x32Bit marks x32 syscalls: they arrive with AUDIT_ARCH_X86_64 in
// seccomp_data.arch and this bit set in nr.
const x32Bit = 0x40000000

// abi is one syscall ABI the filter can dispatch on. Several ABIs may share
// one AUDIT_ARCH value (x86_64 and x32); they then own disjoint nr ranges.
type abi struct {
	name  specs.Arch
	audit uint32
	table sysTable
	// nrLo..nrHi (inclusive) is the part of the nr space this ABI owns
	// under its audit value.
	nrLo, nrHi uint32
	// bits32: syscall arguments are 32 bits wide. As libseccomp does, only
	// the low halves are compared, against the low 32 bits of the value.
	bits32 bool
}

var (
	abiX86_64 = &abi{name: specs.ArchX86_64, audit: unix.AUDIT_ARCH_X86_64, table: tableX86_64, nrLo: 0, nrHi: x32Bit - 1}
	abiX32    = &abi{name: specs.ArchX32, audit: unix.AUDIT_ARCH_X86_64, table: tableX32, nrLo: x32Bit, nrHi: 0xfffffffe, bits32: true}
	abiX86    = &abi{name: specs.ArchX86, audit: unix.AUDIT_ARCH_I386, table: tableX86, nrLo: 0, nrHi: 0xffffffff, bits32: true}
)

// supportedABIs are the ABIs this compiler has tables for, by OCI name.
var supportedABIs = map[specs.Arch]*abi{
	specs.ArchX86_64: abiX86_64,
	specs.ArchX32:    abiX32,
	specs.ArchX86:    abiX86,
}

// foreignArches are valid OCI architectures that an x86 kernel never reports
// in seccomp_data.arch. Profiles written for several hosts list them (docker's
// archMap does on other hosts); like libseccomp on a foreign arch we accept
// them, and since no syscall can arrive with them they need no code: any
// unlisted arch value ends in the bad-arch action.
var foreignArches = map[specs.Arch]bool{
	specs.ArchARM: true, specs.ArchAARCH64: true, specs.ArchMIPS: true, specs.ArchMIPS64: true,
	specs.ArchMIPS64N32: true, specs.ArchMIPSEL: true, specs.ArchMIPSEL64: true, specs.ArchMIPSEL64N32: true,
	specs.ArchPPC: true, specs.ArchPPC64: true, specs.ArchPPC64LE: true, specs.ArchS390: true,
	specs.ArchS390X: true, specs.ArchPARISC: true, specs.ArchPARISC64: true, specs.ArchRISCV64: true,
	specs.ArchLOONGARCH64: true, specs.ArchM68K: true, specs.ArchSH: true, specs.ArchSHEB: true,
}
