package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// IDMap maps container ids [Container, Container+Size) to host ids
// [Host, Host+Size), as a line of /proc/<pid>/uid_map.
type IDMap struct {
	Container, Host, Size uint32
}

// hostID maps a container id; ok is false when no range holds it.
func hostID(maps []IDMap, id uint32) (uint32, bool) {
	for _, m := range maps {
		if id >= m.Container && id-m.Container < m.Size {
			return m.Host + (id - m.Container), true
		}
	}
	return 0, false
}

// ShiftCopy copies the tree at src into dst (an existing, empty directory)
// with every owner mapped through uids and gids: the "shifted" copy of an
// image's filesystem that a user-namespaced container (userns-remap) sees
// owned by its own root. It is what docker does when it unpacks layers
// into a remapped root; berth shifts a flattened copy of the image instead
// of re-unpacking, and the caller caches it per image and range.
//
// The copy reflinks file data where the filesystem can. An id that no
// range maps fails the copy, as docker's idtools does.
func ShiftCopy(ctx context.Context, src, dst string, uids, gids []IDMap) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	// One copier for all entries: it keeps hard links across them.
	c := &copier{ctx: ctx, links: map[uint64]string{}, buf: make([]byte, 1<<20), reflink: true}
	for _, n := range names {
		if err := c.copy(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
			return err
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
		return err
	}
	return shiftTree(ctx, dst, uids, gids)
}

// shiftTree maps the owner of every entry under root, in place. Hard links
// are shifted once (a second chown would shift twice). chown clears setuid
// bits and file capabilities, so the mode and security.capability are put
// back after it.
func shiftTree(ctx context.Context, root string, uids, gids []IDMap) error {
	seen := map[uint64]bool{}
	return filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Nlink > 1 && !de.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		uid, ok := hostID(uids, st.Uid)
		if !ok {
			return fmt.Errorf("shift %s: container uid %d cannot be mapped to a host uid", p, st.Uid)
		}
		gid, ok := hostID(gids, st.Gid)
		if !ok {
			return fmt.Errorf("shift %s: container gid %d cannot be mapped to a host gid", p, st.Gid)
		}
		isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
		var fcaps []byte
		if !isLink && st.Mode&unix.S_IFMT == unix.S_IFREG {
			if n, err := unix.Lgetxattr(p, "security.capability", nil); err == nil && n > 0 {
				fcaps = make([]byte, n)
				if n, err = unix.Lgetxattr(p, "security.capability", fcaps); err == nil {
					fcaps = fcaps[:n]
				} else {
					fcaps = nil
				}
			}
		}
		if err := unix.Lchown(p, int(uid), int(gid)); err != nil {
			return fmt.Errorf("shift %s: %w", p, err)
		}
		if isLink {
			return nil
		}
		if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
				return fmt.Errorf("shift %s: %w", p, err)
			}
		}
		if fcaps != nil {
			if err := unix.Lsetxattr(p, "security.capability", fcaps, 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
				return fmt.Errorf("shift %s: file capabilities: %w", p, err)
			}
		}
		return nil
	})
}
