package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	whiteoutMeta   = ".wh..wh."
	paxXattr       = "SCHILY.xattr."
	opaqueXattr    = "trusted.overlay.opaque"
)

// resolveHow opens a directory beneath the root without following any
// symlink or magic link and without crossing a mount.
var resolveHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
}

// Apply unpacks the uncompressed layer tar r into dir and returns the number
// of bytes of file content written. It reads r to its end even after the tar
// trailer so that a digest computed over r sees every byte.
func Apply(ctx context.Context, dir string, r io.Reader, o ApplyOptions) (size int64, err error) {
	rootfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("apply layer: open %s: %w", dir, err)
	}
	a := newApplier(ctx, dir, rootfd)
	a.o = o
	a.buf = make([]byte, 256<<10)
	if o.Whiteout == Native {
		a.seen = make(map[string]struct{})
	}
	if o.ImplicitDirs != nil {
		a.implicitSet = make(map[string]bool)
	}
	defer a.close()
	if err := a.openLowers(o.Parents); err != nil {
		return 0, fmt.Errorf("apply layer: %w", err)
	}
	if parallelWriters > 0 {
		a.w = newWriters(a, parallelWriters)
		if len(o.Parents) == 0 && dirEmpty(rootfd) {
			// Every name that will exist is one this Apply makes: the
			// pool may create files too (see writers.go).
			a.made = make(map[string]madeBy)
		}
		defer func() {
			// On every return: nothing may be written after Apply returns.
			if werr := a.drain(); err == nil {
				err = werr
			}
		}()
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return a.size, err
		}
		if a.w != nil {
			if err := a.w.failed(); err != nil {
				return a.size, err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.size, fmt.Errorf("apply layer: read tar header after %d bytes of content: %w", a.size, err)
		}
		if err := a.entry(tr, hdr); err != nil {
			return a.size, fmt.Errorf("apply layer: entry %q: %w", hdr.Name, err)
		}
	}
	// Directory times last, after every file in them is written.
	if err := a.drain(); err != nil {
		return a.size, err
	}
	if err := a.finishDirs(); err != nil {
		return a.size, err
	}
	if _, err := io.CopyBuffer(io.Discard, r, a.buf); err != nil {
		return a.size, fmt.Errorf("apply layer: read past tar end: %w", err)
	}
	if o.ImplicitDirs != nil {
		*o.ImplicitDirs = (*o.ImplicitDirs)[:0]
		for _, rel := range a.implicit {
			if a.implicitSet[rel] {
				*o.ImplicitDirs = append(*o.ImplicitDirs, rel)
			}
		}
	}
	return a.size, nil
}

func (a *applier) openLowers(parents []string) error {
	for _, p := range parents {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open parent %s: %w", p, err)
		}
		a.lowers = append(a.lowers, fd)
	}
	return nil
}

// InheritDirs gives the directories rels of dir (relative slash paths, as
// ApplyOptions.ImplicitDirs reports them) the owner and mode of the same
// directory in the nearest of parents (top first), which is what Apply does
// itself when it is given Parents. A layer unpacked before its parents
// existed is fixed up this way before it is committed on top of them. A
// name that is no longer a directory reached without symlinks is skipped.
func InheritDirs(ctx context.Context, dir string, rels, parents []string) error {
	if len(rels) == 0 || len(parents) == 0 {
		return nil
	}
	rootfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("inherit dirs: open %s: %w", dir, err)
	}
	a := newApplier(ctx, dir, rootfd)
	defer a.close()
	if err := a.openLowers(parents); err != nil {
		return fmt.Errorf("inherit dirs: %w", err)
	}
	for _, rel := range rels {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rel == "" || path.Clean(rel) != rel || strings.HasPrefix(rel, "../") || rel == ".." || path.IsAbs(rel) {
			return fmt.Errorf("inherit dirs: bad path %q: %w", rel, errdefs.ErrInvalidArgument)
		}
		pfd, base, err := a.existingParent(rel)
		if err != nil {
			continue // its parent was removed or replaced later in the layer
		}
		var st unix.Stat_t
		if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		a.implicitDir(pfd, base, rel)
	}
	return nil
}

