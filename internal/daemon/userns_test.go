package daemon

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSubRanges(t *testing.T) {
	f := filepath.Join(t.TempDir(), "subuid")
	if err := os.WriteFile(f, []byte("alice:100000:65536\n# comment\nbob:165536:1000\n1001:300000:10\nbob:400000:5"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A new owner gets the range after every allocated one; a known one none.
	if err := ensureSubRange(f, "berth"); err != nil {
		t.Fatal(err)
	}
	if err := ensureSubRange(f, "alice"); err != nil {
		t.Fatal(err)
	}
	got, err := subRanges(f, "berth", "999")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (specs.LinuxIDMapping{ContainerID: 0, HostID: 400005, Size: 65536}) {
		t.Errorf("berth: %+v", got)
	}
	// Several ranges follow each other inside the container; a numeric
	// owner matches the uid.
	got, err = subRanges(f, "bob", "1001")
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 165536, Size: 1000}, {ContainerID: 1000, HostID: 300000, Size: 10}, {ContainerID: 1010, HostID: 400000, Size: 5}}
	if len(got) != len(want) {
		t.Fatalf("bob: %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("bob[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := subRanges(f, "carol", "1002"); err == nil {
		t.Error("carol has no range but got one")
	}
	b, _ := os.ReadFile(f)
	if string(b) != "alice:100000:65536\n# comment\nbob:165536:1000\n1001:300000:10\nbob:400000:5\nberth:400005:65536\n" {
		t.Errorf("file after ensureSubRange:\n%s", b)
	}
}
