package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/snapshot"
)

// snapshotLayers unpacks image layers into committed snapshots named by
// chain ID: the image store's Layers seam, backed by the daemon's snapshotter.
type snapshotLayers struct{ sn snapshot.Snapshotter }

func (l snapshotLayers) Has(ctx context.Context, chainID digest.Digest) (bool, error) {
	info, err := l.sn.Stat(ctx, chainID.String())
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return info.Kind == snapshot.Committed, nil
}

// Unpack prepares a working snapshot on parent, applies tar into it (the
// upper directory directly, without mounting), and commits it as chainID
// only when verify (the digest check of the stream) passes.
func (l snapshotLayers) Unpack(ctx context.Context, chainID, parent digest.Digest, tar io.Reader, verify func() error) (int64, error) {
	if ok, err := l.Has(ctx, chainID); err != nil || ok {
		return 0, err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	key := "extract-" + hex.EncodeToString(rnd[:]) + "-" + chainID.Encoded()
	mounts, err := l.sn.Prepare(ctx, key, string(parent), nil)
	if err != nil {
		return 0, fmt.Errorf("prepare layer %s: %w", chainID, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = l.sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	dir, wf, parents, ok := snapshot.ApplyTarget(mounts)
	if !ok {
		return 0, fmt.Errorf("layer %s: snapshot mounts cannot be applied into directly", chainID)
	}
	size, err := archive.Apply(ctx, dir, tar, archive.ApplyOptions{Whiteout: wf, Parents: parents})
	if err != nil {
		return 0, fmt.Errorf("apply layer %s: %w", chainID, err)
	}
	if err := verify(); err != nil {
		return 0, err
	}
	if err := l.sn.Commit(ctx, chainID.String(), key, nil); err != nil {
		if errdefs.IsAlreadyExists(err) {
			return 0, nil // a concurrent unpack won
		}
		return 0, fmt.Errorf("commit layer %s: %w", chainID, err)
	}
	committed = true
	return size, nil
}

func (l snapshotLayers) Remove(ctx context.Context, chainID digest.Digest) error {
	return l.sn.Remove(ctx, chainID.String())
}
