package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// WriteTar writes dir as an uncompressed layer tar: names relative to dir,
// numeric owners, PAX xattrs, hard links as links, devices. With
// o.Whiteout == Overlay, dir is read as an overlay upperdir and its whiteout
// devices and opaque markers become .wh. entries. With o.Parent set, only
// the difference from Parent is written (changed entries with their parent
// directories, and whiteouts for removed names).
func WriteTar(ctx context.Context, dir string, w io.Writer, o TarOptions) error {
	tw := tar.NewWriter(w)
	wr := &tarWriter{ctx: ctx, root: dir, tw: tw, links: map[[2]uint64]string{}, buf: make([]byte, 1<<20), o: o}
	var err error
	if o.Parent != "" {
		err = wr.diff()
	} else {
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if rel == "." {
				return nil
			}
			return wr.add(filepath.ToSlash(rel))
		})
	}
	if err != nil {
		return fmt.Errorf("write tar of %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write tar of %s: %w", dir, err)
	}
	return nil
}

type tarWriter struct {
	ctx   context.Context
	root  string
	tw    *tar.Writer
	links map[[2]uint64]string
	buf   []byte
	o     TarOptions
}

func (w *tarWriter) add(rel string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	full := filepath.Join(w.root, rel)
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		return fmt.Errorf("lstat %s: %w", rel, err)
	}
	if w.o.Parent == "" && w.o.Whiteout == Overlay && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
		dir, base := path.Split(rel)
		return w.tw.WriteHeader(&tar.Header{Name: dir + whiteoutPrefix + base, Typeflag: tar.TypeReg, Mode: 0o600, Format: tar.FormatPAX})
	}
	hdr := &tar.Header{
		Name:       rel,
		Mode:       int64(st.Mode & 0o7777),
		Uid:        int(st.Uid),
		Gid:        int(st.Gid),
		ModTime:    time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Format:     tar.FormatPAX,
		PAXRecords: map[string]string{},
	}
	opaque := false
	err := copyXattrs(func(b []byte) (int, error) { return unix.Llistxattr(full, b) },
		func(k string, b []byte) (int, error) { return unix.Lgetxattr(full, k, b) },
		func(k string, v []byte) error {
			hdr.PAXRecords[paxXattr+k] = string(v)
			return nil
		})
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if w.o.Parent == "" && w.o.Whiteout == Overlay && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		v := make([]byte, 1)
		if n, err := unix.Lgetxattr(full, opaqueXattr, v); err == nil && n == 1 && v[0] == 'y' {
			opaque = true
		}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		key := [2]uint64{st.Dev, st.Ino}
		if st.Nlink > 1 {
			if first, ok := w.links[key]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				return w.tw.WriteHeader(hdr)
			}
			w.links[key] = rel
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
	case unix.S_IFLNK:
		t, err := os.Readlink(full)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, t
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		SpecialHeader(hdr, st.Mode, st.Rdev)
	default:
		return nil // sockets are not archived
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if opaque {
		if err := w.tw.WriteHeader(&tar.Header{Name: rel + "/" + whiteoutOpaque, Typeflag: tar.TypeReg, Mode: 0o600, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		f, err := os.OpenFile(full, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyBuffer(w.tw, io.LimitReader(f, hdr.Size), w.buf); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
	}
	return nil
}

// diff emits the entries of root that differ from Parent, each with its
// ancestors, and a whiteout for each name of Parent that root lacks.
func (w *tarWriter) diff() error {
	emit := map[string]bool{} // path → is a whiteout
	err := filepath.WalkDir(w.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(w.root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if !changed(p, filepath.Join(w.o.Parent, rel)) {
			return nil
		}
		emit[rel] = false
		for a := path.Dir(rel); a != "."; a = path.Dir(a) {
			if _, ok := emit[a]; ok {
				break
			}
			emit[a] = false
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = filepath.WalkDir(w.o.Parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(w.o.Parent, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(w.root, rel), &st); errors.Is(err, unix.ENOENT) {
			emit[rel] = true
			for a := path.Dir(rel); a != "."; a = path.Dir(a) {
				if _, ok := emit[a]; ok {
					break
				}
				emit[a] = false
			}
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	names := make([]string, 0, len(emit))
	for n := range emit {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if emit[n] {
			dir, base := path.Split(n)
			if err := w.tw.WriteHeader(&tar.Header{Name: dir + whiteoutPrefix + base, Typeflag: tar.TypeReg, Mode: 0o600, Format: tar.FormatPAX}); err != nil {
				return err
			}
			continue
		}
		if err := w.add(n); err != nil {
			return err
		}
	}
	return nil
}

// changed compares what docker's change detection compares: type, mode,
// owner, size, mtime, device and link target (not content).
func changed(p, parent string) bool {
	var a, b unix.Stat_t
	if unix.Lstat(p, &a) != nil || unix.Lstat(parent, &b) != nil {
		return true
	}
	if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev {
		return true
	}
	if a.Mode&unix.S_IFMT == unix.S_IFDIR {
		return false // a directory's own listing changes show up as its children
	}
	if a.Size != b.Size || a.Mtim != b.Mtim {
		return true
	}
	if a.Mode&unix.S_IFMT == unix.S_IFLNK {
		x, _ := os.Readlink(p)
		y, _ := os.Readlink(parent)
		return x != y
	}
	return false
}

// SpecialHeader sets hdr's type, and device numbers, for a character or
// block device or a fifo of the given stat mode and rdev (the one mapping
// the layer writer and the daemon's container archives share).
func SpecialHeader(hdr *tar.Header, mode uint32, rdev uint64) {
	switch mode & unix.S_IFMT {
	case unix.S_IFCHR:
		hdr.Typeflag = tar.TypeChar
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		return
	default:
		return
	}
	hdr.Devmajor, hdr.Devminor = int64(unix.Major(rdev)), int64(unix.Minor(rdev))
}
