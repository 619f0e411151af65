package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

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
	key := extractKey(chainID)
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

// Stage implements layerStager on a snapshotter that can rebase (overlay):
// the layer goes into a parentless "extract-<rand>-<chainID>" snapshot with
// overlay whiteouts; commit rebases it onto parent, gives the directories
// it made implicitly their lower copies' owner and mode, and commits it.
func (l *SnapshotLayers) Stage(ctx context.Context, chainID digest.Digest, tar io.Reader, verify func() error) (_ *stagedLayer, err error) {
	rb, ok := l.Snapshotter.(snapshot.Rebaser)
	if !ok {
		return nil, errNeedsParent
	}
	key := extractKey(chainID)
	mounts, err := l.Snapshotter.Prepare(ctx, key, "", nil)
	if err != nil {
		return nil, fmt.Errorf("layer %s: prepare: %w", chainID, err)
	}
	discard := func() { _ = l.Snapshotter.Remove(context.WithoutCancel(ctx), key) }
	defer func() {
		if err != nil {
			discard()
		}
	}()
	dir, _, _, ok := snapshot.ApplyTarget(mounts)
	if !ok {
		return nil, errNeedsParent
	}
	var implicit []string
	size, err := archive.Apply(ctx, dir, tar, archive.ApplyOptions{Whiteout: archive.Overlay, MaxSize: l.MaxSize, ImplicitDirs: &implicit})
	if errdefs.IsNotFound(err) {
		return nil, errNeedsParent // a hard link into a lower layer
	}
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", chainID, err)
	}
	if err := verify(); err != nil {
		return nil, err
	}
	if l.Sync {
		if err := archive.SyncDir(ctx, dir); err != nil {
			return nil, err
		}
	}
	commit := func(ctx context.Context, parent digest.Digest) error {
		var err error
		switch {
		case parent == "":
			err = l.Snapshotter.Commit(ctx, chainID.String(), key, nil)
		case len(implicit) == 0:
			err = rb.CommitOnto(ctx, chainID.String(), key, parent.String(), nil)
		default:
			var m []snapshot.Mount
			if m, err = rb.Rebase(ctx, key, parent.String()); err != nil {
				break
			}
			dir, _, parents, ok := snapshot.ApplyTarget(m)
			if !ok {
				return fmt.Errorf("layer %s: rebased snapshot has no upper directory: %w", chainID, errdefs.ErrInternal)
			}
			if err = archive.InheritDirs(ctx, dir, implicit, parents); err != nil {
				return fmt.Errorf("layer %s: %w", chainID, err)
			}
			err = l.Snapshotter.Commit(ctx, chainID.String(), key, nil)
		}
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			// Someone else (another process sharing the snapshotter) won.
			discard()
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer %s: commit: %w", chainID, err)
		}
		return nil
	}
	return &stagedLayer{size: size, commit: commit, discard: discard}, nil
}

func extractKey(chainID digest.Digest) string {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return "extract-" + hex.EncodeToString(rnd[:]) + "-" + chainID.String()
}

// Remove implements Layers.
func (l *SnapshotLayers) Remove(ctx context.Context, chainID digest.Digest) error {
	return l.Snapshotter.Remove(ctx, chainID.String())
}

// Cleanup removes what a crash mid-pull can leave in the snapshotter:
// extract-* working snapshots, and committed layers (named by chain ID)
// that the image index does not know (committed, but the image was never
// recorded). keep reports the chain IDs the index knows. New calls it.
func (l *SnapshotLayers) Cleanup(ctx context.Context, keep func(digest.Digest) bool) error {
	for round := 0; round < 64; round++ {
		var victims []string
		err := l.Snapshotter.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
			switch {
			case info.Kind == snapshot.Active && strings.HasPrefix(info.Name, "extract-"):
				victims = append(victims, info.Name)
			case info.Kind == snapshot.Committed && strings.HasPrefix(info.Name, "sha256:"):
				if d, err := digest.Parse(info.Name); err == nil && !keep(d) {
					victims = append(victims, info.Name)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		removed := 0
		for _, v := range victims {
			// Parents refuse removal until their children are gone: rounds.
			if err := l.Snapshotter.Remove(ctx, v); err == nil {
				removed++
			}
		}
		if removed == 0 {
			return nil
		}
	}
	return nil
}
