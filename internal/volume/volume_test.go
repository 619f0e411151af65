package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func TestNameValidation(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"a/b": `create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
		"a":   "create a: volume name is too short, names should be at least two alphanumeric characters",
		"_ab": `create _ab: "_ab" includes invalid characters`,
		"..":  `create ..: ".." includes invalid characters`,
	} {
		_, _, err := s.Create(ctx, name, nil, nil)
		if err == nil || !strings.HasPrefix(err.Error(), want) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: got %v, want %q (invalid argument)", name, err, want)
		}
	}
	if _, _, err := s.Create(ctx, "ok", map[string]string{"foo": "bar"}, nil); err == nil || err.Error() != `create ok: invalid option: "foo"` {
		t.Errorf("bad option: %v", err)
	}
	if vs, _ := s.List(ctx); len(vs) != 0 {
		t.Errorf("failed creates left volumes: %v", vs)
	}
}

func TestCreateGetListRemovePersist(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	v, created, err := s.Create(ctx, "data1", nil, map[string]string{"k": "v"})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	if v.Mountpoint != filepath.Join(root, "data1", "_data") || v.Driver != "local" || v.Labels["k"] != "v" || v.CreatedAt.IsZero() {
		t.Fatalf("bad volume %+v", v)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("no _data: %v", err)
	}
	// The same name again returns the existing one.
	v2, created, err := s.Create(ctx, "data1", nil, map[string]string{"other": "x"})
	if err != nil || created || v2.Labels["k"] != "v" {
		t.Fatalf("re-create: %+v %v %v", v2, created, err)
	}
	anon, _, err := s.Create(ctx, "", nil, nil)
	if err != nil || len(anon.Name) != 64 || !anon.Anonymous() {
		t.Fatalf("anonymous: %+v %v", anon, err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Acquire(ctx, "data1", "ctr1"); err != nil {
		t.Fatal(err)
	}
	err = s.Remove(ctx, "data1", true)
	if !errdefs.IsConflict(err) || err.Error() != "remove data1: volume is in use - [ctr1]" {
		t.Fatalf("remove in use: %v", err)
	}
	if err := s.Acquire(ctx, "nope", "ctr1"); !errdefs.IsNotFound(err) {
		t.Fatalf("acquire missing: %v", err)
	}

	// Reopen: metadata and data survive, users are the caller's to rebuild.
	s2, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := s2.List(ctx)
	if len(vs) != 2 || vs[0].Name != anon.Name && vs[1].Name != anon.Name {
		t.Fatalf("list after reopen: %+v", vs)
	}
	got, err := s2.Get(ctx, "data1")
	if err != nil || got.Labels["k"] != "v" || !got.CreatedAt.Equal(v.CreatedAt) {
		t.Fatalf("get after reopen: %+v %v", got, err)
	}
	if b, _ := os.ReadFile(filepath.Join(got.Mountpoint, "f")); string(b) != "hi" {
		t.Fatalf("data lost: %q", b)
	}
	if err := s2.Remove(ctx, "data1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "data1")); !os.IsNotExist(err) {
		t.Fatalf("volume dir left: %v", err)
	}
	if _, err := s2.Get(ctx, "data1"); !errdefs.IsNotFound(err) || err.Error() != "get data1: no such volume" {
		t.Fatalf("get removed: %v", err)
	}
	if err := s2.Remove(ctx, "data1", true); err != nil {
		t.Fatalf("force remove of a missing volume: %v", err)
	}
	// A crash leftover (no volume.json) is swept.
	_ = os.MkdirAll(filepath.Join(root, "half", "_data"), 0o755)
	if _, err := Open(ctx, root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "half")); !os.IsNotExist(err) {
		t.Fatalf("leftover not swept: %v", err)
	}
}

func TestConcurrentCreate(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	created := make(chan bool, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, c, err := s.CreateAndAcquire(ctx, "shared", nil, nil, "c")
			if err != nil {
				t.Error(err)
			}
			created <- c
		}()
	}
	wg.Wait()
	close(created)
	n := 0
	for c := range created {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d creators, want 1", n)
	}
	if u := s.Users("shared"); len(u) != 1 || u[0] != "c" {
		t.Fatalf("users %v", u)
	}
}

func TestTmpfsVolumeMountRefcount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs")
	}
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := s.Create(ctx, "tv", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Mounted("tv") {
		t.Fatal("mounted before first use")
	}
	p, err := s.Mount(ctx, "tv", "a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(p, unix.MNT_DETACH) })
	if _, err := s.Mount(ctx, "tv", "b"); err != nil {
		t.Fatal(err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(p, &sfs); err != nil || sfs.Type != unix.TMPFS_MAGIC || sfs.Blocks*uint64(sfs.Bsize) != 1<<20 {
		t.Fatalf("not a 1m tmpfs: %+v %v", sfs, err)
	}
	var st unix.Stat_t
	_ = unix.Stat(p, &st)
	if st.Uid != 1000 {
		t.Fatalf("uid option not applied: %d", st.Uid)
	}
	if had, _ := s.Unmount(ctx, "tv", "a"); !had {
		t.Fatal("Unmount: a had it mounted")
	}
	if !s.Mounted("tv") || !isMountpoint(v.Mountpoint) {
		t.Fatal("unmounted while b still uses it")
	}
	_, _ = s.Unmount(ctx, "tv", "b")
	if had, err := s.Unmount(ctx, "tv", "b"); had || err != nil { // idempotent
		t.Fatalf("second Unmount: %v %v", had, err)
	}
	if s.Mounted("tv") || isMountpoint(v.Mountpoint) {
		t.Fatal("still mounted after the last user")
	}
}

func TestBindVolume(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: bind mounts")
	}
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	_ = os.WriteFile(filepath.Join(src, "x"), []byte("host"), 0o644)
	if _, _, err := s.Create(ctx, "bv", map[string]string{"type": "none", "o": "bind"}, nil); err == nil {
		t.Fatal("bind without device accepted")
	}
	if _, _, err := s.Create(ctx, "bv", map[string]string{"type": "none", "device": src, "o": "bind,ro"}, nil); err != nil {
		t.Fatal(err)
	}
	p, err := s.Mount(ctx, "bv", "a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(p, unix.MNT_DETACH) })
	if b, _ := os.ReadFile(filepath.Join(p, "x")); string(b) != "host" {
		t.Fatalf("bind content %q", b)
	}
	if err := os.WriteFile(filepath.Join(p, "y"), nil, 0o644); !errorsIs(err, unix.EROFS) {
		t.Fatalf("write to ro bind: %v", err)
	}
	if _, err := s.Unmount(ctx, "bv", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "bv", false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(src, "x")); string(b) != "host" {
		t.Fatal("removing a bind volume touched the device's content")
	}
}

func errorsIs(err error, target error) bool {
	for err != nil {
		if err == target {
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func TestCopyUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown and mknod")
	}
	ctx := context.Background()
	rootfs := t.TempDir()
	src := filepath.Join(rootfs, "var", "lib", "app")
	_ = os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	_ = os.WriteFile(filepath.Join(src, "sub", "f"), []byte("content"), 0o640)
	_ = os.Chown(filepath.Join(src, "sub", "f"), 123, 456)
	xattrOK := unix.Setxattr(filepath.Join(src, "sub", "f"), "user.berth", []byte("v1"), 0) == nil
	_ = unix.Chmod(src, 0o1750)
	_ = os.Chown(src, 999, 998)
	_ = os.Symlink("/etc/passwd", filepath.Join(src, "link"))
	_ = unix.Mkfifo(filepath.Join(src, "fifo"), 0o600)
	// An absolute symlink in the path resolves inside the rootfs.
	_ = os.Symlink("/var/lib/app", filepath.Join(rootfs, "app"))

	dst := t.TempDir()
	copied, err := CopyUp(ctx, rootfs, "/app", dst)
	if err != nil || !copied {
		t.Fatal(copied, err)
	}
	var st unix.Stat_t
	_ = unix.Stat(filepath.Join(dst, "sub", "f"), &st)
	if st.Uid != 123 || st.Gid != 456 || st.Mode&0o7777 != 0o640 {
		t.Fatalf("file meta %d:%d %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	_ = unix.Stat(dst, &st)
	if st.Uid != 999 || st.Gid != 998 || st.Mode&0o7777 != 0o1750 {
		t.Fatalf("root meta %d:%d %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "sub", "f")); string(b) != "content" {
		t.Fatalf("content %q", b)
	}
	if xattrOK {
		buf := make([]byte, 16)
		n, err := unix.Getxattr(filepath.Join(dst, "sub", "f"), "user.berth", buf)
		if err != nil || string(buf[:n]) != "v1" {
			t.Fatalf("xattr not copied: %q %v", buf[:n], err)
		}
	}
	if l, _ := os.Readlink(filepath.Join(dst, "link")); l != "/etc/passwd" {
		t.Fatalf("symlink %q", l)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("fifo %v %v", fi, err)
	}
	// A second copy-up into a non-empty volume does nothing.
	_ = os.WriteFile(filepath.Join(src, "new"), nil, 0o644)
	copied, err = CopyUp(ctx, rootfs, "/app", dst)
	if err != nil || copied {
		t.Fatalf("copy into non-empty volume: %v %v", copied, err)
	}
	// A path that escapes with .. stays in the rootfs; a missing one copies nothing.
	empty := t.TempDir()
	if copied, err := CopyUp(ctx, rootfs, "/../../../nonexistent", empty); err != nil || copied {
		t.Fatalf("missing path: %v %v", copied, err)
	}
}
