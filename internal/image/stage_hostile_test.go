package image

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/snapshot"
)

// TestRootHostileEntryMidStagedLayer: a layer above the base, staged in
// parallel with it, whose bad entry comes after thousands of files the
// writer pool has queued, fails the pull naming the entry and the layer;
// no working snapshot and no snapshot for the bad layer remain, nothing is
// written outside the store, and the image is not recorded.
func TestRootHostileEntryMidStagedLayer(t *testing.T) {
	needRoot(t)
	e := newEnvWith(t, overlayLayers(t))
	ctx := context.Background()
	base := layerOf(t, "gzip", map[string]string{"etc/os-release": "base"})
	var hdrs []tar.Header
	bodies := map[string]string{}
	for i := 0; i < 3000; i++ {
		name := fmt.Sprintf("usr/share/d%02d/f%04d", i%30, i)
		hdrs = append(hdrs, tar.Header{Name: name, Typeflag: tar.TypeReg})
		bodies[name] = strings.Repeat("z", i%3000)
	}
	escape := filepath.Join(filepath.Dir(e.root), "escape-mid")
	hdrs = append(hdrs,
		tar.Header{Name: "usr/share/l", Typeflag: tar.TypeSymlink, Linkname: filepath.Dir(escape)},
		tar.Header{Name: "usr/share/l/escape-mid", Typeflag: tar.TypeReg})
	bodies["usr/share/l/escape-mid"] = "x"
	for i := 0; i < 500; i++ {
		name := fmt.Sprintf("after/f%04d", i)
		hdrs = append(hdrs, tar.Header{Name: name, Typeflag: tar.TypeReg})
		bodies[name] = "late"
	}
	bad := rawTarLayer(t, hdrs, bodies)
	img := imageOf(t, true, "amd64", base, bad)
	e.push("hostile:mid", img)
	_, err := e.store.Pull(ctx, e.ref("hostile:mid"), PullOptions{})
	if err == nil || !strings.Contains(err.Error(), `"usr/share/l/escape-mid"`) {
		t.Fatalf("hostile layer: %v", err)
	}
	badDigest := digestOf(t, bad.Digest)
	if !strings.Contains(err.Error(), badDigest.String()) {
		t.Errorf("error does not name the layer %s: %v", badDigest, err)
	}
	sn := e.real.(*SnapshotLayers).Snapshotter
	sn.Walk(ctx, func(_ context.Context, i snapshot.Info) error {
		if i.Kind != snapshot.Committed || i.Parent != "" {
			t.Errorf("snapshot left after a rejected layer: %s (%v, parent %q)", i.Name, i.Kind, i.Parent)
		}
		return nil
	})
	if _, err := os.Lstat(escape); err == nil {
		t.Fatal("wrote outside the snapshot")
	}
	if _, err := e.store.Get(ctx, e.ref("hostile:mid")); err == nil {
		t.Error("image recorded after a rejected layer")
	}
}
