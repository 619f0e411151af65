package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"go.etcd.io/bbolt"
)

// memLayers is the test implementation of Layers: each committed layer is
// the merged file map of its parent plus its own tar (no whiteouts).
type memLayers struct {
	mu      sync.Mutex
	layers  map[digest.Digest]map[string]string
	parents map[digest.Digest]digest.Digest
	unpacks map[digest.Digest]int
	staged  int // layers unpacked before their parent was committed
	// pinned layers refuse removal, as a snapshot with a container child does.
	pinned map[digest.Digest]bool
}

func newMemLayers() *memLayers {
	return &memLayers{layers: map[digest.Digest]map[string]string{}, parents: map[digest.Digest]digest.Digest{}, unpacks: map[digest.Digest]int{}}
}

func (m *memLayers) Has(ctx context.Context, c digest.Digest) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.layers[c]
	return ok, nil
}

func (m *memLayers) Unpack(ctx context.Context, chain, parent digest.Digest, r io.Reader, verify func() error) (int64, error) {
	m.mu.Lock()
	files := map[string]string{}
	if parent != "" {
		p, ok := m.layers[parent]
		if !ok {
			m.mu.Unlock()
			return 0, fmt.Errorf("parent %s: %w", parent, errdefs.ErrNotFound)
		}
		for k, v := range p {
			files[k] = v
		}
	}
	m.mu.Unlock()
	tr := tar.NewReader(r)
	var size int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		if h.Typeflag == tar.TypeLink {
			v, ok := files[strings.TrimPrefix(h.Linkname, "./")]
			if !ok {
				return 0, fmt.Errorf("hard link target %s: %w", h.Linkname, errdefs.ErrNotFound)
			}
			files[strings.TrimPrefix(h.Name, "./")] = v
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return 0, err
		}
		files[strings.TrimPrefix(h.Name, "./")] = string(b)
		size += int64(len(b))
	}
	if err := verify(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.layers[chain] = files
	m.parents[chain] = parent
	m.unpacks[chain]++
	return size, nil
}

// Stage implements layerStager: the layer's own files, merged with its
// parent's at commit. A hard link to a name the layer lacks needs the parent.
func (m *memLayers) Stage(ctx context.Context, chain digest.Digest, r io.Reader, verify func() error) (*stagedLayer, error) {
	own := map[string]string{}
	tr := tar.NewReader(r)
	var size int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag == tar.TypeLink {
			v, ok := own[strings.TrimPrefix(h.Linkname, "./")]
			if !ok {
				return nil, errNeedsParent
			}
			own[name] = v
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		own[name] = string(b)
		size += int64(len(b))
	}
	if err := verify(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.staged++
	m.mu.Unlock()
	return &stagedLayer{size: size, discard: func() {}, commit: func(ctx context.Context, parent digest.Digest) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		files := map[string]string{}
		if parent != "" {
			p, ok := m.layers[parent]
			if !ok {
				return fmt.Errorf("parent %s: %w", parent, errdefs.ErrNotFound)
			}
			for k, v := range p {
				files[k] = v
			}
		}
		for k, v := range own {
			files[k] = v
		}
		m.layers[chain] = files
		m.parents[chain] = parent
		m.unpacks[chain]++
		return nil
	}}, nil
}

func (m *memLayers) Remove(ctx context.Context, c digest.Digest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.layers[c]; !ok {
		return errdefs.ErrNotFound
	}
	if m.pinned[c] {
		return fmt.Errorf("layer %s is a parent: %w", c, errdefs.ErrFailedPrecondition)
	}
	for _, p := range m.parents {
		if p == c {
			return fmt.Errorf("layer %s has children: %w", c, errdefs.ErrFailedPrecondition)
		}
	}
	delete(m.layers, c)
	delete(m.parents, c)
	return nil
}

func (m *memLayers) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.layers)
}

