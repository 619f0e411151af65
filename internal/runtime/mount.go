package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Path handling inside the container root never joins strings and opens
// them: every target is resolved with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS) against an fd of the root, so a symlink planted or
// swapped by the container (CVE-2021-30465, CVE-2019-19921) resolves inside
// the rootfs. Mounts then go onto the resolved fd, through /proc/self/fd/N
// (host procfs, checked once) before pivot_root, or with the new mount API
// (open_tree / move_mount / fsmount on fds) after it.

const resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

func openInRoot(rootfd int, path string, flags uint64, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolve}
	for {
		fd, err := unix.Openat2(rootfd, path, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// mkdirInRoot makes sure path exists inside the root (a directory, or an
// empty file when file is set) and returns an O_PATH fd of it. Creation is
// done one component at a time below an fd that was itself resolved in the
// root; the final open resolves again in the root, so a component swapped
// for a symlink meanwhile still cannot lead outside.
func mkdirInRoot(rootfd int, path string, file bool) (int, error) {
	return mkdirInRootDepth(rootfd, path, file, 0)
}

func mkdirInRootDepth(rootfd int, path string, file bool, depth int) (int, error) {
	fd, err := openInRoot(rootfd, path, unix.O_PATH, resolveInRoot)
	if err == nil || err != unix.ENOENT {
		return fd, err
	}
	if depth > 40 {
		return -1, unix.ELOOP
	}
	clean := filepath.Clean("/" + path)
	if clean == "/" {
		return -1, err
	}
	parent, base := filepath.Split(clean)
	pfd, err := mkdirInRootDepth(rootfd, parent, false, depth+1)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	// pfd is O_PATH; reopen as a directory to create in it.
	dfd, err := openInRoot(pfd, ".", unix.O_DIRECTORY|unix.O_RDONLY, unix.RESOLVE_BENEATH)
	if err != nil {
		return -1, fmt.Errorf("%s is not a directory: %w", parent, err)
	}
	defer unix.Close(dfd)
	if file {
		nfd, err := unix.Openat(dfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
		if err == nil {
			unix.Close(nfd)
		} else if err != unix.EEXIST {
			return -1, fmt.Errorf("create %s: %w", clean, err)
		}
	} else if err := unix.Mkdirat(dfd, base, 0o755); err != nil && err != unix.EEXIST {
		return -1, fmt.Errorf("mkdir %s: %w", clean, err)
	}
	fd, err = openInRoot(rootfd, clean, unix.O_PATH, resolveInRoot)
	if err == unix.ENOENT {
		// a dangling symlink: create its target, read as a path inside
		// the root (absolute targets start at the root)
		buf := make([]byte, unix.PathMax)
		n, lerr := unix.Readlinkat(dfd, base, buf)
		if lerr != nil {
			return -1, err
		}
		target := string(buf[:n])
		if !filepath.IsAbs(target) {
			target = filepath.Join(parent, target)
		}
		return mkdirInRootDepth(rootfd, target, file, depth+1)
	}
	return fd, err
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"acl": {false, unix.MS_POSIXACL}, "async": {true, unix.MS_SYNCHRONOUS}, "atime": {true, unix.MS_NOATIME},
	"bind": {false, unix.MS_BIND}, "defaults": {false, 0}, "dev": {true, unix.MS_NODEV},
	"diratime": {true, unix.MS_NODIRATIME}, "dirsync": {false, unix.MS_DIRSYNC}, "exec": {true, unix.MS_NOEXEC},
	"iversion": {false, unix.MS_I_VERSION}, "lazytime": {false, unix.MS_LAZYTIME}, "loud": {true, unix.MS_SILENT},
	"mand": {false, unix.MS_MANDLOCK}, "noacl": {true, unix.MS_POSIXACL}, "noatime": {false, unix.MS_NOATIME},
	"nodev": {false, unix.MS_NODEV}, "nodiratime": {false, unix.MS_NODIRATIME}, "noexec": {false, unix.MS_NOEXEC},
	"noiversion": {true, unix.MS_I_VERSION}, "nolazytime": {true, unix.MS_LAZYTIME}, "nomand": {true, unix.MS_MANDLOCK},
	"norelatime": {true, unix.MS_RELATIME}, "nostrictatime": {true, unix.MS_STRICTATIME}, "nosuid": {false, unix.MS_NOSUID},
	"rbind": {false, unix.MS_BIND | unix.MS_REC}, "relatime": {false, unix.MS_RELATIME}, "remount": {false, unix.MS_REMOUNT},
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY}, "silent": {false, unix.MS_SILENT},
	"strictatime": {false, unix.MS_STRICTATIME}, "suid": {true, unix.MS_NOSUID}, "sync": {false, unix.MS_SYNCHRONOUS},
}

var propagationFlags = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions splits OCI mount options into flags, propagation flags
// and the data string handed to the filesystem.
func parseMountOptions(opts []string) (flags uintptr, prop []uintptr, data string) {
	var d []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if p, ok := propagationFlags[o]; ok {
			prop = append(prop, p)
			continue
		}
		// recursive mount_setattr options (rro, rnosuid...) map to their
		// plain forms; good enough for bind mounts of plain trees
		if strings.HasPrefix(o, "r") {
			if f, ok := mountFlags[o[1:]]; ok && !f.clear && o != "rbind" {
				flags |= f.flag
				continue
			}
		}
		d = append(d, o)
	}
	return flags, prop, strings.Join(d, ",")
}

func isBind(m *specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// mountOne performs one spec mount below rootfd (before pivot_root).
func mountOne(rootfd int, m *specs.Mount, bundle string, cgroupns bool) error {
	flags, prop, data := parseMountOptions(m.Options)
	bind := isBind(m)
	src := m.Source
	file := false
	if bind {
		if !filepath.IsAbs(src) {
			src = filepath.Join(bundle, src)
		}
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("mount source %s: %w", src, err)
		}
		file = !st.IsDir()
	}
	var target int
	var err error
	if m.Type == "cgroup" {
		return mountCgroup(rootfd, m, flags, cgroupns)
	}
	target, err = mkdirInRoot(rootfd, m.Destination, file)
	if err != nil {
		return fmt.Errorf("mount destination %s: %w", m.Destination, err)
	}
	defer unix.Close(target)
	tpath := fdPath(target)
	if bind {
		if err := unix.Mount(src, tpath, "", unix.MS_BIND|(flags&unix.MS_REC), ""); err != nil {
			return fmt.Errorf("bind mount %s on %s: %w", src, m.Destination, err)
		}
		// Flags other than bind/rec need a remount of the new mount; reopen
		// the target so the fd names the mount just made.
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rest != 0 {
			nt, err := openInRoot(rootfd, m.Destination, unix.O_PATH, resolveInRoot)
			if err != nil {
				return err
			}
			defer unix.Close(nt)
			if err := remountBind(fdPath(nt), rest); err != nil {
				return fmt.Errorf("remount %s: %w", m.Destination, err)
			}
		}
	} else {
		fstype := m.Type
		if fstype == "" {
			fstype = m.Source
		}
		err := unix.Mount(m.Source, tpath, fstype, flags, data)
		if err != nil && fstype == "sysfs" && (err == unix.EPERM || err == unix.EBUSY) {
			// sysfs cannot be mounted in a user namespace that does not own
			// the network namespace: bind the host's instead, read-only.
			err = unix.Mount("/sys", tpath, "", unix.MS_BIND|unix.MS_REC, "")
			if err == nil {
				err = remountBind(tpath, flags|unix.MS_RDONLY)
			}
		}
		if err != nil && fstype == "mqueue" && err == unix.EPERM {
			err = unix.Mount("/dev/mqueue", tpath, "", unix.MS_BIND|unix.MS_REC, "")
		}
		if err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, fstype, m.Destination, err)
		}
	}
	if len(prop) > 0 {
		nt, err := openInRoot(rootfd, m.Destination, unix.O_PATH, resolveInRoot)
		if err != nil {
			return err
		}
		defer unix.Close(nt)
		for _, p := range prop {
			if err := unix.Mount("", fdPath(nt), "", p, ""); err != nil {
				return fmt.Errorf("set propagation of %s: %w", m.Destination, err)
			}
		}
	}
	return nil
}

