package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tarNames lists the entry names of a tar.
func tarNames(t *testing.T, data []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

// snapshotTree describes every entry of a tree: type, mode, owner, size,
// mtime, link target, content, user xattrs.
func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		st := lstat(t, p)
		desc := []string{fi.Mode().String(), string(rune('0' + st.Uid%10)), time.Unix(st.Mtim.Sec, st.Mtim.Nsec).String()}
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			desc = append(desc, string(b))
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			desc = append(desc, l)
		}
		buf := make([]byte, 64)
		if n, err := unix.Lgetxattr(p, "user.k", buf); err == nil {
			desc = append(desc, string(buf[:n]))
		}
		out[rel] = strings.Join(desc, "|")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteTarRoundTrip(t *testing.T) {
	mt := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)
	src := t.TempDir()
	layer := mkTar(t,
		ent{h: tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o750, ModTime: mt}},
		ent{h: tar.Header{Name: "d/f", Mode: 0o640, ModTime: mt, PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}}, body: "content"},
		ent{h: tar.Header{Name: "d/h", Typeflag: tar.TypeLink, Linkname: "d/f"}},
		ent{h: tar.Header{Name: "d/s", Typeflag: tar.TypeSymlink, Linkname: "f", ModTime: mt}},
	)
	if _, err := apply(t, src, layer, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTar(context.Background(), src, &buf, TarOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if _, err := apply(t, dst, buf.Bytes(), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	a, b := snapshotTree(t, src), snapshotTree(t, dst)
	if len(a) != 4 {
		t.Fatalf("source tree %v", a)
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s: %q after round trip, want %q", k, b[k], v)
		}
	}
	if lstat(t, filepath.Join(dst, "d/h")).Ino != lstat(t, filepath.Join(dst, "d/f")).Ino {
		t.Error("hard link lost")
	}
}

func TestWriteTarOverlayUpper(t *testing.T) {
	needRoot(t, "whiteout devices and trusted.* xattrs")
	upper := t.TempDir()
	layer := mkTar(t, file(".wh.gone", ""), dir("o/"), file("o/.wh..wh..opq", ""), file("o/n", "n"))
	if _, err := apply(t, upper, layer, ApplyOptions{Whiteout: Overlay}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTar(context.Background(), upper, &buf, TarOptions{Whiteout: Overlay}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(tarNames(t, buf.Bytes()), " ")
	if want := ".wh.gone o/ o/.wh..wh..opq o/n"; got != want {
		t.Errorf("entries %q, want %q", got, want)
	}
}

func TestWriteTarNativeDiff(t *testing.T) {
	parent, child := t.TempDir(), t.TempDir()
	base := mkTar(t, dir("a/"), file("a/same", "1"), file("a/changed", "2"), dir("gone/"), file("gone/x", "x"), file("rm", "r"))
	for _, d := range []string{parent, child} {
		if _, err := apply(t, d, base, ApplyOptions{Whiteout: Native}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := apply(t, child, mkTar(t, file("a/changed", "22"), file("a/.wh.none", ""), file(".wh.gone", ""), file(".wh.rm", ""), file("new", "n")), ApplyOptions{Whiteout: Native}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTar(context.Background(), child, &buf, TarOptions{Parent: parent}); err != nil {
		t.Fatal(err)
	}
	got := tarNames(t, buf.Bytes())
	sort.Strings(got)
	if s, want := strings.Join(got, " "), ".wh.gone .wh.rm a/ a/changed new"; s != want {
		t.Errorf("diff entries %q, want %q", s, want)
	}
	// Applying the diff onto a copy of the parent reproduces the child.
	again := t.TempDir()
	if _, err := apply(t, again, base, ApplyOptions{Whiteout: Native}); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(t, again, buf.Bytes(), ApplyOptions{Whiteout: Native}); err != nil {
		t.Fatal(err)
	}
	x, y := snapshotTree(t, child), snapshotTree(t, again)
	if len(x) != len(y) {
		t.Errorf("trees differ: %v vs %v", x, y)
	}
	for k, v := range x {
		if y[k] != v && !strings.HasPrefix(v, "d") { // directory mtimes differ by design
			t.Errorf("%s: %q vs %q", k, y[k], v)
		}
	}
}

// gzipModes runs fn with the Go inflater and, when installed, with igzip.
func gzipModes(t testing.TB, fn func(t testing.TB, mode string)) {
	defer func() {
		helperMu.Lock()
		helperSet = false
		helperMu.Unlock()
	}()
	SetGzipHelper("")
	fn(t, "go")
	p, err := exec.LookPath("igzip")
	if err != nil {
		t.Log("igzip not installed (Debian package isal): helper path not tested")
		return
	}
	SetGzipHelper(p)
	fn(t, "igzip")
}

func TestDecompress(t *testing.T) {
	data := mkTar(t, file("a", strings.Repeat("abc", 100000)))
	encodings := []struct {
		name string
		enc  func([]byte) []byte
	}{
		{"plain", func(b []byte) []byte { return b }},
		{"gzip", gzipBytes},
		{"zstd", zstdBytes},
	}
	gzipModes(t, func(tb testing.TB, mode string) {
		for _, c := range encodings {
			rc, err := Decompress(bytes.NewReader(c.enc(data)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s/%s: %d bytes, err %v", mode, c.name, len(got), err)
			}
		}
		for _, c := range encodings {
			// The digest is of the uncompressed stream, whole at EOF.
			h := sha256.New()
			rc, err := DecompressDigest(bytes.NewReader(c.enc(data)), h)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			want := sha256.Sum256(data)
			if err != nil || !bytes.Equal(got, data) || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Errorf("%s/%s digest: %d bytes, err %v, sum %x want %x", mode, c.name, len(got), err, h.Sum(nil), want)
			}
		}
		rc, _ := Decompress(bytes.NewReader(gzipBytes(data)))
		var src io.Reader = rc
		if ra, ok := rc.(*raReader); ok {
			src = ra.src
		}
		if _, isHelper := src.(*helperReader); isHelper != (mode == "igzip") {
			t.Errorf("%s: decompressor %T", mode, src)
		}
		rc.Close()
		// Concatenated gzip members are one stream.
		half := len(data) / 2
		two := append(gzipBytes(data[:half]), gzipBytes(data[half:])...)
		rc, _ = Decompress(bytes.NewReader(two))
		if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: multistream: %d bytes, %v", mode, len(got), err)
		}
		rc.Close()
		gz := gzipBytes(data)
		bad := map[string][]byte{
			"truncated": gz[:len(gz)/2],
			"bad crc":   append(append([]byte{}, gz[:len(gz)-8]...), 0, 0, 0, 0, 0, 0, 0, 0),
		}
		for what, b := range bad {
			rc, err := Decompress(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(rc); err == nil {
				t.Errorf("%s: %s gzip read without error", mode, what)
			}
			rc.Close()
		}
		// Applying a truncated gzip layer fails, naming what it can.
		layer := gzipBytes(mkTar(t, file("x", strings.Repeat("z", 1<<20))))
		rc, _ = Decompress(bytes.NewReader(layer[:len(layer)-100]))
		_, err := Apply(context.Background(), t.TempDir(), rc, ApplyOptions{})
		rc.Close()
		if err == nil {
			t.Errorf("%s: truncated gzip layer applied", mode)
		}
		// Closing early stops the decompressor.
		rc, _ = Decompress(bytes.NewReader(layer))
		buf := make([]byte, 10)
		rc.Read(buf)
		if err := rc.Close(); err != nil {
			t.Errorf("%s: early close: %v", mode, err)
		}
	})
}