// testEnv is an in-process registry plus a store pulling from it.
type testEnv struct {
	t      *testing.T
	srv    *httptest.Server
	host   string
	store  *Store
	layers *memLayers
	real   Layers
	db     *bbolt.DB
	root   string
	// blobGets counts GET /v2/.../blobs/<digest> by digest.
	blobGets sync.Map
	// fault, when set, may handle a request instead of the registry.
	fault atomic.Pointer[func(w http.ResponseWriter, r *http.Request, next http.Handler) bool]
}

func newEnv(t *testing.T) *testEnv { return newEnvWith(t, nil) }

// newEnvWith uses layers (nil: an in-memory memLayers) for unpacking.
func newEnvWith(t *testing.T, layers func(db *bbolt.DB, root string) Layers) *testEnv {
	t.Helper()
	e := &testEnv{t: t}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i := strings.Index(r.URL.Path, "/blobs/sha256:"); i >= 0 && r.Method == http.MethodGet {
			d := r.URL.Path[i+len("/blobs/"):]
			v, _ := e.blobGets.LoadOrStore(d, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}
		if f := e.fault.Load(); f != nil && (*f)(w, r, reg) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	e.host = strings.TrimPrefix(e.srv.URL, "http://")
	e.root = t.TempDir()
	db, err := bbolt.Open(filepath.Join(e.root, "meta.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	e.layers = newMemLayers()
	e.real = nil
	if layers != nil {
		e.real = layers(db, e.root)
	}
	e.store = e.open()
	return e
}

func (e *testEnv) open() *Store {
	e.t.Helper()
	var l Layers = e.layers
	if e.real != nil {
		l = e.real
	}
	s, err := New(context.Background(), Options{
		Root: filepath.Join(e.root, "content"), DB: e.db, Layers: l,
		RetryBackoff: 10 * time.Millisecond, IdleTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *testEnv) gets(d digest.Digest) int64 {
	v, ok := e.blobGets.Load(d.String())
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func (e *testEnv) setFault(f func(w http.ResponseWriter, r *http.Request, next http.Handler) bool) {
	if f == nil {
		e.fault.Store(nil)
		return
	}
	e.fault.Store(&f)
}

func (e *testEnv) ref(repoTag string) string { return e.host + "/" + repoTag }

func (e *testEnv) push(repoTag string, img v1.Image) {
	e.t.Helper()
	ref, err := name.ParseReference(e.ref(repoTag))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) pushIndex(repoTag string, idx v1.ImageIndex) {
	e.t.Helper()
	ref, err := name.ParseReference(e.ref(repoTag))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		e.t.Fatal(err)
	}
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := tw.WriteHeader(&tar.Header{Name: k, Mode: 0o644, Size: int64(len(files[k])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[k]))
	}
	tw.Close()
	return buf.Bytes()
}

// layerOf builds a layer compressed with comp: "gzip", "zstd" or "none".
func layerOf(t *testing.T, comp string, files map[string]string) v1.Layer {
	t.Helper()
	raw := tarOf(t, files)
	switch comp {
	case "none":
		return static.NewLayer(raw, types.OCIUncompressedLayer)
	case "zstd":
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
			tarball.WithCompression("zstd"), tarball.WithMediaType(types.OCILayerZStd), tarball.WithCompressedCaching)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }, tarball.WithCompressedCaching)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf builds an image; oci selects OCI media types, else docker schema2.
func imageOf(t *testing.T, oci bool, arch string, layers ...v1.Layer) v1.Image {
	t.Helper()
	base := empty.Image
	if oci {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	cf.Config.Cmd = []string{"/bin/sh"}
	cf.Config.Labels = map[string]string{"arch": arch}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, f func() (v1.Hash, error)) digest.Digest {
	t.Helper()
	h, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return digest.Digest(h.String())
}

// files returns the merged file map of an image's top layer.
func (e *testEnv) files(img *Image) map[string]string {
	e.layers.mu.Lock()
	defer e.layers.mu.Unlock()
	return e.layers.layers[img.TopLayer()]
}