// remountBind applies flags to a bind mount. In a user namespace the
// kernel refuses to clear flags the source mount has locked (nodev,
// nosuid, noexec on the host mount), so retry keeping those.
func remountBind(path string, flags uintptr) error {
	err := unix.Mount("", path, "", unix.MS_REMOUNT|unix.MS_BIND|flags, "")
	if err != unix.EPERM {
		return err
	}
	var st unix.Statfs_t
	if serr := unix.Statfs(path, &st); serr != nil {
		return err
	}
	locked := uintptr(st.Flags) & (unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_RDONLY | unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_NODIRATIME)
	return unix.Mount("", path, "", unix.MS_REMOUNT|unix.MS_BIND|flags|locked, "")
}

// mountCgroup mounts the cgroup filesystem view at m.Destination: cgroup2
// on a unified host; on v1/hybrid hosts a tmpfs holding one bind mount per
// hierarchy of the container's own cgroup (as runc does).
func mountCgroup(rootfd int, m *specs.Mount, flags uintptr, cgroupns bool) error {
	target, err := mkdirInRoot(rootfd, m.Destination, false)
	if err != nil {
		return fmt.Errorf("mount destination %s: %w", m.Destination, err)
	}
	defer unix.Close(target)
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		err := unix.Mount("cgroup2", fdPath(target), "cgroup2", flags&^unix.MS_RELATIME, "")
		if err == unix.EPERM || err == unix.EBUSY {
			err = unix.Mount("/sys/fs/cgroup", fdPath(target), "", unix.MS_BIND|unix.MS_REC, "")
		}
		if err != nil {
			return fmt.Errorf("mount cgroup2 on %s: %w", m.Destination, err)
		}
		return nil
	}
	if err := unix.Mount("tmpfs", fdPath(target), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", m.Destination, err)
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	own, err := ownCgroups()
	if err != nil {
		return err
	}
	for _, cm := range mounts {
		rel, ok := own[cm.key]
		if !ok {
			continue
		}
		src := filepath.Join(cm.mountpoint, strings.TrimPrefix(rel, cm.root))
		if _, err := os.Stat(src); err != nil {
			src = cm.mountpoint
		}
		dst := filepath.Join(m.Destination, filepath.Base(cm.mountpoint))
		fd, err := mkdirInRoot(rootfd, dst, false)
		if err != nil {
			return err
		}
		mflags := (flags | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC) &^ unix.MS_RELATIME
		if cgroupns {
			// a fresh mount shows the namespace's root: our own cgroup
			if cm.key == "" {
				err = unix.Mount("cgroup2", fdPath(fd), "cgroup2", mflags, "")
			} else {
				err = unix.Mount("cgroup", fdPath(fd), "cgroup", mflags, cm.key)
			}
		} else {
			err = unix.Mount(src, fdPath(fd), "", unix.MS_BIND|unix.MS_REC, "")
			if err == nil {
				// reopen: the old fd names the directory under the new mount
				var nfd int
				if nfd, err = openInRoot(rootfd, dst, unix.O_PATH, resolveInRoot); err == nil {
					err = remountBind(fdPath(nfd), mflags)
					unix.Close(nfd)
				}
			}
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("mount cgroup %s: %w", dst, err)
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		nt, err := openInRoot(rootfd, m.Destination, unix.O_PATH, resolveInRoot)
		if err != nil {
			return err
		}
		defer unix.Close(nt)
		if err := unix.Mount("", fdPath(nt), "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
			return fmt.Errorf("make %s read-only: %w", m.Destination, err)
		}
	}
	return nil
}

type cgroupMount struct {
	mountpoint, root, key string
}

// cgroupMounts lists the v1 hierarchies (and the v2 one) from mountinfo,
// keyed like /proc/self/cgroup's controller field.
func cgroupMounts() ([]cgroupMount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseCgroupMounts(string(b)), nil
}

func parseCgroupMounts(mountinfo string) []cgroupMount {
	var out []cgroupMount
	for _, line := range strings.Split(mountinfo, "\n") {
		if !strings.Contains(line, " - cgroup") {
			continue // most lines: split only the cgroup ones
		}
		fields := strings.Fields(line)
		i := 0
		for i = 6; i < len(fields) && fields[i] != "-"; i++ {
		}
		if i+3 >= len(fields) {
			continue
		}
		fstype := fields[i+1]
		switch fstype {
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(fields[i+3], ",") {
				switch {
				case o == "rw" || o == "ro" || o == "clone_children" || o == "noprefix" || o == "xattr" || strings.HasPrefix(o, "release_agent="):
				default:
					ctrls = append(ctrls, o)
				}
			}
			out = append(out, cgroupMount{fields[4], fields[3], strings.Join(ctrls, ",")})
		case "cgroup2":
			out = append(out, cgroupMount{fields[4], fields[3], ""})
		}
	}
	return out
}

func ownCgroups() (map[string]string, error) { return cgroupsOf("/proc/self/cgroup") }

// cgroupsOf maps the controller field of a /proc/<pid>/cgroup file to the path.
func cgroupsOf(file string) (map[string]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		p := strings.SplitN(l, ":", 3)
		if len(p) == 3 {
			m[p[1]] = p[2]
		}
	}
	return m, nil
}

