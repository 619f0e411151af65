package runtime

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// CVE-2019-5736: a container process can reach the runtime binary through
// /proc/<init>/exe while the init runs our code, and overwrite it once the
// runtime exits. So the init never runs the binary on disk; it runs either
//
//   - a read-only clone: open_tree(OPEN_TREE_CLONE) of /proc/self/exe makes
//     a detached bind mount of just that file, mount_setattr makes it
//     read-only; writes through it fail with EROFS. Constant cost (three
//     syscalls), no copy. Default.
//   - a sealed memfd copy (F_SEAL_WRITE|SHRINK|GROW|SEAL): costs a copy of
//     the binary per container; used when the mount API is unavailable, or
//     with BERTH_EXE_PROTECT=memfd (for the benchmark and tests).
//
// The fd returned is O_CLOEXEC and numbered 64 or above so that exec.Cmd's
// fd shuffling for ExtraFiles cannot overwrite it before execve.

func exeMode() string { return os.Getenv("BERTH_EXE_PROTECT") }

func protectedExe(path string) (*os.File, error) {
	if path == "" {
		path = "/proc/self/exe"
	}
	var fd int
	var err error
	if exeMode() != "memfd" {
		fd, err = roCloneExe(path)
	}
	if exeMode() == "memfd" || err != nil {
		if fd, err = memfdExe(path); err != nil {
			return nil, err
		}
	}
	hi, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 64)
	unix.Close(fd)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(hi), "berth-runtime-exe"), nil
}

func roCloneExe(path string) (int, error) {
	tree, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, err
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(tree)
		return -1, err
	}
	return tree, nil
}

func memfdExe(path string) (int, error) {
	src, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return -1, err
	}
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL {
		fd, err = unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	for left := st.Size; left > 0; {
		n, err := unix.Sendfile(fd, src, nil, int(left))
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("copy runtime binary: %w", err)
		}
		if n == 0 {
			break
		}
		left -= int64(n)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("seal runtime copy: %w", err)
	}
	return fd, nil
}
