package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// CopyUp fills an empty volume directory dst with what the container's
// root filesystem holds at containerPath, keeping owners, modes, times,
// symlinks and device nodes, as docker does the first time a volume is
// mounted over a non-empty image directory. A volume that already holds
// anything, or a path that is not a directory in the image, is left alone;
// copied reports whether anything was copied.
//
// The rootfs may belong to a hostile container, so containerPath is
// resolved with openat2(RESOLVE_IN_ROOT) and the walk works on directory
// fds with O_NOFOLLOW: a symlink swapped in during the copy is copied as a
// symlink, never followed out of the rootfs or the volume.
func CopyUp(ctx context.Context, rootfs, containerPath, dst string) (copied bool, err error) {
	rootfd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("copy-up: open rootfs: %w", err)
	}
	defer unix.Close(rootfd)
	rel := strings.TrimLeft(path.Clean("/"+containerPath), "/")
	if rel == "" {
		rel = "."
	}
	srcfd, err := openat2(rootfd, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("copy-up: open %s in the image: %w", containerPath, err)
	}
	defer unix.Close(srcfd)
	dstfd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("copy-up: open volume: %w", err)
	}
	defer unix.Close(dstfd)
	empty, err := isEmptyDir(dstfd)
	if err != nil || !empty {
		return false, err
	}
	// The volume's root takes the owner and mode of the image directory,
	// so that e.g. a postgres data dir stays owned by postgres.
	var st unix.Stat_t
	if err := unix.Fstat(srcfd, &st); err != nil {
		return false, err
	}
	if err := copyTree(ctx, srcfd, dstfd); err != nil {
		return true, fmt.Errorf("copy-up of %s: %w", containerPath, err)
	}
	if err := setMeta(dstfd, srcfd, &st); err != nil {
		return true, fmt.Errorf("copy-up of %s: %w", containerPath, err)
	}
	return true, nil
}

func openat2(dirfd int, p string, how *unix.OpenHow) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, p, how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		return fd, err
	}
}

func isEmptyDir(fd int) (bool, error) {
	d, err := unix.Dup(fd)
	if err != nil {
		return false, err
	}
	f := os.NewFile(uintptr(d), "volume")
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}

func readNames(fd int) ([]string, error) {
	d, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(d), "dir")
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return f.Readdirnames(-1)
}

// copyTree copies the entries of directory srcfd into directory dstfd.
func copyTree(ctx context.Context, srcfd, dstfd int) error {
	names, err := readNames(srcfd)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(srcfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed meanwhile
			}
			return err
		}
		if err := copyEntry(ctx, srcfd, dstfd, name, &st); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func copyEntry(ctx context.Context, srcfd, dstfd int, name string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dstfd, name, 0o700); err != nil {
			return err
		}
		s, err := unix.Openat(srcfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(s)
		d, err := unix.Openat(dstfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(d)
		if err := copyTree(ctx, s, d); err != nil {
			return err
		}
		return setMeta(d, s, st)
	case unix.S_IFREG:
		s, err := unix.Openat(srcfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		sf := os.NewFile(uintptr(s), name)
		defer sf.Close()
		d, err := unix.Openat(dstfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		df := os.NewFile(uintptr(d), name)
		defer df.Close()
		if _, err := io.Copy(df, sf); err != nil { // copy_file_range where possible
			return err
		}
		return setMeta(d, s, st)
	case unix.S_IFLNK:
		target, err := readlinkat(srcfd, name)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dstfd, name); err != nil {
			return err
		}
		return setMetaAt(dstfd, name, st)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknodat(dstfd, name, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
		return setMetaAt(dstfd, name, st)
	}
	return nil
}

func readlinkat(dirfd int, name string) (string, error) {
	for n := 256; ; n *= 2 {
		buf := make([]byte, n)
		m, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if m < n {
			return string(buf[:m]), nil
		}
	}
}

// setMeta applies owner, mode (after chown, which clears set-id bits),
// srcfd's extended attributes (after chown too: it drops file
// capabilities) and times to fd.
func setMeta(fd, srcfd int, st *unix.Stat_t) error {
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		return err
	}
	if err := copyXattrs(srcfd, fd); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
}

// copyXattrs copies every extended attribute the filesystems allow
// (a volume on a filesystem without user xattrs silently drops those).
func copyXattrs(srcfd, dstfd int) error {
	sz, err := unix.Flistxattr(srcfd, nil)
	if err != nil || sz <= 0 {
		return nil // none, or not supported by the image's filesystem
	}
	buf := make([]byte, sz)
	sz, err = unix.Flistxattr(srcfd, buf)
	if err != nil {
		return nil
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		n, err := unix.Fgetxattr(srcfd, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, n)
		if n, err = unix.Fgetxattr(srcfd, name, val); err != nil {
			continue
		}
		if err := unix.Fsetxattr(dstfd, name, val[:n], 0); err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}

// setMetaAt is setMeta for entries that cannot be opened (symlinks, nodes).
func setMetaAt(dirfd int, name string, st *unix.Stat_t) error {
	if err := unix.Fchownat(dirfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
}
