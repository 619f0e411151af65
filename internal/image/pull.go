package image

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/image/content"
)

// ProgressEvent is one line of docker's JSON progress stream. ID is the
// short layer digest (12 hex) for layer events, the tag for "Pulling from",
// and "" for image-level messages.
type ProgressEvent struct {
	ID      string
	Status  string
	Current int64
	Total   int64
}

// Layer statuses, as docker prints them.
const (
	StatusPullingFsLayer   = "Pulling fs layer"
	StatusWaiting          = "Waiting"
	StatusDownloading      = "Downloading"
	StatusVerifying        = "Verifying Checksum"
	StatusDownloadComplete = "Download complete"
	StatusExtracting       = "Extracting"
	StatusPullComplete     = "Pull complete"
	StatusAlreadyExists    = "Already exists"
)

// PullOptions configure Pull.
type PullOptions struct {
	// Platform is os/arch[/variant]; "" means linux on the host architecture.
	Platform string
	// AllTags pulls every tag of the repository (docker pull -a).
	AllTags bool
	// Auth overrides the store's credentials (config.json) for this pull.
	Auth CredentialFunc
	// Progress receives events; calls are serialized.
	Progress func(ProgressEvent)
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

type progressSink struct {
	mu     sync.Mutex
	fn     func(ProgressEvent)
	closed bool
}

func (p *progressSink) emit(ev ProgressEvent) {
	if p == nil || p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.fn(ev)
	}
}

// close stops delivery: downloads shared with other pulls may outlive this one.
func (p *progressSink) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}

// Pull fetches ref from its registry (or a mirror), unpacks it and records
// it under its name and repo digest.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	named, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	plat, err := ParsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	ps := &progressSink{fn: opts.Progress}
	defer ps.close()
	if !opts.AllTags {
		img, _, err := s.pullOne(ctx, named, plat, opts.Auth, ps)
		return img, err
	}
	if _, ok := named.(reference.Digested); ok {
		return nil, fmt.Errorf("tag can't be used with --all-tags/-a: %w", errdefs.ErrInvalidArgument)
	}
	repo := reference.TrimNamed(named)
	if t, ok := named.(reference.Tagged); ok && t.Tag() != "latest" {
		return nil, fmt.Errorf("tag can't be used with --all-tags/-a: %w", errdefs.ErrInvalidArgument)
	}
	tags, err := s.listTags(ctx, repo, opts.Auth)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", FamiliarString(repo), err)
	}
	var last *Image
	for _, t := range tags {
		tn, err := reference.WithTag(repo, t)
		if err != nil {
			continue
		}
		img, _, err := s.pullOne(ctx, tn, plat, opts.Auth, ps)
		if err != nil {
			return nil, err
		}
		if last == nil || t == "latest" {
			last = img
		}
	}
	if last == nil {
		return nil, fmt.Errorf("pull %s: repository has no tags: %w", FamiliarString(repo), errdefs.ErrNotFound)
	}
	return last, nil
}

// resolved is the outcome of talking to the registry about one reference.
type resolved struct {
	cl       *client
	target   ocispec.Descriptor // index or manifest the reference names
	manifest ocispec.Descriptor
	mbytes   []byte
	indexRaw []byte
	served   int
}

