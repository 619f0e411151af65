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