// cloneMountOnto bind-mounts the object behind srcfd onto the object behind
// dstfd with the new mount API: fd to fd, no path is resolved twice.
func cloneMountOnto(srcfd, dstfd int, recursive bool, attr uint64) error {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(srcfd, "", flags)
	if err != nil {
		return fmt.Errorf("open_tree: %w", err)
	}
	defer unix.Close(tree)
	if attr != 0 {
		sa := unix.MountAttr{Attr_set: attr}
		af := uint(unix.AT_EMPTY_PATH)
		if recursive {
			af |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(tree, "", af, &sa); err != nil {
			return fmt.Errorf("mount_setattr: %w", err)
		}
	}
	if err := unix.MoveMount(tree, "", dstfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// mountTmpfsOnto mounts a fresh read-only tmpfs on the directory dstfd.
func mountTmpfsOnto(dstfd int) error {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "size", "0"); err != nil {
		return err
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return err
	}
	mfd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	return unix.MoveMount(mfd, "", dstfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

// maskPath hides path (after pivot_root): directories get an empty
// read-only tmpfs, anything else /dev/null (devnull, checked by
// openDevNull). The target is
// opened without following any symlink and must not be a symlink itself
// (CVE-2025-31133: a masked path redirected into procfs).
func maskPath(path string, devnull int) error {
	fd, err := openInRoot(unix.AT_FDCWD, path, unix.O_PATH|unix.O_NOFOLLOW, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		if err == unix.ENOENT || err == unix.ENOTDIR {
			return nil
		}
		return fmt.Errorf("mask %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := mountTmpfsOnto(fd); err != nil {
			return fmt.Errorf("mask %s: %w", path, err)
		}
		return nil
	}
	if err := cloneMountOnto(devnull, fd, false, 0); err != nil {
		return fmt.Errorf("mask %s: %w", path, err)
	}
	return nil
}

// readonlyPath remounts path read-only, through fds only.
func readonlyPath(path string) error {
	fd, err := openInRoot(unix.AT_FDCWD, path, unix.O_PATH|unix.O_NOFOLLOW, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		if err == unix.ENOENT || err == unix.ENOTDIR {
			return nil
		}
		return fmt.Errorf("readonly %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := cloneMountOnto(fd, fd, true, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC); err != nil {
		return fmt.Errorf("readonly %s: %w", path, err)
	}
	return nil
}

// openDevNull opens /dev/null (the container's, after pivot_root) without
// following symlinks and checks it is the null device: a /dev/null swapped
// for a symlink to a procfs file must not be bind-mounted over the masked
// paths (CVE-2025-31133).
func openDevNull() (int, error) {
	fd, err := openInRoot(unix.AT_FDCWD, "/dev/null", unix.O_PATH|unix.O_NOFOLLOW, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return -1, fmt.Errorf("/dev/null: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		unix.Close(fd)
		return -1, errors.New("/dev/null is not the null device: refusing to use it to mask paths")
	}
	return fd, nil
}

// writeProcFile writes to a /proc file after checking it really is on
// procfs (CVE-2019-19921: a container-controlled /proc).
func writeProcFile(path, val string) error {
	fd, err := openInRoot(unix.AT_FDCWD, path, unix.O_WRONLY, unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return err
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("%s is not on procfs (type %#x): refusing to write", path, st.Type)
	}
	_, err = unix.Write(fd, []byte(val))
	return err
}

// MountOptions lists the mount options the runtime understands (features).
func MountOptions() []string {
	var out []string
	for k := range mountFlags {
		out = append(out, k)
	}
	for k := range propagationFlags {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mountPointOf returns the mount point of the mount holding path (the
// longest mount point in mountinfo that is a prefix of it).
func mountPointOf(path string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	best := ""
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best
}
