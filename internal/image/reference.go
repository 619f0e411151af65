package image

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// ParseReference normalizes s as docker does: "busybox" becomes
// docker.io/library/busybox:latest; a reference with a digest keeps it (and
// its tag, if given). Invalid input is errdefs.ErrInvalidArgument.
func ParseReference(s string) (reference.Named, error) {
	if s == "" {
		return nil, fmt.Errorf("invalid reference format: empty: %w", errdefs.ErrInvalidArgument)
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
	}
	if _, ok := named.(reference.Digested); ok {
		return named, nil
	}
	return reference.TagNameOnly(named), nil
}

// FamiliarString renders a normalized reference as docker shows it:
// docker.io/library/busybox:latest → busybox:latest.
func FamiliarString(r reference.Reference) string { return reference.FamiliarString(r) }

// familiarOf renders a stored (normalized) name for output.
func familiarOf(stored string) string {
	r, err := reference.ParseNormalizedNamed(stored)
	if err != nil {
		return stored
	}
	return reference.FamiliarString(r)
}

// isShortID reports whether s looks like a (possibly prefixed) image ID.
func isShortID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// repoDigestName returns the stored name for repo@dgst.
func repoDigestName(named reference.Named, dgst digest.Digest) (string, error) {
	c, err := reference.WithDigest(reference.TrimNamed(named), dgst)
	if err != nil {
		return "", err
	}
	return c.String(), nil
}
