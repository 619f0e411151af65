package e2e

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An image whose /etc is a link (etc -> usr/etc): the etc files' mount
// points go in the init layer through the link, so a fresh container's
// writable layer stays empty (they showed in `diff`, and `commit` kept
// them as empty files).
func TestInitLayerEtcSymlink(t *testing.T) {
	dockerCLI(t)
	bbBin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs busybox-static (/bin/busybox)")
	}
	d := startDaemon(t, "--bridge", "none")

	tarPath := filepath.Join(t.TempDir(), "symetc.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, h := range []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/etc/motd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3},
		{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: "usr/etc"},
		{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox"},
		{Name: "bin/cat", Typeflag: tar.TypeSymlink, Linkname: "busybox"},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bbBin))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		switch h.Name {
		case "usr/etc/motd":
			_, err = tw.Write([]byte("hi\n"))
		case "bin/busybox":
			_, err = tw.Write(bbBin)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	d.must("docker", "import", tarPath, "symetc:1")

	out := d.must("docker", "run", "--name", "se", "--network", "none", "-h", "symhost", "symetc:1", "/bin/cat", "/etc/hostname", "/etc/motd")
	if out != "symhost\nhi\n" {
		t.Errorf("/etc/hostname and /etc/motd through the link: %q", out)
	}
	if out := d.must("docker", "diff", "se"); out != "" {
		t.Errorf("docker diff of a container that wrote nothing:\n%s", out)
	}
	d.must("docker", "commit", "se", "symetc:2")
	out = d.must("docker", "run", "--rm", "--network", "none", "symetc:2", "/bin/sh", "-c", "cat /etc/motd; test -L /etc && echo link")
	if strings.TrimSpace(out) != "hi\nlink" {
		t.Errorf("the committed image: %q", out)
	}
}
