// Package archive applies image layer tars to directories and writes
// directories back as tars.
//
// Apply is on the pull hot path and faces untrusted input, so it never
// resolves a path through a symlink: every parent directory is opened from
// the root's file descriptor with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS),
// entries are created with *at syscalls relative to that fd, and a name that
// would leave the root is an error naming the entry. Nothing is fsynced per
// file; the caller calls SyncDir once when a whole image is unpacked.
package archive

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// WhiteoutFormat says how deletions in a layer are represented in the target
// directory.
type WhiteoutFormat int

const (
	// Overlay writes deletions the way an overlayfs upperdir holds them: a
	// 0/0 character device for a deleted name, and the xattr
	// trusted.overlay.opaque="y" on an opaque directory. Lower layers are
	// not touched (they are not in the target directory).
	Overlay WhiteoutFormat = iota
	// Native applies deletions to the tree itself, for a copying
	// snapshotter whose directory already holds the parent's content.
	Native
)

func (w WhiteoutFormat) String() string {
	if w == Native {
		return "native"
	}
	return "overlay"
}

// IDMapping maps Size ids starting at ContainerID to HostID.
type IDMapping struct {
	ContainerID, HostID, Size uint32
}

// IDMap shifts owners while applying (user namespace remapping).
// A nil *IDMap is the identity.
type IDMap struct {
	UIDs, GIDs []IDMapping
}

func mapID(m []IDMapping, id int) (int, bool) {
	for _, e := range m {
		if id >= int(e.ContainerID) && id-int(e.ContainerID) < int(e.Size) {
			return int(e.HostID) + id - int(e.ContainerID), true
		}
	}
	return 0, false
}

// ToHost maps a container uid/gid pair to the host.
func (m *IDMap) ToHost(uid, gid int) (int, int, error) {
	if m == nil {
		return uid, gid, nil
	}
	hu, ok1 := mapID(m.UIDs, uid)
	hg, ok2 := mapID(m.GIDs, gid)
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("uid %d / gid %d not in the id map: %w", uid, gid, errdefs.ErrInvalidArgument)
	}
	return hu, hg, nil
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Whiteout WhiteoutFormat
	// Parents are the lower directories of an overlay snapshot, top first.
	// A hard link to a file that only exists in a lower layer is copied up
	// into the target first (as containerd does), and missing parent
	// directories take their owner and mode from the lower copy.
	Parents []string
	// IDMap shifts owners; nil keeps them.
	IDMap *IDMap
	// MaxSize bounds the sum of regular file sizes; 0 is no limit.
	MaxSize int64
	// ImplicitDirs, if set, receives the directories Apply had to create
	// for entries whose parent directories the layer does not declare
	// (root-relative slash paths, parents first). Unpacked without Parents,
	// they must be given their lower copies' owner and mode before the
	// layer is stacked on its parents: see InheritDirs.
	ImplicitDirs *[]string
}

// TarOptions tune WriteTar.
type TarOptions struct {
	// Whiteout is how deletions are stored in the directory: Overlay means
	// dir is an overlay upperdir whose whiteout devices and opaque xattrs
	// become .wh. entries. Ignored when Parent is set.
	Whiteout WhiteoutFormat
	// Parent, if set, makes WriteTar emit only the difference between
	// Parent and dir (a native layer diff): new or changed entries, and a
	// .wh. entry for each name removed.
	Parent string
}

// Decompress sniffs gzip, zstd and bzip2 and returns the uncompressed
// stream; anything else is passed through as plain tar. Compressed streams
// are inflated ahead on a goroutine. Closing the result does not close r and
// does not wait for that goroutine's read of r in flight: close r after it
// to unblock such a read (r must tolerate Close during Read, as *os.File
// does).
func Decompress(r io.Reader) (io.ReadCloser, error) {
	rc, compressed, err := decompress(r)
	if err != nil || !compressed {
		return rc, err
	}
	return maybeReadahead(rc, nil), nil
}

// DecompressDigest is Decompress that also writes the uncompressed stream
// to h (a diff ID's sha256) on the read-ahead goroutine, where hashing
// overlaps with the caller's untar instead of adding to it. h holds the
// sum of the whole stream once a Read of the result has returned io.EOF.
func DecompressDigest(r io.Reader, h hash.Hash) (io.ReadCloser, error) {
	rc, _, err := decompress(r)
	if err != nil {
		return nil, err
	}
	return readahead(rc, h), nil
}

func decompress(r io.Reader) (rc io.ReadCloser, compressed bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return nil, false, fmt.Errorf("sniff compression: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		if path := gzipHelper(); path != "" {
			if h, err := startHelper(path, br); err == nil {
				return h, true, nil
			}
			// Could not start it: inflate in Go.
		}
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, false, fmt.Errorf("gzip: %w", err)
		}
		return zr, true, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
		if err != nil {
			return nil, false, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), true, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return io.NopCloser(bzip2.NewReader(br)), false, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, false, fmt.Errorf("xz compressed layers: %w", errdefs.ErrNotImplemented)
	}
	return io.NopCloser(br), false, nil
}

// SyncDir flushes the whole filesystem holding dir (syncfs): one call after
// unpacking instead of an fsync per file.
func SyncDir(ctx context.Context, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncfs: %w", err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// noReadahead turns the decompression goroutine off (benchmarks compare).
var noReadahead bool

func maybeReadahead(rc io.ReadCloser, h hash.Hash) io.ReadCloser {
	if noReadahead && h == nil {
		return rc
	}
	return readahead(rc, h)
}
