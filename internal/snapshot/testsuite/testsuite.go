// Package testsuite is the conformance suite every snapshot.Snapshotter
// implementation runs. Tests that mount need root and skip themselves
// otherwise; the rest read through ApplyTarget's directory.
package testsuite

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Opener opens a snapshotter on root with its records in db.
type Opener func(root string, db *bolt.DB) (snapshot.Snapshotter, error)

// Run runs every conformance test against the snapshotter open returns.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"ChainWhiteouts", testChainWhiteouts},
		{"StatLabels", testStatLabels},
		{"Usage", testUsage},
		{"Walk", testWalk},
		{"Remove", testRemove},
		{"Errors", testErrors},
		{"CrashLeftovers", testCrashLeftovers},
		{"Reopen", testReopen},
		{"ContainerLayer", testContainerLayer},
		{"ViewReadOnly", testViewReadOnly},
		{"ManyLayers", testManyLayers},
		{"ConcurrentPrepare", testConcurrentPrepare},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, open)
			tc.fn(t, e)
		})
	}
}

type env struct {
	t    *testing.T
	ctx  context.Context
	root string
	db   *bolt.DB
	sn   snapshot.Snapshotter
	open Opener
}

func newEnv(t *testing.T, open Opener) *env {
	base := t.TempDir()
	db, err := bolt.Open(filepath.Join(base, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "root")
	sn, err := open(root, db)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: context.Background(), root: root, db: db, sn: sn, open: open}
	t.Cleanup(func() {
		e.sn.Close()
		db.Close()
	})
	return e
}

// Tar entries: "name" file with body, "name/" directory, "name->target"
// symlink, ".wh.x" whiteouts pass through as files.
func layer(t *testing.T, entries ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		name, body, _ := strings.Cut(e, "=")
		h := &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(body))}
		if strings.HasSuffix(name, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		} else if n, target, ok := strings.Cut(name, "->"); ok {
			h.Name, h.Typeflag, h.Linkname, h.Size = n, tar.TypeSymlink, target, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// apply unpacks a layer into an Active snapshot through ApplyTarget, as
// the image unpacker does.
func (e *env) apply(key string, data []byte) {
	e.t.Helper()
	m, err := e.sn.Mounts(e.ctx, key)
	if err != nil {
		e.t.Fatal(err)
	}
	dir, wf, parents, ok := snapshot.ApplyTarget(m)
	if !ok {
		e.t.Fatalf("no apply target in %+v", m)
	}
	if _, err := archive.Apply(e.ctx, dir, bytes.NewReader(data), archive.ApplyOptions{Whiteout: wf, Parents: parents}); err != nil {
		e.t.Fatal(err)
	}
}

// commitLayer prepares key on parent, applies entries, commits as name.
func (e *env) commitLayer(name, parent string, entries ...string) {
	e.t.Helper()
	key := "extract-" + name
	if _, err := e.sn.Prepare(e.ctx, key, parent, nil); err != nil {
		e.t.Fatal(err)
	}
	e.apply(key, layer(e.t, entries...))
	if err := e.sn.Commit(e.ctx, name, key, nil); err != nil {
		e.t.Fatal(err)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts the snapshot")
	}
}

// mounted mounts m on a fresh directory for the duration of fn.
func mounted(t *testing.T, m []snapshot.Mount, fn func(dir string)) {
	t.Helper()
	needRoot(t)
	target := t.TempDir()
	if err := snapshot.MountAll(m, target); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := snapshot.UnmountAll(target); err != nil {
			t.Error(err)
		}
	}()
	fn(target)
}

// tree lists a directory tree as "path" and "path=content" (files).
func tree(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			rel += "=" + string(b)
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			rel += "->" + l
		case fi.IsDir():
			rel += "/"
		default:
			rel += fmt.Sprintf("(%v)", fi.Mode().Type())
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, " ")
}

