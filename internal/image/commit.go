package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CommitOptions configure Commit (docker commit).
type CommitOptions struct {
	// Parent is the image the container runs (ID or reference); "" for
	// none (a container of an empty image).
	Parent string
	// Ref names the new image ("" leaves it dangling).
	Ref string
	// Config replaces the parent's runtime config.
	Config ocispec.ImageConfig
	// Author and Comment go to the config and its history entry.
	Author, Comment string
	// CreatedBy is the history's command line.
	CreatedBy string
	// Healthcheck is written as config.Healthcheck, docker's extension of
	// the OCI config (nil: none). It is not taken from Parent: the caller
	// passes the container's, which already holds the parent's merged in.
	Healthcheck *dockerspec.HealthcheckConfig
}

// Commit makes a new image of Parent's layers plus layer, an uncompressed
// layer tar (whiteouts as .wh. entries). The layer is stored uncompressed,
// so its blob digest is its diff ID, and unpacked as the new top snapshot;
// the parent's layers are reused as they are.
func (s *Store) Commit(ctx context.Context, layer io.Reader, opts CommitOptions) (*Image, error) {
	var names []string
	if opts.Ref != "" {
		n, err := ParseReference(opts.Ref)
		if err != nil {
			return nil, err
		}
		if _, ok := n.(reference.Digested); ok {
			return nil, fmt.Errorf("commit: cannot commit to a digest reference: %w", errdefs.ErrInvalidArgument)
		}
		names = []string{n.String()}
	}
	now := time.Now().UTC()
	var cfg ocispec.Image
	var m ocispec.Manifest
	if opts.Parent != "" {
		parent, err := s.Get(ctx, opts.Parent)
		if err != nil {
			return nil, err
		}
		cfg = parent.Config
		m.Layers = append(m.Layers, parent.Manifest.Layers...)
	} else {
		cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	}
	cfg.Created = &now
	cfg.Author = opts.Author
	cfg.Config = opts.Config
	diffID, size, err := s.cs.WriteUnknown(ctx, layer)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = append(append([]digest.Digest(nil), cfg.RootFS.DiffIDs...), diffID)
	cfg.History = append(append([]ocispec.History(nil), cfg.History...),
		ocispec.History{Created: &now, Author: opts.Author, CreatedBy: opts.CreatedBy, Comment: opts.Comment})
	// docker's image config: OCI's plus extension keys in "config".
	cb, err := json.Marshal(dockerspec.DockerOCIImage{Image: cfg, Config: dockerspec.DockerOCIImageConfig{
		ImageConfig:             cfg.Config,
		DockerOCIImageConfigExt: dockerspec.DockerOCIImageConfigExt{Healthcheck: opts.Healthcheck},
	}})
	if err != nil {
		return nil, err
	}
	cdesc, err := s.cs.WriteBytes(ctx, ocispec.MediaTypeImageConfig, cb)
	if err != nil {
		return nil, err
	}
	m.SchemaVersion = 2
	m.MediaType = ocispec.MediaTypeImageManifest
	m.Config = cdesc
	m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: size})
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	id, err := s.addLocal(ctx, mb, names, nil)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return s.Get(ctx, id.String())
}
