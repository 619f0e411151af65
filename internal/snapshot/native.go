package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// NewNative returns a copying snapshotter for filesystems that cannot host
// overlay: every snapshot is a full copy of its parent (reflinked where the
// filesystem shares extents), kept under root, recorded in db (bucket
// snapshots/native). root belongs to this snapshotter alone.
func NewNative(root string, db *bolt.DB) (Snapshotter, error) {
	return newSnapshotter(context.Background(), root, db, nativeDriver{})
}

type nativeDriver struct{}

func (nativeDriver) name() string { return "native" }

func (nativeDriver) create(ctx context.Context, dir string, kind Kind, parents []string) error {
	fs := filepath.Join(dir, "fs")
	if len(parents) == 0 {
		return os.Mkdir(fs, 0o755)
	}
	if err := copyTree(ctx, parents[0], fs); err != nil {
		return fmt.Errorf("copy parent: %w", err)
	}
	return nil
}

func (nativeDriver) mounts(dir string, kind Kind, parents []string) []Mount {
	ro := "rw"
	if kind == View {
		ro = "ro"
	}
	return []Mount{{Type: "bind", Source: filepath.Join(dir, "fs"), Options: []string{ro, "rbind"}}}
}
