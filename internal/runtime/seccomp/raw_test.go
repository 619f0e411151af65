package seccomp

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestRawCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	o := &Options{CacheDir: dir}
	raw := []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`)
	if LookupRaw(raw, o) != nil {
		t.Fatal("hit in an empty cache")
	}
	p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}})
	StoreRaw(raw, p, o)
	got := LookupRaw(raw, o)
	if got == nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("LookupRaw after StoreRaw = %v, want the stored program", got)
	}
	// Any other text, even one byte, is another key: no stale program.
	other := []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["write"],"action":"SCMP_ACT_ALLOW"}]}`)
	if LookupRaw(other, o) != nil {
		t.Error("a different section hit the cache")
	}
	if LookupRaw(append([]byte(" "), raw...), o) != nil {
		t.Error("different text hit the cache")
	}

	files, _ := filepath.Glob(filepath.Join(dir, "raw-*.bpf"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v", files)
	}
	// A corrupt file is ignored, and StoreRaw replaces it.
	if err := os.WriteFile(files[0], []byte("BSECCMP\x01garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if LookupRaw(raw, o) != nil {
		t.Error("a corrupt cache file was used")
	}
	StoreRaw(raw, p, o)
	if LookupRaw(raw, o) == nil {
		t.Error("StoreRaw did not replace the corrupt file")
	}

	// A file or directory others can write is not trusted.
	if err := os.Chmod(files[0], 0o666); err != nil {
		t.Fatal(err)
	}
	if LookupRaw(raw, o) != nil {
		t.Error("a world-writable cache file was used")
	}
	if err := os.Chmod(files[0], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if LookupRaw(raw, o) != nil {
		t.Error("a world-writable cache directory was used")
	}
	clear(memCache.m)
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	if _, err := Compile(s, o); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "[0-9a-f]*.bpf")); len(files) != 0 {
		t.Errorf("Compile wrote %v into a world-writable directory", files)
	}
}
