package image

import (
	"archive/tar"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/snapshot"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: overlay whiteouts are character devices and mounting needs CAP_SYS_ADMIN")
	}
}

func overlayLayers(t *testing.T) func(db *bbolt.DB, root string) Layers {
	return func(db *bbolt.DB, root string) Layers {
		sn, err := snapshot.NewOverlay(filepath.Join(root, "snapshots"), db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sn.Close() })
		return &SnapshotLayers{Snapshotter: sn, Root: root}
	}
}

// view mounts a read-only view of chain and returns its path; the view
// goes away at the end of the test or when the returned func is called.
func view(t *testing.T, e *testEnv, img *Image) string {
	dir, _ := viewClose(t, e, img)
	return dir
}

func viewClose(t *testing.T, e *testEnv, img *Image) (string, func()) {
	t.Helper()
	sn := e.real.(*SnapshotLayers).Snapshotter
	key := "view-" + img.ID.Encoded()[:12] + "-" + time.Now().Format("150405.000000000")
	m, err := sn.View(context.Background(), key, img.TopLayer().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := snapshot.MountAll(m, dir); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	done := func() {
		once.Do(func() {
			snapshot.UnmountAll(dir)
			sn.Remove(context.Background(), key)
		})
	}
	t.Cleanup(done)
	return dir, done
}

func rawTarLayer(t *testing.T, hdrs []tar.Header, bodies map[string]string) v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		h.Size = int64(len(bodies[h.Name]))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(bodies[h.Name]))
	}
	tw.Close()
	return static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer)
}

