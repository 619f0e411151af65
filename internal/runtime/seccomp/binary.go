package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"golang.org/x/sys/unix"
)

// Serialized Program (little endian), as sent from the runtime parent to the
// container's init and stored in Options.CacheDir:
//
//	offset  size  field
//	0       8     magic "BSECCMP\x01" (the last byte is the format version)
//	8       4     flags (SECCOMP_FILTER_FLAG_*)
//	12      1     1 if a listener fd is needed, else 0
//	13      4     n, number of instructions
//	17      8*n   instructions: code u16, jt u8, jf u8, k u32 (struct sock_filter)
//	17+8n   4     CRC-32 (IEEE) of everything before it
const magic = "BSECCMP\x01"

const headerLen = 17

// MarshalBinary implements encoding.BinaryMarshaler.
func (p *Program) MarshalBinary() ([]byte, error) {
	if len(p.Filter) == 0 || len(p.Filter) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("seccomp: cannot marshal a program of %d instructions", len(p.Filter))
	}
	b := make([]byte, headerLen, headerLen+8*len(p.Filter)+4)
	copy(b, magic)
	binary.LittleEndian.PutUint32(b[8:], p.Flags)
	if p.NeedsListener {
		b[12] = 1
	}
	binary.LittleEndian.PutUint32(b[13:], uint32(len(p.Filter)))
	for _, f := range p.Filter {
		b = binary.LittleEndian.AppendUint16(b, f.Code)
		b = append(b, f.Jt, f.Jf)
		b = binary.LittleEndian.AppendUint32(b, f.K)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b)), nil
}

var errFormat = errors.New("seccomp: not a serialized program")

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (p *Program) UnmarshalBinary(b []byte) error {
	if len(b) < headerLen+4 || string(b[:8]) != magic {
		return errFormat
	}
	n := binary.LittleEndian.Uint32(b[13:])
	if n == 0 || n > unix.BPF_MAXINSNS || uint64(len(b)) != headerLen+8*uint64(n)+4 {
		return fmt.Errorf("%w: bad length", errFormat)
	}
	body := b[:len(b)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return fmt.Errorf("%w: checksum mismatch", errFormat)
	}
	if b[12] > 1 {
		return fmt.Errorf("%w: bad listener byte", errFormat)
	}
	f := make([]unix.SockFilter, n)
	for i := range f {
		o := headerLen + 8*i
		f[i] = unix.SockFilter{
			Code: binary.LittleEndian.Uint16(b[o:]),
			Jt:   b[o+2],
			Jf:   b[o+3],
			K:    binary.LittleEndian.Uint32(b[o+4:]),
		}
	}
	*p = Program{Filter: f, Flags: binary.LittleEndian.Uint32(b[8:]), NeedsListener: b[12] == 1}
	return nil
}
