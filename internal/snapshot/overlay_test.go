package snapshot_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/snapshot/testsuite"
)

func TestOverlay(t *testing.T) { testsuite.Run(t, snapshot.NewOverlay) }

func TestNative(t *testing.T) { testsuite.Run(t, snapshot.NewNative) }

// TestOverlayCommitOnto unpacks three layers concurrently into base
// snapshots and chains them at commit time; the result must equal the
// sequential unpack.
func TestOverlayCommitOnto(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts overlay, sets trusted.overlay.opaque")
	}
	ctx := context.Background()
	base := t.TempDir()
	db, err := bolt.Open(filepath.Join(base, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sn, err := snapshot.NewOverlay(filepath.Join(base, "root"), db)
	if err != nil {
		t.Fatal(err)
	}
	layers := [][]string{
		{"etc/", "etc/a=1", "etc/b=2", "d/", "d/old=o"},
		{"etc/", "etc/.wh.a=", "d/", "d/.wh..wh..opq=", "d/new=n"},
		{"etc/", "etc/c=3"},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(layers))
	for i, l := range layers {
		wg.Add(1)
		go func(i int, l []string) {
			defer wg.Done()
			key := fmt.Sprintf("extract-%d", i)
			m, err := sn.Prepare(ctx, key, "", nil)
			if err == nil {
				dir, _, _, _ := snapshot.ApplyTarget(m)
				_, err = archive.Apply(ctx, dir, bytes.NewReader(tarOf(t, l...)), archive.ApplyOptions{Whiteout: archive.Overlay})
			}
			errs[i] = err
		}(i, l)
	}
	wg.Wait()
	parent := ""
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("L%d", i)
		if err := sn.(snapshot.Rebaser).CommitOnto(ctx, name, fmt.Sprintf("extract-%d", i), parent, nil); err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	if info, _ := sn.Stat(ctx, "L2"); info.Parent != "L1" {
		t.Errorf("L2 parent %q", info.Parent)
	}
	if err := sn.Remove(ctx, "L1"); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("removing a rebased parent: %v", err)
	}
	m, err := sn.View(ctx, "v", "L2", nil)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := snapshot.MountAll(m, target); err != nil {
		t.Fatal(err)
	}
	defer snapshot.UnmountAll(target)
	var got []string
	filepath.Walk(target, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != target {
			rel, _ := filepath.Rel(target, p)
			got = append(got, rel)
		}
		return nil
	})
	if s := fmt.Sprint(got); s != "[d d/new etc etc/b etc/c]" {
		t.Errorf("rebased chain shows %s", s)
	}
	nsn, err := snapshot.NewNative(filepath.Join(base, "native"), db)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := nsn.(snapshot.Rebaser); ok {
		t.Error("native claims it can rebase: its snapshots are copies of their parent")
	}
}

func tarOf(t *testing.T, entries ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		name, body, _ := strings.Cut(e, "=")
		h := &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(body))}
		if strings.HasSuffix(name, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

// TestOverlayRebase: a layer unpacked before its parent, whose directories
// come implicitly, gets the parent's modes for them once rebased, and its
// record and children links are those of a sequential unpack.
func TestOverlayRebase(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: overlay snapshotter directories owned by root")
	}
	ctx := context.Background()
	base := t.TempDir()
	db, err := bolt.Open(filepath.Join(base, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sn, err := snapshot.NewOverlay(filepath.Join(base, "root"), db)
	if err != nil {
		t.Fatal(err)
	}
	rb := sn.(snapshot.Rebaser)
	// The upper layer first, before its parent exists.
	m, err := sn.Prepare(ctx, "extract-1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	upper, _, _, _ := snapshot.ApplyTarget(m)
	var implicit []string
	if _, err := archive.Apply(ctx, upper, bytes.NewReader(tarOf(t, "etc/c=3")), archive.ApplyOptions{Whiteout: archive.Overlay, ImplicitDirs: &implicit}); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Rebase(ctx, "extract-1", "L0"); !errdefs.IsNotFound(err) {
		t.Errorf("rebase onto a missing parent: %v", err)
	}
	m, err = sn.Prepare(ctx, "extract-0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	lower, _, _, _ := snapshot.ApplyTarget(m)
	if _, err := archive.Apply(ctx, lower, bytes.NewReader(tarOf(t, "etc/", "etc/a=1")), archive.ApplyOptions{Whiteout: archive.Overlay}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(lower, "etc"), 0o750)
	if _, err := rb.Rebase(ctx, "extract-1", "extract-0"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("rebase onto an active snapshot: %v", err)
	}
	if err := sn.Commit(ctx, "L0", "extract-0", nil); err != nil {
		t.Fatal(err)
	}
	m, err = rb.Rebase(ctx, "extract-1", "L0")
	if err != nil {
		t.Fatal(err)
	}
	dir, wf, parents, ok := snapshot.ApplyTarget(m)
	if !ok || dir != upper || wf != archive.Overlay || len(parents) != 1 {
		t.Fatalf("rebased mounts %+v", m)
	}
	if _, err := rb.Rebase(ctx, "extract-1", "L0"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("second rebase: %v", err)
	}
	if err := archive.InheritDirs(ctx, dir, implicit, parents); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, "L1", "extract-1", nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(upper, "etc")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("implicit etc in the upper layer: %v %v", fi.Mode(), err)
	}
	if info, _ := sn.Stat(ctx, "L1"); info.Parent != "L0" || info.Kind != snapshot.Committed {
		t.Errorf("L1: %+v", info)
	}
	if err := sn.Remove(ctx, "L0"); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("removing L1's parent: %v", err)
	}
	if _, err := rb.Rebase(ctx, "L1", "L0"); !errdefs.IsNotFound(err) && !errdefs.IsInvalidArgument(err) {
		t.Errorf("rebase of a committed snapshot: %v", err)
	}
	for _, k := range []string{"L1", "L0"} {
		if err := sn.Remove(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
}
