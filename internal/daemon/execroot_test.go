package daemon

import (
	"net"
	"os"
	"path/filepath"
	"testing"
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
