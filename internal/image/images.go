package image

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.etcd.io/bbolt"
)

// Image is an image as the daemon and API see it.
type Image struct {
	// ID is the config digest, as docker shows it ("sha256:…").
	ID digest.Digest
	// RepoTags and RepoDigests are familiar names (busybox:latest,
	// busybox@sha256:…), sorted.
	RepoTags    []string
	RepoDigests []string
	// Target is the platform manifest.
	Target   ocispec.Descriptor
	Manifest ocispec.Manifest
	Config   ocispec.Image
	DiffIDs  []digest.Digest
	// ChainIDs name the committed layer snapshots; the last is the parent
	// of a container's writable snapshot.
	ChainIDs []digest.Digest
	// Size is the sum of unpacked layer sizes (docker's SIZE column).
	Size    int64
	Created time.Time
	// Stored is when the image entered this store.
	Stored time.Time
}

// TopLayer is the chain ID a container snapshot is prepared on ("" for an
// image with no layers).
func (i *Image) TopLayer() digest.Digest {
	if len(i.ChainIDs) == 0 {
		return ""
	}
	return i.ChainIDs[len(i.ChainIDs)-1]
}

func (s *Store) loadImage(tx *bbolt.Tx, rec *imageRecord) (*Image, error) {
	img := &Image{
		ID: rec.ID, Target: rec.Manifest, DiffIDs: rec.DiffIDs, ChainIDs: rec.ChainIDs,
		Size: rec.Size, Created: rec.Created, Stored: rec.Stored,
	}
	names, err := namesOf(tx, rec.ID)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if strings.Contains(n, "@") {
			img.RepoDigests = append(img.RepoDigests, familiarOf(n))
		} else {
			img.RepoTags = append(img.RepoTags, familiarOf(n))
		}
	}
	sort.Strings(img.RepoTags)
	sort.Strings(img.RepoDigests)
	cfg, err := s.cs.ReadAll(rec.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", rec.ID, err)
	}
	if err := json.Unmarshal(cfg, &img.Config); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", rec.ID, err)
	}
	if mb, err := s.cs.ReadAll(rec.Manifest.Digest); err == nil {
		_ = json.Unmarshal(mb, &img.Manifest)
	} else {
		img.Manifest = ocispec.Manifest{MediaType: rec.Manifest.MediaType, Config: rec.Config, Layers: rec.Layers}
		img.Manifest.SchemaVersion = 2
	}
	return img, nil
}

// resolveID finds the image refOrID names: a full or short image ID
// ("sha256:abc…", "abc1"), a name ("busybox", "busybox:1"), or a digest
// reference ("busybox@sha256:…"). The second result is the stored name when
// refOrID was a name.
func resolveID(tx *bbolt.Tx, refOrID string) (digest.Digest, string, error) {
	ids := bucket(tx, bktIDs)
	if d, err := digest.Parse(refOrID); err == nil {
		if ids.Get([]byte(d)) != nil {
			return d, "", nil
		}
	} else if len(refOrID) == 64 && isShortID(refOrID) {
		d := digest.NewDigestFromEncoded(digest.SHA256, refOrID)
		if ids.Get([]byte(d)) != nil {
			return d, "", nil
		}
	}
	if named, err := ParseReference(refOrID); err == nil {
		var nr nameRecord
		if ok, err := getJSON(bucket(tx, bktNames), []byte(named.String()), &nr); err != nil {
			return "", "", err
		} else if ok {
			return nr.ImageID, named.String(), nil
		}
	}
	if isShortID(refOrID) {
		prefix := "sha256:" + strings.TrimPrefix(refOrID, "sha256:")
		var found []digest.Digest
		c := ids.Cursor()
		for k, _ := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, _ = c.Next() {
			found = append(found, digest.Digest(k))
		}
		if len(found) == 1 {
			return found[0], "", nil
		}
		if len(found) > 1 {
			return "", "", fmt.Errorf("%s is ambiguous (%d images match): %w", refOrID, len(found), errdefs.ErrInvalidArgument)
		}
	}
	//lint:ignore ST1005 docker's wording, which clients match
	return "", "", fmt.Errorf("No such image: %s: %w", refOrID, errdefs.ErrNotFound)
}

