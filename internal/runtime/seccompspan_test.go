package runtime

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/runtime/seccomp"
)

func TestSeccompSpan(t *testing.T) {
	sec := `{"defaultAction":"SCMP_ACT_ERRNO","x":"}]\"{","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`
	doc := `{"ociVersion":"1.0.2","process":{"args":["{"]},"linux":{"a":[1,{"b":null}],"seccomp":` + sec + ` ,"c":true}}`
	s, e, ss, se, ok := seccompSpan([]byte(doc))
	if !ok || doc[s:e] != sec || doc[ss:se] != `[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]` {
		t.Fatalf("seccompSpan = %d %d %d %d %v", s, e, ss, se, ok)
	}
	for name, bad := range map[string]string{
		"no linux":          `{"ociVersion":"1.0.2"}`,
		"no seccomp":        `{"linux":{"namespaces":[]}}`,
		"duplicate":         `{"linux":{"seccomp":{},"seccomp":{}}}`,
		"duplicate linux":   `{"linux":{"seccomp":{}},"linux":{}}`,
		"case":              `{"linux":{"Seccomp":{},"seccomp":{}}}`,
		"escaped key":       `{"linux":{"seccom\u0070":{}}}`,
		"syscalls case":     `{"linux":{"seccomp":{"Syscalls":[],"syscalls":[]}}}`,
		"syscalls not list": `{"linux":{"seccomp":{"syscalls":null}}}`,
		"truncated":         `{"linux":{"seccomp":{"syscalls":[`,
		"not an object":     `[1]`,
	} {
		if _, _, _, _, ok := seccompSpan([]byte(bad)); ok {
			t.Errorf("%s: accepted %s", name, bad)
		}
	}
}

// loadSpecCached must return the spec loadSpec returns, but for the
// syscalls it takes from the cache, and never a program compiled for
// another section.
func TestLoadSpecCached(t *testing.T) {
	r := &Runtime{Root: t.TempDir()}
	bundle := t.TempDir()
	spec := testSpec("true")
	spec.Linux.Seccomp = seccomp.DefaultProfile()
	write := func() {
		b, err := json.MarshalIndent(spec, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write()
	full, _, err := loadSpec(bundle)
	if err != nil {
		t.Fatal(err)
	}
	s1, _, hint, err := loadCachedBundle(r, bundle)
	if err != nil || hint == nil || hint.prog != nil {
		t.Fatalf("first load: err %v, hint %+v (want a miss)", err, hint)
	}
	if !reflect.DeepEqual(s1, full) {
		t.Fatal("a miss changed the spec")
	}
	prog, err := r.compileSeccomp(full.Linux.Seccomp)
	if err != nil {
		t.Fatal(err)
	}
	seccomp.StoreRaw(hint.raw, prog, r.seccompOpts())

	s2, raw, hint, err := loadCachedBundle(r, bundle)
	if err != nil || hint == nil || hint.prog == nil {
		t.Fatalf("second load: err %v, hint %+v (want a hit)", err, hint)
	}
	if !reflect.DeepEqual(hint.prog, prog) {
		t.Error("the hit returned another program")
	}
	if b, _ := os.ReadFile(filepath.Join(bundle, "config.json")); string(b) != string(raw) {
		t.Error("the hit did not return the document's own text")
	}
	if len(s2.Linux.Seccomp.Syscalls) != 0 {
		t.Error("the hit decoded the syscalls")
	}
	want := *full.Linux.Seccomp
	want.Syscalls = s2.Linux.Seccomp.Syscalls
	if !reflect.DeepEqual(s2.Linux.Seccomp, &want) {
		t.Errorf("seccomp section differs beyond its syscalls: %+v", s2.Linux.Seccomp)
	}
	s2.Linux.Seccomp, full.Linux.Seccomp = nil, nil
	if !reflect.DeepEqual(s2, full) {
		t.Error("the hit changed the rest of the spec")
	}

	// A changed profile must not reuse the stored program.
	spec.Linux.Seccomp.Syscalls = spec.Linux.Seccomp.Syscalls[1:]
	write()
	if _, _, hint, err := loadCachedBundle(r, bundle); err != nil || hint == nil || hint.prog != nil {
		t.Fatalf("changed profile: err %v, hint %+v (want a miss)", err, hint)
	}

	// A malformed document is reported as loadSpec reports it, hit or not.
	spec.Linux.Seccomp = seccomp.DefaultProfile()
	write()
	b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	bad := bytes.Replace(b, []byte(`"ociVersion": "`+specs.Version+`"`), []byte(`"ociVersion": 5`), 1)
	if bytes.Equal(bad, b) {
		t.Fatal("test document has no ociVersion to break")
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, ok := seccompSpan(bad); !ok {
		t.Fatal("the broken document should still have a seccomp span")
	}
	_, _, err1 := loadSpec(bundle)
	_, _, _, err2 := loadCachedBundle(r, bundle)
	if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
		t.Errorf("malformed document: loadSpec %v, loadSpecCached %v", err1, err2)
	}
}

func TestDedupDeviceRules(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	allowNull := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i(1), Minor: i(3), Access: "rwm"}
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	pts := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i(136), Access: "rwm"}
	in := []specs.LinuxDeviceCgroup{denyAll, allowNull, pts, allowNull, pts, denyAll, allowNull, allowNull}
	want := []specs.LinuxDeviceCgroup{denyAll, allowNull, pts, denyAll, allowNull}
	if got := dedupDeviceRules(in); !reflect.DeepEqual(got, want) {
		t.Errorf("dedupDeviceRules =\n%+v\nwant\n%+v", got, want)
	}
	// the daemon's specs carry the defaults already: nothing is added twice
	s := testSpec("true")
	s.Linux.Resources.Devices = withDefaultDevices(s).Devices
	if a, b := len(withDefaultDevices(s).Devices), len(s.Linux.Resources.Devices); a != b {
		t.Errorf("defaults appended twice: %d rules, then %d", b, a)
	}
}

// loadCachedBundle is loadSpecCached of the bundle's config.json.
func loadCachedBundle(r *Runtime, bundle string) (*specs.Spec, []byte, *seccompHint, error) {
	b, err := readSpec(bundle)
	if err != nil {
		return nil, nil, nil, err
	}
	return r.loadSpecCached(b)
}
