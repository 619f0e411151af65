package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

// NewOverlay returns an overlayfs snapshotter keeping its directories under
// root and its records in db (bucket snapshots/overlay). Committed layers
// are lowerdirs; an Active snapshot gets its own upperdir and workdir.
// root belongs to this snapshotter alone: Cleanup deletes what it does not
// know there.
func NewOverlay(root string, db *bolt.DB) (Snapshotter, error) {
	s, err := newSnapshotter(context.Background(), root, db, overlayDriver{index: overlayParamOn("index")})
	if err != nil {
		return nil, err
	}
	return &overlaySnapshotter{s}, nil
}

// overlaySnapshotter adds CommitOnto: an overlay layer's directory holds only
// its own changes, so it may be unpacked before its parent exists.
type overlaySnapshotter struct{ *snapshotter }

// CommitOnto commits the parentless Active key as name with parent parent.
func (o *overlaySnapshotter) CommitOnto(ctx context.Context, name, key, parent string, labels map[string]string) error {
	return o.commit(ctx, name, key, labels, true, parent)
}

// Rebase gives the parentless Active key the committed parent.
func (o *overlaySnapshotter) Rebase(ctx context.Context, key, parent string) ([]Mount, error) {
	r, err := o.view(key)
	if err != nil {
		return nil, err
	}
	if r.info.Kind != Active || r.info.Parent != "" {
		return nil, fmt.Errorf("rebase %q: only a parentless Active snapshot can be rebased: %w", key, errdefs.ErrInvalidArgument)
	}
	// The workdir an Active snapshot with parents has (see create); a
	// crash before the record changes leaves only an empty directory.
	if err := os.Mkdir(filepath.Join(o.dir(r.id), "work"), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("rebase %q: %w", key, err)
	}
	if err := o.rebase(ctx, key, r.id, parent); err != nil {
		return nil, err
	}
	return o.Mounts(ctx, key)
}

type overlayDriver struct {
	index bool // the kernel defaults to index=on: turn it off, layers are shared
}

// overlayParamOn reads an overlay module default (Y/N).
func overlayParamOn(name string) bool {
	b, err := os.ReadFile("/sys/module/overlay/parameters/" + name)
	return err == nil && strings.TrimSpace(string(b)) == "Y"
}

func (overlayDriver) name() string { return "overlay" }

func (overlayDriver) create(ctx context.Context, dir string, kind Kind, parents []string) error {
	if err := os.Mkdir(filepath.Join(dir, "fs"), 0o755); err != nil {
		return err
	}
	if kind == Active && len(parents) > 0 {
		return os.Mkdir(filepath.Join(dir, "work"), 0o700)
	}
	return nil
}

// mounts: a base Active snapshot is a plain rw bind (there is nothing to
// overlay); a View of one layer is a ro bind of it; otherwise overlay, with
// no upper for a View.
func (d overlayDriver) mounts(dir string, kind Kind, parents []string) []Mount {
	fs := filepath.Join(dir, "fs")
	switch {
	case len(parents) == 0:
		ro := "rw"
		if kind == View {
			ro = "ro"
		}
		return []Mount{{Type: "bind", Source: fs, Options: []string{ro, "rbind"}}}
	case kind == View && len(parents) == 1:
		return []Mount{{Type: "bind", Source: parents[0], Options: []string{"ro", "rbind"}}}
	}
	var opts []string
	if d.index {
		opts = append(opts, "index=off")
	}
	if kind == Active {
		opts = append(opts, "workdir="+filepath.Join(dir, "work"), "upperdir="+fs)
	}
	opts = append(opts, "lowerdir="+strings.Join(parents, ":"))
	return []Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}