type dirTimes struct {
	rel   string
	times [2]unix.Timespec
}

type applier struct {
	ctx      context.Context
	rootPath string
	rootfd   int
	lowers   []int
	o        ApplyOptions
	buf      []byte
	size     int64
	isRoot   bool
	// One cached parent directory: tar entries come grouped by directory,
	// so this saves an openat2 per entry. Invalidated whenever a directory
	// is removed, because the path might then resolve elsewhere. Files
	// queued for creation hold references to their parent's fd.
	cacheRel string
	cache    *dirRef
	rootRef  *dirRef
	// lastParent is the directory parent or existingParent last returned.
	lastParent *dirRef
	dirs       []dirTimes
	seen       map[string]struct{} // native mode: names this layer created (opaque dirs keep them)
	// Directories made for entries whose parents the layer does not
	// declare, in creation order; the set drops those declared later.
	implicit    []string
	implicitSet map[string]bool
	// w writes regular files on a worker pool; nil writes them inline.
	w *writers
	// made records every name this Apply created, when it started from an
	// empty directory; nil otherwise (then the pool never creates).
	made map[string]madeBy
}

func newApplier(ctx context.Context, dir string, rootfd int) *applier {
	a := &applier{ctx: ctx, rootPath: dir, rootfd: rootfd, isRoot: os.Geteuid() == 0, rootRef: &dirRef{fd: rootfd}}
	a.rootRef.refs.Store(1)
	return a
}

// dirRef is a directory fd shared by the parent cache and the creates
// queued in it; the last release closes it.
type dirRef struct {
	fd   int
	refs atomic.Int32
}

func newDirRef(fd int) *dirRef {
	d := &dirRef{fd: fd}
	d.refs.Store(1)
	return d
}

func (d *dirRef) hold() *dirRef { d.refs.Add(1); return d }

func (d *dirRef) release() {
	if d.refs.Add(-1) == 0 {
		unix.Close(d.fd)
	}
}

// dirEmpty reports whether the directory fd has no entries.
func dirEmpty(fd int) bool {
	d, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(d)
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(d, buf)
		if err != nil {
			return false
		}
		if n <= 0 {
			return true
		}
		for b := buf[:n]; len(b) > 0; {
			// struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name.
			reclen := int(b[16]) | int(b[17])<<8
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if string(name) != "." && string(name) != ".." {
				return false
			}
			b = b[reclen:]
		}
	}
}

// drain waits for the file writers (once) and returns their first error.
func (a *applier) drain() error {
	if a.w == nil {
		return nil
	}
	err := a.w.wait()
	a.w = nil
	return err
}

func (a *applier) close() {
	a.dropCache()
	for _, fd := range a.lowers {
		unix.Close(fd)
	}
	a.rootRef.release()
}

var errEscape = fmt.Errorf("path escapes the root: %w", errdefs.ErrInvalidArgument)

// cleanName turns a tar name into a root-relative slash path. Leading
// slashes are dropped (docker does the same); ".." that climbs out is an
// error. The root itself is "".
func cleanName(name string) (string, error) {
	n := path.Clean(strings.TrimLeft(name, "/"))
	if n == ".." || strings.HasPrefix(n, "../") {
		return "", errEscape
	}
	if n == "." {
		return "", nil
	}
	return n, nil
}

