package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// keepEtcFiles restores the account files a "userns-remap": "default"
// daemon may change (it creates user berth and its subordinate ranges).
func keepEtcFiles(t *testing.T) {
	t.Helper()
	saved := map[string][]byte{}
	for _, f := range []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid"} {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			t.Cleanup(func() { _ = os.Remove(f) })
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		saved[f] = b
	}
	t.Cleanup(func() {
		for f, b := range saved {
			if now, err := os.ReadFile(f); err != nil || !bytes.Equal(now, b) {
				// Truncate and rewrite: keeps the file's owner and mode.
				if err := os.WriteFile(f, b, 0o644); err != nil {
					t.Errorf("restore %s: %v", f, err)
				}
			}
		}
	})
}

// subStart is the first id of owner's range in /etc/subuid or /etc/subgid.
func subStart(t *testing.T, path, owner string) uint32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		p := strings.Split(l, ":")
		if len(p) == 3 && p[0] == owner {
			if p[2] != "65536" {
				t.Errorf("%s: range of %s has %s ids, want 65536", path, owner, p[2])
			}
			n, err := strconv.ParseUint(p[1], 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(n)
		}
	}
	t.Fatalf("no range for %s in %s:\n%s", owner, path, b)
	return 0
}

func statIDs(t *testing.T, path string) (uid, gid uint32, ino uint64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid, st.Ino
}

