package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

type ent struct {
	h    tar.Header
	body string
}

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.h
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func file(name, body string) ent { return ent{h: tar.Header{Name: name}, body: body} }
func dir(name string) ent        { return ent{h: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}} }
func symlink(name, target string) ent {
	return ent{h: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}
func hardlink(name, target string) ent {
	return ent{h: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}}
}

func needRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}

func apply(t testing.TB, dir string, data []byte, o ApplyOptions) (int64, error) {
	t.Helper()
	return Apply(context.Background(), dir, bytes.NewReader(data), o)
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// vfs_cap_data revision 2 granting cap_net_bind_service, effective.
var capNetBind = string([]byte{0x01, 0, 0, 0x02, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

func TestApplyEntryTypes(t *testing.T) {
	needRoot(t, "owners, device nodes and security.capability need CAP_CHOWN/CAP_MKNOD/CAP_SETFCAP")
	mt := time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC)
	at := time.Date(2021, 1, 2, 3, 4, 5, 987654321, time.UTC)
	data := mkTar(t,
		ent{h: tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o1750, Uid: 1000, Gid: 1001, ModTime: mt, AccessTime: at}},
		ent{h: tar.Header{Name: "d/suid", Mode: 0o4755, Uid: 0, Gid: 0, ModTime: mt, AccessTime: at,
			PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v", "SCHILY.xattr.security.capability": capNetBind}}, body: "hello"},
		ent{h: tar.Header{Name: "d/sgid", Mode: 0o2711, Uid: 33, Gid: 44, ModTime: mt}, body: "x"},
		ent{h: tar.Header{Name: "d/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd", Uid: 5, Gid: 6, ModTime: mt}},
		ent{h: tar.Header{Name: "d/hard", Typeflag: tar.TypeLink, Linkname: "d/suid"}},
		ent{h: tar.Header{Name: "d/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666, ModTime: mt}},
		ent{h: tar.Header{Name: "d/loop", Typeflag: tar.TypeBlock, Devmajor: 7, Devminor: 0, Mode: 0o660, Gid: 6, ModTime: mt}},
		ent{h: tar.Header{Name: "d/fifo", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: mt}},
		ent{h: tar.Header{Name: "d/empty", Mode: 0o400, ModTime: mt}},
	)
	root := t.TempDir()
	n, err := apply(t, root, data, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Errorf("size = %d, want 6", n)
	}
	check := func(name string, typ, mode uint32, uid, gid uint32) unix.Stat_t {
		t.Helper()
		st := lstat(t, filepath.Join(root, name))
		if st.Mode&unix.S_IFMT != typ || (typ != unix.S_IFLNK && st.Mode&0o7777 != mode) || st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: mode %o uid %d gid %d, want type %o mode %o %d:%d", name, st.Mode, st.Uid, st.Gid, typ, mode, uid, gid)
		}
		return st
	}
	st := check("d", unix.S_IFDIR, 0o1750, 1000, 1001)
	if st.Mtim != timespec(mt) {
		t.Errorf("dir mtime %v, want %v (set after its children)", st.Mtim, timespec(mt))
	}
	st = check("d/suid", unix.S_IFREG, 0o4755, 0, 0)
	if st.Mtim != timespec(mt) || st.Atim != timespec(at) {
		t.Errorf("file times %v %v", st.Mtim, st.Atim)
	}
	if st.Nlink != 2 {
		t.Errorf("suid nlink = %d, want 2 (hard link)", st.Nlink)
	}
	if h := lstat(t, filepath.Join(root, "d/hard")); h.Ino != st.Ino {
		t.Error("hard link is not the same inode")
	}
	if b, _ := os.ReadFile(filepath.Join(root, "d/hard")); string(b) != "hello" {
		t.Errorf("content %q", b)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(root, "d/suid"), "user.k", buf); err != nil || string(buf[:n]) != "v" {
		t.Errorf("user.k = %q %v", buf[:n], err)
	}
	if n, err := unix.Lgetxattr(filepath.Join(root, "d/suid"), "security.capability", buf); err != nil || string(buf[:n]) != capNetBind {
		t.Errorf("security.capability = %x %v", buf[:n], err)
	}
	check("d/sgid", unix.S_IFREG, 0o2711, 33, 44)
	st = check("d/link", unix.S_IFLNK, 0, 5, 6)
	if st.Mtim != timespec(mt) {
		t.Errorf("symlink mtime %v", st.Mtim)
	}
	if l, _ := os.Readlink(filepath.Join(root, "d/link")); l != "/etc/passwd" {
		t.Errorf("symlink target %q", l)
	}
	st = check("d/null", unix.S_IFCHR, 0o666, 0, 0)
	if unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("null rdev %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	st = check("d/loop", unix.S_IFBLK, 0o660, 0, 6)
	if unix.Major(st.Rdev) != 7 || unix.Minor(st.Rdev) != 0 {
		t.Error("loop rdev")
	}
	check("d/fifo", unix.S_IFIFO, 0o600, 0, 0)
	check("d/empty", unix.S_IFREG, 0o400, 0, 0)
}

func TestApplyImplicitParentsAndRoot(t *testing.T) {
	root := t.TempDir()
	data := mkTar(t,
		ent{h: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o711}},
		file("/abs/deep/f", "x"), // absolute: docker makes it root-relative
		file("a/b/../c", "y"),
	)
	if _, err := apply(t, root, data, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"abs/deep/f", "a/c"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Error(err)
		}
	}
	if st := lstat(t, root); st.Mode&0o777 != 0o711 {
		t.Errorf("root mode %o", st.Mode&0o777)
	}
}

func TestApplyReplace(t *testing.T) {
	root := t.TempDir()
	l1 := mkTar(t, dir("a/"), file("a/x", "1"), file("b", "2"), symlink("c", "b"))
	l2 := mkTar(t, file("a", "now a file"), dir("b/"), file("b/y", "3"), file("c", "file over symlink"))
	for _, l := range [][]byte{l1, l2} {
		if _, err := apply(t, root, l, ApplyOptions{Whiteout: Native}); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "a")); string(b) != "now a file" {
		t.Errorf("a = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "b/y")); string(b) != "3" {
		t.Errorf("b/y = %q", b)
	}
	if st := lstat(t, filepath.Join(root, "c")); st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Error("c is not a regular file")
	}
	// A directory over a directory keeps the old children.
	if _, err := apply(t, root, mkTar(t, dir("b/")), ApplyOptions{Whiteout: Native}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "b/y")); err != nil {
		t.Error(err)
	}
}

func TestWhiteoutNative(t *testing.T) {
	root := t.TempDir()
	base := mkTar(t, dir("etc/"), file("etc/keep", "k"), file("etc/gone", "g"), dir("etc/sub/"), file("etc/sub/f", "f"),
		dir("opq/"), file("opq/old1", ""), dir("opq/olddir/"), file("opq/olddir/x", "x"))
	if _, err := apply(t, root, base, ApplyOptions{Whiteout: Native}); err != nil {
		t.Fatal(err)
	}
	upper := mkTar(t, file("etc/.wh.gone", ""), file("etc/.wh.sub", ""), dir("opq/"), file("opq/.wh..wh..opq", ""), file("opq/new", "n"),
		file(".wh..wh.plnk", ""))
	if _, err := apply(t, root, upper, ApplyOptions{Whiteout: Native}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"etc/keep": true, "etc/gone": false, "etc/sub": false, "opq/old1": false, "opq/olddir": false, "opq/new": true, ".wh..wh.plnk": false}
	for p, exists := range want {
		_, err := os.Lstat(filepath.Join(root, p))
		if exists != (err == nil) {
			t.Errorf("%s: exists=%v, want %v", p, err == nil, exists)
		}
	}
}

func TestWhiteoutOverlay(t *testing.T) {
	needRoot(t, "trusted.overlay.opaque needs CAP_SYS_ADMIN")
	root := t.TempDir()
	upper := mkTar(t, file("etc/.wh.gone", ""), dir("opq/"), file("opq/.wh..wh..opq", ""), file("opq/new", "n"),
		ent{h: tar.Header{Name: "evil", PAXRecords: map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc"}}, body: "z"})
	if _, err := apply(t, root, upper, ApplyOptions{Whiteout: Overlay}); err != nil {
		t.Fatal(err)
	}
	st := lstat(t, filepath.Join(root, "etc/gone"))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("etc/gone is not a 0/0 whiteout device: mode %o rdev %d", st.Mode, st.Rdev)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(root, "opq"), opaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opq not opaque: %q %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(root, "evil"), "trusted.overlay.redirect", buf); err == nil {
		t.Error("a layer set trusted.overlay.redirect")
	}
	if _, err := os.Lstat(filepath.Join(root, "opq/.wh..wh..opq")); err == nil {
		t.Error("opaque marker file written as a file")
	}
}

func TestHardlinkCopyUpFromLower(t *testing.T) {
	lower := t.TempDir()
	if _, err := apply(t, lower, mkTar(t, ent{h: tar.Header{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o750}}, ent{h: tar.Header{Name: "usr/bin/tool", Mode: 0o751}, body: "binary"}), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	upper := t.TempDir()
	if _, err := apply(t, upper, mkTar(t, hardlink("usr/bin/alias", "usr/bin/tool")), ApplyOptions{Parents: []string{lower}}); err != nil {
		t.Fatal(err)
	}
	a, b := lstat(t, filepath.Join(upper, "usr/bin/alias")), lstat(t, filepath.Join(upper, "usr/bin/tool"))
	if a.Ino != b.Ino || b.Mode&0o777 != 0o751 {
		t.Errorf("copy-up then link: ino %d vs %d, mode %o", a.Ino, b.Ino, b.Mode&0o777)
	}
	if st := lstat(t, filepath.Join(upper, "usr")); st.Mode&0o777 != 0o750 {
		t.Errorf("implicit upper dir usr has mode %o, want the lower's 750", st.Mode&0o777)
	}
	if c, _ := os.ReadFile(filepath.Join(upper, "usr/bin/alias")); string(c) != "binary" {
		t.Errorf("content %q", c)
	}
}

func TestTruncatedAndLimits(t *testing.T) {
	data := mkTar(t, file("a", "small"), file("big", strings.Repeat("x", 10000)))
	cut := data[:512*3+1000] // a's header+block, big's header, part of big
	_, err := apply(t, t.TempDir(), cut, ApplyOptions{})
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), `"big"`) {
		t.Errorf("truncated: %v", err)
	}
	_, err = apply(t, t.TempDir(), data, ApplyOptions{MaxSize: 5000})
	if !errdefs.IsOutOfRange(err) || !strings.Contains(err.Error(), `"big"`) {
		t.Errorf("max size: %v", err)
	}
	_, err = apply(t, t.TempDir(), []byte("this is not a tar archive at all, just text padding to 512 bytes"+strings.Repeat(" ", 600)), ApplyOptions{})
	if err == nil {
		t.Error("garbage accepted")
	}
}

func TestApplyDrainsTrailer(t *testing.T) {
	data := append(mkTar(t, file("a", "1")), make([]byte, 8192)...)
	r := bytes.NewReader(data)
	if _, err := Apply(context.Background(), t.TempDir(), r, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes left unread: a digest over the stream would not see them", r.Len())
	}
}

func TestApplyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Apply(ctx, t.TempDir(), bytes.NewReader(mkTar(t, file("a", "1"))), ApplyOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

func TestApplyIDMap(t *testing.T) {
	needRoot(t, "chown to shifted ids")
	root := t.TempDir()
	m := &IDMap{UIDs: []IDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}, GIDs: []IDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}}
	data := mkTar(t, ent{h: tar.Header{Name: "f", Uid: 5, Gid: 6}, body: "x"}, ent{h: tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "f", Uid: 1, Gid: 1}})
	if _, err := apply(t, root, data, ApplyOptions{IDMap: m}); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(root, "f")); st.Uid != 100005 || st.Gid != 200006 {
		t.Errorf("f owned by %d:%d", st.Uid, st.Gid)
	}
	if st := lstat(t, filepath.Join(root, "l")); st.Uid != 100001 || st.Gid != 200001 {
		t.Errorf("l owned by %d:%d", st.Uid, st.Gid)
	}
	out := mkTar(t, ent{h: tar.Header{Name: "g", Uid: 70000}, body: "x"})
	if _, err := apply(t, root, out, ApplyOptions{IDMap: m}); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), `"g"`) {
		t.Errorf("unmapped uid: %v", err)
	}
}

