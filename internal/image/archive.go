package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/archive"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Save/Load archive layout, as docker 25+ writes it (an OCI image layout
// plus docker's legacy manifest.json, both naming the same blobs):
//
//	oci-layout                 {"imageLayoutVersion":"1.0.0"}
//	index.json                 OCI index: one manifest per saved name, annotated
//	                           io.containerd.image.name=<full ref>,
//	                           org.opencontainers.image.ref.name=<tag>
//	manifest.json              [{"Config":"blobs/sha256/<cfg>","RepoTags":[…],"Layers":["blobs/sha256/<l>",…]}]
//	repositories               {"<familiar repo>":{"<tag>":"<image id hex>"}}
//	blobs/sha256/<hex>         manifests, configs, layers (as pulled: gzip or plain tar)
//
// docker load 20.10 reads manifest.json and decompresses gzip layers itself.
// zstd layers are also written uncompressed (named by diff ID) for it, since
// 20.10 cannot read zstd.

const (
	annotationImageName = "io.containerd.image.name"
	layoutVersion       = `{"imageLayoutVersion":"1.0.0"}`
)

type dockerManifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// Save writes the images refs name (names or IDs) as one docker-archive tar.
func (s *Store) Save(ctx context.Context, refs []string, w io.Writer) error {
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	var (
		index     = ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
		manifests []dockerManifestEntry
		repos     = map[string]map[string]string{}
		byID      = map[digest.Digest]int{}
	)
	index.SchemaVersion = 2
	now := time.Unix(0, 0)
	addFile := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	addBlob := func(d digest.Digest) error {
		if written[d] {
			return nil
		}
		f, err := s.cs.Open(d)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + d.Encoded(), Mode: 0o444, Size: fi.Size(), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, &ctxReader{ctx, f}); err != nil {
			return err
		}
		written[d] = true
		return nil
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/", Mode: 0o755, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/", Mode: 0o755, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	for _, ref := range refs {
		img, err := s.Get(ctx, ref)
		if err != nil {
			return err
		}
		// Names to record: the one asked for, or all tags when saved by ID.
		var tags []string
		if named, err := ParseReference(ref); err == nil && !strings.HasPrefix(img.ID.Encoded(), strings.TrimPrefix(ref, "sha256:")) {
			if _, ok := named.(reference.Tagged); ok {
				tags = []string{named.String()}
			}
		} else {
			for _, t := range img.RepoTags {
				n, _ := ParseReference(t)
				tags = append(tags, n.String())
			}
		}
		for _, d := range []digest.Digest{img.Target.Digest, img.Manifest.Config.Digest} {
			if err := addBlob(d); err != nil {
				return fmt.Errorf("save %s: %w", ref, err)
			}
		}
		var layerPaths []string
		for i, l := range img.Manifest.Layers {
			if isForeign(l.MediaType) {
				continue
			}
			if err := addBlob(l.Digest); err != nil {
				return fmt.Errorf("save %s: layer %s: %w", ref, l.Digest, err)
			}
			p := "blobs/sha256/" + l.Digest.Encoded()
			if strings.HasSuffix(l.MediaType, "zstd") && i < len(img.DiffIDs) {
				if err := s.saveUncompressed(ctx, tw, l.Digest, img.DiffIDs[i], written); err != nil {
					return fmt.Errorf("save %s: layer %s: %w", ref, l.Digest, err)
				}
				p = "blobs/sha256/" + img.DiffIDs[i].Encoded()
			}
			layerPaths = append(layerPaths, p)
		}
		mdesc := img.Target
		mdesc.Platform = &ocispec.Platform{OS: img.Config.OS, Architecture: img.Config.Architecture, Variant: img.Config.Variant}
		if len(tags) == 0 {
			index.Manifests = append(index.Manifests, mdesc)
		}
		var familiar []string
		for _, t := range tags {
			d := mdesc
			named, _ := reference.ParseNormalizedNamed(t)
			tag := ""
			if tg, ok := named.(reference.Tagged); ok {
				tag = tg.Tag()
			}
			d.Annotations = map[string]string{annotationImageName: t, ocispec.AnnotationRefName: tag}
			index.Manifests = append(index.Manifests, d)
			familiar = append(familiar, reference.FamiliarString(named))
			repo := reference.FamiliarName(named)
			if repos[repo] == nil {
				repos[repo] = map[string]string{}
			}
			repos[repo][tag] = img.ID.Encoded()
		}
		if i, ok := byID[img.ID]; ok {
			manifests[i].RepoTags = append(manifests[i].RepoTags, familiar...)
			continue
		}
		byID[img.ID] = len(manifests)
		manifests = append(manifests, dockerManifestEntry{
			Config: "blobs/sha256/" + img.Manifest.Config.Digest.Encoded(), RepoTags: familiar, Layers: layerPaths,
		})
	}
	for i := range manifests {
		if manifests[i].RepoTags == nil {
			manifests[i].RepoTags = []string{}
		}
	}
	ib, _ := json.Marshal(index)
	mb, _ := json.Marshal(manifests)
	if err := addFile("index.json", ib); err != nil {
		return err
	}
	if err := addFile("manifest.json", mb); err != nil {
		return err
	}
	if err := addFile("oci-layout", []byte(layoutVersion)); err != nil {
		return err
	}
	if len(repos) > 0 {
		rb, _ := json.Marshal(repos)
		if err := addFile("repositories", rb); err != nil {
			return err
		}
	}
	return tw.Close()
}