func split(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

func resolveErr(rel string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%q: a path component is a symlink (never followed while unpacking): %w", rel, errdefs.ErrInvalidArgument)
	case errors.Is(err, unix.EXDEV):
		return fmt.Errorf("%q: resolves outside the root: %w", rel, errdefs.ErrInvalidArgument)
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%q: a path component is not a directory: %w", rel, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("open %q: %w", rel, err)
}

// openDir opens the directory rel beneath the root (rel "" is the root) as
// an O_PATH fd the caller closes. With create, missing components are made.
func (a *applier) openDir(rel string, create bool) (int, error) {
	if rel == "" {
		return unix.Dup(a.rootfd)
	}
	fd, err := unix.Openat2(a.rootfd, rel, &resolveHow)
	if err == nil || !errors.Is(err, unix.ENOENT) || !create {
		if err != nil {
			return -1, resolveErr(rel, err)
		}
		return fd, nil
	}
	// Walk from the root, creating what is missing, one component at a time.
	cur, err := unix.Dup(a.rootfd)
	if err != nil {
		return -1, err
	}
	done := ""
	for _, c := range strings.Split(rel, "/") {
		done = path.Join(done, c)
		next, err := unix.Openat2(cur, c, &resolveHow)
		if errors.Is(err, unix.ENOENT) {
			if err = unix.Mkdirat(cur, c, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				a.mark(done)
				a.implicitDir(cur, c, done)
				next, err = unix.Openat2(cur, c, &resolveHow)
			}
		}
		unix.Close(cur)
		if err != nil {
			return -1, resolveErr(done, err)
		}
		cur = next
	}
	return cur, nil
}

// implicitDir gives a directory the layer did not declare the owner, mode
// and times of the same directory in the nearest lower layer, so that the
// overlay's merged view does not change (an upper dir's attributes win).
func (a *applier) implicitDir(pfd int, base, rel string) {
	if a.implicitSet != nil && !a.implicitSet[rel] {
		a.implicitSet[rel] = true
		a.implicit = append(a.implicit, rel)
	}
	for _, l := range a.lowers {
		// Resolved beneath the lower without symlinks: a lower layer's
		// symlink must not lend us a host directory's owner and mode.
		fd, err := unix.Openat2(l, rel, &resolveHow)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil {
			continue
		}
		if a.isRoot {
			unix.Fchownat(pfd, base, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
		}
		unix.Fchmodat(pfd, base, st.Mode&0o7777, 0)
		return
	}
}

// parent returns the fd of rel's parent directory (owned by the cache, do
// not close) and rel's last component.
func (a *applier) parent(rel string) (int, string, error) {
	return a.parentOf(rel, true)
}

func (a *applier) parentOf(rel string, create bool) (int, string, error) {
	dir, base := split(rel)
	if dir == "" {
		a.lastParent = a.rootRef
		return a.rootfd, base, nil
	}
	if a.cache != nil && a.cacheRel == dir {
		a.lastParent = a.cache
		return a.cache.fd, base, nil
	}
	if a.made != nil {
		a.settlePath(dir)
	}
	fd, err := a.openDir(dir, create)
	if err != nil {
		return -1, "", err
	}
	a.dropCache()
	a.cache, a.cacheRel = newDirRef(fd), dir
	a.lastParent = a.cache
	return fd, base, nil
}

// existingParent is parent without creating anything.
func (a *applier) existingParent(rel string) (int, string, error) {
	return a.parentOf(rel, false)
}

func (a *applier) dropCache() {
	if a.cache != nil {
		a.cache.release()
		a.cache, a.cacheRel = nil, ""
	}
}

// remove deletes base in pfd whatever it is, recursively for directories
// (unlinkat never follows symlinks; RemoveAll walks with *at calls too).
func (a *applier) remove(pfd int, base, rel string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("remove %q: %w", rel, err)
	}
	// A directory goes away: the cached parent fd must not outlive the
	// path it was opened by (the cache never holds rel's own parent).
	if a.cache != nil && (a.cacheRel == rel || strings.HasPrefix(a.cacheRel, rel+"/")) {
		a.dropCache()
	}
	// Files queued inside must exist before the directory goes.
	a.settle()
	if err = unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR); err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err := os.RemoveAll(a.rootPath + "/" + rel); err != nil {
		return fmt.Errorf("remove %q: %w", rel, err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func hdrTimes(hdr *tar.Header) [2]unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return [2]unix.Timespec{timespec(at), timespec(hdr.ModTime)}
}

func (a *applier) entry(tr *tar.Reader, hdr *tar.Header) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("the root can only be a directory: %w", errdefs.ErrInvalidArgument)
		}
		return a.dir(a.rootfd, "", "", hdr)
	}
	pfd, base, err := a.parent(rel)
	if err != nil {
		return err
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		a.settle() // what it removes must exist first
		return a.whiteout(pfd, base, rel)
	}
	if a.seen != nil {
		a.seen[rel] = struct{}{}
	}
	if a.made != nil {
		if a.made[rel] == madeByPool || hdr.Typeflag == tar.TypeLink {
			// The pool's file must exist before it is replaced or
			// linked to.
			a.settle()
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeGNUSparse {
			a.made[rel] = madeHere
		}
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		return a.file(tr, pfd, base, rel, hdr)
	case tar.TypeDir:
		return a.dir(pfd, base, rel, hdr)
	case tar.TypeSymlink:
		return a.symlink(pfd, base, rel, hdr)
	case tar.TypeLink:
		return a.hardlink(pfd, base, rel, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return a.special(pfd, base, rel, hdr)
	case tar.TypeXGlobalHeader:
		return nil
	}
	return fmt.Errorf("unsupported tar type %q: %w", hdr.Typeflag, errdefs.ErrNotImplemented)
}

// retry runs create; when the name is taken it removes the old entry and
// runs create once more (a file replacing a dir, a symlink replacing a file).
func (a *applier) retry(pfd int, base, rel string, create func() error) error {
	err := create()
	if errors.Is(err, unix.EEXIST) {
		if err = a.remove(pfd, base, rel); err != nil {
			return err
		}
		err = create()
	}
	return err
}

func (a *applier) file(tr *tar.Reader, pfd int, base, rel string, hdr *tar.Header) error {
	if hdr.Size < 0 || (a.o.MaxSize > 0 && a.size+hdr.Size > a.o.MaxSize) {
		return fmt.Errorf("declared size %d exceeds the layer limit of %d bytes (%d already written): %w",
			hdr.Size, a.o.MaxSize, a.size, errdefs.ErrOutOfRange)
	}
	// A sparse entry (GNU or PAX sparse): the tar reader fills holes with
	// zeros; seeking over zero blocks instead of writing them keeps the
	// holes.
	sparse := hdr.Typeflag == tar.TypeGNUSparse || hdr.PAXRecords["GNU.sparse.major"] != "" ||
		hdr.PAXRecords["GNU.sparse.map"] != "" || hdr.PAXRecords["GNU.sparse.numblocks"] != ""
	if a.made != nil {
		if a.made[rel] == 0 && !sparse && hdr.Size <= writerChunk {
			// A new name in a tree this Apply made: the pool creates it.
			a.made[rel] = madeByPool
			return a.queueCreate(tr, base, hdr)
		}
		a.made[rel] = madeHere
	}
	var fd int
	err := a.retry(pfd, base, rel, func() (err error) {
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}()
	if a.w != nil && !sparse {
		// Read the body here, write it on the pool (see writers.go).
		err := a.queueFile(tr, fd, hdr)
		fd = -1
		return err
	}
	for left := hdr.Size; left > 0; {
		n := int64(len(a.buf))
		if left < n {
			n = left
		}
		m, err := io.ReadFull(tr, a.buf[:n])
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("truncated layer: %d of %d bytes: %w", hdr.Size-left+int64(m), hdr.Size, err)
		}
		if sparse {
			err = writeSparse(fd, a.buf[:m])
		} else {
			err = writeAll(fd, a.buf[:m])
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		left -= int64(m)
		a.size += int64(m)
	}
	if sparse {
		// Trailing holes were skipped, not written: set the length.
		if err := unix.Ftruncate(fd, hdr.Size); err != nil {
			return fmt.Errorf("truncate: %w", err)
		}
	}
	err = a.fileMeta(fd, hdr, func(t []unix.Timespec) error {
		return unix.UtimesNanoAt(pfd, base, t, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		return err
	}
	err = unix.Close(fd)
	fd = -1
	return err
}

// fileMeta sets a regular file's owner, mode, xattrs and times through its
// fd; setTimes is the fallback for times when utimensat on the fd fails.
// Safe for concurrent use (writers.go).
func (a *applier) fileMeta(fd int, hdr *tar.Header, setTimes func([]unix.Timespec) error) error {
	if err := a.owner(fd, "", 0, hdr); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := a.xattrs(hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) }); err != nil {
		return err
	}
	t := hdrTimes(hdr)
	if err := unix.UtimesNanoAt(fd, "", t[:], unix.AT_EMPTY_PATH); err != nil {
		if err := setTimes(t[:]); err != nil {
			return fmt.Errorf("set times: %w", err)
		}
	}
	return nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		b = b[n:]
	}
	return nil
}

var zeroBlock [64 << 10]byte

// writeSparse writes b in 64 KiB blocks, seeking over blocks of zeros.
func writeSparse(fd int, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if bytes.Equal(b[:n], zeroBlock[:n]) {
			if _, err := unix.Seek(fd, int64(n), io.SeekCurrent); err != nil {
				return err
			}
		} else if err := writeAll(fd, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// owner chowns by fd, or by (pfd, base) without following a final symlink.
func (a *applier) owner(fd int, base string, pfd int, hdr *tar.Header) error {
	uid, gid, err := a.o.IDMap.ToHost(hdr.Uid, hdr.Gid)
	if err != nil {
		return err
	}
	if !a.isRoot {
		// Unprivileged unpacking (tests, rootless): ownership is lost,
		// like containerd does without CAP_CHOWN.
		return nil
	}
	if base == "" {
		err = unix.Fchown(fd, uid, gid)
	} else {
		err = unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
	}
	return nil
}

// xattrs sets the SCHILY.xattr.* PAX records. Overlay's own trusted.overlay.*
// attributes are never taken from a layer: in an upperdir they would be
// obeyed by the kernel (redirects, metacopy, opaque).
func (a *applier) xattrs(hdr *tar.Header, set func(k string, v []byte) error) error {
	for k, v := range hdr.PAXRecords {
		if !strings.HasPrefix(k, paxXattr) {
			continue
		}
		name := k[len(paxXattr):]
		if strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		if err := set(name, []byte(v)); err != nil {
			if errors.Is(err, unix.ENOTSUP) || (!a.isRoot && errors.Is(err, unix.EPERM)) {
				continue // the filesystem or our privileges cannot hold it
			}
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

// lxattrSetter sets xattrs by path, beneath a verified parent fd (through
// /proc/self/fd, so the parent is not resolved again); the final component
// is not followed.
func lxattrSetter(pfd int, base string) func(string, []byte) error {
	p := "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
	return func(k string, v []byte) error { return unix.Lsetxattr(p, k, v, 0) }
}

func (a *applier) dir(pfd int, base, rel string, hdr *tar.Header) error {
	if a.implicitSet != nil {
		delete(a.implicitSet, rel)
	}
	fd := -1
	if rel == "" {
		fd = a.rootfd
	} else {
		err := unix.Mkdirat(pfd, base, 0o755)
		if errors.Is(err, unix.EEXIST) {
			var st unix.Stat_t
			if err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				if err = a.remove(pfd, base, rel); err == nil {
					err = unix.Mkdirat(pfd, base, 0o755)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
		fd, err = unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open dir: %w", err)
		}
		defer unix.Close(fd)
	}
	if err := a.owner(fd, "", 0, hdr); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := a.xattrs(hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) }); err != nil {
		return err
	}
	// Times last, after the directory's children are written.
	a.dirs = append(a.dirs, dirTimes{rel: rel, times: hdrTimes(hdr)})
	return nil
}

func (a *applier) finishDirs() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		pfd, base, err := a.rootfd, "", error(nil)
		if d.rel != "" {
			pfd, base, err = a.existingParent(d.rel)
		}
		if err != nil {
			continue // replaced by a later entry; nothing to stamp
		}
		flags := unix.AT_SYMLINK_NOFOLLOW
		if base == "" {
			flags = unix.AT_EMPTY_PATH
		}
		var st unix.Stat_t
		if base != "" && (unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR) {
			continue
		}
		if err := unix.UtimesNanoAt(pfd, base, d.times[:], flags); err != nil {
			return fmt.Errorf("apply layer: entry %q: set times: %w", d.rel, err)
		}
	}
	return nil
}

func (a *applier) symlink(pfd int, base, rel string, hdr *tar.Header) error {
	// An absolute target is resolved inside the container's root at run
	// time; a relative one must not climb out of it (docker's rule).
	if t := hdr.Linkname; !path.IsAbs(t) {
		if j := path.Join(path.Dir(rel), t); j == ".." || strings.HasPrefix(j, "../") {
			return fmt.Errorf("symlink target %q: %w", t, errEscape)
		}
	}
	if err := a.retry(pfd, base, rel, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) }); err != nil {
		return fmt.Errorf("symlink: %w", err)
	}
	return a.meta(pfd, base, hdr, false)
}

// meta sets owner, (mode), xattrs and times of a non-regular entry by name.
func (a *applier) meta(pfd int, base string, hdr *tar.Header, chmod bool) error {
	if err := a.owner(-1, base, pfd, hdr); err != nil {
		return err
	}
	if chmod {
		// base was just created by us as a device or fifo, not a symlink.
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := a.xattrs(hdr, lxattrSetter(pfd, base)); err != nil {
		return err
	}
	t := hdrTimes(hdr)
	if err := unix.UtimesNanoAt(pfd, base, t[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func (a *applier) special(pfd int, base, rel string, hdr *tar.Header) error {
	mode := uint32(hdr.Mode & 0o7777)
	dev := 0
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
		dev = int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
		dev = int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	}
	err := a.retry(pfd, base, rel, func() error { return unix.Mknodat(pfd, base, mode, dev) })
	if err != nil {
		if !a.isRoot && errors.Is(err, unix.EPERM) {
			return nil // devices cannot be made unprivileged; docker skips them too
		}
		return fmt.Errorf("mknod: %w", err)
	}
	return a.meta(pfd, base, hdr, true)
}

func (a *applier) hardlink(pfd int, base, rel string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if target == "" {
		return fmt.Errorf("hard link to the root: %w", errdefs.ErrInvalidArgument)
	}
	tdir, tbase := split(target)
	fromLower := a.o.Whiteout == Overlay && len(a.lowers) > 0
	tfd, err := a.openDir(tdir, false)
	if fromLower && errors.Is(err, unix.ENOENT) {
		tfd, err = a.openDir(tdir, true)
	}
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("hard link target %q: not in this layer (nor in a parent given): %w", target, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	err = unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT) && fromLower:
		// The target lives in a lower layer: copy it up, then link to it.
		if err := a.copyUp(tfd, tbase, target); err != nil {
			return fmt.Errorf("hard link target %q: %w", target, err)
		}
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("hard link target %q: not in this layer (nor in a parent given): %w", target, errdefs.ErrNotFound)
	case err != nil:
		return fmt.Errorf("hard link target %q: %w", target, err)
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return fmt.Errorf("hard link target %q is a directory: %w", target, errdefs.ErrInvalidArgument)
	}
	if err := a.retry(pfd, base, rel, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) }); err != nil {
		return fmt.Errorf("link to %q: %w", target, err)
	}
	return nil
}

// copyUp copies target from the topmost lower layer that has it into the
// target directory, keeping owner, mode, xattrs and times.
func (a *applier) copyUp(tfd int, tbase, target string) error {
	for _, l := range a.lowers {
		how := unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: resolveHow.Resolve,
		}
		src, err := unix.Openat2(l, target, &how)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("in lower layer: %w", resolveErr(target, err))
		}
		defer unix.Close(src)
		var st unix.Stat_t
		if err := unix.Fstat(src, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("lower copy is not a regular file: %w", errdefs.ErrNotImplemented)
		}
		dst, err := unix.Openat(tfd, tbase, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		defer unix.Close(dst)
		if err := copyFd(dst, src, st.Size, a.buf); err != nil {
			return fmt.Errorf("copy up: %w", err)
		}
		if a.isRoot {
			if err := unix.Fchown(dst, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		if err := unix.Fchmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
		if err := copyXattrs(func(b []byte) (int, error) { return unix.Flistxattr(src, b) },
			func(k string, b []byte) (int, error) { return unix.Fgetxattr(src, k, b) },
			func(k string, v []byte) error { return unix.Fsetxattr(dst, k, v, 0) }); err != nil {
			return err
		}
		t := [2]unix.Timespec{st.Atim, st.Mtim}
		return unix.UtimesNanoAt(dst, "", t[:], unix.AT_EMPTY_PATH)
	}
	return fmt.Errorf("not in this layer nor in any parent: %w", errdefs.ErrNotFound)
}

// copyFd copies n bytes, in the kernel when it can (copy_file_range reflinks
// on filesystems that share extents).
func copyFd(dst, src int, n int64, buf []byte) error {
	for n > 0 {
		c, err := unix.CopyFileRange(src, nil, dst, nil, int(min(n, 1<<30)), 0)
		if err != nil || c == 0 {
			break
		}
		n -= int64(c)
	}
	for n > 0 {
		m, err := unix.Read(src, buf[:min(n, int64(len(buf)))])
		if err != nil {
			return err
		}
		if m == 0 {
			return io.ErrUnexpectedEOF
		}
		if err := writeAll(dst, buf[:m]); err != nil {
			return err
		}
		n -= int64(m)
	}
	return nil
}

// copyXattrs copies every xattr but overlay's own.
func copyXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error), set func(string, []byte) error) error {
	buf := make([]byte, 4096)
	n, err := list(buf)
	if errors.Is(err, unix.ERANGE) {
		if n, err = list(nil); err == nil {
			buf = make([]byte, n)
			n, err = list(buf)
		}
	}
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return fmt.Errorf("list xattrs: %w", err)
	}
	for _, k := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if k == "" || strings.HasPrefix(k, "trusted.overlay.") {
			continue
		}
		v := make([]byte, 256)
		m, err := get(k, v)
		if errors.Is(err, unix.ERANGE) {
			if m, err = get(k, nil); err == nil {
				v = make([]byte, m)
				m, err = get(k, v)
			}
		}
		if err != nil {
			return fmt.Errorf("get xattr %s: %w", k, err)
		}
		if err := set(k, v[:m]); err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("set xattr %s: %w", k, err)
		}
	}
	return nil
}