// TestApplyGNUSparse: a sparse file archived by GNU tar --sparse comes out
// with the right content (holes read back as zeros).
func TestApplyGNUSparse(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("needs GNU tar to build a sparse archive")
	}
	src := t.TempDir()
	f, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("tail"), 8<<20)
	f.Close()
	for _, format := range []string{"gnu", "posix"} {
		out, err := exec.Command("tar", "--sparse", "--format="+format, "-C", src, "-cf", "-", "sparse").Output()
		if err != nil {
			t.Fatal(err)
		}
		dst := t.TempDir()
		if _, err := apply(t, dst, out, ApplyOptions{}); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		b, err := os.ReadFile(filepath.Join(dst, "sparse"))
		if err != nil || len(b) != 8<<20+4 || string(b[:4]) != "head" || string(b[8<<20:]) != "tail" || bytes.Count(b[4:8<<20], []byte{0}) != 8<<20-4 {
			t.Errorf("%s: sparse file content wrong (%d bytes, %v)", format, len(b), err)
		}
		if st := lstat(t, filepath.Join(dst, "sparse")); st.Blocks*512 > 1<<20 {
			t.Errorf("%s: holes filled: %d bytes allocated for 8 bytes of data", format, st.Blocks*512)
		}
		// And cut mid-way, a clear truncation error.
		cut := bytes.Index(out, []byte("tail"))
		if _, err := apply(t, t.TempDir(), out[:cut], ApplyOptions{}); !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), `"sparse"`) {
			t.Errorf("%s: truncated sparse archive: %v", format, err)
		}
	}
}