func (s *Store) saveUncompressed(ctx context.Context, tw *tar.Writer, blob, diffID digest.Digest, written map[digest.Digest]bool) error {
	if written[diffID] {
		return nil
	}
	// The tar header needs the size first: one pass to count, one to copy.
	count := func(w io.Writer) error {
		f, err := s.cs.Open(blob)
		if err != nil {
			return err
		}
		defer f.Close()
		dr, err := archive.Decompress(f)
		if err != nil {
			return err
		}
		defer dr.Close()
		_, err = io.Copy(w, &ctxReader{ctx, dr})
		return err
	}
	var n countWriter
	if err := count(&n); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + diffID.Encoded(), Mode: 0o444, Size: int64(n), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if err := count(tw); err != nil {
		return err
	}
	written[diffID] = true
	return nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// LoadResult says what Load recorded, as docker load prints it.
type LoadResult struct {
	// Names are familiar names loaded ("Loaded image: busybox:latest").
	Names []string
	// IDs are images loaded without a name ("Loaded image ID: sha256:…").
	IDs []digest.Digest
}

// maxArchiveJSON bounds the metadata files of an archive held in memory.
const maxArchiveJSON = 16 << 20

// Load reads a docker-archive tar (docker save, any version) or a tar of an
// OCI image layout, stores its blobs, unpacks and names the images.
func (s *Store) Load(ctx context.Context, r io.Reader, progress func(ProgressEvent)) (*LoadResult, error) {
	ps := &progressSink{fn: progress}
	defer ps.close()
	files := map[string]digest.Digest{} // archive path → blob
	small := map[string][]byte{}        // archive path → content (metadata)
	links := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("load: read archive: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		p := path.Clean(strings.TrimPrefix(h.Name, "./"))
		switch h.Typeflag {
		case tar.TypeSymlink:
			links[p] = path.Join(path.Dir(p), h.Linkname)
			continue
		case tar.TypeLink:
			links[p] = path.Clean(h.Linkname)
			continue
		case tar.TypeReg:
		default:
			continue
		}
		if strings.HasSuffix(p, ".json") || p == "repositories" || p == "oci-layout" || path.Base(p) == "VERSION" {
			if h.Size > maxArchiveJSON {
				return nil, fmt.Errorf("load: %s is too large: %w", p, errdefs.ErrInvalidArgument)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("load: %s: %w", p, err)
			}
			// Kept in memory; only the ones that turn out to be configs are
			// stored (legacy <id>/json files and the like are not).
			small[p] = b
			files[p] = digest.FromBytes(b)
			continue
		}
		d, _, err := s.cs.WriteUnknown(ctx, tr)
		if err != nil {
			return nil, fmt.Errorf("load: %s: %w", p, err)
		}
		if strings.HasPrefix(p, "blobs/sha256/") && d.Encoded() != strings.TrimPrefix(p, "blobs/sha256/") {
			return nil, fmt.Errorf("load: %s: content has digest %s: %w", p, d, errdefs.ErrDataLoss)
		}
		files[p] = d
	}
	resolve := func(p string) (digest.Digest, error) {
		p = path.Clean(p)
		for i := 0; i < 16; i++ {
			if d, ok := files[p]; ok {
				return d, nil
			}
			t, ok := links[p]
			if !ok {
				break
			}
			p = t
		}
		return "", fmt.Errorf("load: archive has no file %q: %w", p, errdefs.ErrInvalidArgument)
	}
	res := &LoadResult{}
	if mb, ok := small["manifest.json"]; ok {
		var entries []dockerManifestEntry
		if err := json.Unmarshal(mb, &entries); err != nil {
			return nil, fmt.Errorf("load: manifest.json: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		byDigest := func(d digest.Digest) ([]byte, bool) {
			for p, b := range small {
				if files[p] == d {
					return b, true
				}
			}
			return nil, false
		}
		for _, e := range entries {
			if err := s.loadDockerEntry(ctx, e, resolve, byDigest, res, ps); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
	if ib, ok := small["index.json"]; ok {
		var idx ocispec.Index
		if err := json.Unmarshal(ib, &idx); err != nil {
			return nil, fmt.Errorf("load: index.json: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		plat, _ := ParsePlatform("")
		for _, d := range idx.Manifests {
			if err := s.loadOCIEntry(ctx, d, plat, res, ps); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
	return nil, fmt.Errorf("load: neither manifest.json nor index.json in the archive: %w", errdefs.ErrInvalidArgument)
}

func (s *Store) loadDockerEntry(ctx context.Context, e dockerManifestEntry, resolve func(string) (digest.Digest, error), smallByDigest func(digest.Digest) ([]byte, bool), res *LoadResult, ps *progressSink) error {
	cfgD, err := resolve(e.Config)
	if err != nil {
		return err
	}
	cfgRaw, ok := smallByDigest(cfgD)
	if !ok {
		if cfgRaw, err = s.cs.ReadAll(cfgD); err != nil {
			return err
		}
	}
	if _, err := s.cs.WriteBytes(ctx, mediaTypeDockerConfig, cfgRaw); err != nil {
		return err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		return fmt.Errorf("load: config %s: %v: %w", e.Config, err, errdefs.ErrInvalidArgument)
	}
	if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
		return fmt.Errorf("load: config %s has %d diff IDs for %d layers: %w", cfgD, len(cfg.RootFS.DiffIDs), len(e.Layers), errdefs.ErrInvalidArgument)
	}
	m := ocispec.Manifest{MediaType: mediaTypeDockerManifest, Config: ocispec.Descriptor{MediaType: mediaTypeDockerConfig, Digest: cfgD, Size: int64(len(cfgRaw))}}
	m.SchemaVersion = 2
	for _, lp := range e.Layers {
		d, err := resolve(lp)
		if err != nil {
			return err
		}
		size, err := s.cs.Size(d)
		if err != nil {
			return err
		}
		mt, err := s.sniffLayer(d)
		if err != nil {
			return err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: d, Size: size})
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var names []string
	for _, t := range e.RepoTags {
		n, err := ParseReference(t)
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		names = append(names, n.String())
	}
	id, err := s.addLocal(ctx, mb, names, ps)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		res.IDs = append(res.IDs, id)
	}
	for _, n := range names {
		res.Names = append(res.Names, familiarOf(n))
	}
	return nil
}

// sniffLayer names a layer blob's media type by its magic bytes.
func (s *Store) sniffLayer(d digest.Digest) (string, error) {
	f, err := s.cs.Open(d)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	switch {
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return mediaTypeDockerLayer, nil
	case n == 4 && bytes.Equal(magic[:], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return "application/vnd.docker.image.rootfs.diff.tar", nil
}

func (s *Store) loadOCIEntry(ctx context.Context, d ocispec.Descriptor, plat Platform, res *LoadResult, ps *progressSink) error {
	b, err := s.cs.ReadAll(d.Digest)
	if err != nil {
		return fmt.Errorf("load: manifest %s: %w", d.Digest, err)
	}
	mt := sniffMediaType(d.MediaType, b)
	target := d
	if isIndex(mt) {
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return fmt.Errorf("load: index %s: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
		}
		m, err := selectManifest(&idx, plat)
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if b, err = s.cs.ReadAll(m.Digest); err != nil {
			return fmt.Errorf("load: manifest %s: %w", m.Digest, err)
		}
	}
	var names []string
	if n := d.Annotations[annotationImageName]; n != "" {
		names = append(names, n)
	} else if n := d.Annotations[ocispec.AnnotationRefName]; n != "" {
		// A full reference, or only a tag (which names nothing on its own).
		if named, err := ParseReference(n); err == nil && strings.ContainsAny(n, "/:") {
			names = append(names, named.String())
		}
	}
	for i, n := range names {
		named, err := ParseReference(n)
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		names[i] = named.String()
	}
	id, err := s.addLocalTarget(ctx, b, target, names, ps)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		res.IDs = append(res.IDs, id)
	}
	for _, n := range names {
		res.Names = append(res.Names, familiarOf(n))
	}
	return nil
}

// addLocal records an image whose blobs are all in the content store, from
// its manifest bytes; names are normalized references.
func (s *Store) addLocal(ctx context.Context, manifest []byte, names []string, ps *progressSink) (digest.Digest, error) {
	return s.addLocalTarget(ctx, manifest, ocispec.Descriptor{}, names, ps)
}

func (s *Store) addLocalTarget(ctx context.Context, manifest []byte, target ocispec.Descriptor, names []string, ps *progressSink) (digest.Digest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return "", fmt.Errorf("manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	mt := sniffMediaType(m.MediaType, manifest)
	if !isManifest(mt) {
		return "", fmt.Errorf("manifest: unsupported media type %q: %w", mt, errdefs.ErrNotImplemented)
	}
	mdesc, err := s.cs.WriteBytes(ctx, mt, manifest)
	if err != nil {
		return "", err
	}
	if target.Digest == "" {
		target = mdesc
	}
	cfgRaw, err := s.cs.ReadAll(m.Config.Digest)
	if err != nil {
		return "", fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		return "", fmt.Errorf("config %s: %v: %w", m.Config.Digest, err, errdefs.ErrInvalidArgument)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return "", fmt.Errorf("manifest %s has %d layers, config %d diff IDs: %w", mdesc.Digest, len(m.Layers), len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}
	rec, err := s.unpackImage(ctx, nil, mdesc, &m, &cfg, ps)
	if err != nil {
		return "", err
	}
	nm := map[string]ocispec.Descriptor{}
	for _, n := range names {
		nm[n] = target
	}
	if err := s.commitImage(rec, nm); err != nil {
		return "", err
	}
	return rec.ID, nil
}

// ctxReader stops a long copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