// resolve asks eps in order for named's manifest; the first that has it
// serves the pull (resolved.served is its index in eps).
func (s *Store) resolve(ctx context.Context, named reference.Named, plat Platform, creds CredentialFunc, eps []endpoint) (*resolved, error) {
	ref := ""
	if d, ok := named.(reference.Digested); ok {
		ref = d.Digest().String()
	} else if t, ok := named.(reference.Tagged); ok {
		ref = t.Tag()
	}
	var errs []error
	for i, ep := range eps {
		cl, err := s.client(ctx, ep, creds, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		desc, body, err := cl.manifest(ctx, ref)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		r := &resolved{cl: cl, target: desc, served: i}
		switch {
		case isIndex(desc.MediaType):
			var idx ocispec.Index
			if err := json.Unmarshal(body, &idx); err != nil {
				return nil, fmt.Errorf("index %s: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
			}
			m, err := selectManifest(&idx, plat)
			if err != nil {
				return nil, err
			}
			r.indexRaw = body
			md, mb, err := cl.manifest(ctx, m.Digest.String())
			if err != nil {
				return nil, fmt.Errorf("manifest %s for %s: %w", m.Digest, plat, err)
			}
			r.manifest, r.mbytes = md, mb
		case isManifest(desc.MediaType):
			r.manifest, r.mbytes = desc, body
		case desc.MediaType == mediaTypeDockerSchema1:
			return nil, fmt.Errorf("%s: Docker Image manifest version 2, schema 1 is no longer supported: %w", FamiliarString(named), errdefs.ErrNotImplemented)
		default:
			return nil, fmt.Errorf("%s: unsupported manifest media type %q: %w", FamiliarString(named), desc.MediaType, errdefs.ErrNotImplemented)
		}
		return r, nil
	}
	err := errors.Join(errs...)
	if errdefs.IsNotFound(err) {
		// docker's words (the registries' own answers name URLs and JSON).
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("manifest for %s not found: manifest unknown: manifest unknown", FamiliarString(named)))
	}
	return nil, err
}

type layerJob struct {
	desc    ocispec.Descriptor
	diffID  digest.Digest
	chainID digest.Digest
	parent  digest.Digest
	foreign bool
	// ing is the download in progress (nil when the blob was already stored).
	ing *content.Ingest
}

func (s *Store) pullOne(ctx context.Context, named reference.Named, plat Platform, creds CredentialFunc, ps *progressSink) (*Image, bool, error) {
	tagOrDigest := ""
	if t, ok := named.(reference.Tagged); ok {
		tagOrDigest = t.Tag()
	} else if d, ok := named.(reference.Digested); ok {
		tagOrDigest = d.Digest().String()
	}
	eps, err := s.endpoints(named, false)
	if err != nil {
		return nil, false, err
	}
	for start := 0; ; {
		res, err := s.resolve(ctx, named, plat, creds, eps[start:])
		if err != nil {
			if errdefs.IsNotFound(err) {
				return nil, false, err
			}
			return nil, false, fmt.Errorf("pull %s: %w", FamiliarString(named), err)
		}
		// As docker: "Pulling from" once the manifest is known, so that a
		// missing image is an error response, not a failed stream.
		if start == 0 {
			ps.emit(ProgressEvent{ID: tagOrDigest, Status: "Pulling from " + reference.Path(named)})
		}
		img, fresh, err := s.pullFrom(ctx, named, res, ps)
		start += res.served + 1
		// A mirror that fails mid-pull (a missing or bad blob) hands over
		// to the next endpoint, as docker does; nothing it wrote is visible.
		if err == nil || !res.cl.ep.mirror || start >= len(eps) || ctx.Err() != nil {
			return img, fresh, err
		}
	}
}

// pullFrom fetches and records the image res resolved to.
func (s *Store) pullFrom(ctx context.Context, named reference.Named, res *resolved, ps *progressSink) (*Image, bool, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(res.mbytes, &m); err != nil {
		return nil, false, fmt.Errorf("pull %s: manifest %s: %v: %w", FamiliarString(named), res.manifest.Digest, err, errdefs.ErrInvalidArgument)
	}
	if m.Config.Digest == "" {
		return nil, false, fmt.Errorf("pull %s: manifest %s has no config: %w", FamiliarString(named), res.manifest.Digest, errdefs.ErrInvalidArgument)
	}

	// Config first: it holds the diff IDs the layers are unpacked under.
	if err := s.fetchSmall(ctx, res.cl, m.Config); err != nil {
		return nil, false, fmt.Errorf("pull %s: config %s: %w", FamiliarString(named), m.Config.Digest, err)
	}
	cfgRaw, err := s.cs.ReadAll(m.Config.Digest)
	if err != nil {
		return nil, false, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		return nil, false, fmt.Errorf("pull %s: config %s: %v: %w", FamiliarString(named), m.Config.Digest, err, errdefs.ErrInvalidArgument)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, false, fmt.Errorf("pull %s: manifest %s has %d layers but config %s has %d diff IDs: %w",
			FamiliarString(named), res.manifest.Digest, len(m.Layers), m.Config.Digest, len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}

	// "Image is up to date" only when this name already meant this image.
	existed := false
	_ = s.db.View(func(tx *bbolt.Tx) error {
		var nr nameRecord
		if ok, _ := getJSON(bucket(tx, bktNames), []byte(named.String()), &nr); ok {
			existed = nr.ImageID == m.Config.Digest && nr.Target.Digest == res.target.Digest
		}
		return nil
	})
	rec, err := s.unpackImage(ctx, res.cl, res.manifest, &m, &cfg, ps)
	if err != nil {
		return nil, false, fmt.Errorf("pull %s: %w", FamiliarString(named), err)
	}

	// Manifest and index blobs last: an image is visible only once complete.
	if _, err := s.cs.WriteBytes(ctx, res.manifest.MediaType, res.mbytes); err != nil {
		return nil, false, err
	}
	if res.indexRaw != nil {
		if _, err := s.cs.WriteBytes(ctx, res.target.MediaType, res.indexRaw); err != nil {
			return nil, false, err
		}
	}
	names := map[string]ocispec.Descriptor{}
	dn, err := repoDigestName(named, res.target.Digest)
	if err != nil {
		return nil, false, err
	}
	names[dn] = res.target
	if _, ok := named.(reference.Tagged); ok {
		names[named.String()] = res.target
	}
	if err := s.commitImage(rec, names); err != nil {
		return nil, false, err
	}
	ps.emit(ProgressEvent{Status: "Digest: " + res.target.Digest.String()})
	if existed {
		ps.emit(ProgressEvent{Status: "Status: Image is up to date for " + FamiliarString(named)})
	} else {
		ps.emit(ProgressEvent{Status: "Status: Downloaded newer image for " + FamiliarString(named)})
	}
	img, err := s.Get(ctx, rec.ID.String())
	return img, !existed, err
}

// fetchSmall stores a small blob (config) fetched in one request.
func (s *Store) fetchSmall(ctx context.Context, cl *client, desc ocispec.Descriptor) error {
	if desc.Size > maxManifestSize {
		return fmt.Errorf("blob %s is %d bytes, too large for a config: %w", desc.Digest, desc.Size, errdefs.ErrInvalidArgument)
	}
	ing, err := s.cs.Begin(desc)
	if err != nil || ing == nil {
		return err
	}
	defer ing.Release()
	if ing.Leader() {
		return ing.Finish(cl.fetchBlob(ctx, desc, ing, nil))
	}
	return ing.Wait(ctx)
}

// unpackImage downloads (when cl != nil) and unpacks the layers of m, in
// chain order, streaming each layer into its snapshot while later layers
// download. With cl == nil every blob must already be in the content store.
func (s *Store) unpackImage(ctx context.Context, cl *client, mdesc ocispec.Descriptor, m *ocispec.Manifest, cfg *ocispec.Image, ps *progressSink) (*imageRecord, error) {
	chains := chainIDs(cfg.RootFS.DiffIDs)
	defer s.pin(chains)()
	jobs := make([]*layerJob, len(m.Layers))
	for i, l := range m.Layers {
		j := &layerJob{desc: l, diffID: cfg.RootFS.DiffIDs[i], chainID: chains[i], foreign: isForeign(l.MediaType)}
		if i > 0 {
			j.parent = chains[i-1]
		}
		jobs[i] = j
	}

	// Layers already unpacked (a prefix of the chain) are skipped entirely.
	first := len(jobs)
	if s.layers != nil {
		for i := len(jobs) - 1; i >= 0; i-- {
			ok, err := s.layers.Has(ctx, jobs[i].chainID)
			if err != nil {
				return nil, err
			}
			if ok {
				first = i + 1
				break
			}
			first = i
		}
	} else {
		first = 0
	}
	for i, j := range jobs {
		switch {
		case i < first:
			ps.emit(ProgressEvent{ID: shortID(j.desc.Digest), Status: StatusAlreadyExists})
		case !j.foreign:
			ps.emit(ProgressEvent{ID: shortID(j.desc.Digest), Status: StatusPullingFsLayer})
		}
	}

	// Start downloads: one ingest per missing blob, fetched by a bounded
	// pool in layer order so the unpacker's next layer is always first.
	// A download runs under its ingest's context, not this pull's: it stops
	// when every pull sharing it has released it (see content.Ingest).
	queue := make(chan *layerJob, len(jobs))
	for w := 0; w < s.opts.MaxConcurrentDownloads; w++ {
		go func() {
			for j := range queue {
				s.download(cl, j, ps)
			}
		}()
	}
	beginErr := func() error {
		defer close(queue)
		queued := 0
		for _, j := range jobs[first:] {
			if j.foreign {
				continue
			}
			ing, err := s.cs.Begin(j.desc)
			if err != nil {
				return err
			}
			if ing == nil {
				ps.emit(ProgressEvent{ID: shortID(j.desc.Digest), Status: StatusDownloadComplete})
				continue
			}
			j.ing = ing
			if !ing.Leader() {
				continue
			}
			if cl == nil {
				ing.Finish(fmt.Errorf("blob %s: %w", j.desc.Digest, errdefs.ErrNotFound))
				return fmt.Errorf("layer %s is not in the content store: %w", j.desc.Digest, errdefs.ErrNotFound)
			}
			if queued >= s.opts.MaxConcurrentDownloads {
				ps.emit(ProgressEvent{ID: shortID(j.desc.Digest), Status: StatusWaiting})
			}
			queued++
			queue <- j
		}
		return nil
	}()
	defer func() {
		for _, j := range jobs {
			if j.ing != nil {
				j.ing.Release()
			}
		}
	}()
	if beginErr != nil {
		return nil, beginErr
	}

	layers := make([]layerRecord, len(jobs))
	for i, j := range jobs {
		layers[i] = layerRecord{DiffID: j.diffID, Parent: j.parent}
	}
	if s.layers != nil {
		sizes, err := s.unpackLayers(ctx, jobs[first:], ps)
		if err != nil {
			return nil, err
		}
		for i, size := range sizes {
			layers[first+i].Size = size
		}
	}
	// No snapshotter: the download is the whole job (waited for below).
	// Blobs of layers skipped as "Already exists" need not be present.
	for _, j := range jobs {
		if j.ing != nil {
			if err := j.ing.Wait(ctx); err != nil {
				return nil, fmt.Errorf("layer %s: %w", j.desc.Digest, err)
			}
		}
	}

	rec := &imageRecord{
		ID:       m.Config.Digest,
		Manifest: mdesc,
		Config:   m.Config,
		Layers:   m.Layers,
		DiffIDs:  cfg.RootFS.DiffIDs,
		ChainIDs: chains,
		Stored:   time.Now().UTC(),
	}
	if cfg.Created != nil {
		rec.Created = *cfg.Created
	}
	s.lock.Lock()
	defer s.lock.Unlock()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for i := range layers {
			if layers[i].Size == 0 {
				if old, ok := getLayer(tx, chains[i]); ok {
					layers[i].Size = old.Size
				}
			}
			rec.Size += layers[i].Size
		}
		if old, err := getImage(tx, rec.ID); err == nil {
			rec.Stored = old.Stored
		}
		return putImage(tx, rec, layers)
	})
	return rec, err
}