// TestHardlinkMissingTarget: a link to a file neither in the layer nor in
// a given parent is ErrNotFound (the unpacker's cue to unpack that layer
// on top of its parents instead of in parallel).
func TestHardlinkMissingTarget(t *testing.T) {
	for _, data := range [][]byte{
		mkTar(t, hardlink("a", "nowhere")),
		mkTar(t, hardlink("a", "no/dir/file")),
	} {
		_, err := apply(t, t.TempDir(), data, ApplyOptions{Whiteout: Overlay})
		if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), `"a"`) {
			t.Errorf("err = %v, want not found naming the entry", err)
		}
	}
}

// TestImplicitDirIgnoresLowerSymlink: implicit parents copy owner and mode
// from the lower layer, but never through a lower symlink to a host path.
func TestImplicitDirIgnoresLowerSymlink(t *testing.T) {
	host := t.TempDir()
	if err := os.Mkdir(filepath.Join(host, "x"), 0o711); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(host, "x"), 0o711)
	lower := t.TempDir()
	if err := os.Symlink(host, filepath.Join(lower, "a")); err != nil {
		t.Fatal(err)
	}
	upper := t.TempDir()
	if _, err := apply(t, upper, mkTar(t, file("a/x/f", "1")), ApplyOptions{Parents: []string{lower}}); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(upper, "a/x")); st.Mode&0o777 != 0o755 {
		t.Errorf("implicit dir took mode %o from the host through a lower symlink", st.Mode&0o777)
	}
}