// TestUsernsRemap runs a daemon with --userns-remap default: root in the
// container is the start of berth's subordinate range on the host, image
// files are shifted once per image and range, --userns host opts out.
func TestUsernsRemap(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	keepEtcFiles(t) // registered first: runs after the daemon's cleanup
	d := startDaemon(t, "--bridge", "none", "--userns-remap", "default")
	// The runtime reaches the rootfs from inside the user namespace, as the
	// remapped root: the test root (t.TempDir: 0700) must be traversable.
	for _, p := range []string{d.root, filepath.Dir(d.root)} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	uid := subStart(t, "/etc/subuid", "berth")
	gid := subStart(t, "/etc/subgid", "berth")
	if _, err := os.Stat("/etc/passwd"); err == nil {
		if b, _ := os.ReadFile("/etc/passwd"); !strings.Contains(string(b), "\nberth:") && !strings.HasPrefix(string(b), "berth:") {
			t.Errorf("user berth not created")
		}
	}
	// docker's layout: the data root of remapped containers is <data-root>/<uid>.<gid>.
	remapRoot := filepath.Join(d.root, "data", fmt.Sprintf("%d.%d", uid, gid))
	if st, err := os.Stat(remapRoot); err != nil {
		t.Fatalf("remapped data root: %v", err)
	} else if _, g, _ := statIDs(t, remapRoot); g != gid || st.Mode().Perm() != 0o710 {
		t.Errorf("remapped data root %s: gid %d mode %v, want %d 0710", remapRoot, g, st.Mode().Perm(), gid)
	}

	if out := d.must("docker", "info", "--format", "{{.SecurityOptions}} {{.DockerRootDir}}"); !strings.Contains(out, "name=userns") || !strings.Contains(out, remapRoot) {
		t.Errorf("docker info: %q", out)
	}

	d.must("docker", "pull", "-q", bb)
	id := strings.TrimSpace(d.must("docker", "run", "-d", "--network", "none", bb, "sh", "-c", "touch /created && mkdir /made && sleep 1000"))
	waitFor(t, func() bool { out, _ := d.docker("exec", id, "ls", "/made"); return out == "" })

	// Inside: root, mapped to the range; image files owned by root.
	if out := d.must("docker", "exec", id, "id"); !strings.HasPrefix(out, "uid=0(root) gid=0(root)") {
		t.Errorf("id in the container: %q", out)
	}
	if out := d.must("docker", "exec", id, "cat", "/proc/self/uid_map"); strings.Join(strings.Fields(out), " ") != fmt.Sprintf("0 %d 65536", uid) {
		t.Errorf("uid_map: %q", out)
	}
	if out := d.must("docker", "exec", id, "sh", "-c", "echo 10.1.2.3 extra >> /etc/hosts && echo edited"); strings.TrimSpace(out) != "edited" {
		t.Errorf("root of a remapped container edits /etc/hosts: %q", out)
	}
	if out := d.must("docker", "exec", id, "stat", "-c", "%u:%g", "/bin/busybox", "/etc/passwd", "/", "/created", "/etc/hosts", "/etc/resolv.conf"); strings.Join(strings.Fields(out), " ") != "0:0 0:0 0:0 0:0 0:0 0:0" {
		t.Errorf("owners inside the container: %q", out)
	}

	// Outside: the process runs as the range's first uid; files the
	// container made and the image's files are owned by it.
	pid := strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.State.Pid}}", id))
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
			want := uid
			if f[0] == "Gid:" {
				want = gid
			}
			for _, v := range f[1:] {
				if v != fmt.Sprint(want) {
					t.Errorf("host view of the container process: %q, want %d", l, want)
					break
				}
			}
		}
	}
	rootfs := filepath.Join(d.root, "exec", "containers", id, "rootfs")
	for _, p := range []string{"created", "made", "bin/busybox", "etc/passwd", "."} {
		if u, g, _ := statIDs(t, filepath.Join(rootfs, p)); u != uid || g != gid {
			t.Errorf("host owner of %s: %d:%d, want %d:%d", p, u, g, uid, gid)
		}
	}
	_, _, ino1 := statIDs(t, filepath.Join(rootfs, "bin/busybox"))

	// A second container reuses the shifted copy: same inode for the
	// image's file, one shift in the log.
	id2 := strings.TrimSpace(d.must("docker", "run", "-d", "--network", "none", bb, "sleep", "1000"))
	rootfs2 := filepath.Join(d.root, "exec", "containers", id2, "rootfs")
	if _, _, ino2 := statIDs(t, filepath.Join(rootfs2, "bin/busybox")); ino2 != ino1 {
		t.Errorf("second container's /bin/busybox is inode %d, first's %d: layers shifted again", ino2, ino1)
	}
	if _, err := os.Stat(filepath.Join(rootfs2, "created")); err == nil {
		t.Error("the first container's file shows in the second")
	}
	log, _ := os.ReadFile(d.logFile)
	if n := strings.Count(string(log), "userns: shifted image layers"); n != 1 {
		t.Errorf("%d shifts in the daemon log, want 1", n)
	}
	if !strings.Contains(string(log), "userns: reusing shifted layers") {
		t.Error("no reuse of the shifted layers in the daemon log")
	}

	// docker cp into a remapped container: owned by its root; docker
	// commit: the layer holds container ids, so the image runs anywhere.
	hostFile := filepath.Join(t.TempDir(), "copied")
	if err := os.WriteFile(hostFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.must("docker", "cp", hostFile, id+":/copied")
	if out := d.must("docker", "exec", id, "stat", "-c", "%u:%g", "/copied"); strings.TrimSpace(out) != "0:0" {
		t.Errorf("owner of a copied file inside: %q", out)
	}
	if u, g, _ := statIDs(t, filepath.Join(rootfs, "copied")); u != uid || g != gid {
		t.Errorf("host owner of a copied file: %d:%d", u, g)
	}
	d.must("docker", "commit", id, "berth-userns:c")
	if out := d.must("docker", "run", "--rm", "--network", "none", "--userns", "host", "berth-userns:c", "stat", "-c", "%u:%g", "/created", "/made", "/copied"); strings.Join(strings.Fields(out), " ") != "0:0 0:0 0:0" {
		t.Errorf("owners in the committed image: %q", out)
	}
	if out := d.must("docker", "run", "--rm", "--network", "none", "berth-userns:c", "stat", "-c", "%u:%g", "/created"); strings.TrimSpace(out) != "0:0" {
		t.Errorf("committed image under remapping: %q", out)
	}
	// docker cp out and export show container ids, as docker's.
	for _, args := range [][]string{{"cp", id + ":/created", "-"}, {"export", id}} {
		out := d.must("docker", args...)
		tr := tar.NewReader(strings.NewReader(out))
		found := false
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			if hdr.Name == "created" || hdr.Name == "bin/busybox" {
				found = true
				if hdr.Uid != 0 || hdr.Gid != 0 {
					t.Errorf("docker %s: %s owned by %d:%d in the tar", args[0], hdr.Name, hdr.Uid, hdr.Gid)
				}
			}
		}
		if !found {
			t.Errorf("docker %s: no created or bin/busybox in the tar", args[0])
		}
	}
	d.must("docker", "rm", "-f", id2)

	// A daemon restart keeps the container and its range, and allocates
	// no second range.
	d.kill()
	d.start("--bridge", "none", "--userns-remap", "default")
	if out := d.must("docker", "exec", id, "sh", "-c", "id -u; cat /created && echo ok"); strings.Join(strings.Fields(out), " ") != "0 ok" {
		t.Errorf("exec after a daemon restart: %q", out)
	}
	if b, _ := os.ReadFile("/etc/subuid"); strings.Count(string(b), "berth:") != 1 {
		t.Errorf("/etc/subuid after a restart:\n%s", b)
	}
	d.must("docker", "rm", "-f", id)

	// --userns host: the initial user namespace and the unshifted image.
	out := d.must("docker", "run", "--rm", "--network", "none", "--userns", "host", bb, "sh", "-c", "cat /proc/self/uid_map; stat -c %u /bin/busybox")
	if f := strings.Fields(out); strings.Join(f, " ") != "0 0 4294967295 0" {
		t.Errorf("--userns host: %q", out)
	}
	// --privileged needs --userns host, as docker says.
	out, err = d.docker("run", "--rm", "--network", "none", "--privileged", bb, "true")
	if err == nil || !strings.Contains(out, "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode") {
		t.Errorf("--privileged under userns-remap: %v %q", err, out)
	}
	d.must("docker", "run", "--rm", "--network", "none", "--privileged", "--userns", "host", bb, "true")

	// The shifted copy of a removed image goes when the next copy is made.
	for _, tag := range []string{"berth-userns:a", "berth-userns:b"} {
		d.must("docker", "run", "--name", "tmp", "--network", "none", "--userns", "host", bb, "touch", "/"+tag[len(tag)-1:])
		d.must("docker", "commit", "tmp", tag)
		d.must("docker", "rm", "tmp")
	}
	d.must("docker", "run", "--rm", "--network", "none", "berth-userns:a", "true")
	d.must("docker", "rmi", "berth-userns:a")
	d.must("docker", "run", "--rm", "--network", "none", "berth-userns:b", "stat", "-c", "%u", "/b")
	log, _ = os.ReadFile(d.logFile)
	if n := strings.Count(string(log), "userns: shifted image layers"); n != 4 {
		t.Errorf("%d shifts in the daemon log, want 4 (busybox, c, a, b)", n)
	}
	if n := strings.Count(string(log), "userns: removed shifted layers of a removed image"); n != 1 {
		t.Errorf("%d shifted copies swept, want 1 (berth-userns:a's)", n)
	}
}
