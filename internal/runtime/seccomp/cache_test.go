package seccomp

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestMarshalRoundTrip(t *testing.T) {
	p := mustCompile(t, DefaultProfile())
	p.Flags, p.NeedsListener = flagNewListener|flagTSYNC, true
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var q Program
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, &q) {
		t.Fatal("round trip changed the program")
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(bytes.Clone(b), 0), []byte("BSECCMP\x02" + string(b[8:]))} {
		if err := new(Program).UnmarshalBinary(bad); err == nil {
			t.Errorf("accepted a bad encoding of %d bytes", len(bad))
		}
	}
	flip := bytes.Clone(b)
	flip[40] ^= 1
	if err := new(Program).UnmarshalBinary(flip); err == nil {
		t.Error("accepted a flipped bit")
	}
}

func TestCache(t *testing.T) {
	dir := t.TempDir()
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "cachetest"}, Action: specs.ActAllow}}}
	p1, err := Compile(s, &Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Compile(s, &Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 {
		t.Error("second Compile did not hit the in-memory cache")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.bpf"))
	if len(files) != 1 {
		t.Fatalf("cache dir holds %v", files)
	}

	// A new process: only the disk cache. Mark the file to prove it is read.
	clear(memCache.m)
	marked := *p1
	marked.Filter = slices.Clone(p1.Filter)
	marked.Filter[len(marked.Filter)-1].K = 0x7fff0000 // distinct but valid
	b, _ := marked.MarshalBinary()
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	p3, err := Compile(s, &Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p3, &marked) {
		t.Error("Compile did not use the disk cache")
	}

	// A corrupt cache file is ignored and rewritten.
	clear(memCache.m)
	if err := os.WriteFile(files[0], []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	p4, err := Compile(s, &Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p4.Filter, p1.Filter) {
		t.Error("corrupt cache file not recompiled")
	}
	if b, _ := os.ReadFile(files[0]); !bytes.HasPrefix(b, []byte(magic)) {
		t.Error("corrupt cache file not rewritten")
	}

	// A different profile is a different key.
	s2 := *s
	s2.DefaultAction = specs.ActKill
	p5, err := Compile(&s2, &Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(p5.Filter, p1.Filter) {
		t.Error("different profiles compiled to the same program")
	}
}

func TestCacheKeyCoversAllFields(t *testing.T) {
	// The key encoder lists fields by hand: a new runtime-spec field must
	// be added there (and here).
	for typ, n := range map[reflect.Type]int{
		reflect.TypeOf(specs.LinuxSeccomp{}):    7,
		reflect.TypeOf(specs.LinuxSyscall{}):    4,
		reflect.TypeOf(specs.LinuxSeccompArg{}): 4,
	} {
		if typ.NumField() != n {
			t.Errorf("%s has %d fields, cacheKey encodes %d", typ, typ.NumField(), n)
		}
	}
	base := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 2, ValueTwo: 3, Op: specs.OpEqualTo}}}}}
	}
	muts := []func(s *specs.LinuxSeccomp){
		func(s *specs.LinuxSeccomp) { s.DefaultAction = specs.ActKill },
		func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = uintp(1) },
		func(s *specs.LinuxSeccomp) { s.Architectures = []specs.Arch{specs.ArchX86} },
		func(s *specs.LinuxSeccomp) { s.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog} },
		func(s *specs.LinuxSeccomp) { s.ListenerPath = "/x" },
		func(s *specs.LinuxSeccomp) { s.ListenerMetadata = "m" },
		func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names = []string{"rea", "d"} },
		func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = specs.ActLog },
		func(s *specs.LinuxSeccomp) { s.Syscalls[0].ErrnoRet = uintp(0) },
		func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args[0].Index = 0 },
		func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args[0].Value = 0 },
		func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args[0].ValueTwo = 0 },
		func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args[0].Op = specs.OpNotEqual },
		func(s *specs.LinuxSeccomp) { s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{}) },
	}
	k0 := cacheKey(base(), 0)
	if cacheKey(base(), 1) == k0 {
		t.Error("kernel features not in the key")
	}
	seen := map[[32]byte]int{k0: -1}
	for i, m := range muts {
		s := base()
		m(s)
		k := cacheKey(s, 0)
		if j, dup := seen[k]; dup {
			t.Errorf("mutation %d gives the same key as %d", i, j)
		}
		seen[k] = i
	}
}

func TestDefaultProfileIsACopy(t *testing.T) {
	a := DefaultProfile()
	a.Syscalls[0].Names[0] = "mutated"
	*a.DefaultErrnoRet = 99
	a.Syscalls = a.Syscalls[:1]
	b := DefaultProfile()
	if b.Syscalls[0].Names[0] == "mutated" || *b.DefaultErrnoRet == 99 || len(b.Syscalls) < 10 {
		t.Fatal("DefaultProfile returned shared state")
	}
}