func testChainWhiteouts(t *testing.T, e *env) {
	needRoot(t) // overlay's opaque xattr is trusted.*; the check mounts
	e.commitLayer("L1", "", "etc/", "etc/keep=k", "etc/gone=g", "opq/", "opq/old=o", "lib->usr/lib")
	e.commitLayer("L2", "L1", "etc/", "etc/.wh.gone=", "opq/", "opq/.wh..wh..opq=", "opq/new=n", "etc/keep=k2")
	e.commitLayer("L3", "L2", "bin/", "bin/sh=sh")
	m, err := e.sn.Prepare(e.ctx, "ctr", "L3", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "bin/ bin/sh=sh etc/ etc/keep=k2 lib->usr/lib opq/ opq/new=n"
	mounted(t, m, func(dir string) {
		if got := tree(t, dir); got != want {
			t.Errorf("container sees %q, want %q", got, want)
		}
	})
	vm, err := e.sn.View(e.ctx, "view-L1", "L1", nil)
	if err != nil {
		t.Fatal(err)
	}
	mounted(t, vm, func(dir string) {
		if got, want := tree(t, dir), "etc/ etc/gone=g etc/keep=k lib->usr/lib opq/ opq/old=o"; got != want {
			t.Errorf("view of L1 sees %q, want %q", got, want)
		}
	})
}

func testStatLabels(t *testing.T, e *env) {
	if _, err := e.sn.Prepare(e.ctx, "a", "", map[string]string{"x": "1"}); err != nil {
		t.Fatal(err)
	}
	info, err := e.sn.Stat(e.ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != snapshot.Active || info.Name != "a" || info.Parent != "" || info.Labels["x"] != "1" || info.Created.IsZero() {
		t.Errorf("stat a: %+v", info)
	}
	if err := e.sn.Commit(e.ctx, "A", "a", map[string]string{"y": "2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.Stat(e.ctx, "a"); !errdefs.IsNotFound(err) {
		t.Errorf("key still there after commit: %v", err)
	}
	info, err = e.sn.Stat(e.ctx, "A")
	if err != nil || info.Kind != snapshot.Committed || info.Labels["y"] != "2" || info.Updated.Before(info.Created) {
		t.Errorf("stat A: %+v %v", info, err)
	}
	if _, err := e.sn.View(e.ctx, "v", "A", nil); err != nil {
		t.Fatal(err)
	}
	if info, err = e.sn.Stat(e.ctx, "v"); err != nil || info.Kind != snapshot.View || info.Parent != "A" {
		t.Errorf("stat v: %+v %v", info, err)
	}
}

func testUsage(t *testing.T, e *env) {
	body := strings.Repeat("u", 100000)
	if _, err := e.sn.Prepare(e.ctx, "a", "", nil); err != nil {
		t.Fatal(err)
	}
	e.apply("a", layer(t, "d/", "d/big="+body, "d/small=s"))
	u, err := e.sn.Usage(e.ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if u.Size < int64(len(body)) || u.Inodes < 3 {
		t.Errorf("active usage %+v, want ≥ %d bytes and ≥ 3 inodes", u, len(body))
	}
	if err := e.sn.Commit(e.ctx, "A", "a", nil); err != nil {
		t.Fatal(err)
	}
	c, err := e.sn.Usage(e.ctx, "A")
	if err != nil || c != u {
		t.Errorf("committed usage %+v %v, want %+v", c, err, u)
	}
}

func testWalk(t *testing.T, e *env) {
	e.commitLayer("L1", "", "a=1")
	if _, err := e.sn.Prepare(e.ctx, "act", "L1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.View(e.ctx, "vw", "L1", nil); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err := e.sn.Walk(e.ctx, func(ctx context.Context, i snapshot.Info) error {
		got[i.Name] = i.Kind.String() + "/" + i.Parent
		_, err := e.sn.Stat(ctx, i.Name) // callbacks may call back in
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"L1": "Committed/", "act": "Active/L1", "vw": "View/L1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("walk %v, want %v", got, want)
	}
	stop := errors.New("stop")
	if err := e.sn.Walk(e.ctx, func(context.Context, snapshot.Info) error { return stop }); err != stop {
		t.Errorf("walk error not returned: %v", err)
	}
}

func testRemove(t *testing.T, e *env) {
	e.commitLayer("L1", "", "a=1")
	e.commitLayer("L2", "L1", "b=2")
	if _, err := e.sn.Prepare(e.ctx, "ctr", "L2", nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"L1", "L2"} {
		if err := e.sn.Remove(e.ctx, k); !errdefs.IsFailedPrecondition(err) {
			t.Errorf("remove parent %s: %v, want failed precondition", k, err)
		}
	}
	before := e.dirs()
	for _, k := range []string{"ctr", "L2", "L1"} {
		if err := e.sn.Remove(e.ctx, k); err != nil {
			t.Fatalf("remove %s: %v", k, err)
		}
	}
	if err := e.sn.Remove(e.ctx, "L1"); !errdefs.IsNotFound(err) {
		t.Errorf("remove twice: %v", err)
	}
	if after := e.dirs(); len(after) != 0 || len(before) != 3 {
		t.Errorf("directories before %v, after %v", before, after)
	}
}

// dirs lists the per-snapshot directories both implementations keep in
// <root>/snapshots.
func (e *env) dirs() []string {
	entries, err := os.ReadDir(filepath.Join(e.root, "snapshots"))
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	return names
}

func testErrors(t *testing.T, e *env) {
	e.commitLayer("L1", "", "a=1")
	if _, err := e.sn.Prepare(e.ctx, "a", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.View(e.ctx, "v", "L1", nil); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what string
		err  error
		is   func(error) bool
	}{
		{"prepare existing key", second(e.sn.Prepare(e.ctx, "a", "", nil)), errdefs.IsAlreadyExists},
		{"prepare over a committed name", second(e.sn.Prepare(e.ctx, "L1", "", nil)), errdefs.IsAlreadyExists},
		{"view existing key", second(e.sn.View(e.ctx, "v", "L1", nil)), errdefs.IsAlreadyExists},
		{"commit to existing name", e.sn.Commit(e.ctx, "L1", "a", nil), errdefs.IsAlreadyExists},
		{"missing parent", second(e.sn.Prepare(e.ctx, "b", "nope", nil)), errdefs.IsNotFound},
		{"active parent", second(e.sn.Prepare(e.ctx, "c", "a", nil)), errdefs.IsInvalidArgument},
		{"commit a view", e.sn.Commit(e.ctx, "V", "v", nil), errdefs.IsInvalidArgument},
		{"commit a committed", e.sn.Commit(e.ctx, "L1b", "L1", nil), errdefs.IsInvalidArgument},
		{"commit missing", e.sn.Commit(e.ctx, "X", "nope", nil), errdefs.IsNotFound},
		{"stat missing", second(e.sn.Stat(e.ctx, "nope")), errdefs.IsNotFound},
		{"mounts missing", second(e.sn.Mounts(e.ctx, "nope")), errdefs.IsNotFound},
		{"usage missing", second(e.sn.Usage(e.ctx, "nope")), errdefs.IsNotFound},
		{"remove missing", e.sn.Remove(e.ctx, "nope"), errdefs.IsNotFound},
	}
	for _, c := range checks {
		if !c.is(c.err) {
			t.Errorf("%s: got %v", c.what, c.err)
		}
	}
	// The failed calls left no directories behind: L1, a, v.
	if d := e.dirs(); len(d) != 3 {
		t.Errorf("directories after failures: %v", d)
	}
}

func second[T any](_ T, err error) error { return err }

func testCrashLeftovers(t *testing.T, e *env) {
	e.commitLayer("L1", "", "a=1")
	// What a crash at each step leaves: a half-built directory, a built
	// but unrecorded one, a half-removed one.
	for _, d := range []string{"new-900", "901", "rm-902", "new-1/fs"} {
		if err := os.MkdirAll(filepath.Join(e.root, "snapshots", d, "fs", "x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.sn.Cleanup(e.ctx); err != nil {
		t.Fatal(err)
	}
	if d := e.dirs(); len(d) != 1 {
		t.Errorf("after cleanup: %v, want only L1's directory", d)
	}
	// A new snapshot never reuses the id of a leftover seen at startup.
	if err := os.MkdirAll(filepath.Join(e.root, "snapshots", "5000", "fs"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if d := e.dirs(); len(d) != 1 {
		t.Errorf("after reopen: %v, want the constructor to clean up", d)
	}
	e.commitLayer("L2", "L1", "b=2")
	m, err := e.sn.Prepare(e.ctx, "ctr", "L2", nil)
	if err != nil {
		t.Fatal(err)
	}
	mounted(t, m, func(dir string) {
		if got := tree(t, dir); got != "a=1 b=2" {
			t.Errorf("after cleanup the chain reads %q", got)
		}
	})
}

func (e *env) reopen() {
	e.t.Helper()
	e.sn.Close()
	sn, err := e.open(e.root, e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sn = sn
}

func testReopen(t *testing.T, e *env) {
	e.commitLayer("L1", "", "a=1")
	if _, err := e.sn.Prepare(e.ctx, "ctr", "L1", map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	m1, _ := e.sn.Mounts(e.ctx, "ctr")
	e.reopen()
	info, err := e.sn.Stat(e.ctx, "ctr")
	if err != nil || info.Parent != "L1" || info.Labels["k"] != "v" {
		t.Errorf("after reopen: %+v %v", info, err)
	}
	m2, err := e.sn.Mounts(e.ctx, "ctr")
	if err != nil || fmt.Sprint(m1) != fmt.Sprint(m2) {
		t.Errorf("mounts changed across reopen: %v vs %v (%v)", m1, m2, err)
	}
}

func testContainerLayer(t *testing.T, e *env) {
	e.commitLayer("L1", "", "etc/", "etc/hosts=h")
	m, err := e.sn.Prepare(e.ctx, "ctr", "L1", nil)
	if err != nil {
		t.Fatal(err)
	}
	mounted(t, m, func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "etc/new"), []byte("n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, "etc/hosts")); err != nil {
			t.Fatal(err)
		}
	})
	// The parent is untouched; the container's changes persist.
	vm, _ := e.sn.View(e.ctx, "v", "L1", nil)
	mounted(t, vm, func(dir string) {
		if got := tree(t, dir); got != "etc/ etc/hosts=h" {
			t.Errorf("parent changed by its child: %q", got)
		}
	})
	mounted(t, m, func(dir string) {
		if got := tree(t, dir); got != "etc/ etc/new=n" {
			t.Errorf("container layer after remount: %q", got)
		}
	})
	// Committing it makes a parent for another layer (docker commit).
	if err := e.sn.Commit(e.ctx, "C", "ctr", nil); err != nil {
		t.Fatal(err)
	}
	m2, err := e.sn.Prepare(e.ctx, "ctr2", "C", nil)
	if err != nil {
		t.Fatal(err)
	}
	mounted(t, m2, func(dir string) {
		if got := tree(t, dir); got != "etc/ etc/new=n" {
			t.Errorf("child of a committed container layer: %q", got)
		}
	})
}

func testViewReadOnly(t *testing.T, e *env) {
	e.commitLayer("L1", "", "a=1")
	e.commitLayer("L2", "L1", "b=2")
	for _, parent := range []string{"L1", "L2"} {
		m, err := e.sn.View(e.ctx, "v"+parent, parent, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, ok := snapshot.ApplyTarget(m); ok {
			t.Errorf("view of %s offers an apply target: %+v", parent, m)
		}
		mounted(t, m, func(dir string) {
			err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
			if !errors.Is(err, unix.EROFS) {
				t.Errorf("write into view of %s: %v, want EROFS", parent, err)
			}
		})
	}
}

// testManyLayers stacks more layers than fit in one page of overlay mount
// options.
func testManyLayers(t *testing.T, e *env) {
	needRoot(t)
	const n = 130
	parent := ""
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("sha256:%064d", i) // chain-ID-sized names
		e.commitLayer(name, parent, fmt.Sprintf("f%03d=%d", i, i))
		parent = name
	}
	m, err := e.sn.Prepare(e.ctx, "ctr", parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m[0].Type == "overlay" && len(strings.Join(m[0].Options, ",")) < os.Getpagesize() {
		t.Errorf("overlay options fit in a page: the test does not exercise long mounts")
	}
	mounted(t, m, func(dir string) {
		for _, i := range []int{0, 64, n - 1} {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)))
			if err != nil || string(b) != fmt.Sprint(i) {
				t.Errorf("layer %d through %d layers: %q %v", i, n, b, err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "w"), []byte("w"), 0o644); err != nil {
			t.Error(err)
		}
	})
}

// testConcurrentPrepare: racing Prepares of one key (two pulls of the same
// layer) leave exactly one snapshot and one directory.
func testConcurrentPrepare(t *testing.T, e *env) {
	e.commitLayer("L1", "", "a=1")
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := e.sn.Prepare(e.ctx, "same", "L1", nil)
			errs <- err
		}()
	}
	ok := 0
	for i := 0; i < n; i++ {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case !errdefs.IsAlreadyExists(err):
			t.Errorf("racing prepare: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d racing prepares succeeded, want 1", ok)
	}
	if d := e.dirs(); len(d) != 2 {
		t.Errorf("directories after the race: %v, want 2", d)
	}
}
