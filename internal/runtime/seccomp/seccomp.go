// Package seccomp compiles the seccomp section of an OCI runtime spec into a
// classic BPF program, caches the result, and loads it into the calling thread.
//
// It is pure Go: the syscall tables are generated from the kernel UAPI headers
// (gen/), the code generator is ours (compile.go), and loading is one seccomp(2)
// call. That keeps berth-runtime free of libseccomp, lets the parent compile
// once and hand the child raw BPF (Program.MarshalBinary), and lets the filter
// dispatch on syscall numbers with a binary search instead of libseccomp's
// linear chain.
//
// Semantics follow runc + libseccomp where the OCI spec is silent:
//   - names unknown on an ABI are skipped; unknown actions, operators, flags
//     and architectures are errors naming them;
//   - the native ABI is always filtered; a syscall from an unlisted ABI kills
//     the thread (libseccomp's bad-arch action);
//   - architectures of other hosts (arm, s390x...) are accepted and ignored;
//   - rules whose action equals the default action are dropped;
//   - per syscall, as libseccomp 2.5 builds it: the first unconditional rule
//     wins over any other rule; otherwise conditional rules are tried in
//     profile order, the first match wins (libseccomp orders rules on
//     different arguments by argument index instead, and refuses two rules
//     with one condition and different actions; both only matter when rules
//     overlap);
//   - SCMP_CMP_MASKED_EQ compares (arg & value) with (valueTwo & value);
//   - arguments compared more than once in one rule split into ORed rules;
//   - on 32-bit ABIs (x86, x32) only the low 32 bits of arguments count;
//   - ERRNO and TRACE without errnoRet use EPERM;
//   - syscalls above the highest one the profile names get ENOSYS when the
//     default action denies.
package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var goarch = runtime.GOARCH

// compilerVersion is part of every cache key: bump it when the generated code
// changes for the same input.
const compilerVersion = "berth-seccomp-1"

// Options tune Compile. The zero value (or nil) is fine.
type Options struct {
	// CacheDir, when set, holds compiled programs as <sha256>.bpf files so
	// that a fresh process (berth-runtime is one per container) skips the
	// compiler. It must be writable only by root: a program read from it is
	// loaded as is.
	CacheDir string
}

// Program is a compiled filter, ready for Load. Programs returned by Compile
// are shared through its cache: treat them as read-only.
type Program struct {
	// Filter is the classic BPF program passed to seccomp(2).
	Filter []unix.SockFilter
	// Flags are the SECCOMP_FILTER_FLAG_* bits for seccomp(2), including
	// NEW_LISTENER (and TSYNC_ESRCH with TSYNC) when NeedsListener.
	Flags uint32
	// NeedsListener: the profile uses SCMP_ACT_NOTIFY, Load returns a
	// listener fd that the runtime sends to the spec's listenerPath.
	NeedsListener bool
}

var memCache = struct {
	sync.Mutex
	m map[[32]byte]*Program
}{m: map[[32]byte]*Program{}}

const memCacheMax = 128

// Compile validates s and compiles it, returning a cached Program when the
// same section (same canonical JSON, arch, kernel features) was compiled
// before, in this process or, with o.CacheDir, by any process.
func Compile(s *specs.LinuxSeccomp, o *Options) (*Program, error) {
	if s == nil {
		return nil, invalid("no seccomp section")
	}
	feat := kernelFeatures()
	key := cacheKey(s, feat)
	memCache.Lock()
	p := memCache.m[key]
	memCache.Unlock()
	if p != nil {
		return p, nil
	}
	var path string
	if o != nil && o.CacheDir != "" {
		path = filepath.Join(o.CacheDir, hex.EncodeToString(key[:])+".bpf")
		if b, ok := readTrusted(path); ok && trustedDir(o.CacheDir) {
			p = &Program{}
			if p.UnmarshalBinary(b) == nil {
				remember(key, p)
				return p, nil
			}
		}
	}
	p, err := compile(s, feat, false)
	if err != nil {
		return nil, err
	}
	remember(key, p)
	if path != "" {
		// A failed write only costs the next process a compile.
		_ = writeCache(path, p)
	}
	return p, nil
}

func remember(key [32]byte, p *Program) {
	memCache.Lock()
	if len(memCache.m) >= memCacheMax {
		clear(memCache.m)
	}
	memCache.m[key] = p
	memCache.Unlock()
}

// cacheKey hashes a canonical encoding of s: every field in declaration
// order, strings and lists length-prefixed, pointers with a presence byte.
// It is equivalent to hashing canonical JSON but ~10x cheaper (no reflection),
// which matters because the daemon calls Compile for every container.
// TestCacheKeyCoversAllFields fails when runtime-spec grows a field this
// does not encode.
func cacheKey(s *specs.LinuxSeccomp, feat features) [32]byte {
	b := keyBufs.Get().(*[]byte)
	buf := (*b)[:0]
	u64 := func(v uint64) { buf = binary.LittleEndian.AppendUint64(buf, v) }
	str := func(v string) {
		u64(uint64(len(v)))
		buf = append(buf, v...)
	}
	ptr := func(v *uint) {
		if v == nil {
			u64(0)
			return
		}
		u64(1)
		u64(uint64(*v))
	}
	str(compilerVersion)
	str(goarch)
	u64(uint64(feat))
	str(string(s.DefaultAction))
	ptr(s.DefaultErrnoRet)
	u64(uint64(len(s.Architectures)))
	for _, a := range s.Architectures {
		str(string(a))
	}
	u64(uint64(len(s.Flags)))
	for _, f := range s.Flags {
		str(string(f))
	}
	str(s.ListenerPath)
	str(s.ListenerMetadata)
	u64(uint64(len(s.Syscalls)))
	for _, sc := range s.Syscalls {
		u64(uint64(len(sc.Names)))
		for _, n := range sc.Names {
			str(n)
		}
		str(string(sc.Action))
		ptr(sc.ErrnoRet)
		u64(uint64(len(sc.Args)))
		for _, a := range sc.Args {
			u64(uint64(a.Index))
			u64(a.Value)
			u64(a.ValueTwo)
			str(string(a.Op))
		}
	}
	k := sha256.Sum256(buf)
	*b = buf
	keyBufs.Put(b)
	return k
}

var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func writeCache(path string, p *Program) error {
	b, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if !trustedDir(filepath.Dir(path)) {
		return fmt.Errorf("seccomp cache %s: not a directory only we can write: %w", filepath.Dir(path), errdefs.ErrFailedPrecondition)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.bpf")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// compile is Compile without the caches.
func compile(s *specs.LinuxSeccomp, feat features, linear bool) (*Program, error) {
	c, err := plan(s)
	if err != nil {
		return nil, err
	}
	if c.listener && s.ListenerPath == "" {
		return nil, invalid("SCMP_ACT_NOTIFY needs listenerPath to send the listener fd to")
	}
	if err := feat.check(c); err != nil {
		return nil, err
	}
	f, err := emit(c, linear)
	if err != nil {
		return nil, err
	}
	return &Program{Filter: f, Flags: c.flags, NeedsListener: c.listener}, nil
}

// ErrUnsupported is wrapped by errors about a flag or action the running
// kernel lacks.
var ErrUnsupported = fmt.Errorf("not supported by this kernel: %w", errdefs.ErrNotImplemented)
