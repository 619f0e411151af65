package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The raw cache keys a compiled program by the exact JSON text of the spec's
// seccomp section instead of its decoded form. A fresh berth-runtime create
// that finds its section there need not decode the section at all: with
// docker's default profile that decoding is most of config.json's (~3 ms of
// page faults and allocation per container on a small VM). Files live beside
// Compile's as <sha256 of "raw", compiler version, arch, kernel features and
// the text>.bpf, in Program's binary format (CRC-checked). Equal text always
// means an equal section; unequal text (whitespace, key order) only costs a
// miss, after which the caller compiles through Compile and calls StoreRaw.

func rawKey(raw []byte) [32]byte {
	h := sha256.New()
	var n [8]byte
	for _, s := range []string{"raw", compilerVersion, goarch} {
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.LittleEndian.PutUint64(n[:], uint64(kernelFeatures()))
	h.Write(n[:])
	h.Write(raw)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func rawPath(dir string, raw []byte) string {
	k := rawKey(raw)
	return filepath.Join(dir, "raw-"+hex.EncodeToString(k[:])+".bpf")
}

// LookupRaw returns the program StoreRaw stored for the seccomp section whose
// JSON text is raw, or nil. A file that is not a well-formed program, or a
// directory or file another user could have written, is ignored.
func LookupRaw(raw []byte, o *Options) *Program {
	if o == nil || o.CacheDir == "" || !trustedDir(o.CacheDir) {
		return nil
	}
	b, ok := readTrusted(rawPath(o.CacheDir, raw))
	if !ok {
		return nil
	}
	p := &Program{}
	if p.UnmarshalBinary(b) != nil {
		return nil
	}
	return p
}

// StoreRaw records p as the compiled form of the seccomp section whose JSON
// text is raw. p must come from Compile of that very section. Errors only
// cost a later process a decode, so they are not reported.
func StoreRaw(raw []byte, p *Program, o *Options) {
	if o == nil || o.CacheDir == "" || p == nil {
		return
	}
	_ = writeCache(rawPath(o.CacheDir, raw), p)
}

// trustedDir: the cache is loaded into containers as is, so it must be a
// directory of ours that nobody else can write to.
func trustedDir(dir string) bool {
	var st unix.Stat_t
	if unix.Lstat(dir, &st) != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && int(st.Uid) == os.Geteuid() && st.Mode&0o022 == 0
}

// readTrusted reads a regular file of ours that nobody else can write to.
func readTrusted(path string) ([]byte, bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Geteuid() ||
		st.Mode&0o022 != 0 || st.Size > 1<<20 {
		return nil, false
	}
	b := make([]byte, st.Size)
	n, err := unix.Read(fd, b)
	if err != nil || int64(n) != st.Size {
		return nil, false
	}
	return b, true
}
