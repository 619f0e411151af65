package daemon

// Container filesystem access for docker cp and export.
//
// The container may be hostile and may rename a path component into a
// symlink (to "/" of the host) at any moment (CVE-2018-15664). So nothing
// here resolves a container path as a host path string: the rootfs is
// opened once as a directory fd, a container path is resolved with
// openat2(RESOLVE_IN_ROOT) against it (symlinks are followed as the
// container would see them, never out of the root), and every later step
// works on fds: the tar walker opens each child with O_NOFOLLOW relative to
// its parent's fd, and extraction is archive.Apply into /proc/self/fd/N of
// the resolved directory (Apply itself never follows a symlink beneath it).
//
// The rootfs is the container's mount when it runs; otherwise the snapshot
// is mounted on a temporary directory that is detached at once, so only our
// fd keeps it alive and no mount is left behind if the daemon dies.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/snapshot"
)

var _ backend.ArchiveBackend = (*Daemon)(nil)

// openRootfs returns an O_PATH fd of c's root filesystem and its release.
func (d *Daemon) openRootfs(ctx context.Context, c *Container) (int, func(), error) {
	c.mu.Lock()
	running := c.State.running()
	c.mu.Unlock()
	if running {
		fd, err := unix.Open(d.rootfsDir(c.ID), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			return fd, func() { unix.Close(fd) }, nil
		}
	}
	mounts, err := d.snaps.Mounts(ctx, c.ID)
	if err != nil {
		return -1, nil, fmt.Errorf("rootfs of %s: %w", c.ID[:12], err)
	}
	tmpRoot := filepath.Join(d.cfg.DataRoot, "tmp")
	if err := os.MkdirAll(tmpRoot, 0o700); err != nil {
		return -1, nil, err
	}
	mp, err := os.MkdirTemp(tmpRoot, "rootfs-")
	if err != nil {
		return -1, nil, err
	}
	defer os.Remove(mp)
	if err := snapshot.MountAll(mounts, mp); err != nil {
		return -1, nil, fmt.Errorf("mount rootfs of %s: %w", c.ID[:12], err)
	}
	fd, err := unix.Open(mp, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	_ = unix.Unmount(mp, unix.MNT_DETACH)
	if err != nil {
		return -1, nil, fmt.Errorf("open rootfs of %s: %w", c.ID[:12], err)
	}
	return fd, func() { unix.Close(fd) }, nil
}

// resolveIn opens p (a container path) beneath rootfd as O_PATH. follow
// says whether a final symlink is followed; earlier ones always are, as
// inside the container.
func resolveIn(rootfd int, p string, follow bool) (int, error) {
	rel := strings.TrimLeft(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	} else if strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") {
		rel += "/" // must be a directory (ENOTDIR otherwise), as in docker
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	if !follow {
		how.Flags |= unix.O_NOFOLLOW
	}
	for {
		fd, err := unix.Openat2(rootfd, rel, &how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue // a rename raced the lookup
		}
		return fd, err
	}
}

func fdStat(fd int) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(fd, "", &st, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

func fileMode(st *unix.Stat_t) os.FileMode {
	m := os.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= os.ModeDir
	case unix.S_IFLNK:
		m |= os.ModeSymlink
	case unix.S_IFCHR:
		m |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		m |= os.ModeDevice
	case unix.S_IFIFO:
		m |= os.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= os.ModeSocket
	}
	if st.Mode&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

func fileNotFound(p, ctr string) error {
	return errMsg(errdefs.ErrNotFound, "Could not find the file %s in container %s", p, ctr)
}

// statPath stats p without following a final symlink; for a symlink,
// LinkTarget is where it leads inside the container.
func statPath(rootfd int, p, ctr string) (container.PathStat, error) {
	fd, err := resolveIn(rootfd, p, false)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return container.PathStat{}, fileNotFound(p, ctr)
	}
	if err != nil {
		return container.PathStat{}, fmt.Errorf("resolve %s: %w", p, err)
	}
	defer unix.Close(fd)
	st, err := fdStat(fd)
	if err != nil {
		return container.PathStat{}, err
	}
	name := path.Base(path.Clean("/" + p))
	ps := container.PathStat{Name: name, Size: st.Size, Mode: fileMode(&st), Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		tfd, err := resolveIn(rootfd, p, true)
		if err == nil {
			ps.LinkTarget = pathInRoot(rootfd, tfd)
			unix.Close(tfd)
		} else {
			// Dangling: docker reports the link's own target resolved
			// against its directory.
			if t, err := readlinkFd(fd); err == nil {
				if !path.IsAbs(t) {
					t = path.Join(path.Dir(path.Clean("/"+p)), t)
				}
				ps.LinkTarget = path.Clean(t)
			}
		}
	}
	return ps, nil
}

// pathInRoot is fd's path as the container sees it.
func pathInRoot(rootfd, fd int) string {
	root, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(rootfd))
	p, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if root != "/" {
		p = strings.TrimPrefix(p, root)
	}
	if p == "" {
		p = "/"
	}
	return p
}

