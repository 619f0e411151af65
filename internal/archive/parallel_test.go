package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// manyFilesLayer is a deterministic layer of a few thousand entries that
// exercises every ordering hazard of the parallel writer: files of every
// size class (empty, small, one chunk, several chunks), owners, modes with
// setuid/setgid/sticky, atimes and mtimes with nanoseconds, xattrs
// (security.capability too), symlinks, hard links (one to a file that is
// replaced afterwards, so the link must keep the old inode), devices and a
// fifo, a file declared twice, a file replaced by a directory and a
// directory (with files) replaced by a file, whiteouts of names from this
// layer and an opaque directory. Every directory is declared before its
// children, so directory times are comparable.
func manyFilesLayer(t testing.TB) []byte {
	rng := rand.New(rand.NewSource(42))
	var ents []ent
	when := func() time.Time {
		return time.Unix(1_500_000_000+rng.Int63n(100_000_000), rng.Int63n(1e9))
	}
	owner := func(h *tar.Header) {
		ids := []int{0, 0, 0, 1000, 65534, 33}
		h.Uid, h.Gid = ids[rng.Intn(len(ids))], ids[rng.Intn(len(ids))]
	}
	add := func(h tar.Header, body string) {
		h.Format = tar.FormatPAX
		if h.ModTime.IsZero() {
			h.ModTime = when()
		}
		h.AccessTime = when()
		owner(&h)
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		ents = append(ents, ent{h: h, body: body})
	}
	dirModes := []int64{0o755, 0o700, 0o2775, 0o1777, 0o555}
	fileModes := []int64{0o644, 0o755, 0o4755, 0o2755, 0o600, 0o444, 0o640}
	var dirs, files []string
	for i := 0; i < 120; i++ {
		name := fmt.Sprintf("d%03d/", i)
		if i > 20 && rng.Intn(3) == 0 {
			name = strings.TrimSuffix(dirs[rng.Intn(len(dirs))], "/") + "/" + name
		}
		add(tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: dirModes[rng.Intn(len(dirs)+1)%len(dirModes)]}, "")
		if rng.Intn(10) == 0 {
			ents[len(ents)-1].h.PAXRecords = map[string]string{paxXattr + "user.dir": fmt.Sprint(i)}
		}
		dirs = append(dirs, name)
		for j, n := 0, rng.Intn(40); j < n; j++ {
			fname := fmt.Sprintf("%sf%03d", name, j)
			size := rng.Intn(12 << 10)
			switch rng.Intn(200) {
			case 0, 1, 2, 3:
				size = 0
			case 4:
				size = 3*writerChunk + 1 + rng.Intn(writerChunk)
			case 5:
				size = writerChunk
			case 6:
				size = writerChunk + 1
			}
			body := make([]byte, size)
			rng.Read(body)
			add(tar.Header{Name: fname, Typeflag: tar.TypeReg, Mode: fileModes[rng.Intn(len(fileModes))]}, string(body))
			switch rng.Intn(12) {
			case 0:
				ents[len(ents)-1].h.PAXRecords = map[string]string{paxXattr + "user.k": fname, paxXattr + "user.empty": ""}
			case 1:
				ents[len(ents)-1].h.PAXRecords = map[string]string{paxXattr + "security.capability": capNetBind}
			}
			files = append(files, fname)
		}
	}
	pick := func() string { return files[rng.Intn(len(files))] }
	for i := 0; i < 150; i++ {
		d := dirs[rng.Intn(len(dirs))]
		target := "../" + filepath.Base(pick())
		if i%3 == 0 {
			target = "/" + pick()
		}
		add(tar.Header{Name: fmt.Sprintf("%sl%03d", d, i), Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}, "")
	}
	for i := 0; i < 80; i++ {
		add(tar.Header{Name: fmt.Sprintf("%sh%03d", dirs[rng.Intn(len(dirs))], i), Typeflag: tar.TypeLink, Linkname: pick()}, "")
	}
	add(tar.Header{Name: "dev/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}, "")
	add(tar.Header{Name: "dev/loop0", Typeflag: tar.TypeBlock, Devmajor: 7, Devminor: 0, Mode: 0o660}, "")
	add(tar.Header{Name: "dev/fifo", Typeflag: tar.TypeFifo, Mode: 0o600}, "")
	// Replacements, in the order a later layer-building tool might emit them.
	add(tar.Header{Name: "r/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(tar.Header{Name: "r/twice", Typeflag: tar.TypeReg, Mode: 0o644}, "first")
	add(tar.Header{Name: "r/linked", Typeflag: tar.TypeReg, Mode: 0o600}, "old inode")
	add(tar.Header{Name: "r/keeps-old", Typeflag: tar.TypeLink, Linkname: "r/linked"}, "")
	add(tar.Header{Name: "r/linked", Typeflag: tar.TypeReg, Mode: 0o755}, "new inode")
	add(tar.Header{Name: "r/twice", Typeflag: tar.TypeReg, Mode: 0o640}, "second, longer")
	add(tar.Header{Name: "r/becomes-dir", Typeflag: tar.TypeReg, Mode: 0o644}, "file")
	add(tar.Header{Name: "r/becomes-dir/", Typeflag: tar.TypeDir, Mode: 0o711}, "")
	add(tar.Header{Name: "r/becomes-file/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(tar.Header{Name: "r/becomes-file/inner", Typeflag: tar.TypeReg, Mode: 0o644}, "gone")
	add(tar.Header{Name: "r/becomes-file", Typeflag: tar.TypeReg, Mode: 0o644}, "now a file")
	add(tar.Header{Name: "r/sym", Typeflag: tar.TypeSymlink, Linkname: "twice", Mode: 0o777}, "")
	add(tar.Header{Name: "r/sym", Typeflag: tar.TypeReg, Mode: 0o644}, "was a symlink")
	// Whiteouts of names this layer made, and an opaque directory.
	for i := 0; i < 20; i++ {
		f := pick()
		d, b := split(f)
		add(tar.Header{Name: d + "/" + whiteoutPrefix + b, Typeflag: tar.TypeReg, Mode: 0o644}, "")
	}
	add(tar.Header{Name: "r/" + whiteoutPrefix + "becomes-dir", Typeflag: tar.TypeReg, Mode: 0o644}, "")
	add(tar.Header{Name: dirs[3] + whiteoutOpaque, Typeflag: tar.TypeReg, Mode: 0o644}, "")
	return mkTar(t, ents...)
}

type recEntry struct {
	mode, uid, gid, nlink uint32
	size                  int64
	atime, mtime          unix.Timespec
	rdev                  uint64
	link                  string   // symlink target
	xattrs                []string // "name=value", sorted
	inode                 string   // first path of this inode (hard link groups)
	sum                   [32]byte // regular file content
}

// recordTree records everything Apply sets on every entry below root
// (the root's own times are left out: no test layer declares the root).
// Times are taken before any content is read.
func recordTree(t *testing.T, root string) map[string]recEntry {
	t.Helper()
	tree := map[string]recEntry{}
	firstPath := map[uint64]string{}
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		st := lstat(t, p)
		e := recEntry{mode: st.Mode, uid: st.Uid, gid: st.Gid, nlink: uint32(st.Nlink), size: st.Size, atime: st.Atim, mtime: st.Mtim, rdev: st.Rdev}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			e.size, e.atime = 0, unix.Timespec{} // reading a directory moves its atime
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			e.atime, e.mtime = unix.Timespec{}, unix.Timespec{} // an overlay whiteout: made now
		}
		if _, ok := firstPath[st.Ino]; !ok {
			firstPath[st.Ino] = rel
		}
		e.inode = firstPath[st.Ino]
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			e.link, _ = os.Readlink(p)
		}
		buf := make([]byte, 4096)
		n, _ := unix.Llistxattr(p, buf)
		for _, k := range strings.Split(string(buf[:n]), "\x00") {
			if k == "" {
				continue
			}
			v := make([]byte, 4096)
			m, err := unix.Lgetxattr(p, k, v)
			if err != nil {
				t.Fatalf("%s: xattr %s: %v", rel, k, err)
			}
			e.xattrs = append(e.xattrs, k+"="+string(v[:m]))
		}
		sort.Strings(e.xattrs)
		tree[rel] = e
	}
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		if e := tree[rel]; e.mode&unix.S_IFMT == unix.S_IFREG {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			e.sum = sha256.Sum256(b)
			tree[rel] = e
		}
	}
	return tree
}

func diffTrees(t *testing.T, what string, want, got map[string]recEntry) {
	t.Helper()
	bad := 0
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: %s missing", what, p)
		case fmt.Sprint(w) != fmt.Sprint(g):
			t.Errorf("%s: %s differs:\n  want %+v\n  got  %+v", what, p, w, g)
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatalf("%s: too many differences", what)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: %s is extra", what, p)
		}
	}
}

