// Package image is berth's image service: a verified content store, an
// image index in the daemon's bbolt database, registry pull/push/search,
// docker-archive and OCI-layout save/load, and rootfs import. Layers are
// unpacked through the Layers seam (snapshots) in chain-ID order.
//
// How the daemon uses it:
//
//	st, _ := image.New(ctx, image.Options{Root: dataRoot+"/content", DB: db,
//		Layers: &image.SnapshotLayers{Snapshotter: sn, Root: dataRoot},
//		InsecureRegistries: cfg.Insecure, Mirrors: ..., AuthConfigPath: ...})
//	img, _ := st.Pull(ctx, "busybox", image.PullOptions{Progress: toJSONStream})
//	img, _ = st.Get(ctx, "busybox")             // name, ID, short ID or repo@digest
//	sn.Prepare(ctx, "ctr-"+id, img.TopLayer().String(), nil) // container rootfs
//	st.Delete(ctx, "busybox", image.DeleteOptions{InUse: containersUsing})
//
// Errors carry containerd/errdefs classes (NotFound, InvalidArgument,
// Conflict, Unauthenticated, Unavailable, DataLoss, NotImplemented) and name
// the reference and digest concerned.
package image

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"go.etcd.io/bbolt"
	"golang.org/x/sync/singleflight"

	"github.com/berth-dev/berth/internal/image/content"
)

// Layers is where image layers are unpacked: the daemon passes one backed
// by internal/snapshot (see SnapshotLayers); tests pass an in-memory one.
//
// Lifecycle: a committed layer is named by its chain ID (OCI image spec) and
// is immutable. Unpack prepares a working snapshot on top of parent (""
// for the base layer), applies the uncompressed tar stream, then calls
// verify; only if verify returns nil is the result committed under chainID,
// otherwise it is discarded and nothing named chainID appears. Unpack of a
// chainID that already exists returns (0, nil) after draining nothing.
// Remove deletes a committed layer that no other layer has as parent.
type Layers interface {
	Has(ctx context.Context, chainID digest.Digest) (bool, error)
	Unpack(ctx context.Context, chainID, parent digest.Digest, tar io.Reader, verify func() error) (size int64, err error)
	Remove(ctx context.Context, chainID digest.Digest) error
}

// layerCleaner is an optional Layers method New calls to remove leftovers
// of a crash (see SnapshotLayers.Cleanup).
type layerCleaner interface {
	Cleanup(ctx context.Context, keep func(chainID digest.Digest) bool) error
}

// Options configure a Store.
type Options struct {
	// Root is the content store directory (blobs/, ingest/).
	Root string
	// DB is the daemon's metadata database; the store owns its top-level
	// bucket "images".
	DB *bbolt.DB
	// Layers unpacks layers into snapshots. Nil means images are stored
	// but never unpacked (e.g. a registry-only tool).
	Layers Layers

	// InsecureRegistries may be reached over plain HTTP (host[:port] or
	// CIDR). Loopback is always insecure, as in docker.
	InsecureRegistries []string
	// Mirrors maps a registry host ("docker.io", "gcr.io") to mirror
	// endpoints ("http://127.0.0.1:5000", "mirror.example/prefix") tried in
	// order before the registry itself.
	Mirrors map[string][]string
	// RegistryMirrors are docker's daemon.json registry-mirrors (docker.io only).
	RegistryMirrors []string
	// AuthConfigPath is a docker config.json to read credentials from.
	AuthConfigPath string

	// Transport is the base HTTP transport (default: a clone of http.DefaultTransport).
	Transport http.RoundTripper
	// MaxConcurrentDownloads bounds parallel blob downloads per pull (default 3).
	MaxConcurrentDownloads int
	// Retries is how many times a transient failure is retried (default 5).
	Retries int
	// RetryBackoff is the first back-off delay, doubled each retry (default 250ms).
	RetryBackoff time.Duration
	// IdleTimeout cuts a blob download that received nothing for this long (default 30s).
	IdleTimeout time.Duration
	// SyncBlobs fsyncs each blob before it becomes visible.
	SyncBlobs bool
}

// Store is the image service. Methods are safe for concurrent use.
type Store struct {
	opts         Options
	cs           *content.Store
	db           *bbolt.DB
	layers       Layers
	creds        CredentialFunc
	insecureNets []*net.IPNet

	baseTransport http.RoundTripper
	clientsMu     sync.Mutex
	clients       map[clientKey]*client

	unpacks singleflight.Group
	// inflight counts, per chain ID, the pulls/loads about to record an
	// image on it: Delete must not remove such a layer under them.
	inflightMu sync.Mutex
	inflight   map[digest.Digest]int
	// lock serializes index mutations that read-modify-write across a
	// bbolt transaction and the snapshotter (delete vs. pull of one image).
	lock sync.Mutex
}

// New opens the store: creates the content directories, removes partial
// ingests from a previous run, and creates the "images" bucket.
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.DB == nil || opts.Root == "" {
		return nil, fmt.Errorf("image store: Root and DB are required: %w", errdefs.ErrInvalidArgument)
	}
	if opts.MaxConcurrentDownloads <= 0 {
		opts.MaxConcurrentDownloads = 3
	}
	if opts.Retries == 0 {
		opts.Retries = 5
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = 250 * time.Millisecond
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 30 * time.Second
	}
	cs, err := content.Open(opts.Root)
	if err != nil {
		return nil, err
	}
	cs.Sync = opts.SyncBlobs
	s := &Store{opts: opts, cs: cs, db: opts.DB, layers: opts.Layers, clients: map[clientKey]*client{}, inflight: map[digest.Digest]int{}}
	s.creds = ConfigFileCredentials(opts.AuthConfigPath)
	for _, r := range opts.InsecureRegistries {
		if strings.Contains(r, "/") {
			_, n, err := net.ParseCIDR(r)
			if err != nil {
				return nil, fmt.Errorf("insecure registry %q: %v: %w", r, err, errdefs.ErrInvalidArgument)
			}
			s.insecureNets = append(s.insecureNets, n)
		}
	}
	s.baseTransport = opts.Transport
	if s.baseTransport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		t.ResponseHeaderTimeout = 2 * time.Minute
		s.baseTransport = t
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error { return initBuckets(tx) }); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if c, ok := s.layers.(layerCleaner); ok {
		known := map[digest.Digest]bool{}
		_ = s.db.View(func(tx *bbolt.Tx) error {
			return bucket(tx, bktLayers).ForEachBucket(func(k []byte) error {
				known[digest.Digest(k)] = true
				return nil
			})
		})
		if err := c.Cleanup(ctx, func(d digest.Digest) bool { return known[d] }); err != nil {
			return nil, fmt.Errorf("image store: clean up snapshots: %w", err)
		}
	}
	s.removeOrphanLayers(ctx)
	return s, nil
}

// Content exposes the blob store (for the daemon's and tests' use).
func (s *Store) Content() *content.Store { return s.cs }

// pin marks chains as in use by an unfinished pull; the returned func unpins.
func (s *Store) pin(chains []digest.Digest) func() {
	s.inflightMu.Lock()
	for _, c := range chains {
		s.inflight[c]++
	}
	s.inflightMu.Unlock()
	return func() {
		s.inflightMu.Lock()
		for _, c := range chains {
			if s.inflight[c]--; s.inflight[c] <= 0 {
				delete(s.inflight, c)
			}
		}
		s.inflightMu.Unlock()
	}
}

func (s *Store) pinned(c digest.Digest) bool {
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	return s.inflight[c] > 0
}