// download runs the leader side of one layer's ingest with progress.
func (s *Store) download(cl *client, j *layerJob, ps *progressSink) {
	id := shortID(j.desc.Digest)
	err := cl.fetchBlob(j.ing.Context(), j.desc, j.ing, func(n int64) {
		ps.emit(ProgressEvent{ID: id, Status: StatusDownloading, Current: n, Total: j.desc.Size})
	})
	if err == nil {
		ps.emit(ProgressEvent{ID: id, Status: StatusVerifying})
	}
	if err != nil {
		err = fmt.Errorf("blob %s: %w", j.desc.Digest, err)
	}
	if err = j.ing.Finish(err); err == nil {
		ps.emit(ProgressEvent{ID: id, Status: StatusDownloadComplete})
	}
}

// unpackLayer streams one layer into its snapshot: blob (live ingest or
// stored file) → decompress → sha256 (diff ID) → Layers.Unpack. The
// snapshot is committed only after the blob digest and the diff ID check out.
func (s *Store) unpackLayer(ctx context.Context, j *layerJob, ps *progressSink) (int64, error) {
	return s.sharedUnpack(ctx, j, func() (int64, error) {
		return s.unpackOnce(ctx, j, ps, s.layers.Unpack)
	})
}

// sharedUnpack runs unpack for j unless its layer exists, sharing the work
// with concurrent pulls of the same chain ID.
func (s *Store) sharedUnpack(ctx context.Context, j *layerJob, unpack func() (int64, error)) (int64, error) {
	for attempt := 0; ; attempt++ {
		v, err, _ := s.unpacks.Do(string(j.chainID), func() (any, error) {
			if ok, err := s.layers.Has(ctx, j.chainID); err != nil || ok {
				return int64(0), err
			}
			return unpack()
		})
		// A concurrent pull we shared with was canceled: try ourselves.
		if err != nil && errors.Is(err, context.Canceled) && ctx.Err() == nil && attempt == 0 {
			continue
		}
		if err != nil {
			return 0, err
		}
		return v.(int64), nil
	}
}

