package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// MountAll performs mounts on target, in order.
//
// Overlay mount data is limited to one page (4096 bytes). A deep image
// (100+ layers with absolute lowerdir paths) exceeds it, so long overlay
// mounts go through the new mount API instead, appending one lower layer
// per fsconfig("lowerdir+") call (Linux 6.8+): no length limit and no
// chdir tricks.
func MountAll(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := mountOne(m, target); err != nil {
			for j := 0; j < i; j++ {
				unix.Unmount(target, unix.MNT_DETACH)
			}
			return fmt.Errorf("mount %s %s on %s: %w", m.Type, m.Source, target, err)
		}
	}
	return nil
}

var mountFlags = map[string]uintptr{
	"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV, "noexec": unix.MS_NOEXEC,
	"noatime": unix.MS_NOATIME, "nodiratime": unix.MS_NODIRATIME, "relatime": unix.MS_RELATIME,
	"bind": unix.MS_BIND, "rbind": unix.MS_BIND | unix.MS_REC,
}

func parseOptions(opts []string) (flags uintptr, data []string) {
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			flags |= f
		} else if o != "rw" && o != "defaults" {
			data = append(data, o)
		}
	}
	return flags, data
}

func mountOne(m Mount, target string) error {
	flags, data := parseOptions(m.Options)
	if m.Type == "bind" {
		flags |= unix.MS_BIND
	}
	d := strings.Join(data, ",")
	if m.Type == "overlay" && len(d) >= os.Getpagesize()-1 {
		err := errors.ErrUnsupported
		if !forceRelative {
			err = mountOverlayFsconfig(flags, data, target)
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, errors.ErrUnsupported) {
			// Kernels before 6.8 have no lowerdir+: shorten the paths.
			return mountOverlayRelative(flags, data, target)
		}
		return err
	}
	typ, first := m.Type, flags
	if flags&unix.MS_BIND != 0 {
		typ, first = "", flags&(unix.MS_BIND|unix.MS_REC) // the rest needs a remount
	}
	if err := unix.Mount(m.Source, target, typ, first, d); err != nil {
		return err
	}
	// A bind mount ignores MS_RDONLY until remounted.
	if flags&unix.MS_BIND != 0 && flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|(flags&(unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)), ""); err != nil {
			unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("remount read-only: %w", err)
		}
	}
	return nil
}

func mountOverlayFsconfig(flags uintptr, data []string, target string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fd)
	for _, o := range data {
		k, v, hasValue := strings.Cut(o, "=")
		switch {
		case k == "lowerdir":
			for _, l := range strings.Split(v, ":") {
				if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
					return fmt.Errorf("fsconfig lowerdir+ %s (needs Linux 6.8): %w", l, err)
				}
			}
		case hasValue:
			err = unix.FsconfigSetString(fd, k, v)
		default:
			err = unix.FsconfigSetFlag(fd, k)
		}
		if err != nil {
			return fmt.Errorf("fsconfig %s: %w", o, err)
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("fsconfig create: %w", err)
	}
	attrs := 0
	if flags&unix.MS_RDONLY != 0 {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	if flags&unix.MS_NOSUID != 0 {
		attrs |= unix.MOUNT_ATTR_NOSUID
	}
	if flags&unix.MS_NODEV != 0 {
		attrs |= unix.MOUNT_ATTR_NODEV
	}
	if flags&unix.MS_NOEXEC != 0 {
		attrs |= unix.MOUNT_ATTR_NOEXEC
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// forceRelative makes tests take the pre-6.8 path.
var forceRelative bool

// mountOverlayRelative mounts with lowerdir/upperdir/workdir relative to
// their common parent directory, from a thread that has its own working
// directory (unshare(CLONE_FS)), so the process's cwd never changes. The
// thread is left locked and dies with its goroutine.
func mountOverlayRelative(flags uintptr, data []string, target string) error {
	target, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	var paths []string
	for _, o := range data {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			paths = append(paths, strings.Split(v, ":")...)
		case "upperdir", "workdir":
			paths = append(paths, v)
		}
	}
	common := commonDir(paths)
	if common == "" || common == "/" {
		return fmt.Errorf("overlay options exceed a page and the layers share no directory: %w", unix.E2BIG)
	}
	rel := func(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, common), "/") }
	var short []string
	for _, o := range data {
		k, v, ok := strings.Cut(o, "=")
		switch {
		case k == "lowerdir":
			ls := strings.Split(v, ":")
			for i := range ls {
				ls[i] = rel(ls[i])
			}
			o = "lowerdir=" + strings.Join(ls, ":")
		case ok && (k == "upperdir" || k == "workdir"):
			o = k + "=" + rel(v)
		}
		short = append(short, o)
	}
	d := strings.Join(short, ",")
	if len(d) >= os.Getpagesize()-1 {
		return fmt.Errorf("overlay options are %d bytes even relative to %s: %w", len(d), common, unix.E2BIG)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread's cwd is changed
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_FS): %w", err)
			return
		}
		if err := unix.Chdir(common); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount("overlay", target, "overlay", flags, d)
	}()
	return <-errc
}

func commonDir(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	c := filepath.Dir(paths[0])
	for _, p := range paths[1:] {
		for c != "/" && !strings.HasPrefix(p, c+"/") {
			c = filepath.Dir(c)
		}
	}
	return c
}

// UnmountAll unmounts everything stacked on target.
func UnmountAll(target string) error {
	for i := 0; i < 64; i++ {
		err := unix.Unmount(target, 0)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil // not (or no longer) a mount point
		}
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(target, unix.MNT_DETACH)
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted after 64 unmounts", target)
}
