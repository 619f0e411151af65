package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestShiftCopy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown to other users")
	}
	src, dst := t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "d"), 0o755))
	must(os.WriteFile(filepath.Join(src, "d/suid"), []byte("x"), 0o755))
	must(unix.Chmod(filepath.Join(src, "d/suid"), 0o4755))
	must(os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644))
	must(os.Lchown(filepath.Join(src, "f"), 5, 6))
	must(os.Link(filepath.Join(src, "f"), filepath.Join(src, "hard")))
	must(os.Symlink("f", filepath.Join(src, "l")))
	must(os.Lchown(filepath.Join(src, "l"), 7, 7))
	must(os.Chmod(src, 0o751))

	m := []IDMap{{Container: 0, Host: 100000, Size: 65536}}
	must(ShiftCopy(context.Background(), src, dst, m, m))
	for p, want := range map[string][2]uint32{".": {100000, 100000}, "d": {100000, 100000}, "d/suid": {100000, 100000}, "f": {100005, 100006}, "hard": {100005, 100006}, "l": {100007, 100007}} {
		var st unix.Stat_t
		must(unix.Lstat(filepath.Join(dst, p), &st))
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("%s: %d:%d, want %d:%d", p, st.Uid, st.Gid, want[0], want[1])
		}
	}
	var a, b, s, r unix.Stat_t
	must(unix.Lstat(filepath.Join(dst, "f"), &a))
	must(unix.Lstat(filepath.Join(dst, "hard"), &b))
	must(unix.Lstat(filepath.Join(dst, "d/suid"), &s))
	must(unix.Lstat(dst, &r))
	if a.Ino != b.Ino {
		t.Error("hard link not kept")
	}
	if s.Mode&0o7777 != 0o4755 {
		t.Errorf("setuid file mode %o after shift", s.Mode&0o7777)
	}
	if r.Mode&0o777 != 0o751 {
		t.Errorf("root mode %o", r.Mode&0o777)
	}
	// The source is untouched.
	var o unix.Stat_t
	must(unix.Lstat(filepath.Join(src, "f"), &o))
	if o.Uid != 5 {
		t.Errorf("source changed: uid %d", o.Uid)
	}
	// An id outside every range fails.
	must(os.Lchown(filepath.Join(src, "f"), 70000, 0))
	if err := ShiftCopy(context.Background(), src, t.TempDir(), m, m); err == nil {
		t.Error("uid 70000 shifted with a 65536-id range")
	}
}