// unpackFunc is Layers.Unpack's shape; Stage fits it through a closure.
type unpackFunc func(ctx context.Context, chainID, parent digest.Digest, tar io.Reader, verify func() error) (int64, error)

func (s *Store) unpackOnce(ctx context.Context, j *layerJob, ps *progressSink, unpack unpackFunc) (int64, error) {
	id := shortID(j.desc.Digest)
	var src io.ReadCloser
	var err error
	switch {
	case j.foreign:
		src = io.NopCloser(emptyTar())
	case j.ing != nil:
		src, err = j.ing.NewReader(ctx)
	default:
		src, err = s.cs.Open(j.desc.Digest)
	}
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	defer src.Close()
	counted := &countingReader{r: src}
	if !j.foreign {
		counted.fn = func(n int64) {
			// Docker shows a layer as downloading until it is complete; the
			// extraction that streams behind the download shows after that.
			if j.ing != nil {
				select {
				case <-j.ing.Done():
				default:
					return
				}
			}
			ps.emit(ProgressEvent{ID: id, Status: StatusExtracting, Current: n, Total: j.desc.Size})
		}
	}
	// The diff ID is hashed on the decompressor's read-ahead goroutine,
	// beside the untar rather than in front of it.
	h := sha256.New()
	tr, err := archive.DecompressDigest(counted, h)
	if err != nil {
		return 0, s.blobError(ctx, j, fmt.Errorf("layer %s: decompress: %w", j.desc.Digest, err))
	}
	defer tr.Close()
	verify := func() error {
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return s.blobError(ctx, j, fmt.Errorf("layer %s: %w", j.desc.Digest, err))
		}
		if j.ing != nil {
			if err := j.ing.Wait(ctx); err != nil {
				return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
			}
		}
		if j.foreign {
			return nil
		}
		if got := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)); got != j.diffID {
			return fmt.Errorf("layer %s: uncompressed content has digest %s, config says %s: %w", j.desc.Digest, got, j.diffID, content.ErrDigestMismatch)
		}
		return nil
	}
	size, err := unpack(ctx, j.chainID, j.parent, tr, verify)
	if errors.Is(err, errNeedsParent) {
		return 0, err
	}
	if err != nil {
		if !strings.Contains(err.Error(), j.desc.Digest.String()) {
			err = fmt.Errorf("layer %s: %w", j.desc.Digest, err)
		}
		return 0, s.blobError(ctx, j, err)
	}
	return size, nil
}

