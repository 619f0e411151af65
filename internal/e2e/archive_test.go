package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for n, c := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(c))
	}
	_ = tw.Close()
	return b.Bytes()
}

func tarNames(t *testing.T, b []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("bad tar: %v", err)
		}
		c, _ := io.ReadAll(tr)
		out[h.Name] = string(c)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDockerCpDiffExportCommit(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t, "--bridge", "none") // other daemons may own berth0
	d.must("docker", "pull", bb)
	host := t.TempDir()

	d.must("docker", "run", "-d", "--network", "none", "--name", "c1", bb, "sh", "-c",
		"if [ ! -e /ready ]; then mkdir -p /data/sub; echo hello > /data/sub/f; ln -s /data/sub /data/link; rm /etc/group; echo extra >> /etc/passwd; rm -rf /home; mkdir /home; touch /home/n; touch /ready; fi; exec sleep 1000")
	waitFor(t, func() bool { _, err := d.docker("exec", "c1", "test", "-e", "/ready"); return err == nil })

	// Out: a file, a directory, a directory's content, a tar on stdout.
	d.must("docker", "cp", "c1:/data/sub/f", filepath.Join(host, "f"))
	if got := readFile(t, filepath.Join(host, "f")); got != "hello\n" {
		t.Fatalf("cp out file: %q", got)
	}
	d.must("docker", "cp", "c1:/data/sub", filepath.Join(host, "out"))
	if got := readFile(t, filepath.Join(host, "out", "f")); got != "hello\n" {
		t.Fatalf("cp out dir: %q", got)
	}
	if err := os.Mkdir(filepath.Join(host, "out2"), 0o755); err != nil {
		t.Fatal(err)
	}
	d.must("docker", "cp", "c1:/data/sub/.", filepath.Join(host, "out2"))
	if got := readFile(t, filepath.Join(host, "out2", "f")); got != "hello\n" {
		t.Fatalf("cp out dir/.: %q", got)
	}
	names := tarNames(t, []byte(d.must("docker", "cp", "c1:/data", "-")))
	if names["data/sub/f"] != "hello\n" {
		t.Fatalf("cp out to -: %v", names)
	}
	// A symlink: kept without -L, followed with -L.
	d.must("docker", "cp", "c1:/data/link", filepath.Join(host, "link"))
	if tgt, err := os.Readlink(filepath.Join(host, "link")); err != nil || tgt != "/data/sub" {
		t.Fatalf("cp out symlink: %q %v", tgt, err)
	}
	d.must("docker", "cp", "-L", "c1:/data/link", filepath.Join(host, "linkL"))
	if got := readFile(t, filepath.Join(host, "linkL", "f")); got != "hello\n" {
		t.Fatalf("cp -L: %q", got)
	}

	// In: a file, a directory, a tar from stdin, owners with and without -a.
	if err := os.WriteFile(filepath.Join(host, "in.txt"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(host, "in.txt"), 1234, 1234); err != nil {
		t.Fatal(err)
	}
	d.must("docker", "cp", filepath.Join(host, "in.txt"), "c1:/data/in.txt")
	if out := d.must("docker", "exec", "c1", "cat", "/data/in.txt"); out != "from host\n" {
		t.Fatalf("cp in file: %q", out)
	}
	if out := d.must("docker", "exec", "c1", "stat", "-c", "%u:%g", "/data/in.txt"); strings.TrimSpace(out) != "0:0" {
		t.Fatalf("cp in without -a: owner %q", out)
	}
	d.must("docker", "cp", "-a", filepath.Join(host, "in.txt"), "c1:/data/in-a.txt")
	if out := d.must("docker", "exec", "c1", "stat", "-c", "%u:%g", "/data/in-a.txt"); strings.TrimSpace(out) != "1234:1234" {
		t.Fatalf("cp in with -a: owner %q", out)
	}
	if err := os.MkdirAll(filepath.Join(host, "indir", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "indir", "deep", "g"), []byte("g\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.must("docker", "cp", filepath.Join(host, "indir"), "c1:/data/")
	if out := d.must("docker", "exec", "c1", "cat", "/data/indir/deep/g"); out != "g\n" {
		t.Fatalf("cp in dir: %q", out)
	}
	if out, err := d.run("docker", tarOf(t, map[string]string{"piped.txt": "piped\n"}), "cp", "-", "c1:/data"); err != nil {
		t.Fatalf("cp - in: %v\n%s", err, out)
	}
	if out := d.must("docker", "exec", "c1", "cat", "/data/piped.txt"); out != "piped\n" {
		t.Fatalf("cp - in: %q", out)
	}

	// Bad input.
	out, err := d.docker("cp", "c1:/nonexistent", filepath.Join(host, "x"))
	if err == nil || !strings.Contains(out, "Could not find the file /nonexistent in container c1") {
		t.Fatalf("cp of a missing path: %v\n%s", err, out)
	}
	if out, err := d.docker("cp", filepath.Join(host, "indir"), "c1:/data/in.txt"); err == nil {
		t.Fatalf("cp of a directory onto a file succeeded:\n%s", out)
	}
	if out, err := d.run("docker", tarOf(t, map[string]string{"x": "x"}), "cp", "-", "c1:/data/in.txt"); err == nil {
		t.Fatalf("cp - into a file succeeded:\n%s", out)
	}
	if out, err := d.docker("cp", filepath.Join(host, "in.txt"), "c1:/data/in.txt/"); err == nil {
		t.Fatalf("cp into a file named as a directory succeeded:\n%s", out)
	}
	if out, err := d.docker("cp", "c1:/data/in.txt/", "-"); err == nil || !strings.Contains(out, "Could not find the file /data/in.txt/ in container c1") {
		t.Fatalf("cp out of a file named as a directory: %v\n%s", err, out)
	}
	if out, err := d.docker("cp", filepath.Join(host, "in.txt"), "c1:/nonexistent/dir/x"); err == nil {
		t.Fatalf("cp into a missing directory succeeded:\n%s", out)
	}

	// diff: the writable layer against the image.
	diff := d.must("docker", "diff", "c1")
	for _, want := range []string{"A /data\n", "A /data/sub/f\n", "A /data/in.txt\n", "D /etc/group\n", "C /etc\n", "C /etc/passwd\n"} {
		if !strings.Contains(diff, want) {
			t.Errorf("docker diff lacks %q:\n%s", want, diff)
		}
	}
	for _, want := range []string{"C /home\n", "A /home/n\n"} { // an opaque directory
		if !strings.Contains(diff, want) {
			t.Errorf("docker diff lacks %q:\n%s", want, diff)
		}
	}
	if strings.Contains(diff, "/bin/busybox") || strings.Contains(diff, "/etc/hostname") {
		t.Errorf("docker diff lists an unchanged file:\n%s", diff)
	}

	// export: the whole root filesystem.
	exp := filepath.Join(host, "exp.tar")
	d.must("docker", "export", "-o", exp, "c1")
	lst, err := exec.Command("tar", "tf", exp).CombinedOutput()
	if err != nil {
		t.Fatalf("tar t: %v\n%s", err, lst)
	}
	for _, want := range []string{"bin/busybox", "data/sub/f", "etc/passwd"} {
		if !strings.Contains(string(lst), want+"\n") {
			t.Errorf("export lacks %s", want)
		}
	}
	if strings.Contains(string(lst), "etc/group\n") {
		t.Errorf("export holds a deleted file")
	}

	// commit a running container (paused meanwhile), then run the image.
	d.must("docker", "commit", "-m", "my message", "-a", "me <me@x>", "--change", "ENV FOO=bar", "--change", `CMD ["cat", "/data/sub/f"]`, "c1", "committed:v1")
	if out := d.must("docker", "inspect", "-f", "{{.State.Status}}", "c1"); strings.TrimSpace(out) != "running" {
		t.Fatalf("after commit the container is %q", out)
	}
	if out := d.must("docker", "run", "--rm", "--network", "none", "committed:v1"); out != "hello\n" {
		t.Fatalf("run of the committed image: %q", out)
	}
	if out := d.must("docker", "run", "--rm", "--network", "none", "committed:v1", "sh", "-c", `echo $FOO; test -e /etc/group || echo nogroup; tail -1 /etc/passwd; ls /home`); out != "bar\nnogroup\nextra\nn\n" {
		t.Fatalf("committed image: %q", out)
	}
	if out := d.must("docker", "inspect", "-f", "{{.Comment}}", "committed:v1"); strings.TrimSpace(out) != "my message" {
		t.Fatalf("inspect Comment %q", out)
	}
	if out := d.must("docker", "inspect", "-f", "{{.Author}}", "committed:v1"); strings.TrimSpace(out) != "me <me@x>" {
		t.Fatalf("committed image author: %q", out)
	}
	if out := d.must("docker", "history", "--format", "{{.Comment}}", "committed:v1"); !strings.HasPrefix(out, "my message\n") {
		t.Fatalf("committed image history comments: %q", out)
	}

	// A stopped container: cp both ways and commit without pausing.
	d.must("docker", "stop", "-t", "0", "c1")
	if names := tarNames(t, []byte(d.must("docker", "cp", "c1:/data/sub/f", "-"))); names["f"] != "hello\n" {
		t.Fatalf("cp out of a stopped container: %v", names)
	}
	if out, err := d.run("docker", tarOf(t, map[string]string{"late.txt": "late\n"}), "cp", "-", "c1:/data"); err != nil {
		t.Fatalf("cp in to a stopped container: %v\n%s", err, out)
	}
	d.must("docker", "commit", "--pause=false", "c1", "committed:v2")
	if out := d.must("docker", "run", "--rm", "--network", "none", "committed:v2", "cat", "/data/late.txt"); out != "late\n" {
		t.Fatalf("run of the second commit: %q", out)
	}
	d.must("docker", "start", "c1")
	if out := d.must("docker", "exec", "c1", "cat", "/data/late.txt"); out != "late\n" {
		t.Fatalf("after restart: %q", out)
	}
	mi := readFile(t, "/proc/self/mountinfo")
	if strings.Contains(mi, filepath.Join(d.root, "data", "tmp")) {
		t.Fatalf("a temporary rootfs mount was left:\n%s", mi)
	}
}

// TestDockerCpSymlinkSwap is the CVE-2018-15664 regression: the container
// keeps swapping a directory with a symlink to a host directory while files
// are copied out of and into it; no host file may be read or written.
func TestDockerCpSymlinkSwap(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t, "--bridge", "none") // other daemons may own berth0
	d.must("docker", "pull", bb)
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "secret"), []byte("HOST-SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The symlink points at the host directory's path: dangling inside
	// the container, the host directory if a path is resolved on the host.
	script := `mkdir -p /w/d && echo inside > /w/d/secret && touch /ready
while :; do mv /w/d /w/real; ln -s ` + hostDir + ` /w/d; rm /w/d; mv /w/real /w/d; done`
	d.must("docker", "run", "-d", "--network", "none", "--name", "swap", bb, "sh", "-c", script)
	waitFor(t, func() bool { _, err := d.docker("exec", "swap", "test", "-e", "/ready"); return err == nil })

	in := tarOf(t, map[string]string{"planted": "planted\n"})
	okOut, okIn := 0, 0
	for i := 0; i < 40; i++ {
		if out, err := d.docker("cp", "swap:/w/d/secret", "-"); err == nil {
			if strings.Contains(out, "HOST-SECRET") {
				t.Fatalf("copied a host file out of the container (iteration %d)", i)
			}
			okOut++
		}
		if out, _ := d.docker("cp", "swap:/w", "-"); strings.Contains(out, "HOST-SECRET") {
			t.Fatalf("copied a host file out of the container with its directory (iteration %d)", i)
		}
		if _, err := d.run("docker", in, "cp", "-", "swap:/w/d"); err == nil {
			okIn++
		}
		if _, err := os.Stat(filepath.Join(hostDir, "planted")); err == nil {
			t.Fatalf("cp into the container wrote a host file (iteration %d)", i)
		}
	}
	// commit without pausing reads the writable layer while it changes.
	for i := 0; i < 3; i++ {
		d.must("docker", "commit", "--pause=false", "swap", "swapped:latest")
		out, _ := d.docker("run", "--rm", "--network", "none", "swapped:latest", "sh", "-c", "cat /w/*/secret")
		if strings.Contains(out, "HOST-SECRET") {
			t.Fatalf("commit put a host file into the image (iteration %d)", i)
		}
	}
	if b := readFile(t, filepath.Join(hostDir, "secret")); b != "HOST-SECRET\n" {
		t.Fatalf("host file changed: %q", b)
	}
	t.Logf("copies that found the directory: %d out, %d in (of 40 each)", okOut, okIn)
}

// TestDockerDiffCommitNative covers the copying snapshotter, whose
// writable layer is a full copy diffed against a view of the image.
func TestDockerDiffCommitNative(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t, "--bridge", "none", "--storage-driver", "native")
	d.must("docker", "pull", bb)
	d.must("docker", "run", "--network", "none", "--name", "n1", bb, "sh", "-c", "mkdir /data; echo hello > /data/f; rm /etc/group; echo extra >> /etc/passwd")
	diff := d.must("docker", "diff", "n1")
	for _, want := range []string{"A /data\n", "A /data/f\n", "D /etc/group\n", "C /etc\n", "C /etc/passwd\n"} {
		if !strings.Contains(diff, want) {
			t.Errorf("docker diff lacks %q:\n%s", want, diff)
		}
	}
	if strings.Contains(diff, "/bin/busybox") {
		t.Errorf("docker diff lists an unchanged file:\n%s", diff)
	}
	d.must("docker", "commit", "n1", "native:v1")
	if out := d.must("docker", "run", "--rm", "--network", "none", "native:v1", "sh", "-c", "cat /data/f; test -e /etc/group || echo nogroup"); out != "hello\nnogroup\n" {
		t.Fatalf("run of the committed image: %q", out)
	}
	if names := tarNames(t, []byte(d.must("docker", "cp", "n1:/data", "-"))); names["data/f"] != "hello\n" {
		t.Fatalf("cp out of a stopped native container: %v", names)
	}
}
