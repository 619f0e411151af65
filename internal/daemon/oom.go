package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime/cgroups"
)

// OOM events: docker announces an "oom" event when the kernel's OOM killer
// kills a process of a running container (the container may live on, if
// the victim was not its init), and records State.OOMKilled at exit.
//
// The exit path reads the cgroup's OOM kill counter before the cgroup is
// destroyed (oomKilled, stats.go). While the container runs, one goroutine
// per run waits on the kernel's notification, parked in the netpoller:
//
//	cgroup v1: an eventfd registered in cgroup.event_control for
//	           memory.oom_control; it also fires when the cgroup is removed
//	cgroup v2: inotify IN_MODIFY on memory.events (IN_IGNORED on removal)
//
// and on each wake-up compares the counter (v1 memory.oom_control
// oom_kill, v2 memory.events oom_kill) with what it announced. The count
// announced is shared with the exit path under c.mu, so a kill is
// announced once, by whichever sees it first.

// oomWatch is one run's watcher.
type oomWatch struct {
	announced uint64 // OOM kills already announced; guarded by c.mu
}

// oomWatches maps *Container to the *oomWatch of its current run.
var oomWatches sync.Map

// watchOOM starts the watcher for c's current run. It holds no reference
// that outlives the run: the cgroup's removal ends it, and so does the
// daemon's shutdown. Errors only mean no live event (the exit path still
// records OOMKilled).
func (d *Daemon) watchOOM(c *Container) {
	m, err := cgroups.Load(cgroupPath(c))
	if err != nil {
		return
	}
	d.watchOOMIn(c, m)
}

// watchOOMIn watches the cgroup m of c's run (a test seam: any Manager).
func (d *Daemon) watchOOMIn(c *Container, m cgroups.Manager) {
	f, cleanup, err := oomNotifier(m)
	if err != nil {
		d.log.Debug("oom notifier", "id", c.ID, "err", err)
		return
	}
	w := &oomWatch{}
	oomWatches.Store(c, w)
	stop := context.AfterFunc(d.closeCtx, func() { f.Close() })
	go func() {
		defer func() {
			stop()
			f.Close()
			cleanup()
			oomWatches.CompareAndDelete(c, w)
		}()
		buf := make([]byte, 4096)
		var seen uint64
		for woken := false; ; woken = true {
			// Kills before the registration count too: check first, then
			// wait. v1 notifies when the cgroup goes under OOM, just before
			// the kill is counted: after a wake-up, look again for a moment.
			var n uint64
			var err error
			for delay := 5 * time.Millisecond; ; delay *= 2 {
				if n, err = m.OOMKills(); err != nil {
					return // the cgroup is gone: the run is over
				}
				if n > seen || !woken || delay > time.Second {
					break
				}
				time.Sleep(delay)
			}
			seen = n
			c.mu.Lock()
			if cur, _ := oomWatches.Load(c); cur == w && n > w.announced && c.State.running() {
				w.announced = n
				d.containerEvent(c, events.ActionOOM, nil)
			}
			c.mu.Unlock()
			if _, err := f.Read(buf); err != nil {
				return
			}
		}
	}()
}

// oomAtExit reads the OOM kill count of c's run, which has just ended;
// the cgroup must still exist. It reports whether a process of the run was
// OOM-killed and whether the oom event is still owed (the live watcher has
// not announced every kill), and marks them announced. c.mu is held.
func (d *Daemon) oomAtExit(c *Container) (killed, announce bool) {
	m, err := cgroups.Load(cgroupPath(c))
	if err != nil {
		return false, false
	}
	n, err := m.OOMKills()
	if err != nil || n == 0 {
		return false, false
	}
	return true, oomOwed(c, n)
}

// oomOwed reports whether n kills need an event beyond those the live
// watcher announced, and marks them announced. c.mu is held.
func oomOwed(c *Container, n uint64) bool {
	v, ok := oomWatches.Load(c)
	if !ok {
		return n > 0
	}
	w := v.(*oomWatch)
	owed := n > w.announced
	w.announced = n
	return owed
}

// oomNotifier returns a pollable file that becomes readable when the
// cgroup's OOM state may have changed, and a cleanup for what else it
// holds open.
func oomNotifier(m cgroups.Manager) (*os.File, func(), error) {
	paths := m.Paths()
	if dir, ok := paths[""]; ok && len(paths) == 1 { // v2
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
		if err != nil {
			return nil, nil, fmt.Errorf("inotify: %w", err)
		}
		if _, err := unix.InotifyAddWatch(fd, filepath.Join(dir, "memory.events"), unix.IN_MODIFY); err != nil {
			unix.Close(fd)
			return nil, nil, fmt.Errorf("watch %s/memory.events: %w", dir, err)
		}
		return os.NewFile(uintptr(fd), "inotify"), func() {}, nil
	}
	dir, ok := paths["memory"]
	if !ok {
		return nil, nil, errors.New("no memory cgroup")
	}
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return nil, nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		ctl.Close()
		return nil, nil, fmt.Errorf("eventfd: %w", err)
	}
	ef := os.NewFile(uintptr(efd), "eventfd")
	reg := fmt.Sprintf("%d %d", efd, ctl.Fd())
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(reg), 0); err != nil {
		ef.Close()
		ctl.Close()
		return nil, nil, fmt.Errorf("register OOM notification: %w", err)
	}
	return ef, func() { ctl.Close() }, nil
}
