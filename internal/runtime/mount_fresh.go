package runtime

import (
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// freshDirs holds fds of the tmpfs mounts the init itself has just made
// below the root (/dev, /sys/fs/cgroup), so that the mount points, device
// nodes and links it then makes in them cost one syscall each instead of
// a resolve-in-root walk of the parent, a create and a re-resolve.
//
// Why that keeps the root-resolution guarantee (mount.go): such a tmpfs
// was empty when the init mounted it, nothing of the container runs yet,
// and the fd names the tmpfs itself, not a path into the image. A mount
// point there is only used when the init creates it exclusively (mkdirat
// or O_CREAT|O_EXCL succeed); one already present (EEXIST: a spec naming
// the same destination twice) goes the resolve-in-root way. Device nodes
// are made with mknodat on the fd, replacing what is there as before.
// The mount on a new entry then goes onto /proc/self/fd/<tmpfs>/<name>:
// the magic link is the host procfs (checked before the mounts) and the
// last component a directory or file this init just made, so it cannot be
// a symlink; unlike a mount onto /proc/self/fd/<entry>, the path names the
// new mount once it is there, so remount and propagation need no re-open.
//
// A mount at or above a fresh directory's path hides it: its fd is dropped
// then (covered). A mount that reaches such a directory only through an
// image symlink is not noticed; the fd then still names the hidden tmpfs,
// so later entries land there, never outside the root.
//
// Lifecycle: newFreshDirs in setupRootfs, add after each tmpfs the init
// mounts, covered before each mount, close before pivot_root.
type freshDirs struct {
	rootfd int
	want   map[string]bool // directories that later mounts or devices use
	dirs   []freshDir
}

type freshDir struct {
	path string // clean, absolute inside the root
	fd   int    // O_PATH of the tmpfs root
}

func newFreshDirs(rootfd int, want map[string]bool) *freshDirs {
	return &freshDirs{rootfd: rootfd, want: want}
}

func cleanPath(p string) string { return filepath.Clean("/" + p) }

// add records the tmpfs just mounted at path, when something will be made
// in it: one re-open in the root, which now names the new mount.
func (f *freshDirs) add(path string) {
	path = cleanPath(path)
	if f == nil || !f.want[path] {
		return
	}
	fd, err := openInRoot(f.rootfd, path, unix.O_PATH|unix.O_DIRECTORY, resolveInRoot)
	if err != nil {
		return // the resolve-in-root way then
	}
	f.dirs = append(f.dirs, freshDir{path, fd})
}

// addFd records fd (the caller's; it stays open until close) as the fresh
// tmpfs at path.
func (f *freshDirs) addFd(path string, fd int) {
	f.dirs = append(f.dirs, freshDir{cleanPath(path), fd})
}

// covered drops the fresh directories a mount at path hides.
func (f *freshDirs) covered(path string) {
	if f == nil {
		return
	}
	path = cleanPath(path)
	keep := f.dirs[:0]
	for _, d := range f.dirs {
		if path == "/" || d.path == path || strings.HasPrefix(d.path, path+"/") {
			unix.Close(d.fd)
			continue
		}
		keep = append(keep, d)
	}
	f.dirs = keep
}

// parent returns the fd of the fresh directory that is path's parent, and
// path's last component.
func (f *freshDirs) parent(path string) (int, string, bool) {
	if f == nil {
		return -1, "", false
	}
	dir, base := filepath.Split(cleanPath(path))
	if base == "" {
		return -1, "", false
	}
	dir = cleanPath(dir)
	for _, d := range f.dirs {
		if d.path == dir {
			return d.fd, base, true
		}
	}
	return -1, "", false
}

// lookup returns the fd of the fresh directory at path.
func (f *freshDirs) lookup(path string) (int, bool) {
	if f == nil {
		return -1, false
	}
	path = cleanPath(path)
	for _, d := range f.dirs {
		if d.path == path {
			return d.fd, true
		}
	}
	return -1, false
}

func (f *freshDirs) close() {
	if f == nil {
		return
	}
	for _, d := range f.dirs {
		unix.Close(d.fd)
	}
	f.dirs = nil
}

// createFresh makes name (a directory, or an empty file) in the fresh
// directory dirfd and returns the path to mount on. ok is false when name
// exists already: the caller resolves in the root then.
func createFresh(dirfd int, name string, file bool) (string, bool, error) {
	if file {
		fd, err := unix.Openat(dirfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
		if err == unix.EEXIST {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		unix.Close(fd)
	} else if err := unix.Mkdirat(dirfd, name, 0o755); err == unix.EEXIST {
		return "", false, nil
	} else if err != nil {
		return "", false, err
	}
	return fdPath(dirfd) + "/" + name, true, nil
}

// recreateAsFile replaces the directory name, made by createFresh, with
// an empty file: the mount point of a file bind.
func recreateAsFile(dirfd int, name string) error {
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
		return err
	}
	_, ok, err := createFresh(dirfd, name, true)
	if err == nil && !ok {
		err = unix.EEXIST
	}
	return err
}

// freshWanted lists the directories that mounts and device nodes will be
// made in: the parents of mount destinations and device paths.
func freshWanted(mounts []string, devices []string) map[string]bool {
	w := map[string]bool{}
	for _, m := range mounts {
		w[cleanPath(filepath.Dir(cleanPath(m)))] = true
	}
	for _, d := range devices {
		w[cleanPath(filepath.Dir(cleanPath(d)))] = true
	}
	return w
}

// freshWantedBy is freshWanted for a spec's mounts and devices.
func freshWantedBy(s *specs.Spec) map[string]bool {
	mounts := make([]string, 0, len(s.Mounts))
	for _, m := range s.Mounts {
		mounts = append(mounts, m.Destination)
	}
	devs := make([]string, 0, len(defaultDevices)+len(s.Linux.Devices))
	for _, d := range defaultDevices {
		devs = append(devs, d.Path)
	}
	for _, d := range s.Linux.Devices {
		devs = append(devs, d.Path)
	}
	return freshWanted(mounts, devs)
}
