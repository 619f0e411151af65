package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/snapshot"
)

// SnapshotLayers is the Layers the daemon uses: each layer is a committed
// snapshot named by its chain ID, unpacked with archive.Apply straight into
// the snapshot's directory (no mount on the fast path).
type SnapshotLayers struct {
	Snapshotter snapshot.Snapshotter
	// Sync flushes the filesystem (one syncfs) before each commit, so a
	// committed layer survives a power loss. Off, a crash may leave a
	// committed layer with lost pages; the daemon may then Sync at start.
	Sync bool
	// Root is a directory for temporary mount points (slow path only).
	Root string
	// MaxSize bounds one layer's unpacked size (0: no limit).
	MaxSize int64
}

// Has implements Layers.
func (l *SnapshotLayers) Has(ctx context.Context, chainID digest.Digest) (bool, error) {
	info, err := l.Snapshotter.Stat(ctx, chainID.String())
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return info.Kind == snapshot.Committed, nil
}

// Unpack implements Layers: Prepare "extract-<rand>-<chainID>" → Apply →
// verify → Commit(chainID); the extract snapshot is removed on any failure.
func (l *SnapshotLayers) Unpack(ctx context.Context, chainID, parent digest.Digest, tar io.Reader, verify func() error) (size int64, err error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	key := "extract-" + hex.EncodeToString(rnd[:]) + "-" + chainID.String()
	mounts, err := l.Snapshotter.Prepare(ctx, key, parent.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("layer %s: prepare: %w", chainID, err)
	}
	defer func() {
		if err != nil {
			// Not the caller's ctx: it may be the reason we are here.
			_ = l.Snapshotter.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	dir, wf, parents, ok := snapshot.ApplyTarget(mounts)
	if !ok {
		mp, merr := os.MkdirTemp(l.Root, "apply-")
		if merr != nil {
			return 0, merr
		}
		defer os.Remove(mp)
		if err := snapshot.MountAll(mounts, mp); err != nil {
			return 0, fmt.Errorf("layer %s: %w", chainID, err)
		}
		defer snapshot.UnmountAll(mp)
		dir, wf, parents = mp, archive.Native, nil
	}
	size, err = archive.Apply(ctx, dir, tar, archive.ApplyOptions{Whiteout: wf, Parents: parents, MaxSize: l.MaxSize})
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", chainID, err)
	}
	if err := verify(); err != nil {
		return 0, err
	}
	if l.Sync {
		if err := archive.SyncDir(ctx, dir); err != nil {
			return 0, err
		}
	}
	if err := l.Snapshotter.Commit(ctx, chainID.String(), key, nil); err != nil {
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			// Someone else (another process sharing the snapshotter) won.
			_ = l.Snapshotter.Remove(context.WithoutCancel(ctx), key)
			return size, nil
		}
		return 0, fmt.Errorf("layer %s: commit: %w", chainID, err)
	}
	return size, nil
}

// Remove implements Layers.
func (l *SnapshotLayers) Remove(ctx context.Context, chainID digest.Digest) error {
	return l.Snapshotter.Remove(ctx, chainID.String())
}
