package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Containers start from a shared init layer holding the mount points the
// image lacks, so their writable layers stay empty until they write; the
// init layer goes with the image. And the exec root is a tmpfs the daemon
// mounted.
func TestInitLayerAndMemoryExecRoot(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t)

	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Join(d.root, "exec"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != 0x01021994 { // TMPFS_MAGIC
		t.Errorf("exec root is on filesystem type %#x, want tmpfs", st.Type)
	}

	snaps := filepath.Join(d.root, "data", "snapshots", "overlay", "snapshots")
	count := func() int {
		entries, _ := os.ReadDir(snaps)
		return len(entries)
	}
	d.must("docker", "pull", bb)
	layers := count()
	for _, n := range []string{"c1", "c2"} {
		d.must("docker", "run", "--name", n, bb, "sh", "-c", "test -d /proc/self && test -s /etc/hostname && grep -q 127.0.0.1 /etc/hosts")
	}
	if got := count(); got != layers+3 {
		t.Errorf("%d snapshots for the image and two containers, want %d (layers, one init layer, two writable)", got, layers+3)
	}
	for _, n := range []string{"c1", "c2"} {
		upper := strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", n))
		lower := strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.GraphDriver.Data.LowerDir}}", n))
		if entries, err := os.ReadDir(upper); err != nil || len(entries) != 0 {
			t.Errorf("%s: writable layer %q holds %v (%v), want nothing", n, upper, entries, err)
		}
		init := strings.Split(lower, ":")[0]
		for _, p := range []string{"proc", "sys", "dev", "etc"} {
			if fi, err := os.Lstat(filepath.Join(init, p)); err == nil && !fi.IsDir() {
				t.Errorf("init layer %s: %s is not a directory", init, p)
			}
		}
		if out := d.must("docker", "diff", n); out != "" {
			t.Errorf("docker diff %s of a container that wrote nothing:\n%s", n, out)
		}
		// /etc/hostname, hosts and resolv.conf come from the exec root,
		// not the data root.
		paths := strings.Fields(d.must("docker", "inspect", "-f", "{{.HostnamePath}} {{.HostsPath}} {{.ResolvConfPath}}", n))
		if len(paths) != 3 {
			t.Fatalf("%s: inspect etc paths %q", n, paths)
		}
		for _, p := range paths {
			if !strings.HasPrefix(p, filepath.Join(d.root, "exec")+"/") {
				t.Errorf("%s: %s is not in the exec root", n, p)
			} else if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: %v", n, err)
			}
		}
		id := strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.Id}}", n))
		for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
			if _, err := os.Stat(filepath.Join(d.root, "data", "containers", id, f)); err == nil {
				t.Errorf("%s: %s is in the data root", n, f)
			}
		}
	}
	// A write shows as the container's own change, not the init layer's.
	d.must("docker", "run", "--name", "c3", bb, "sh", "-c", "echo x > /etc/new")
	if out := d.must("docker", "diff", "c3"); out != "C /etc\nA /etc/new\n" {
		t.Errorf("docker diff c3:\n%s", out)
	}

	// The image in use keeps its layers, init layer included.
	if out, err := d.docker("rmi", bb); err == nil {
		t.Fatalf("rmi of an image containers use succeeded:\n%s", out)
	}
	d.must("docker", "rm", "c1", "c2", "c3")
	d.must("docker", "rmi", bb)
	if got := count(); got != 0 {
		t.Errorf("%d snapshots left after the image and its containers were removed", got)
	}

	// A daemon killed while filling an init layer leaves its mount point;
	// the next one sweeps it.
	d.kill()
	left := filepath.Join(d.root, "data", "snapshots", "init-12345")
	if err := os.Mkdir(left, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", left, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	d.start()
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("a crash's init layer mount point %s is still there (%v)", left, err)
		_ = syscall.Unmount(left, syscall.MNT_DETACH)
	}
}

// The daemon sets its own umask (022, as dockerd): started with umask 077,
// it still makes etc files and mount points a container's non-root user can
// read, and its socket still ends up 0660.
func TestDaemonUmask(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	old := syscall.Umask(0o077) // inherited by the daemon; no e2e test runs in parallel
	d := startDaemon(t)
	syscall.Umask(old)
	d.must("docker", "pull", bb)
	if out, err := d.docker("run", "--rm", "-u", "1000:1000", bb, "cat", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"); err != nil {
		t.Errorf("a non-root user cannot read the etc files: %v\n%s", err, out)
	}
	if fi, err := os.Stat(d.sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v (%v), want 0660", fi.Mode().Perm(), err)
	}
}
