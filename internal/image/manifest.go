package image

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// sniffMediaType trusts a manifest's own mediaType field over a missing or
// generic Content-Type (some registries answer application/json).
func sniffMediaType(ct string, body []byte) string {
	var probe struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     json.RawMessage   `json:"manifests"`
		Config        json.RawMessage   `json:"config"`
		FSLayers      []json.RawMessage `json:"fsLayers"`
	}
	if json.Unmarshal(body, &probe) != nil {
		return ct
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.SchemaVersion == 1 || probe.FSLayers != nil:
		return mediaTypeDockerSchema1
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest
	}
	return ct
}

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerManifestList
}

func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == mediaTypeDockerManifest
}

// isForeign reports non-distributable layers, which are never fetched.
func isForeign(mt string) bool {
	return mt == mediaTypeDockerForeign || strings.HasPrefix(mt, "application/vnd.oci.image.layer.nondistributable.")
}

// Platform is os/arch[/variant].
type Platform struct{ OS, Architecture, Variant string }

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ParsePlatform parses docker's --platform value; "" is linux on the host's
// architecture.
func ParsePlatform(s string) (Platform, error) {
	if s == "" {
		return normalizePlatform(Platform{OS: "linux", Architecture: runtime.GOARCH}), nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]: %w", s, errdefs.ErrInvalidArgument)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return normalizePlatform(p), nil
}

func normalizePlatform(p Platform) Platform {
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	}
	if p.Architecture == "arm64" && p.Variant == "v8" {
		p.Variant = ""
	}
	if p.Architecture == "arm" && p.Variant == "" {
		p.Variant = "v7"
	}
	if p.Architecture == "amd64" && p.Variant == "v1" {
		p.Variant = ""
	}
	return p
}

// selectManifest picks the manifest for want from an index: exact variant
// match first, then an entry with no variant.
func selectManifest(idx *ocispec.Index, want Platform) (ocispec.Descriptor, error) {
	var fallback *ocispec.Descriptor
	for i, m := range idx.Manifests {
		if m.Platform == nil || !isManifest(m.MediaType) && m.MediaType != "" {
			continue
		}
		got := normalizePlatform(Platform{OS: m.Platform.OS, Architecture: m.Platform.Architecture, Variant: m.Platform.Variant})
		if got.OS != want.OS || got.Architecture != want.Architecture {
			continue
		}
		if got.Variant == want.Variant {
			return m, nil
		}
		if fallback == nil && (got.Variant == "" || want.Variant == "") {
			fallback = &idx.Manifests[i]
		}
	}
	if fallback != nil {
		return *fallback, nil
	}
	var have []string
	for _, m := range idx.Manifests {
		if m.Platform != nil {
			have = append(have, Platform{OS: m.Platform.OS, Architecture: m.Platform.Architecture, Variant: m.Platform.Variant}.String())
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("no matching manifest for %s in the manifest list entries (have %s): %w", want, strings.Join(have, ", "), errdefs.ErrNotFound)
}

// chainIDs computes the OCI chain IDs: ChainID(L0)=DiffID(L0),
// ChainID(Ln)=sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
func chainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}
