package network

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NewNamespace creates a network namespace with loopback up and pins it at
// path (a bind mount of the namespace file), so that it outlives every
// process in it and the runtime can join it by path.
func NewNamespace(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	f.Close()

	errCh := make(chan error, 1)
	// unshare moves the calling thread into the new namespace, so it runs on
	// a locked thread that is moved back before it is unlocked. Leaving it
	// locked instead would let the runtime discard it — except when it is
	// the main thread, which Go cannot discard: that thread would stay in the
	// container's namespace, and with it /proc/self/ns/net and /proc/net.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errCh <- err
			return // thread discarded: nothing changed yet, but do not reuse it
		}
		defer orig.Close()
		errCh <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare net: %w", err)
			}
			self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
			if err := unix.Mount(self, path, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("pin netns at %s: %w", path, err)
			}
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return fmt.Errorf("netns loopback: %w", err)
			}
			if err := netlink.LinkSetUp(lo); err != nil {
				return fmt.Errorf("netns loopback up: %w", err)
			}
			return nil
		}()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	if err := <-errCh; err != nil {
		_ = RemoveNamespace(path)
		return err
	}
	return nil
}

// RemoveNamespace unpins and removes a namespace made by NewNamespace; a
// missing one is not an error.
func RemoveNamespace(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// InNamespace runs fn with the calling goroutine's thread in the namespace
// at path (for inspecting it).
func InNamespace(path string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		return err
	}
	defer func() { _ = netns.Set(orig) }()
	return fn()
}
