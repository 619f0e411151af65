package snapshot_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/testutil"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// TestDebianMatchesRootfs unpacks the real debian:bookworm layers that
// shared/peers/make-images.sh pushed, mounts the chain and compares every
// entry (type, mode, owner, size, link target, file capabilities) with the
// debootstrap tree the image was built from.
func TestDebianMatchesRootfs(t *testing.T) {
	const rootfs = "/var/lib/berth-bench/images/debian-rootfs"
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts overlay")
	}
	if testing.Short() {
		t.Skip("slow (unpacks 204 MB twice): not in -short")
	}
	if _, err := os.Stat(rootfs); err != nil {
		t.Skip("debian test image not built (shared/peers/make-images.sh): ", err)
	}
	for _, impl := range []struct {
		name string
		open func(string, *bolt.DB) (snapshot.Snapshotter, error)
	}{{"overlay", snapshot.NewOverlay}, {"native", snapshot.NewNative}} {
		t.Run(impl.name, func(t *testing.T) {
			ctx := context.Background()
			base := t.TempDir()
			db, err := bolt.Open(filepath.Join(base, "meta.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			sn, err := impl.open(filepath.Join(base, "root"), db)
			if err != nil {
				t.Fatal(err)
			}
			parent := ""
			for i, blob := range testutil.DebianLayers(t) {
				key := fmt.Sprintf("x%d", i)
				m, err := sn.Prepare(ctx, key, parent, nil)
				if err != nil {
					t.Fatal(err)
				}
				dir, wf, parents, _ := snapshot.ApplyTarget(m)
				rc, err := archive.Decompress(bytes.NewReader(blob))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := archive.Apply(ctx, dir, rc, archive.ApplyOptions{Whiteout: wf, Parents: parents}); err != nil {
					t.Fatal(err)
				}
				rc.Close()
				parent = fmt.Sprintf("L%d", i)
				if err := sn.Commit(ctx, parent, key, nil); err != nil {
					t.Fatal(err)
				}
			}
			m, err := sn.View(ctx, "v", parent, nil)
			if err != nil {
				t.Fatal(err)
			}
			target := t.TempDir()
			if err := snapshot.MountAll(m, target); err != nil {
				t.Fatal(err)
			}
			defer snapshot.UnmountAll(target)
			want, got := describe(t, rootfs), describe(t, target)
			bad := 0
			for p, w := range want {
				if strings.HasPrefix(p, "dev/") || p == ".berth-bench-complete" {
					continue // make-images.sh leaves device nodes and its marker out
				}
				g, ok := got[p]
				// The layer tars hold whole seconds, rounded: allow 1 s.
				if (!ok || g.desc != w.desc || g.mtime-w.mtime > 1 || w.mtime-g.mtime > 1) && bad < 20 {
					t.Errorf("%s: got %+v, want %+v", p, g, w)
					bad++
				}
			}
			for p := range got {
				if _, ok := want[p]; !ok && bad < 20 {
					t.Errorf("%s: extra entry", p)
					bad++
				}
			}
			t.Logf("%d entries compared", len(want))
		})
	}
}

type entry struct {
	desc  string
	mtime int64
}

func describe(t *testing.T, root string) map[string]entry {
	out := map[string]entry{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		unix.Lstat(p, &st)
		d := fmt.Sprintf("%o %d:%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			d += fmt.Sprintf(" %d", st.Size)
			if st.Nlink > 1 {
				d += fmt.Sprintf(" links=%d", st.Nlink)
			}
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			d += " ->" + l
		case unix.S_IFCHR, unix.S_IFBLK:
			d += fmt.Sprintf(" %d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case unix.S_IFDIR:
		default:
		}
		var mtime int64
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			mtime = st.Mtim.Sec
		}
		buf := make([]byte, 256)
		if n, err := unix.Lgetxattr(p, "security.capability", buf); err == nil {
			d += fmt.Sprintf(" cap=%x", buf[:n])
		}
		out[rel] = entry{d, mtime}
		return nil
	})
	return out
}
