package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// memoryExecRoot mounts a tmpfs on the exec root when the exec root sits on
// a disk filesystem and holds no container's state.
//
// Everything under the exec root (runtime state, monitor sockets and pid
// files, network namespace bind mounts) describes processes, so it must not
// outlive a reboot: on disk it would, with pids that name other processes
// afterwards. It is also written on every container start: a dozen files
// made and removed per container, which on a disk filesystem pay for block
// allocation, and on ext4 without a journal for every inode deleted nearby
// in the last minute (fs/ext4/ialloc.c recently_deleted). A systemd host has
// /run on tmpfs already, and then nothing is mounted.
//
// An exec root that already holds state (containers started by a daemon
// before this one) is left as it is, so that those containers are found.
// The mount stays after the daemon exits: its containers keep running and
// the next daemon reattaches to them through it.
func memoryExecRoot(dir string) (mounted bool, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, err
	}
	if st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC {
		return false, nil
	}
	busy, err := holdsState(dir)
	if err != nil || busy {
		return false, err
	}
	// The directory's owner and mode, which an administrator may have
	// opened to the socket's group.
	var ds unix.Stat_t
	if err := unix.Stat(dir, &ds); err != nil {
		return false, err
	}
	opts := fmt.Sprintf("mode=%o,uid=%d,gid=%d", ds.Mode&0o7777, ds.Uid, ds.Gid)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return false, fmt.Errorf("mount tmpfs on exec root %s: %w", dir, err)
	}
	return true, nil
}

// holdsState reports whether dir holds any container's state: anything but
// directories, a stopped daemon's socket and pid file (both made again
// after New) and the runtime's seccomp cache. A socket that still accepts
// connections is a running daemon's (one with another data root): the
// tmpfs would hide it.
func holdsState(dir string) (bool, error) {
	errFound := errors.New("found")
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch rel, _ := filepath.Rel(dir, p); {
		case rel == filepath.Join("runtime", ".seccomp") && de.IsDir():
			return filepath.SkipDir
		case rel == "berth.sock" && de.Type()&fs.ModeSocket != 0:
			if c, err := net.Dial("unix", p); err == nil {
				c.Close()
				return errFound
			}
			return nil
		case de.IsDir(), rel == "berth.pid" && de.Type().IsRegular():
			return nil
		}
		return errFound
	})
	if errors.Is(err, errFound) {
		return true, nil
	}
	if err != nil && !os.IsNotExist(err) {
		return false, err
	}
	return false, nil
}

// releaseExecRoot unmounts the tmpfs New mounted when no container's state
// is left in it (all were removed): a daemon that refused to serve, or one
// stopped with nothing to reattach to, leaves nothing mounted behind.
func (d *Daemon) releaseExecRoot() {
	if !d.execTmpfs {
		return
	}
	if busy, err := holdsState(d.cfg.ExecRoot); err != nil || busy {
		return
	}
	if err := unix.Unmount(d.cfg.ExecRoot, unix.MNT_DETACH); err != nil {
		d.log.Warn("unmount exec root", "dir", d.cfg.ExecRoot, "err", err)
	}
}