// Get returns the image refOrID names (see resolveID for accepted forms).
func (s *Store) Get(ctx context.Context, refOrID string) (*Image, error) {
	var img *Image
	err := s.db.View(func(tx *bbolt.Tx) error {
		id, _, err := resolveID(tx, refOrID)
		if err != nil {
			return err
		}
		rec, err := getImage(tx, id)
		if err != nil {
			return err
		}
		img, err = s.loadImage(tx, rec)
		return err
	})
	return img, err
}

// ListOptions filter List as docker images' flags do.
type ListOptions struct {
	// All includes intermediate images (berth has none; accepted for the API).
	All bool
	// Filters: dangling=true|false, reference=<glob>, label=<k>[=<v>],
	// before=<image>, since=<image>.
	Filters map[string][]string
}

// List returns images, newest first.
func (s *Store) List(ctx context.Context, opts ListOptions) ([]*Image, error) {
	for k := range opts.Filters {
		switch k {
		case "dangling", "reference", "label", "before", "since":
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	var out []*Image
	err := s.db.View(func(tx *bbolt.Tx) error {
		var before, since *imageRecord
		for _, f := range []struct {
			key string
			dst **imageRecord
		}{{"before", &before}, {"since", &since}} {
			for _, v := range opts.Filters[f.key] {
				id, _, err := resolveID(tx, v)
				if err != nil {
					return err
				}
				if *f.dst, err = getImage(tx, id); err != nil {
					return err
				}
			}
		}
		return bucket(tx, bktIDs).ForEach(func(k, v []byte) error {
			var rec imageRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return nil
			}
			if before != nil && !rec.Created.Before(before.Created) {
				return nil
			}
			if since != nil && !rec.Created.After(since.Created) {
				return nil
			}
			img, err := s.loadImage(tx, &rec)
			if err != nil {
				return nil // a broken record must not hide the others
			}
			ok, err := matchFilters(img, opts.Filters)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, img)
			}
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

func matchFilters(img *Image, f map[string][]string) (bool, error) {
	for _, v := range f["dangling"] {
		want := v == "true" || v == "1"
		if v != "true" && v != "false" && v != "1" && v != "0" {
			return false, fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalidArgument)
		}
		if (len(img.RepoTags) == 0) != want {
			return false, nil
		}
	}
	if pats := f["reference"]; len(pats) > 0 {
		matched := false
		for _, p := range pats {
			for _, n := range append(append([]string{}, img.RepoTags...), img.RepoDigests...) {
				r, err := reference.ParseNormalizedNamed(n)
				if err != nil {
					continue
				}
				ok, err := reference.FamiliarMatch(p, r)
				if err != nil {
					return false, fmt.Errorf("invalid reference filter %q: %w", p, errdefs.ErrInvalidArgument)
				}
				if !ok {
					// "busybox" matches busybox:latest as docker does.
					ok, _ = reference.FamiliarMatch(p, reference.TrimNamed(r))
				}
				if ok {
					matched = true
				}
			}
		}
		if !matched {
			return false, nil
		}
	}
	for _, l := range f["label"] {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := img.Config.Config.Labels[k]
		if !ok || hasV && got != v {
			return false, nil
		}
	}
	return true, nil
}

// Tag points target (a name, not a digest) at the image source names.
func (s *Store) Tag(ctx context.Context, source, target string) error {
	named, err := ParseReference(target)
	if err != nil {
		return err
	}
	if _, ok := named.(reference.Digested); ok {
		return fmt.Errorf("refusing to create a tag with a digest reference: %w", errdefs.ErrInvalidArgument)
	}
	s.lock.Lock()
	defer s.lock.Unlock()
	return s.db.Update(func(tx *bbolt.Tx) error {
		id, _, err := resolveID(tx, source)
		if err != nil {
			return err
		}
		rec, err := getImage(tx, id)
		if err != nil {
			return err
		}
		return putJSON(bucket(tx, bktNames), []byte(named.String()), nameRecord{ImageID: id, Target: rec.Manifest, Updated: time.Now().UTC()})
	})
}

// ImageUse says which container uses an image (for Delete and Prune).
type ImageUse struct {
	ContainerID string
	Running     bool
}

// DeleteOptions configure Delete.
type DeleteOptions struct {
	Force bool
	// PruneChildren is docker's default (--no-prune=false); berth has no
	// parent chains of images, so it only matters for API compatibility.
	PruneChildren bool
	// InUse reports a container using the image, or nil.
	InUse func(imageID digest.Digest) *ImageUse
}

// DeleteItem is one line of docker rmi's answer.
type DeleteItem struct {
	Untagged string `json:"Untagged,omitempty"`
	Deleted  string `json:"Deleted,omitempty"`
}

// Delete untags or removes an image with docker's rules: removing a name
// only untags while other names remain; the last name or an ID removes the
// image unless a container uses it (ErrConflict, as docker words it).
func (s *Store) Delete(ctx context.Context, refOrID string, opts DeleteOptions) ([]DeleteItem, error) {
	s.lock.Lock()
	defer s.lock.Unlock()
	var (
		items   []DeleteItem
		orphans []digest.Digest
		rec     *imageRecord
		removed bool
	)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		id, byName, err := resolveID(tx, refOrID)
		if err != nil {
			return err
		}
		if rec, err = getImage(tx, id); err != nil {
			return err
		}
		names, err := namesOf(tx, id)
		if err != nil {
			return err
		}
		var use *ImageUse
		if opts.InUse != nil {
			use = opts.InUse(id)
		}
		short := shortID(id)
		nb := bucket(tx, bktNames)
		untag := func(n string) error {
			items = append(items, DeleteItem{Untagged: familiarOf(n)})
			return nb.Delete([]byte(n))
		}
		if byName != "" {
			// Untag the name; when it is the last tag of its repository,
			// the repository's digest names go with it (as in docker).
			var rest []string
			for _, n := range names {
				if n != byName {
					rest = append(rest, n)
				}
			}
			repo := repoOf(byName)
			lastOfRepo := true
			for _, n := range rest {
				if !strings.Contains(n, "@") && repoOf(n) == repo {
					lastOfRepo = false
				}
			}
			var keep []string
			var drop []string
			for _, n := range rest {
				if lastOfRepo && strings.Contains(n, "@") && repoOf(n) == repo {
					drop = append(drop, n)
				} else {
					keep = append(keep, n)
				}
			}
			if len(keep) == 0 && use != nil && !opts.Force {
				return fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s: %w", refOrID, shortID(digest.Digest("sha256:"+use.ContainerID)), short, errdefs.ErrConflict)
			}
			if err := untag(byName); err != nil {
				return err
			}
			for _, n := range drop {
				if err := untag(n); err != nil {
					return err
				}
			}
			if len(keep) > 0 || use != nil {
				return nil
			}
		} else {
			if use != nil && use.Running {
				return fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s: %w", short, shortID(digest.Digest("sha256:"+use.ContainerID)), errdefs.ErrConflict)
			}
			if use != nil && !opts.Force {
				return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s: %w", short, shortID(digest.Digest("sha256:"+use.ContainerID)), errdefs.ErrConflict)
			}
			repos := map[string]bool{}
			for _, n := range names {
				repos[repoOf(n)] = true
			}
			if len(repos) > 1 && !opts.Force {
				return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories: %w", short, errdefs.ErrConflict)
			}
			for _, n := range names {
				if err := untag(n); err != nil {
					return err
				}
			}
			if use != nil {
				// Forced while a stopped container uses it: untag only, as docker does.
				return nil
			}
		}
		orphans, err = dropImage(tx, rec)
		if err != nil {
			return err
		}
		removed = true
		items = append(items, DeleteItem{Deleted: id.String()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if removed {
		items = append(items, s.removeLayers(ctx, rec, orphans)...)
		s.gcBlobs(rec)
	}
	return items, nil
}

func repoOf(stored string) string {
	r, err := reference.ParseNormalizedNamed(stored)
	if err != nil {
		return stored
	}
	return r.Name()
}

// removeLayers removes orphaned snapshots, top first. A layer that is still
// the parent of another snapshot (a container's, forced past InUse) stays
// and is recorded again with no references, for Prune to retry. Returns
// docker's "Deleted" items.
func (s *Store) removeLayers(ctx context.Context, rec *imageRecord, chains []digest.Digest) []DeleteItem {
	var items []DeleteItem
	for _, c := range chains {
		if s.pinned(c) {
			// A pull in flight is about to reference it again.
			s.keepOrphan(rec, c)
			continue
		}
		if s.layers != nil {
			if err := s.layers.Remove(ctx, c); err != nil && !errdefs.IsNotFound(err) {
				s.keepOrphan(rec, c)
				continue
			}
		}
		items = append(items, DeleteItem{Deleted: c.String()})
	}
	return items
}

func (s *Store) keepOrphan(rec *imageRecord, chain digest.Digest) {
	lr := layerRecord{}
	for i, c := range rec.ChainIDs {
		if c == chain {
			lr.DiffID = rec.DiffIDs[i]
			if i > 0 {
				lr.Parent = rec.ChainIDs[i-1]
			}
		}
	}
	_ = s.db.Update(func(tx *bbolt.Tx) error {
		cb, err := bucket(tx, bktLayers).CreateBucketIfNotExists([]byte(chain))
		if err != nil {
			return err
		}
		if _, err := cb.CreateBucketIfNotExists(bktRefs); err != nil {
			return err
		}
		if cb.Get(keyInfo) != nil {
			return nil // recorded again meanwhile (by the pull that pinned it)
		}
		return putJSON(cb, keyInfo, lr)
	})
}

// removeOrphanLayers retries removing layers no image references (children
// before parents) and returns how many went.
func (s *Store) removeOrphanLayers(ctx context.Context) int {
	if s.layers == nil {
		return 0
	}
	removed := 0
	for {
		var orphans []digest.Digest
		_ = s.db.View(func(tx *bbolt.Tx) error {
			return bucket(tx, bktLayers).ForEachBucket(func(k []byte) error {
				rb := bucket(tx, bktLayers).Bucket(k).Bucket(bktRefs)
				if rb == nil || func() bool { k, _ := rb.Cursor().First(); return k == nil }() {
					orphans = append(orphans, digest.Digest(k))
				}
				return nil
			})
		})
		progress := false
		for _, c := range orphans {
			if s.pinned(c) {
				continue
			}
			if err := s.layers.Remove(ctx, c); err != nil && !errdefs.IsNotFound(err) {
				continue
			}
			_ = s.db.Update(func(tx *bbolt.Tx) error {
				lb := bucket(tx, bktLayers)
				if cb := lb.Bucket([]byte(c)); cb != nil {
					if rb := cb.Bucket(bktRefs); rb != nil {
						if k, _ := rb.Cursor().First(); k != nil {
							return nil // re-referenced meanwhile
						}
					}
					return lb.DeleteBucket([]byte(c))
				}
				return nil
			})
			removed++
			progress = true
		}
		if !progress {
			return removed
		}
	}
}

// gcBlobs deletes the blobs of a removed image that nothing else names.
func (s *Store) gcBlobs(rec *imageRecord) {
	cands := map[digest.Digest]bool{rec.Manifest.Digest: true, rec.Config.Digest: true}
	for _, l := range rec.Layers {
		cands[l.Digest] = true
	}
	_ = s.db.View(func(tx *bbolt.Tx) error {
		_ = bucket(tx, bktIDs).ForEach(func(k, v []byte) error {
			var r imageRecord
			if json.Unmarshal(v, &r) != nil {
				return nil
			}
			delete(cands, r.Manifest.Digest)
			delete(cands, r.Config.Digest)
			for _, l := range r.Layers {
				delete(cands, l.Digest)
			}
			return nil
		})
		_ = bucket(tx, bktNames).ForEach(func(k, v []byte) error {
			var n nameRecord
			if json.Unmarshal(v, &n) == nil {
				delete(cands, n.Target.Digest)
			}
			return nil
		})
		return nil
	})
	for d := range cands {
		_ = s.cs.Delete(d)
	}
}

// GC removes blobs that no image or name references, and index blobs of
// removed names. Blobs younger than grace are kept (a pull may be about to
// record them).
func (s *Store) GC(ctx context.Context, grace time.Duration) (int64, error) {
	refd := map[digest.Digest]bool{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		if err := bucket(tx, bktIDs).ForEach(func(k, v []byte) error {
			var r imageRecord
			if json.Unmarshal(v, &r) != nil {
				return nil
			}
			refd[r.Manifest.Digest], refd[r.Config.Digest] = true, true
			for _, l := range r.Layers {
				refd[l.Digest] = true
			}
			return nil
		}); err != nil {
			return err
		}
		return bucket(tx, bktNames).ForEach(func(k, v []byte) error {
			var n nameRecord
			if json.Unmarshal(v, &n) == nil {
				refd[n.Target.Digest] = true
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	var freed int64
	cutoff := time.Now().Add(-grace)
	err = s.cs.Walk(func(d digest.Digest, size int64) error {
		if refd[d] || ctx.Err() != nil {
			return ctx.Err()
		}
		if mt, err := s.cs.ModTime(d); err == nil && mt.After(cutoff) {
			return nil
		}
		if err := s.cs.Delete(d); err == nil {
			freed += size
		}
		return nil
	})
	return freed, err
}

// PruneOptions configure Prune.
type PruneOptions struct {
	// All removes every unused image, not only dangling ones (prune -a).
	All   bool
	InUse func(imageID digest.Digest) *ImageUse
}

// PruneReport is docker's image prune answer.
type PruneReport struct {
	ImagesDeleted  []DeleteItem
	SpaceReclaimed int64
}

// Prune removes dangling images (or, with All, every image no container
// uses).
func (s *Store) Prune(ctx context.Context, opts PruneOptions) (*PruneReport, error) {
	imgs, err := s.List(ctx, ListOptions{})
	if err != nil {
		return nil, err
	}
	rep := &PruneReport{}
	for _, img := range imgs {
		if !opts.All && len(img.RepoTags) > 0 {
			continue
		}
		if opts.InUse != nil && opts.InUse(img.ID) != nil {
			continue
		}
		items, err := s.Delete(ctx, img.ID.String(), DeleteOptions{Force: true})
		if err != nil {
			if errdefs.IsNotFound(err) || errdefs.IsConflict(err) {
				continue
			}
			return rep, err
		}
		rep.ImagesDeleted = append(rep.ImagesDeleted, items...)
		rep.SpaceReclaimed += img.Size
	}
	s.removeOrphanLayers(ctx)
	return rep, nil
}

// HistoryEntry is one row of docker history.
type HistoryEntry struct {
	// ID is the image ID for the newest entry and "<missing>" for the rest.
	ID        string
	Created   time.Time
	CreatedBy string
	Tags      []string
	Size      int64
	Comment   string
}

// History returns the image's history, newest first, with layer sizes.
func (s *Store) History(ctx context.Context, refOrID string) ([]HistoryEntry, error) {
	img, err := s.Get(ctx, refOrID)
	if err != nil {
		return nil, err
	}
	sizes := make([]int64, len(img.ChainIDs))
	_ = s.db.View(func(tx *bbolt.Tx) error {
		for i, c := range img.ChainIDs {
			if lr, ok := getLayer(tx, c); ok {
				sizes[i] = lr.Size
			}
		}
		return nil
	})
	hist := img.Config.History
	if len(hist) == 0 {
		for range img.DiffIDs {
			hist = append(hist, ocispec.History{})
		}
	}
	var out []HistoryEntry
	layer := 0
	for _, h := range hist {
		e := HistoryEntry{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created != nil {
			e.Created = *h.Created
		}
		if !h.EmptyLayer && layer < len(sizes) {
			e.Size = sizes[layer]
			layer++
		}
		out = append(out, e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID.String()
		out[0].Tags = img.RepoTags
	}
	return out, nil
}

// Unpack makes sure every layer of the image is unpacked, unpacking missing
// ones from the content store: after the daemon switched snapshotters, or
// lost a snapshot. The daemon may call it before preparing a container.
func (s *Store) Unpack(ctx context.Context, refOrID string) error {
	if s.layers == nil {
		return fmt.Errorf("no snapshotter configured: %w", errdefs.ErrNotImplemented)
	}
	img, err := s.Get(ctx, refOrID)
	if err != nil {
		return err
	}
	if top := img.TopLayer(); top != "" {
		if ok, err := s.layers.Has(ctx, top); err != nil || ok {
			return err
		}
	}
	m := img.Manifest
	if len(m.Layers) != len(img.DiffIDs) {
		return fmt.Errorf("image %s: manifest and config disagree on layers: %w", img.ID, errdefs.ErrDataLoss)
	}
	_, err = s.unpackImage(ctx, nil, img.Target, &m, &img.Config, nil)
	return err
}
