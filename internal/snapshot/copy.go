package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// copyTree copies src to dst (which must not exist) preserving type, owner,
// mode (setuid etc.), times, xattrs and hard links. File data is reflinked
// (FICLONE) when the filesystem shares extents, else copied in the kernel
// (copy_file_range). Symlinks are copied, never followed.
func copyTree(ctx context.Context, src, dst string) error {
	c := &copier{ctx: ctx, links: map[uint64]string{}, buf: make([]byte, 1<<20), reflink: true}
	return c.copy(src, dst)
}

type copier struct {
	ctx     context.Context
	links   map[uint64]string // source inode → first destination path
	buf     []byte
	reflink bool
}

func (c *copier) copy(src, dst string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("lstat %s: %w", src, err)
	}
	mode := st.Mode & unix.S_IFMT
	if mode != unix.S_IFDIR && st.Nlink > 1 {
		if first, ok := c.links[st.Ino]; ok {
			return os.Link(first, dst)
		}
		c.links[st.Ino] = dst
	}
	switch mode {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", dst, err)
		}
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := c.copy(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
				return err
			}
		}
	case unix.S_IFREG:
		if err := c.copyFile(src, dst, &st); err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
	case unix.S_IFLNK:
		t, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(t, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", dst, err)
		}
	default:
		return nil // sockets are not copied
	}
	return c.meta(src, dst, &st)
}

func (c *copier) copyFile(src, dst string, st *unix.Stat_t) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if c.reflink && st.Size > 0 {
		err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd()))
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) {
			c.reflink = false // not on this filesystem: stop trying
		}
	}
	// os.File.ReadFrom uses copy_file_range, then falls back to a copy.
	if _, err := io.CopyBuffer(out, in, c.buf); err != nil {
		return err
	}
	return out.Close()
}

// meta copies owner, mode, xattrs and times, in that order: chown clears
// setuid bits and file capabilities, so mode and xattrs come after it.
func (c *copier) meta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil && !(os.Geteuid() != 0 && errors.Is(err, unix.EPERM)) {
		return fmt.Errorf("chown %s: %w", dst, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod %s: %w", dst, err)
		}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	t := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, t, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("times %s: %w", dst, err)
	}
	return nil
}

func copyXattrs(src, dst string) error {
	sz, err := unix.Llistxattr(src, nil)
	if err != nil || sz == 0 {
		if err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("list xattrs %s: %w", src, err)
		}
		return nil
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(src, buf)
	if err != nil {
		return fmt.Errorf("list xattrs %s: %w", src, err)
	}
	for _, k := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if k == "" {
			continue
		}
		n, err := unix.Lgetxattr(src, k, nil)
		if err != nil {
			return fmt.Errorf("get xattr %s %s: %w", src, k, err)
		}
		v := make([]byte, n)
		if n, err = unix.Lgetxattr(src, k, v); err != nil {
			return fmt.Errorf("get xattr %s %s: %w", src, k, err)
		}
		if err := unix.Lsetxattr(dst, k, v[:n], 0); err != nil && !errors.Is(err, unix.ENOTSUP) && !(os.Geteuid() != 0 && errors.Is(err, unix.EPERM)) {
			return fmt.Errorf("set xattr %s %s: %w", dst, k, err)
		}
	}
	return nil
}
