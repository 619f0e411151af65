package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
)

// layerStager is an optional Layers method that lets a pull unpack all its
// layers at once instead of one after the other (SnapshotLayers on overlay,
// where a layer's directory holds only its own changes; the tests' memLayers).
//
// Lifecycle: Stage applies tar into a working snapshot of its own, with no
// parent, and calls verify as Unpack does. After a nil error the caller
// calls exactly one of the result's commit, once parent is committed (the
// layer gets parent and is committed as chainID; committed by someone else
// meanwhile counts as success), or discard. Stage fails with
// errNeedsParent, having read part of tar and left nothing behind, when
// the layer needs its parent's files to unpack (a hard link to a file of a
// lower layer) or this Layers cannot stage: unpack it with Unpack once the
// parent is committed.
type layerStager interface {
	Stage(ctx context.Context, chainID digest.Digest, tar io.Reader, verify func() error) (*stagedLayer, error)
}

type stagedLayer struct {
	size    int64
	commit  func(ctx context.Context, parent digest.Digest) error
	discard func()
}

var errNeedsParent = errors.New("layer needs its parent to unpack")

// maxParallelUnpacks bounds the layers a pull unpacks at once (each is an
// inflater and an untar: about a core).
const maxParallelUnpacks = 3

// unpackLayers unpacks jobs (a chain: jobs[0]'s parent is committed or
// none) and returns their sizes. With a stager, every layer is unpacked as
// soon as its blob streams in, each into a snapshot of its own, and the
// layers are committed in chain order; without one, one after the other.
func (s *Store) unpackLayers(ctx context.Context, jobs []*layerJob, ps *progressSink) ([]int64, error) {
	sizes := make([]int64, len(jobs))
	st, ok := s.layers.(layerStager)
	if !ok || len(jobs) < 2 {
		for i, j := range jobs {
			size, err := s.unpackLayer(ctx, j, ps)
			if err != nil {
				return nil, err
			}
			sizes[i] = size
			pullComplete(j, ps)
		}
		return sizes, nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		errs     = make([]error, len(jobs))
		done     = make([]chan struct{}, len(jobs)) // closed when layer i is committed or failed
		started  = make([]chan struct{}, len(jobs)) // closed when layer i holds a slot
		slots    = make(chan struct{}, maxParallelUnpacks)
		firstErr error
		errOnce  sync.Once
	)
	for i := range jobs {
		done[i], started[i] = make(chan struct{}), make(chan struct{})
	}
	for i, j := range jobs {
		go func() {
			defer close(done[i])
			// Slots are taken in layer order, so the layer the next
			// commit waits for is never starved by a later one.
			held := false
			if i > 0 {
				select {
				case <-started[i-1]:
				case <-ctx.Done():
				}
			}
			select {
			case slots <- struct{}{}:
				held = true
			case <-ctx.Done():
			}
			close(started[i])
			release := func() {
				if held {
					held = false
					<-slots
				}
			}
			defer release()
			if !held {
				errs[i] = ctx.Err()
				return
			}
			var err error
			if i == 0 {
				sizes[i], err = s.unpackLayer(ctx, j, ps)
			} else {
				sizes[i], err = s.stageLayer(ctx, st, j, ps, func() error {
					release() // waiting takes no CPU
					select {
					case <-done[i-1]:
					case <-ctx.Done():
						return ctx.Err()
					}
					if errs[i-1] != nil {
						return fmt.Errorf("layer %s: its parent failed: %w", j.desc.Digest, context.Canceled)
					}
					return nil
				})
			}
			if err != nil {
				errs[i] = err
				errOnce.Do(func() { firstErr = err })
				cancel()
				return
			}
			pullComplete(j, ps)
		}()
	}
	for i := range jobs {
		<-done[i]
	}
	if firstErr != nil {
		return nil, firstErr
	}
	for _, err := range errs {
		if err != nil {
			return nil, err // the caller's context ended
		}
	}
	return sizes, nil
}

func pullComplete(j *layerJob, ps *progressSink) {
	if !j.foreign {
		ps.emit(ProgressEvent{ID: shortID(j.desc.Digest), Status: StatusPullComplete})
	}
}

// stageLayer unpacks j before its parent is committed and commits it once
// waitParent says the parent is; a layer that cannot be staged is unpacked
// on top of its parent after that instead.
func (s *Store) stageLayer(ctx context.Context, st layerStager, j *layerJob, ps *progressSink, waitParent func() error) (int64, error) {
	return s.sharedUnpack(ctx, j, func() (int64, error) {
		var staged *stagedLayer
		_, err := s.unpackOnce(ctx, j, ps, func(ctx context.Context, chainID, _ digest.Digest, tar io.Reader, verify func() error) (int64, error) {
			var err error
			staged, err = st.Stage(ctx, chainID, tar, verify)
			return 0, err
		})
		if errors.Is(err, errNeedsParent) {
			if err := waitParent(); err != nil {
				return 0, err
			}
			return s.unpackOnce(ctx, j, ps, s.layers.Unpack)
		}
		if err != nil {
			return 0, err
		}
		if err := waitParent(); err != nil {
			staged.discard()
			return 0, err
		}
		if err := staged.commit(ctx, j.parent); err != nil {
			staged.discard()
			return 0, fmt.Errorf("layer %s: %w", j.desc.Digest, err)
		}
		return staged.size, nil
	})
}
