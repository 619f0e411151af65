package image

import (
	"archive/tar"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"go.etcd.io/bbolt"
)

// TestPullStagesLayers: layers above the first are unpacked before their
// parents are committed and chained in order; the merged result, the
// parents and the order of the Pull complete events are those of a
// sequential unpack.
func TestPullStagesLayers(t *testing.T) {
	e := newEnv(t)
	l1 := layerOf(t, "gzip", map[string]string{"a": "1", "b": "1"})
	l2 := layerOf(t, "gzip", map[string]string{"b": "2", "c": "2"})
	l3 := layerOf(t, "zstd", map[string]string{"c": "3", "d": "3"})
	e.push("st:1", imageOf(t, true, "amd64", l1, l2, l3))
	var complete []string
	img, err := e.store.Pull(context.Background(), e.ref("st:1"), PullOptions{Progress: func(ev ProgressEvent) {
		if ev.Status == StatusPullComplete {
			complete = append(complete, ev.ID)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if e.layers.staged != 2 {
		t.Errorf("%d layers staged, want 2 (all but the base)", e.layers.staged)
	}
	got := e.files(img)
	for k, v := range map[string]string{"a": "1", "b": "2", "c": "3", "d": "3"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	for i, c := range img.ChainIDs {
		want := digest.Digest("")
		if i > 0 {
			want = img.ChainIDs[i-1]
		}
		if p := e.layers.parents[c]; p != want {
			t.Errorf("layer %d parent %s, want %s", i, p, want)
		}
	}
	want := []string{shortID(digestOf(t, l1.Digest)), shortID(digestOf(t, l2.Digest)), shortID(digestOf(t, l3.Digest))}
	if strings.Join(complete, ",") != strings.Join(want, ",") {
		t.Errorf("Pull complete order %v, want %v", complete, want)
	}
	if img.Size != 6 {
		t.Errorf("size %d", img.Size)
	}
}

// TestPullStagedHardlinkFallsBack: a layer with a hard link into its parent
// cannot be staged; it is unpacked on top of the committed parent instead.
func TestPullStagedHardlinkFallsBack(t *testing.T) {
	e := newEnv(t)
	l1 := layerOf(t, "gzip", map[string]string{"bin/x": "X"})
	l2 := rawTarLayer(t, []tar.Header{
		{Name: "bin/y", Typeflag: tar.TypeLink, Linkname: "bin/x"},
		{Name: "z", Typeflag: tar.TypeReg},
	}, map[string]string{"z": "Z"})
	e.push("hl:1", imageOf(t, true, "amd64", l1, l2))
	img, err := e.store.Pull(context.Background(), e.ref("hl:1"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.files(img); got["bin/y"] != "X" || got["z"] != "Z" {
		t.Errorf("files %v", got)
	}
	if e.layers.staged != 0 {
		t.Errorf("staged %d layers", e.layers.staged)
	}
}

// TestPullStagedParentFails: when the base layer's blob is bad, the layer
// staged above it is never committed and the error names the bad blob.
func TestPullStagedParentFails(t *testing.T) {
	e := newEnv(t)
	l1 := layerOf(t, "gzip", map[string]string{"f": strings.Repeat("x", 50000)})
	l2 := layerOf(t, "gzip", map[string]string{"g": "g"})
	e.push("pf:1", imageOf(t, true, "amd64", l1, l2))
	ld := digestOf(t, l1.Digest)
	e.setFault(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if strings.HasSuffix(r.URL.Path, ld.String()) && r.Method == http.MethodGet {
			rec := &captureWriter{header: http.Header{}}
			next.ServeHTTP(rec, r)
			b := rec.buf
			b[len(b)-12] ^= 0xff // the gzip trailer: inflates, fails the digest
			w.Header().Set("Content-Length", itoa(len(b)))
			w.Write(b)
			return true
		}
		return false
	})
	_, err := e.store.Pull(context.Background(), e.ref("pf:1"), PullOptions{})
	if err == nil || !errors.Is(err, errdefs.ErrDataLoss) || !strings.Contains(err.Error(), ld.String()) {
		t.Fatalf("want digest mismatch naming %s, got %v", ld, err)
	}
	if n := e.layers.count(); n != 0 {
		t.Errorf("%d layers committed above a bad base", n)
	}
	assertNothingVisible(t, e, e.ref("pf:1"), ld)
}

// TestRootStagedUnpackMatchesSequential pulls the same image through the
// staged (parallel) path and the sequential one on real overlay snapshots:
// implicit directories take the lower layer's mode, whiteouts and opaque
// directories hide lower content, a hard link into a lower layer falls
// back to the sequential way.
func TestRootStagedUnpackMatchesSequential(t *testing.T) {
	needRoot(t)
	l1 := rawTarLayer(t, []tar.Header{
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o750},
		{Name: "usr/lib/", Typeflag: tar.TypeDir, Mode: 0o711},
		{Name: "usr/lib/a", Typeflag: tar.TypeReg},
		{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "opq/old", Typeflag: tar.TypeReg},
		{Name: "gone", Typeflag: tar.TypeReg},
	}, map[string]string{"usr/lib/a": "A", "opq/old": "O", "gone": "G"})
	l2 := rawTarLayer(t, []tar.Header{
		{Name: "usr/lib/b", Typeflag: tar.TypeReg}, // usr, usr/lib implicit
		{Name: ".wh.gone", Typeflag: tar.TypeReg},
		{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg},
		{Name: "opq/new", Typeflag: tar.TypeReg},
	}, map[string]string{"usr/lib/b": "B", "opq/new": "N"})
	l3 := rawTarLayer(t, []tar.Header{
		{Name: "usr/lib/c", Typeflag: tar.TypeLink, Linkname: "usr/lib/a"},
	}, nil)
	img := imageOf(t, true, "amd64", l1, l2, l3)
	trees := map[string]map[string]string{}
	for _, mode := range []string{"staged", "sequential"} {
		layers := overlayLayers(t)
		if mode == "sequential" {
			layers = func(db *bbolt.DB, root string) Layers { return sequentialLayers{overlayLayers(t)(db, root)} }
		}
		e := newEnvWith(t, layers)
		e.push("eq:1", img)
		got, err := e.store.Pull(context.Background(), e.ref("eq:1"), PullOptions{})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if sl, ok := e.real.(sequentialLayers); ok {
			e.real = sl.Layers
		}
		root := view(t, e, got)
		tree := map[string]string{}
		filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil || p == root {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			v := fi.Mode().String()
			if fi.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				v += " " + string(b)
			}
			tree[rel] = v
			return nil
		})
		trees[mode] = tree
	}
	for p, v := range trees["sequential"] {
		if trees["staged"][p] != v {
			t.Errorf("%s: staged %q, sequential %q", p, trees["staged"][p], v)
		}
	}
	if len(trees["staged"]) != len(trees["sequential"]) {
		t.Errorf("staged tree %v\nsequential %v", trees["staged"], trees["sequential"])
	}
	for p, want := range map[string]string{"usr": "drwxr-x---", "usr/lib": "drwx--x--x", "usr/lib/c": "-rw-r--r-- A", "opq/new": "-rw-r--r-- N"} {
		if trees["staged"][p] != want {
			t.Errorf("%s: %q, want %q", p, trees["staged"][p], want)
		}
	}
	for _, p := range []string{"gone", "opq/old"} {
		if _, ok := trees["staged"][p]; ok {
			t.Errorf("%s visible", p)
		}
	}
}

// sequentialLayers hides the stager of the Layers it wraps.
type sequentialLayers struct{ Layers }
