package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/cli/client"
	"github.com/moby/term"
	"github.com/spf13/cobra"
)

type cpOpts struct {
	archive, followLink, quiet bool
}

func (c *CLI) newCpCommand() *cobra.Command {
	var o cpOpts
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: "Copy files/folders between a container and the local filesystem\n\n" +
			"Use '-' as the source to read a tar archive from stdin\nand extract it to a directory destination in a container.\n" +
			"Use '-' as the destination to stream a tar archive of a\ncontainer source to stdout.",
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, srcPath := splitCpArg(args[0])
			dstCtr, dstPath := splitCpArg(args[1])
			if _, isTerm := term.GetFdInfo(c.err); !isTerm {
				o.quiet = true
			}
			switch {
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr != "":
				if srcPath == "" {
					return errors.New("source can not be empty")
				}
				return c.copyFromContainer(cmd.Context(), srcCtr, srcPath, dstPath, o)
			case dstCtr != "":
				if dstPath == "" {
					return errors.New("destination can not be empty")
				}
				return c.copyToContainer(cmd.Context(), srcPath, dstCtr, dstPath, o)
			}
			return errors.New("must specify at least one container source")
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	fl.BoolVarP(&o.followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	fl.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

// splitCpArg splits "container:path"; absolute and ./relative paths are local.
func splitCpArg(arg string) (string, string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(ctr, ".") {
		return "", arg
	}
	return ctr, p
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	return n, err
}

func (c *CLI) copyFromContainer(ctx context.Context, ctr, src, dst string, o cpOpts) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	if o.followLink {
		st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: src})
		if err == nil && st.Stat.Mode&os.ModeSymlink != 0 {
			target := st.Stat.LinkTarget
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(src), target)
			}
			src = target
		}
	}
	res, err := api.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: src})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	if dst == "-" {
		_, err = io.Copy(c.out, res.Content)
		return err
	}
	srcBase := res.Stat.Name
	if srcBase == "" {
		srcBase = path.Base(src)
	}
	srcIsDir := res.Stat.Mode.IsDir()
	// Where does the archive's top entry land? Into dst when dst is an
	// existing directory (keeping srcBase), else renamed to dst itself.
	root, rename := dst, ""
	fi, err := os.Stat(dst)
	switch {
	case err == nil && fi.IsDir():
		if strings.HasSuffix(src, "/.") {
			rename = "."
		}
	case err == nil && srcIsDir:
		return fmt.Errorf("cannot copy a directory to a file: %s", dst)
	case err == nil, errors.Is(err, os.ErrNotExist):
		if err != nil && strings.HasSuffix(dst, string(os.PathSeparator)) && !srcIsDir {
			return fmt.Errorf("destination directory %q does not exist", dst)
		}
		parent := filepath.Dir(filepath.Clean(dst))
		if pfi, perr := os.Stat(parent); perr != nil || !pfi.IsDir() {
			return fmt.Errorf("destination directory %q does not exist", parent)
		}
		root, rename = parent, filepath.Base(filepath.Clean(dst))
	default:
		return err
	}
	n, err := extractTar(res.Content, root, srcBase, rename, o.archive)
	if err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintf(c.err, "Successfully copied %s to %s\n", humanSize(n), dst)
	}
	return nil
}