func (a *applier) whiteout(pfd int, base, rel string) error {
	dir, _ := split(rel)
	if base == whiteoutOpaque {
		if a.o.Whiteout == Overlay {
			var err error
			if dir == "" {
				err = unix.Fsetxattr(a.rootfd, opaqueXattr, []byte("y"), 0)
			} else {
				err = unix.Lsetxattr(a.rootPath+"/"+dir, opaqueXattr, []byte("y"), 0)
			}
			if err != nil {
				return fmt.Errorf("mark %q opaque: %w", dir, err)
			}
			return nil
		}
		return a.clearOpaque(pfd, dir)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // aufs bookkeeping (.wh..wh.plnk and friends)
	}
	name := base[len(whiteoutPrefix):]
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("bad whiteout name: %w", errdefs.ErrInvalidArgument)
	}
	victim := path.Join(dir, name)
	if err := a.remove(pfd, name, victim); err != nil {
		return err
	}
	if a.o.Whiteout == Overlay {
		if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("whiteout %q: %w", victim, err)
		}
	}
	return nil
}

// clearOpaque (native mode) empties dir of everything this layer did not
// put there.
func (a *applier) clearOpaque(pfd int, dir string) error {
	fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), dir)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("read %q: %w", dir, err)
	}
	for _, n := range names {
		p := path.Join(dir, n)
		if _, ok := a.seen[p]; ok {
			continue
		}
		if err := a.remove(pfd, n, p); err != nil {
			return err
		}
	}
	return nil
}