// blobError prefers the download's verdict (digest mismatch, truncation)
// over what a decompressor or untar made of bad bytes.
func (s *Store) blobError(ctx context.Context, j *layerJob, err error) error {
	if j.ing == nil {
		return err
	}
	if werr := j.ing.Wait(ctx); werr != nil && !errors.Is(err, werr) {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, werr)
	}
	return err
}

type countingReader struct {
	r    io.Reader
	n    int64
	fn   func(int64)
	last time.Time
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.fn != nil {
		if now := time.Now(); now.Sub(c.last) > 100*time.Millisecond || err == io.EOF {
			c.last = now
			c.fn(c.n)
		}
	}
	return n, err
}

// emptyTar is the two zero blocks that end a tar stream.
func emptyTar() io.Reader { return io.LimitReader(zeroReader{}, 1024) }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// commitImage points names at rec (already recorded by unpackImage).
func (s *Store) commitImage(rec *imageRecord, names map[string]ocispec.Descriptor) error {
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	now := time.Now().UTC()
	return s.db.Update(func(tx *bbolt.Tx) error {
		nb := bucket(tx, bktNames)
		for _, k := range keys {
			if err := putJSON(nb, []byte(k), nameRecord{ImageID: rec.ID, Target: names[k], Updated: now}); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) getRecord(id digest.Digest) (*imageRecord, error) {
	var rec *imageRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		rec, err = getImage(tx, id)
		return err
	})
	return rec, err
}

// listTags lists a repository's tags (docker pull -a).
func (s *Store) listTags(ctx context.Context, repo reference.Named, creds CredentialFunc) ([]string, error) {
	eps, err := s.endpoints(repo, false)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ep := range eps {
		cl, err := s.client(ctx, ep, creds, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var tags []string
		err = s.retry(ctx, func(int) error {
			resp, err := cl.get(ctx, fmt.Sprintf("%s://%s/v2/%s/tags/list?n=10000", ep.repo.Registry.Scheme(), ep.repo.RegistryStr(), ep.repo.RepositoryStr()), nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var body struct {
				Tags []string `json:"tags"`
			}
			if err := json.NewDecoder(io.LimitReader(resp.Body, maxManifestSize)).Decode(&body); err != nil {
				return err
			}
			tags = body.Tags
			return nil
		})
		if err == nil {
			sort.Strings(tags)
			return tags, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}