// extractTar unpacks r below root, replacing the leading srcBase component
// with rename (when set). Entries that would land outside root, or be
// written through a symlink, are refused.
func extractTar(r io.Reader, root, srcBase, rename string, chown bool) (int64, error) {
	tr := tar.NewReader(r)
	root = filepath.Clean(root)
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		raw := path.Clean(hdr.Name)
		if raw == ".." || strings.HasPrefix(raw, "../") || path.IsAbs(raw) {
			return total, fmt.Errorf("archive entry %q escapes the destination", hdr.Name)
		}
		name := raw
		if rename != "" {
			first, rest, _ := strings.Cut(name, "/")
			if first != srcBase {
				return total, fmt.Errorf("archive entry %q is outside %q", hdr.Name, srcBase)
			}
			name = path.Join(rename, rest)
		}
		if name == "" || name == "." {
			if hdr.Typeflag == tar.TypeDir {
				continue
			}
			return total, fmt.Errorf("invalid archive entry %q", hdr.Name)
		}
		target := filepath.Join(root, filepath.FromSlash(name))
		if target != root && !strings.HasPrefix(target, root+string(os.PathSeparator)) {
			return total, fmt.Errorf("archive entry %q escapes the destination", hdr.Name)
		}
		if err := checkNoSymlinkParents(root, target); err != nil {
			return total, err
		}
		mode := os.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return total, err
			}
			_ = os.Chmod(target, mode)
		case tar.TypeReg:
			_ = os.Remove(target)
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_EXCL, mode)
			if err != nil {
				return total, err
			}
			n, err := io.Copy(f, tr)
			total += n
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return total, err
			}
		case tar.TypeSymlink:
			_ = os.Remove(target)
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return total, err
			}
		case tar.TypeLink:
			ln := path.Clean("/" + hdr.Linkname)[1:]
			if rename != "" {
				if first, rest, _ := strings.Cut(ln, "/"); first == srcBase {
					ln = path.Join(rename, rest)
				}
			}
			old := filepath.Join(root, filepath.FromSlash(ln))
			if !strings.HasPrefix(old, root+string(os.PathSeparator)) {
				return total, fmt.Errorf("archive hard link %q escapes the destination", hdr.Linkname)
			}
			_ = os.Remove(target)
			if err := os.Link(old, target); err != nil {
				return total, err
			}
		default:
			continue
		}
		if chown {
			_ = os.Lchown(target, hdr.Uid, hdr.Gid)
		}
		if hdr.Typeflag != tar.TypeSymlink {
			_ = os.Chtimes(target, hdr.ModTime, hdr.ModTime)
		}
	}
}

// checkNoSymlinkParents refuses a target whose parent directories below
// root include a symlink (an archive could otherwise write through one).
func checkNoSymlinkParents(root, target string) error {
	rel, err := filepath.Rel(root, filepath.Dir(target))
	if err != nil || rel == "." {
		return nil
	}
	cur := root
	for _, part := range strings.Split(rel, string(os.PathSeparator)) {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err != nil {
			return nil
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("refusing to write %s through symlink %s", target, cur)
		}
	}
	return nil
}

func (c *CLI) copyToContainer(ctx context.Context, src, ctr, dst string, o cpOpts) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	if src == "-" {
		st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dst})
		if err != nil {
			return err
		}
		if !st.Stat.Mode.IsDir() {
			return fmt.Errorf("destination \"%s:%s\" must be a directory", ctr, dst)
		}
		_, err = api.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{DestinationPath: dst, Content: c.in, CopyUIDGID: o.archive})
		return err
	}
	statFn := os.Lstat
	if o.followLink {
		statFn = os.Stat
	}
	sfi, err := statFn(src)
	if err != nil {
		return err
	}
	// Upload into dst when it is an existing directory; otherwise into its
	// parent with the top entry renamed to dst's base name.
	uploadDir, name := dst, filepath.Base(filepath.Clean(src))
	st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dst})
	switch {
	case err == nil && st.Stat.Mode.IsDir():
	case err == nil && sfi.IsDir():
		return fmt.Errorf("cannot copy a directory to a file: %s:%s", ctr, dst)
	case err == nil || isNotFound(err):
		if err != nil && strings.HasSuffix(dst, "/") {
			return fmt.Errorf("destination directory \"%s:%s\" does not exist", ctr, dst)
		}
		uploadDir, name = path.Dir(path.Clean(dst)), path.Base(path.Clean(dst))
	default:
		return err
	}
	pr, pw := io.Pipe()
	cw := &countingWriter{w: pw}
	go func() {
		pw.CloseWithError(writeTar(cw, src, name, o.followLink))
	}()
	_, err = api.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{DestinationPath: uploadDir, Content: pr, CopyUIDGID: o.archive})
	_ = pr.Close()
	if err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintf(c.err, "Successfully copied %s to %s:%s\n", humanSize(cw.n), ctr, dst)
	}
	return nil
}

// writeTar archives src (file or tree) with its top entry named name.
func writeTar(w io.Writer, src, name string, follow bool) error {
	tw := tar.NewWriter(w)
	src = filepath.Clean(src)
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == src && follow {
			if fi, err = os.Stat(p); err != nil {
				return err
			}
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		entry := name
		if rel != "." {
			entry = path.Join(name, filepath.ToSlash(rel))
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = entry
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