func withWriters(n int, f func()) {
	old := parallelWriters
	parallelWriters = n
	defer func() { parallelWriters = old }()
	f()
}

// TestParallelWritersMatchSequential: the worker pool leaves exactly the
// tree that writing every file inline leaves, in both whiteout formats.
func TestParallelWritersMatchSequential(t *testing.T) {
	needRoot(t, "owners, devices, security.capability and trusted.overlay xattrs")
	data := manyFilesLayer(t)
	for _, wf := range []WhiteoutFormat{Overlay, Native} {
		t.Run(wf.String(), func(t *testing.T) {
			base := t.TempDir()
			var want map[string]recEntry
			var wantSize int64
			for _, n := range []int{0, 1, 2, 4} {
				dir := filepath.Join(base, fmt.Sprint(n))
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				var size int64
				var err error
				withWriters(n, func() { size, err = apply(t, dir, data, ApplyOptions{Whiteout: wf}) })
				if err != nil {
					t.Fatalf("%d writers: %v", n, err)
				}
				tree := recordTree(t, dir)
				if n == 0 {
					want, wantSize = tree, size
					if len(tree) < 2000 {
						t.Fatalf("only %d entries unpacked", len(tree))
					}
					// The ordering cases came out as a sequential unpack makes them.
					for p, sum := range map[string]string{"r/twice": "second, longer", "r/keeps-old": "old inode", "r/linked": "new inode", "r/becomes-file": "now a file", "r/sym": "was a symlink"} {
						if e := tree[p]; e.sum != sha256.Sum256([]byte(sum)) {
							t.Errorf("sequential: %s is not %q", p, sum)
						}
					}
					continue
				}
				if size != wantSize {
					t.Errorf("%d writers: size %d, sequential %d", n, size, wantSize)
				}
				diffTrees(t, fmt.Sprintf("%d writers", n), want, tree)
			}
		})
	}
}

