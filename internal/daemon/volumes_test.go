package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseBind(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want mountPoint
		err  string
	}{
		{in: "/src:/dst", want: mountPoint{Type: mount.TypeBind, Source: "/src", Destination: "/dst", RW: true, Propagation: "rprivate", CreateSource: true}},
		{in: "/src/:/dst/:ro,rslave", want: mountPoint{Type: mount.TypeBind, Source: "/src", Destination: "/dst", Mode: "ro,rslave", Propagation: "rslave", CreateSource: true}},
		{in: "vol:/data", want: mountPoint{Type: mount.TypeVolume, Name: "vol", Destination: "/data", RW: true, Mode: "z", CopyData: true}},
		{in: "vol:/data:ro", want: mountPoint{Type: mount.TypeVolume, Name: "vol", Destination: "/data", Mode: "ro", CopyData: true}},
		{in: "vol:/data:nocopy", want: mountPoint{Type: mount.TypeVolume, Name: "vol", Destination: "/data", RW: true, Mode: "nocopy"}},
		{in: "a/b:/data", err: `invalid volume specification: 'a/b:/data': "a/b" includes invalid characters for a local volume name`},
		{in: "vol:rel", err: "mount path must be absolute"},
		{in: "/src:/dst:bogus", err: "invalid mode: bogus"},
		{in: "vol:/data:rshared", err: "invalid mode: rshared"},
		{in: "/a:/b:/c:ro", err: "invalid volume specification"},
		{in: "/src:/", err: "destination can't be '/'"},
	} {
		got, err := parseBind(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errdefs.IsInvalidArgument(err) {
				t.Errorf("%s: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.mountPoint != tc.want {
			t.Errorf("%s: got %+v %v, want %+v", tc.in, got.mountPoint, err, tc.want)
		}
	}
}

func TestParseMountSpec(t *testing.T) {
	existing := t.TempDir()
	missing := filepath.Join(existing, "nope")
	for _, tc := range []struct {
		m    mount.Mount
		want mountPoint
		err  string
	}{
		{m: mount.Mount{Type: mount.TypeBind, Source: existing, Target: "/x", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: "rshared", NonRecursive: true}},
			want: mountPoint{Type: mount.TypeBind, Source: existing, Destination: "/x", Propagation: "rshared", NonRecursive: true}},
		{m: mount.Mount{Type: mount.TypeBind, Source: missing, Target: "/x"},
			err: `invalid mount config for type "bind": bind source path does not exist: ` + missing},
		{m: mount.Mount{Type: mount.TypeBind, Source: missing, Target: "/x", BindOptions: &mount.BindOptions{CreateMountpoint: true}},
			want: mountPoint{Type: mount.TypeBind, Source: missing, Destination: "/x", RW: true, Propagation: "rprivate", CreateSource: true}},
		{m: mount.Mount{Type: mount.TypeBind, Target: "/x"}, err: `invalid mount config for type "bind": field Source must not be empty`},
		{m: mount.Mount{Type: mount.TypeBind, Source: existing}, err: "field Target must not be empty"},
		{m: mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/v", VolumeOptions: &mount.VolumeOptions{NoCopy: true, Subpath: "sub/dir"}},
			want: mountPoint{Type: mount.TypeVolume, Name: "v1", Destination: "/v", RW: true, Mode: "z", Subpath: "sub/dir"}},
		{m: mount.Mount{Type: mount.TypeVolume, Target: "/v"},
			want: mountPoint{Type: mount.TypeVolume, Destination: "/v", RW: true, Mode: "z", CopyData: true, Anonymous: true}},
		{m: mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/v", VolumeOptions: &mount.VolumeOptions{Subpath: "../out"}}, err: "subpath must be a relative path"},
		{m: mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/v", BindOptions: &mount.BindOptions{}}, err: "field BindOptions must not be specified"},
		{m: mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1770}},
			want: mountPoint{Type: mount.TypeTmpfs, Destination: "/t", RW: true, TmpfsSize: 1 << 20, TmpfsMode: 0o1770}},
		{m: mount.Mount{Type: mount.TypeTmpfs, Source: "x", Target: "/t"}, err: `invalid mount config for type "tmpfs": field Source must not be specified`},
		{m: mount.Mount{Type: "weird", Target: "/t"}, err: `mount type unknown`},
	} {
		got, err := parseMountSpec(&tc.m)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: err %v, want %q", tc.m, err, tc.err)
			}
			continue
		}
		if err != nil || got.mountPoint != tc.want {
			t.Errorf("%+v: got %+v %v, want %+v", tc.m, got.mountPoint, err, tc.want)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatal("parsing created a bind source")
	}
}

func TestParseMountsOrder(t *testing.T) {
	d := &Daemon{ctrs: containers{byID: map[string]*Container{}, byName: map[string]string{}}, vols: &volumeManager{byCtr: map[string][]mountPoint{}}}
	cfg := &container.Config{Volumes: map[string]struct{}{"/data": {}, "/anon": {}}}
	img := ocispec.ImageConfig{Volumes: map[string]struct{}{"/img": {}, "/run": {}, "/covered": {}}}
	hc := &container.HostConfig{
		Binds:  []string{"named:/data", "/h:/covered"},
		Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Target: "/t"}},
		Tmpfs:  map[string]string{"/run": "size=1m"},
	}
	pms, err := d.parseMounts(cfg, hc, img)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]mountPoint{}
	for _, pm := range pms {
		got[pm.Destination] = pm.mountPoint
	}
	if len(got) != 6 || got["/data"].Name != "named" || got["/covered"].Type != mount.TypeBind ||
		!got["/anon"].Anonymous || !got["/img"].Anonymous || got["/run"].Type != mount.TypeTmpfs || !got["/run"].Hidden ||
		got["/t"].Type != mount.TypeTmpfs || got["/t"].Hidden {
		t.Fatalf("mounts: %+v", got)
	}
	hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: "xx", Target: "/data"})
	if _, err := d.parseMounts(cfg, hc, img); err == nil || !strings.Contains(err.Error(), "Duplicate mount point: /data") {
		t.Fatalf("duplicate: %v", err)
	}
	hc.Mounts = nil
	hc.VolumesFrom = []string{"nosuch"}
	if _, err := d.parseMounts(cfg, hc, img); !errdefs.IsNotFound(err) {
		t.Fatalf("volumes-from a missing container: %v", err)
	}
}

func TestGoFileMode(t *testing.T) {
	if m := goFileMode(0o1770); m != os.ModeSticky|0o770 {
		t.Fatalf("1770 → %v", m)
	}
	if m := goFileMode(os.ModeSetgid | 0o755); m != os.ModeSetgid|0o755 {
		t.Fatalf("Go flags kept: %v", m)
	}
}