func TestRootUnpackIntoOverlay(t *testing.T) {
	needRoot(t)
	e := newEnvWith(t, overlayLayers(t))
	ctx := context.Background()
	l1 := layerOf(t, "gzip", map[string]string{"etc/a": "A", "etc/b": "B", "dir/x": "X"})
	l2 := rawTarLayer(t, []tar.Header{
		{Name: "etc/.wh.b", Typeflag: tar.TypeReg},
		{Name: "etc/c", Typeflag: tar.TypeReg},
		{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "dir/.wh..wh..opq", Typeflag: tar.TypeReg},
		{Name: "dir/y", Typeflag: tar.TypeReg},
		{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "etc/a"},
	}, map[string]string{"etc/c": "C", "dir/y": "Y"})
	e.push("ovl:1", imageOf(t, true, "amd64", l1, l2))
	img, err := e.store.Pull(ctx, e.ref("ovl:1"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root, closeView := viewClose(t, e, img)
	for p, want := range map[string]string{"etc/a": "A", "etc/c": "C", "dir/y": "Y", "link": "A"} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	for _, gone := range []string{"etc/b", "dir/x"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s should be whited out: %v", gone, err)
		}
	}
	if img.Size != 5 {
		t.Errorf("size %d", img.Size)
	}
	closeView()
	// A second image on the same base shares its snapshot.
	e.push("ovl:2", imageOf(t, true, "amd64", l1, layerOf(t, "gzip", map[string]string{"other": "O"})))
	img2, err := e.store.Pull(ctx, e.ref("ovl:2"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sn := e.real.(*SnapshotLayers).Snapshotter
	if _, err := e.store.Delete(ctx, e.ref("ovl:1"), DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(ctx, img2.ChainIDs[0].String()); err != nil {
		t.Fatalf("shared base removed: %v", err)
	}
	if _, err := sn.Stat(ctx, img.ChainIDs[1].String()); err == nil {
		t.Fatal("ovl:1 top layer survived")
	}
	if _, err := e.store.Delete(ctx, e.ref("ovl:2"), DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	sn.Walk(ctx, func(_ context.Context, i snapshot.Info) error {
		if !strings.HasPrefix(i.Name, "view-") {
			n++
		}
		return nil
	})
	if n != 0 {
		t.Fatalf("%d snapshots left after removing every image", n)
	}
}

func TestRootBadLayerLeavesNoSnapshot(t *testing.T) {
	needRoot(t)
	e := newEnvWith(t, overlayLayers(t))
	bad := rawTarLayer(t, []tar.Header{{Name: "../escape", Typeflag: tar.TypeReg}}, map[string]string{"../escape": "x"})
	e.push("hostile:1", imageOf(t, true, "amd64", bad))
	_, err := e.store.Pull(context.Background(), e.ref("hostile:1"), PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "escape") {
		t.Fatalf("hostile layer: %v", err)
	}
	n := 0
	e.real.(*SnapshotLayers).Snapshotter.Walk(context.Background(), func(context.Context, snapshot.Info) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d snapshots left after a rejected layer", n)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(e.root), "escape")); err == nil {
		t.Fatal("wrote outside the snapshot")
	}
}

const localRegistry = "127.0.0.1:5000"

func needLocalRegistry(t *testing.T) {
	t.Helper()
	needRoot(t)
	c, err := net.DialTimeout("tcp", localRegistry, time.Second)
	if err != nil {
		t.Skipf("needs the docker-registry on %s (shared/peers/setup-peers.sh): %v", localRegistry, err)
	}
	c.Close()
}

func TestE2ELocalRegistry(t *testing.T) {
	needLocalRegistry(t)
	e := newEnvWith(t, overlayLayers(t))
	ctx := context.Background()
	for _, ref := range []string{"busybox:latest", "busybox:v2s2", "debian:bookworm"} {
		img, err := e.store.Pull(ctx, localRegistry+"/"+ref, PullOptions{})
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		root := view(t, e, img)
		check := "bin/busybox"
		if strings.HasPrefix(ref, "debian") {
			check = "etc/debian_version"
		}
		if fi, err := os.Stat(filepath.Join(root, check)); err != nil || fi.Size() == 0 {
			t.Fatalf("%s: %s: %v", ref, check, err)
		}
		if img.Size == 0 || !slices.Contains(img.RepoTags, localRegistry+"/"+ref) {
			t.Errorf("%s: size %d tags %v", ref, img.Size, img.RepoTags)
		}
	}
	// Same config (one image ID), two manifests (OCI and schema2): two repo digests.
	a, _ := e.store.Get(ctx, localRegistry+"/busybox:v2s2")
	if len(a.RepoDigests) != 2 || len(a.RepoTags) != 2 {
		t.Errorf("busybox OCI + schema2: tags %v digests %v", a.RepoTags, a.RepoDigests)
	}
}

// dockerd returns the Debian docker client if dockerd answers.
func dockerd(t *testing.T) string {
	t.Helper()
	const docker = "/usr/bin/docker"
	if _, err := os.Stat(docker); err != nil {
		t.Skip("needs dockerd and /usr/bin/docker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, docker, "info").Run(); err != nil {
		t.Skipf("needs a running dockerd: %v", err)
	}
	return docker
}

func TestE2EDockerSaveLoad(t *testing.T) {
	needLocalRegistry(t)
	docker := dockerd(t)
	ctx := context.Background()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, docker, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	ref := localRegistry + "/busybox:latest"
	run("pull", "-q", ref)
	dockerID := run("image", "inspect", "--format", "{{.Id}}", ref)
	archivePath := filepath.Join(t.TempDir(), "busybox.tar")
	run("save", "-o", archivePath, ref)

	e := newEnvWith(t, overlayLayers(t))
	f, err := os.Open(archivePath)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.store.Load(ctx, f, nil)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	img, err := e.store.Get(ctx, ref)
	if err != nil || img.ID.String() != dockerID || len(res.Names) != 1 {
		t.Fatalf("berth load of docker save: %v id %v want %s", res, err, dockerID)
	}
	if _, err := os.Stat(filepath.Join(view(t, e, img), "bin/busybox")); err != nil {
		t.Fatal(err)
	}

	// berth save → docker load, under a name dockerd does not have yet.
	const tag = "berth-save-test:e2e"
	if err := e.store.Tag(ctx, ref, tag); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "berth.tar")
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Save(ctx, []string{tag}, w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exec.Command(docker, "rmi", tag).Run()
	loaded := run("load", "-i", out)
	defer exec.Command(docker, "rmi", tag).Run()
	if !strings.Contains(loaded, "Loaded image: "+tag) {
		t.Fatalf("docker load said %q", loaded)
	}
	if id := run("image", "inspect", "--format", "{{.Id}}", tag); id != img.ID.String() {
		t.Fatalf("docker sees %s, berth saved %s", id, img.ID)
	}
}

func TestE2EPushReadBySkopeo(t *testing.T) {
	needLocalRegistry(t)
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("needs skopeo")
	}
	e := newEnvWith(t, overlayLayers(t))
	ctx := context.Background()
	img, err := e.store.Pull(ctx, localRegistry+"/busybox:v2s2", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dst := localRegistry + "/berth-e2e/busybox:pushed"
	if err := e.store.Tag(ctx, img.ID.String(), dst); err != nil {
		t.Fatal(err)
	}
	res, err := e.store.Push(ctx, dst, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, skopeo, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+dst).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != res.Digest.String() {
		t.Fatalf("skopeo sees %s, berth pushed %s", out, res.Digest)
	}
	dir := t.TempDir()
	if out, err := exec.CommandContext(ctx, skopeo, "copy", "-q", "--src-tls-verify=false", "docker://"+dst, "oci:"+dir+":x").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy of a berth push: %v\n%s", err, out)
	}
}

func TestRootCrashLeftoversCleanedAtOpen(t *testing.T) {
	needRoot(t)
	e := newEnvWith(t, overlayLayers(t))
	ctx := context.Background()
	e.push("keep:1", imageOf(t, true, "amd64", layerOf(t, "gzip", map[string]string{"k": "1"})))
	img, err := e.store.Pull(ctx, e.ref("keep:1"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sn := e.real.(*SnapshotLayers).Snapshotter
	// What a crash leaves: a half-applied extract snapshot, and a layer
	// committed whose image was never recorded (with a child extract).
	stray := "sha256:" + strings.Repeat("ab", 32)
	if _, err := sn.Prepare(ctx, "extract-dead-"+stray, "", nil); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, stray, "extract-dead-"+stray, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "extract-dead2-x", stray, nil); err != nil {
		t.Fatal(err)
	}
	e.store = e.open()
	var left []string
	sn.Walk(ctx, func(_ context.Context, i snapshot.Info) error { left = append(left, i.Name); return nil })
	if !slices.Equal(left, []string{img.TopLayer().String()}) {
		t.Fatalf("after reopen: %v", left)
	}
}

func TestRootDiskFullDuringPull(t *testing.T) {
	needRoot(t)
	e := newEnv(t)
	// The content store on a 256 KiB tmpfs; the layer is ~1 MiB compressed.
	small := filepath.Join(t.TempDir(), "small")
	os.MkdirAll(small, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", small).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", small).Run()
	s, err := New(context.Background(), Options{Root: small, DB: e.db, Layers: e.layers, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l := layerOf(t, "gzip", map[string]string{"big": noise(1 << 20)})
	e.push("full:1", imageOf(t, true, "amd64", l))
	_, err = s.Pull(context.Background(), e.ref("full:1"), PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), digestOf(t, l.Digest).String()) {
		t.Fatalf("want ENOSPC naming the layer, got %v", err)
	}
	if _, err := s.Get(context.Background(), e.ref("full:1")); err == nil {
		t.Fatal("image recorded after a failed pull")
	}
	if s.Content().Has(digestOf(t, l.Digest)) || e.layers.count() != 0 {
		t.Fatal("partial layer visible")
	}
	waitEmpty(t, filepath.Join(small, "ingest"))
}

func TestE2EMultiPlatformIndex(t *testing.T) {
	needLocalRegistry(t)
	amd := imageOf(t, true, "amd64", layerOf(t, "gzip", map[string]string{"arch": "amd64"}))
	arm := imageOf(t, true, "arm64", layerOf(t, "zstd", map[string]string{"arch": "arm64"}))
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
	ref, err := name.ParseReference(localRegistry + "/berth-e2e/multi:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, overlayLayers(t))
	for plat, want := range map[string]string{"": "amd64", "linux/arm64": "arm64", "linux/arm64/v8": "arm64"} {
		img, err := e.store.Pull(context.Background(), ref.String(), PullOptions{Platform: plat})
		if err != nil {
			t.Fatalf("%q: %v", plat, err)
		}
		b, err := os.ReadFile(filepath.Join(view(t, e, img), "arch"))
		if err != nil || string(b) != want {
			t.Fatalf("%q: got %q %v", plat, b, err)
		}
	}
}