func openFds(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestParallelWritersHostileMidLayer: a bad entry after thousands of queued
// files still fails the layer naming that entry, nothing lands outside the
// root, nothing after the entry is created, and every worker and fd is gone
// when Apply returns. A failure on a worker (an xattr the kernel refuses)
// fails the layer the same way.
func TestParallelWritersHostileMidLayer(t *testing.T) {
	needRoot(t, "security.capability")
	var before []ent
	var total int
	for i := 0; i < 2000; i++ {
		body := strings.Repeat(string(rune('a'+i%26)), i%5000)
		total += len(body)
		before = append(before, file(fmt.Sprintf("b%02d/f%04d", i%20, i), body))
	}
	after := []ent{dir("after/"), file("after/f", "late")}
	badCap := file("b00/badcap", "x")
	badCap.h.PAXRecords = map[string]string{paxXattr + "security.capability": "not a capability"}
	cases := []struct {
		name, entry string
		bad         func(outside, victim string) []ent
		opts        ApplyOptions
	}{
		{"dotdot", "../outside/evil", func(o, v string) []ent { return []ent{file("../outside/evil", "x")} }, ApplyOptions{}},
		{"write through symlink", "b00/l/evil", func(o, v string) []ent { return []ent{symlink("b00/l", o), file("b00/l/evil", "x")} }, ApplyOptions{}},
		{"hard link outside", "b01/h", func(o, v string) []ent { return []ent{hardlink("b01/h", "../victim/file")} }, ApplyOptions{}},
		{"over the size limit", "b02/big", func(o, v string) []ent { return []ent{file("b02/big", strings.Repeat("x", 4096))} }, ApplyOptions{MaxSize: int64(total) + 100}},
		{"xattr refused on a worker", "b00/badcap", func(o, v string) []ent { return []ent{badCap} }, ApplyOptions{}},
		// A file the pool may not have created yet, used as a directory:
		// the path must fail on that file, as in order.
		{"file as a directory", "b03/f/x", func(o, v string) []ent { return []ent{file("b03/f", "x"), file("b03/f/x", "y")} }, ApplyOptions{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			root, outside, victimDir := filepath.Join(base, "root"), filepath.Join(base, "outside"), filepath.Join(base, "victim")
			for _, d := range []string{root, outside, victimDir} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			victim := filepath.Join(victimDir, "file")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			ents := append(append(append([]ent{}, before...), c.bad(outside, victim)...), after...)
			data := mkTar(t, ents...)
			fds := openFds(t)
			var err error
			withWriters(2, func() { _, err = apply(t, root, data, c.opts) })
			if err == nil {
				t.Fatal("hostile layer accepted")
			}
			if !strings.Contains(err.Error(), `"`+c.entry+`"`) {
				t.Errorf("error does not name entry %q: %v", c.entry, err)
			}
			if names, _ := os.ReadDir(outside); len(names) != 0 {
				t.Errorf("written outside the root: %v", names)
			}
			if st := lstat(t, victim); st.Nlink != 1 {
				t.Errorf("victim linked: nlink %d", st.Nlink)
			}
			if c.name != "xattr refused on a worker" {
				// The tar goroutine stops at the entry; a worker's failure
				// is noticed a few entries later, never at the end.
				if _, err := os.Lstat(filepath.Join(root, "after")); err == nil {
					t.Error("entries after the bad one were unpacked")
				}
			}
			if n := openFds(t); n != fds {
				t.Errorf("%d fds open after Apply, %d before", n, fds)
			}
			// Every queued file was finished before Apply returned: a
			// sample of them has its content.
			for i := 0; i < 2000; i += 97 {
				p := filepath.Join(root, fmt.Sprintf("b%02d/f%04d", i%20, i))
				if b, err := os.ReadFile(p); err == nil && !bytes.Equal(b, []byte(strings.Repeat(string(rune('a'+i%26)), i%5000))) {
					t.Errorf("%s: %d bytes, half written after Apply returned", p, len(b))
				}
			}
		})
	}
}

// TestParallelWritersTruncated: a stream that ends inside a file of several
// chunks, some already queued, fails and leaks no fd.
func TestParallelWritersTruncated(t *testing.T) {
	var ents []ent
	for i := 0; i < 200; i++ {
		ents = append(ents, file(fmt.Sprintf("f%03d", i), strings.Repeat("x", i*100)))
	}
	ents = append(ents, file("big", strings.Repeat("y", 5*writerChunk)))
	data := mkTar(t, ents...)
	data = data[:len(data)-1024-2*writerChunk] // cut inside big's fourth chunk
	fds := openFds(t)
	var err error
	withWriters(2, func() { _, err = apply(t, t.TempDir(), data, ApplyOptions{}) })
	if err == nil || !strings.Contains(err.Error(), `"big"`) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated layer: %v", err)
	}
	if n := openFds(t); n != fds {
		t.Errorf("%d fds open after Apply, %d before", n, fds)
	}
}
