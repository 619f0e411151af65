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