// TestImplicitDirsInheritedLater: a layer unpacked without its parents
// reports the directories it created implicitly (not those it declares,
// even later in the stream); InheritDirs then gives them what Apply with
// Parents would have: the lower copy's mode, never through a symlink.
func TestImplicitDirsInheritedLater(t *testing.T) {
	host := t.TempDir()
	os.Mkdir(filepath.Join(host, "h"), 0o700)
	os.Chmod(filepath.Join(host, "h"), 0o700)
	lower := t.TempDir()
	for _, d := range []string{"usr/lib", "opt", "decl"} {
		os.MkdirAll(filepath.Join(lower, d), 0o755)
	}
	os.Chmod(filepath.Join(lower, "usr"), 0o750)
	os.Chmod(filepath.Join(lower, "usr/lib"), 0o711)
	os.Chmod(filepath.Join(lower, "decl"), 0o700)
	os.Symlink(host, filepath.Join(lower, "ln"))
	data := mkTar(t,
		file("usr/lib/f", "1"),
		file("decl/f", "2"),
		dir("decl/"), // declared after its child: keeps its own mode
		file("ln/h/f", "3"),
		file("gone/f", "4"),
		ent{h: tar.Header{Name: ".wh.gone"}},
	)
	staged, sequential := t.TempDir(), t.TempDir()
	var implicit []string
	if _, err := apply(t, staged, data, ApplyOptions{ImplicitDirs: &implicit}); err != nil {
		t.Fatal(err)
	}
	want := []string{"usr", "usr/lib", "ln", "ln/h", "gone"}
	if strings.Join(implicit, ",") != strings.Join(want, ",") {
		t.Errorf("implicit dirs %q, want %q", implicit, want)
	}
	if err := InheritDirs(context.Background(), staged, implicit, []string{lower}); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(t, sequential, data, ApplyOptions{Parents: []string{lower}}); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]uint32{"usr": 0o750, "usr/lib": 0o711, "decl": 0o755, "ln": 0o755, "ln/h": 0o755} {
		for _, root := range []string{staged, sequential} {
			if st := lstat(t, filepath.Join(root, p)); st.Mode&0o777 != mode {
				t.Errorf("%s in %s: mode %o, want %o", p, root, st.Mode&0o777, mode)
			}
		}
	}
	if err := InheritDirs(context.Background(), staged, []string{"../x"}, []string{lower}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("escaping path: %v", err)
	}
}
