package daemon

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestHoldsState(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"containers", "netns", "runtime/.seccomp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("berth.pid")
	write("runtime/.seccomp/abc.bpf")
	l, err := net.Listen("unix", filepath.Join(dir, "berth.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if busy, err := holdsState(dir); err != nil || busy {
		t.Fatalf("a stopped daemon's leftovers: busy=%v err=%v, want false", busy, err)
	}
	for _, p := range []string{"containers/x", "runtime/x", "netns/x", "sock"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o700); err != nil {
			t.Fatal(err)
		}
		write(p)
		if busy, err := holdsState(dir); err != nil || !busy {
			t.Errorf("with %s: busy=%v err=%v, want true", p, busy, err)
		}
		os.Remove(filepath.Join(dir, p))
	}
	if _, err := holdsState(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing exec root: %v", err)
	}
}

// A daemon serving on the exec root's berth.sock (one with another data
// root, on an exec root it kept on disk) must not have a tmpfs mounted over
// its socket.
func TestHoldsStateLiveSocket(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "berth.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if busy, err := holdsState(dir); err != nil || !busy {
		t.Fatalf("with a daemon listening on berth.sock: busy=%v err=%v, want true", busy, err)
	}
}

// The tmpfs keeps the exec root's owner and mode: an administrator who
// opened it to a group (the socket's, to reach berth.sock in it) is not
// undone by the mount.
func TestMemoryExecRootKeepsOwnerAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs")
	}
	dir := filepath.Join(t.TempDir(), "exec")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 0, 4242); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	mounted, err := memoryExecRoot(dir)
	if err != nil || !mounted {
		t.Skipf("no tmpfs mounted (%v): the test directory is on tmpfs already?", err)
	}
	defer func() { _ = unix.Unmount(dir, unix.MNT_DETACH) }()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o750 || st.Uid != 0 || st.Gid != 4242 {
		t.Errorf("exec root tmpfs is %o %d:%d, want 750 0:4242 as the directory was", st.Mode&0o7777, st.Uid, st.Gid)
	}
}
