package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMountRelativeFallback mounts 150 layers through the pre-6.8 path
// (paths relative to their common directory from a thread of its own).
func TestMountRelativeFallback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts overlay")
	}
	forceRelative = true
	defer func() { forceRelative = false }()
	base := t.TempDir()
	var lowers []string
	for i := 0; i < 150; i++ {
		d := filepath.Join(base, "snapshots", fmt.Sprint(i), "fs")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i)), []byte("x"), 0o644)
		lowers = append([]string{d}, lowers...)
	}
	upper, work := filepath.Join(base, "snapshots", "u", "fs"), filepath.Join(base, "snapshots", "u", "work")
	os.MkdirAll(upper, 0o755)
	os.MkdirAll(work, 0o755)
	m := []Mount{{Type: "overlay", Source: "overlay", Options: []string{"workdir=" + work, "upperdir=" + upper, "lowerdir=" + strings.Join(lowers, ":")}}}
	if len(strings.Join(m[0].Options, ",")) < os.Getpagesize() {
		t.Fatal("options fit in a page: not testing the fallback")
	}
	wd, _ := os.Getwd()
	target := t.TempDir()
	if err := MountAll(m, target); err != nil {
		t.Fatal(err)
	}
	defer UnmountAll(target)
	for _, f := range []string{"f0", "f149"} {
		if _, err := os.Stat(filepath.Join(target, f)); err != nil {
			t.Error(err)
		}
	}
	if now, _ := os.Getwd(); now != wd {
		t.Errorf("process cwd changed to %s", now)
	}
}
