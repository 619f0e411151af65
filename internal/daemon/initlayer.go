package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/snapshot"
)

// The init layer: the mount points every container needs and its image may
// lack, in a committed snapshot between the image and the containers'
// writable layers (docker's "-init" layer, which docker makes per
// container; here one per image top layer, shared).
//
//	sha256:<chain>            the image's top layer
//	└── init-sha256:<chain>   /proc /sys /dev, /etc and its hostname, hosts,
//	    │                     resolv.conf: each only where the image has nothing
//	    ├── <container id>    writable layers
//	    └── <container id>
//
// Without it the runtime makes those mount points in each container's
// writable layer, seven inodes and a copy-up of /etc per container start for
// an image like busybox, which `diff` and `commit` then have to hide. It is
// made on first use ("init-work-<chain>" while it is filled), removed with
// its image's top layer (imageLayers.Remove), and only on overlay: on the
// native driver a child snapshot is a full copy.
const (
	initLayerPrefix = "init-"
	initWorkPrefix  = "init-work-"
)

// initDirs and initFiles are made in the init layer when the image lacks
// them: the default mounts' targets and the etc files (etcMounts).
var (
	initDirs  = []string{"proc", "sys", "dev", "etc"}
	initFiles = []string{"etc/hostname", "etc/hosts", "etc/resolv.conf"}
)

func initLayerName(chain string) string { return initLayerPrefix + chain }

// initLayer returns the committed snapshot containers of the image with top
// layer chain start from, making it on first use.
func (d *Daemon) initLayer(ctx context.Context, chain string) (string, error) {
	name := initLayerName(chain)
	if _, err := d.snaps.Stat(ctx, name); err == nil {
		return name, nil
	}
	d.initMu.Lock()
	defer d.initMu.Unlock()
	if _, err := d.snaps.Stat(ctx, name); err == nil {
		return name, nil
	}
	work := initWorkPrefix + chain
	_ = d.snaps.Remove(ctx, work) // left by a crash
	m, err := d.snaps.Prepare(ctx, work, chain, nil)
	if err != nil {
		return "", err
	}
	if err := d.fillInitLayer(m); err != nil {
		_ = d.snaps.Remove(context.WithoutCancel(ctx), work)
		return "", fmt.Errorf("init layer of %s: %w", chain, err)
	}
	if err := d.snaps.Commit(ctx, name, work, map[string]string{"berth.init.parent": chain}); err != nil {
		_ = d.snaps.Remove(context.WithoutCancel(ctx), work)
		if errdefs.IsAlreadyExists(err) {
			return name, nil
		}
		return "", err
	}
	return name, nil
}

// fillInitLayer mounts the snapshot and makes what the image lacks through
// the mount, so that overlay decides what exists (whiteouts, opaque
// directories, symlinks in any layer) and copies /etc up as it is.
func (d *Daemon) fillInitLayer(m []snapshot.Mount) error {
	dir, err := os.MkdirTemp(filepath.Join(d.cfg.DataRoot, "snapshots"), mountDirPrefixes[0])
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := snapshot.MountAll(m, dir); err != nil {
		return err
	}
	defer func() { _ = snapshot.UnmountAll(dir) }()
	root, err := os.OpenRoot(dir) // no symlink of the image leads out
	if err != nil {
		return err
	}
	defer root.Close()
	for _, p := range initDirs {
		if _, err := root.Lstat(p); errors.Is(err, os.ErrNotExist) {
			if err := root.Mkdir(p, 0o755); err != nil {
				return err
			}
		}
	}
	// /etc may be a link (etc -> usr/etc): the files go where it leads, as
	// the runtime resolves the mount targets in the root too. A file, or
	// a link os.Root will not follow (absolute, or out of the root), is
	// left to the runtime per container.
	if fi, err := root.Stat("etc"); err != nil || !fi.IsDir() {
		return nil
	}
	for _, p := range initFiles {
		if _, err := root.Lstat(p); errors.Is(err, os.ErrNotExist) {
			f, err := root.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			f.Close()
		}
	}
	return nil
}

// imageLayers is the image store's view of the snapshotter, extended with
// the init layers: an image layer goes with its init layer, and a crash's
// leftovers of either are swept.
type imageLayers struct {
	*image.SnapshotLayers
}

// Remove removes chain's init layer first: a parent refuses removal while it
// has children. A container still on the init layer keeps both.
func (l imageLayers) Remove(ctx context.Context, chain digest.Digest) error {
	if err := l.Snapshotter.Remove(ctx, initLayerName(chain.String())); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return l.SnapshotLayers.Remove(ctx, chain)
}

// Cleanup removes half-made init layers, and init layers of layers the image
// index does not know, before the layers' own sweep.
func (l imageLayers) Cleanup(ctx context.Context, keep func(digest.Digest) bool) error {
	var victims []string
	_ = l.Snapshotter.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		switch {
		case info.Kind == snapshot.Active && strings.HasPrefix(info.Name, initWorkPrefix):
			victims = append(victims, info.Name)
		case info.Kind == snapshot.Committed && strings.HasPrefix(info.Name, initLayerPrefix) && !strings.HasPrefix(info.Name, initWorkPrefix):
			if c, err := digest.Parse(info.Parent); err == nil && !keep(c) {
				victims = append(victims, info.Name)
			}
		}
		return nil
	})
	for _, v := range victims {
		_ = l.Snapshotter.Remove(ctx, v) // refused while a container uses it
	}
	return l.SnapshotLayers.Cleanup(ctx, keep)
}

// mountDirPrefixes name the temporary mount points the daemon makes in
// <data-root>/snapshots: the init layer's and userns-remap's (userns.go).
var mountDirPrefixes = []string{"init-", "userns-src-"}

// sweepMountDirs unmounts and removes the temporary mount points a daemon
// killed while filling an init layer or shifting an image left behind.
func sweepMountDirs(snapRoot string) {
	entries, _ := os.ReadDir(snapRoot)
	for _, e := range entries {
		for _, p := range mountDirPrefixes {
			if e.IsDir() && strings.HasPrefix(e.Name(), p) {
				dir := filepath.Join(snapRoot, e.Name())
				_ = snapshot.UnmountAll(dir)
				_ = os.Remove(dir)
			}
		}
	}
}