func readlinkFd(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// ContainerStatPath implements backend.ArchiveBackend.
func (d *Daemon) ContainerStatPath(ctx context.Context, id, p string) (container.PathStat, error) {
	c, err := d.ctrs.get(id)
	if err != nil {
		return container.PathStat{}, err
	}
	rootfd, release, err := d.openRootfs(ctx, c)
	if err != nil {
		return container.PathStat{}, err
	}
	defer release()
	return d.statContainerPath(c, rootfd, p, id) // volumes.go: sees volumes and binds
}

// ContainerArchivePath implements backend.ArchiveBackend: a tar of p whose
// names start with p's base name ("." when p ends in "/.", as docker's).
func (d *Daemon) ContainerArchivePath(ctx context.Context, id, p string) (io.ReadCloser, container.PathStat, error) {
	c, err := d.ctrs.get(id)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	rootfd, release, err := d.openRootfs(ctx, c)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	st, err := d.statContainerPath(c, rootfd, p, id)
	if err != nil {
		release()
		return nil, st, err
	}
	fd, err := d.resolveContainerPath(c, rootfd, p, false)
	if err != nil {
		release()
		return nil, st, fileNotFound(p, id)
	}
	name := path.Base(path.Clean("/" + p))
	if strings.HasSuffix(p, "/.") || p == "." { // "/" stays "/", as docker's
		name = "."
	}
	c.mu.Lock()
	d.containerEvent(c, events.ActionArchivePath, map[string]string{"path": p})
	c.mu.Unlock()
	return d.unshiftTar(c, streamTar(ctx, false, func(t *fdTar) error { return t.add(fd, name) }, release)), st, nil // userns.go
}

// ContainerExport implements backend.ArchiveBackend.
func (d *Daemon) ContainerExport(ctx context.Context, id string) (io.ReadCloser, error) {
	c, err := d.ctrs.get(id)
	if err != nil {
		return nil, err
	}
	rootfd, release, err := d.openRootfs(ctx, c)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	d.containerEvent(c, events.ActionExport, nil)
	c.mu.Unlock()
	return d.unshiftTar(c, streamTar(ctx, false, func(t *fdTar) error { return t.children(rootfd, "") }, release)), nil // userns.go
}

// streamTar runs write on a goroutine into a pipe; closing the reader stops
// it, and release runs when it is done.
func streamTar(ctx context.Context, overlay bool, write func(*fdTar) error, release func()) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		defer release()
		// Not the request's ctx: the copy ends when the reader is closed.
		t := &fdTar{ctx: context.WithoutCancel(ctx), tw: tar.NewWriter(pw), links: map[[2]uint64]string{}, buf: make([]byte, 256<<10), overlay: overlay}
		err := write(t)
		if err == nil {
			err = t.tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// fdTar writes a tree as tar, walking it by fds only. Written here rather
// than with archive.WriteTar, which walks by path names and so would follow
// a directory the container swaps for a symlink during the walk.
type fdTar struct {
	ctx   context.Context
	tw    *tar.Writer
	links map[[2]uint64]string
	buf   []byte
	// overlay reads the tree as an overlay upperdir: 0/0 character
	// devices and opaque directories become .wh. entries (commit).
	overlay bool
}

const opaqueXattr = "trusted.overlay.opaque"

// xattrs adds fd's extended attributes (but overlay's own) to hdr.
func xattrs(fd int, hdr *tar.Header) {
	buf := make([]byte, 4096)
	n, err := unix.Flistxattr(fd, buf)
	if err != nil || n == 0 {
		return
	}
	for _, k := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if k == "" || strings.HasPrefix(k, "trusted.overlay.") {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Fgetxattr(fd, k, v)
		if err != nil {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+k] = string(v[:m])
	}
}

// add writes the node fd (O_PATH, not followed) as name, recursively; it
// closes fd.
func (t *fdTar) add(fd int, name string) error {
	defer unix.Close(fd)
	if err := t.ctx.Err(); err != nil {
		return err
	}
	st, err := fdStat(fd)
	if err != nil {
		return fmt.Errorf("stat %s: %w", name, err)
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Format:  tar.FormatPAX,
	}
	if t.overlay && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
		dir, base := path.Split(name)
		return t.tw.WriteHeader(&tar.Header{Name: dir + ".wh." + base, Typeflag: tar.TypeReg, Mode: 0o600, ModTime: hdr.ModTime, Format: tar.FormatPAX})
	}
	if t.overlay && etcMounts[name] && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == 0 {
		return nil // an etc file's mount point, not the container's change
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, strings.TrimSuffix(name, "/")+"/"
		opaque := false
		if dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			xattrs(dfd, hdr)
			v := make([]byte, 1)
			if n, err := unix.Fgetxattr(dfd, opaqueXattr, v); t.overlay && err == nil && n == 1 && v[0] == 'y' {
				opaque = true
			}
			unix.Close(dfd)
		}
		if err := t.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if opaque {
			if err := t.tw.WriteHeader(&tar.Header{Name: name + "/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o600, ModTime: hdr.ModTime, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		return t.children(fd, strings.TrimSuffix(name, "/")+"/")
	case unix.S_IFREG:
		key := [2]uint64{st.Dev, st.Ino}
		if st.Nlink > 1 {
			if first, ok := t.links[key]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				return t.tw.WriteHeader(hdr)
			}
			t.links[key] = name
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		// Reopening through the fd's magic link opens this very inode.
		f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_RDONLY, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", name, err)
		}
		defer f.Close()
		xattrs(int(f.Fd()), hdr)
		if err := t.tw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.CopyBuffer(t.tw, io.LimitReader(f, st.Size), t.buf)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if n < st.Size { // truncated meanwhile: pad to the size announced
			_, err = io.CopyN(t.tw, zeros{}, st.Size-n)
		}
		return err
	case unix.S_IFLNK:
		target, err := readlinkFd(fd)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", name, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		archive.SpecialHeader(hdr, st.Mode, st.Rdev)
	default:
		return nil // sockets are not archived
	}
	return t.tw.WriteHeader(hdr)
}

// children writes the entries of directory dirfd with names prefix+name.
func (t *fdTar) children(dirfd int, prefix string) error {
	dfd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", prefix, err)
	}
	f := os.NewFile(uintptr(dfd), prefix)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", prefix, err)
	}
	for _, n := range names {
		// One component and O_NOFOLLOW: a symlink swapped in is
		// archived as the link, never entered.
		cfd, err := unix.Openat(dfd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("open %s%s: %w", prefix, n, err)
		}
		if err := t.add(cfd, prefix+n); err != nil {
			return err
		}
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// ContainerExtractToDir implements backend.ArchiveBackend: p (symlinks
// followed inside the container) must be a directory.
func (d *Daemon) ContainerExtractToDir(ctx context.Context, id, p string, opts backend.ExtractOptions, content io.Reader) error {
	c, err := d.ctrs.get(id)
	if err != nil {
		return err
	}
	if err := d.extractTargetReadOnly(c, p); err != nil { // volumes.go
		return err
	}
	rootfd, release, err := d.openRootfs(ctx, c)
	if err != nil {
		return err
	}
	defer release()
	fd, err := d.resolveContainerPath(c, rootfd, p, true)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return fileNotFound(p, id)
	}
	if err != nil {
		return fmt.Errorf("resolve %s: %w", p, err)
	}
	defer unix.Close(fd)
	st, err := fdStat(fd)
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return errMsg(errdefs.ErrInvalidArgument, "extraction point is not a directory")
	}
	dr, err := archive.Decompress(content)
	if err != nil {
		return errMsg(errdefs.ErrInvalidArgument, "%v", err)
	}
	defer dr.Close()
	// Re-encode the stream through a filter that applies docker's options
	// before archive.Apply sees it.
	pr, pw := io.Pipe()
	ferr := make(chan error, 1)
	go func() {
		err := filterTar(fd, dr, pw, opts)
		ferr <- err
		pw.CloseWithError(err)
	}()
	_, err = archive.Apply(ctx, "/proc/self/fd/"+strconv.Itoa(fd), pr, archive.ApplyOptions{Whiteout: archive.Native, IDMap: d.archiveIDMap(c)}) // userns.go
	pr.CloseWithError(io.ErrClosedPipe)
	if fe := <-ferr; fe != nil && !errors.Is(fe, io.ErrClosedPipe) {
		return fe
	}
	if err != nil {
		if errdefs.IsInvalidArgument(err) {
			return err
		}
		return errMsg(errdefs.ErrInvalidArgument, "%v", err)
	}
	c.mu.Lock()
	d.containerEvent(c, events.ActionExtractToDir, map[string]string{"path": p})
	c.mu.Unlock()
	return nil
}

// filterTar copies tar r to w: without CopyUIDGID entries belong to root
// (docker's default); with NoOverwriteDirNonDir an entry may not replace a
// directory by a non-directory or the reverse.
func filterTar(dirfd int, r io.Reader, w io.Writer, opts backend.ExtractOptions) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return errMsg(errdefs.ErrInvalidArgument, "read tar: %v", err)
		}
		if !opts.CopyUIDGID {
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		}
		if opts.NoOverwriteDirNonDir {
			rel := strings.TrimLeft(path.Clean("/"+hdr.Name), "/")
			if rel != "" {
				fd, err := unix.Openat2(dirfd, rel, &unix.OpenHow{
					Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
					Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
				})
				if err == nil {
					st, serr := fdStat(fd)
					unix.Close(fd)
					isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
					if serr == nil && isDir && hdr.Typeflag != tar.TypeDir {
						return errMsg(errdefs.ErrInvalidArgument, "cannot overwrite directory %q with non-directory %q", "/"+rel, hdr.Name)
					}
					if serr == nil && !isDir && hdr.Typeflag == tar.TypeDir {
						return errMsg(errdefs.ErrInvalidArgument, "cannot overwrite non-directory %q with directory %q", "/"+rel, hdr.Name)
					}
				}
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
