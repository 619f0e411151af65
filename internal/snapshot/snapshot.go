// Package snapshot manages layered container filesystems the way containerd's
// snapshotters do: a snapshotter creates, commits and removes snapshots and
// RETURNS the mounts that assemble them; it never mounts, never reads a tar
// and knows nothing of images. Mount is the lingua franca between the
// snapshotter, the image unpacker (internal/image, which applies layers with
// internal/archive) and the daemon (which mounts a container's rootfs).
//
// Two implementations share one metadata schema and one crash-safe
// directory lifecycle: overlay (committed layers as overlayfs lowerdirs) and
// native (each snapshot a full copy of its parent, for filesystems that
// cannot host overlay).
package snapshot

import (
	"context"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/archive"
)

// Kind is the state of a snapshot.
type Kind int

const (
	View      Kind = iota + 1 // read-only, cannot be committed
	Active                    // writable, may be committed once
	Committed                 // immutable, may be a parent
)

func (k Kind) String() string {
	switch k {
	case View:
		return "View"
	case Active:
		return "Active"
	case Committed:
		return "Committed"
	}
	return "Unknown"
}

// Info describes a snapshot.
type Info struct {
	Kind    Kind
	Name    string // the key (Active, View) or the committed name
	Parent  string // committed parent's name, "" for a base
	Labels  map[string]string
	Created time.Time
	Updated time.Time
}

// Usage is the disk space a snapshot itself uses (not its parents).
type Usage struct {
	Size   int64 // bytes of allocated blocks
	Inodes int64
}

// Mount is one mount(2) to perform, as `mount -t Type -o Options Source target`.
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// Snapshotter manages snapshots: keyed, copy-on-write filesystem trees.
//
// Lifecycle. A snapshot is created Active (Prepare) or View (View), from an
// optional Committed parent. An Active snapshot is changed through its
// mounts and then either committed under a new name (Commit: the key goes
// away, the name appears as Committed and can parent new snapshots) or
// removed. Committed snapshots are immutable and can be removed only once
// they have no children. Keys and committed names share one namespace.
//
// Unpacking an image (layers L1, L2 with chain IDs C1, C2):
//
//	m, _ := sn.Prepare(ctx, "extract-C1", "", nil)   // base: empty
//	dir, wf, parents, _ := ApplyTarget(m)           // no mount needed
//	archive.Apply(ctx, dir, layer1, archive.ApplyOptions{Whiteout: wf, Parents: parents})
//	sn.Commit(ctx, "C1", "extract-C1", nil)
//	m, _ = sn.Prepare(ctx, "extract-C2", "C1", nil)
//	... apply layer 2 the same way ...
//	sn.Commit(ctx, "C2", "extract-C2", nil)
//	archive.SyncDir(ctx, root)                        // once, at the end
//
// A container's writable layer on top of the image:
//
//	m, _ := sn.Prepare(ctx, "ctr-<id>", "C2", nil)
//	MountAll(m, rootfs)  ... run ...  UnmountAll(rootfs)
//	sn.Remove(ctx, "ctr-<id>")   // or Commit it (docker commit)
//
// A read-only look at an image (e.g. to copy files out of it):
//
//	m, _ := sn.View(ctx, "view-x", "C2", nil)
//
// Errors: unknown keys are errdefs.ErrNotFound, taken keys or names
// errdefs.ErrAlreadyExists, removing a parent errdefs.ErrFailedPrecondition,
// a wrong kind (committing a View, a non-committed parent)
// errdefs.ErrInvalidArgument.
type Snapshotter interface {
	Stat(ctx context.Context, key string) (Info, error)
	Usage(ctx context.Context, key string) (Usage, error)
	Mounts(ctx context.Context, key string) ([]Mount, error)
	Prepare(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error)
	View(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error)
	Commit(ctx context.Context, name, key string, labels map[string]string) error
	Remove(ctx context.Context, key string) error
	Walk(ctx context.Context, fn func(context.Context, Info) error) error
	// Cleanup removes directories no record points to (left by a crash,
	// or by Remove, which deletes the record first). The constructors
	// call it; the daemon may call it again at idle times.
	Cleanup(ctx context.Context) error
	Close() error
}

// Rebaser is implemented by snapshotters whose committed layers hold only
// their own changes (overlay, not native): a layer can then be unpacked into
// a base snapshot while its parents are still being unpacked, and be given
// its parent when committed. That lets a pull unpack all layers at once:
//
//	m, _ := sn.Prepare(ctx, "extract-C2", "", nil)  // concurrently with C1
//	dir, _, _, _ := ApplyTarget(m)
//	archive.Apply(ctx, dir, layer2, archive.ApplyOptions{Whiteout: archive.Overlay})
//	... wait until C1 is committed ...
//	sn.(Rebaser).CommitOnto(ctx, "C2", "extract-C2", "C1", nil)
//
// Note the explicit archive.Overlay: ApplyTarget says Native for a base
// snapshot. A hard link to a file of a lower layer fails to apply this way
// (errdefs.ErrNotFound, the lower is not there yet): remove the snapshot
// and unpack that layer the sequential way.
//
// Rebase is CommitOnto in two steps, for a layer that needs its parents
// before it is committed (directories it created implicitly take their
// owner and mode from the lower copies, see archive.InheritDirs): it gives
// the parentless Active key the committed parent, leaves it Active and
// returns its new mounts (upperdir and lowerdirs for ApplyTarget).
//
//	m, _ = sn.(Rebaser).Rebase(ctx, "extract-C2", "C1")
//	dir, _, parents, _ := ApplyTarget(m)
//	archive.InheritDirs(ctx, dir, implicit, parents)
//	sn.Commit(ctx, "C2", "extract-C2", nil)
type Rebaser interface {
	CommitOnto(ctx context.Context, name, key, parent string, labels map[string]string) error
	Rebase(ctx context.Context, key, parent string) ([]Mount, error)
}

// ApplyTarget returns the directory a layer can be unpacked into directly,
// without mounting (the fast path containerd's overlay differ takes), with
// the whiteout format and the lower directories (top first) to give
// archive.Apply. ok is false when the mounts are not a writable snapshot of
// ours; the caller then mounts them and applies into the mount point.
func ApplyTarget(mounts []Mount) (dir string, wf archive.WhiteoutFormat, parents []string, ok bool) {
	if len(mounts) != 1 {
		return "", 0, nil, false
	}
	m := mounts[0]
	switch m.Type {
	case "overlay":
		for _, o := range m.Options {
			switch {
			case strings.HasPrefix(o, "upperdir="):
				dir = strings.TrimPrefix(o, "upperdir=")
			case strings.HasPrefix(o, "lowerdir="):
				parents = strings.Split(strings.TrimPrefix(o, "lowerdir="), ":")
			}
		}
		return dir, archive.Overlay, parents, dir != ""
	case "bind":
		for _, o := range m.Options {
			if o == "ro" {
				return "", 0, nil, false
			}
		}
		// A bind is a base layer or a native copy: either way the whole
		// tree is there, so deletions apply to it directly.
		return m.Source, archive.Native, nil, true
	}
	return "", 0, nil, false
}
