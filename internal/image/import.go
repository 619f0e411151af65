package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/archive"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImportOptions configure Import (docker import).
type ImportOptions struct {
	// Ref names the new image ("" leaves it dangling).
	Ref string
	// Changes are Dockerfile instructions applied to the config:
	// CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL.
	// HEALTHCHECK is not among them: the daemon parses it (as for commit)
	// into Healthcheck.
	Changes []string
	// Message is the history comment.
	Message string
	// Platform of the image ("" = linux/host arch).
	Platform string
	// Healthcheck is written as config.Healthcheck (nil: none), as commit
	// does; the daemon parses HEALTHCHECK changes into it.
	Healthcheck *dockerspec.HealthcheckConfig
}

// Import turns a rootfs tarball (plain, gzip or zstd) into a one-layer image.
// The layer is stored uncompressed, so its blob digest is its diff ID.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error) {
	var named reference.Named
	if opts.Ref != "" {
		n, err := ParseReference(opts.Ref)
		if err != nil {
			return nil, err
		}
		if _, ok := n.(reference.Digested); ok {
			return nil, fmt.Errorf("import: cannot import to a digest reference: %w", errdefs.ErrInvalidArgument)
		}
		named = n
	}
	plat, err := ParsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	cfg := ocispec.Image{
		Created:  &now,
		Platform: ocispec.Platform{OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant},
	}
	if plat.OS == "" {
		cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	}
	if err := ApplyChanges(&cfg.Config, opts.Changes); err != nil {
		return nil, err
	}
	dr, err := archive.Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer dr.Close()
	diffID, size, err := s.cs.WriteUnknown(ctx, dr)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from -"
	}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}
	cfg.History = []ocispec.History{{Created: &now, CreatedBy: "", Comment: comment}}
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
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cdesc,
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: size}},
	}
	m.SchemaVersion = 2
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var names []string
	if named != nil {
		names = []string{named.String()}
	}
	id, err := s.addLocal(ctx, mb, names, nil)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return s.Get(ctx, id.String())
}

// ApplyChanges applies docker's --change instructions (Dockerfile syntax,
// JSON or shell form) to an image config.
func ApplyChanges(c *ocispec.ImageConfig, changes []string) error {
	for _, ch := range changes {
		ch = strings.TrimSpace(ch)
		if ch == "" {
			continue
		}
		instr, rest, _ := strings.Cut(ch, " ")
		rest = strings.TrimSpace(rest)
		bad := func(why string) error {
			return fmt.Errorf("invalid change %q: %s: %w", ch, why, errdefs.ErrInvalidArgument)
		}
		switch strings.ToUpper(instr) {
		case "CMD":
			c.Cmd = cmdForm(rest)
		case "ENTRYPOINT":
			c.Entrypoint = cmdForm(rest)
		case "ENV":
			kv, err := keyValues(rest, true)
			if err != nil || len(kv) == 0 {
				return bad("want ENV key=value or ENV key value")
			}
			for _, p := range kv {
				c.Env = setEnv(c.Env, p[0], p[1])
			}
		case "LABEL":
			kv, err := keyValues(rest, false)
			if err != nil || len(kv) == 0 {
				return bad("want LABEL key=value")
			}
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			for _, p := range kv {
				c.Labels[p[0]] = p[1]
			}
		case "WORKDIR":
			if rest == "" {
				return bad("WORKDIR needs a path")
			}
			c.WorkingDir = unquote(rest)
		case "USER":
			if rest == "" {
				return bad("USER needs a name")
			}
			c.User = unquote(rest)
		case "STOPSIGNAL":
			if rest == "" {
				return bad("STOPSIGNAL needs a signal")
			}
			c.StopSignal = unquote(rest)
		case "EXPOSE":
			if c.ExposedPorts == nil {
				c.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range strings.Fields(rest) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				c.ExposedPorts[strings.ToLower(p)] = struct{}{}
			}
		case "VOLUME":
			if c.Volumes == nil {
				c.Volumes = map[string]struct{}{}
			}
			var vols []string
			if strings.HasPrefix(rest, "[") {
				if err := json.Unmarshal([]byte(rest), &vols); err != nil {
					return bad("bad JSON array")
				}
			} else {
				vols = strings.Fields(rest)
			}
			for _, v := range vols {
				c.Volumes[v] = struct{}{}
			}
		default:
			return fmt.Errorf("%s is not a valid change command: %w", instr, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// cmdForm parses JSON form (["a","b"]) or shell form (wrapped in /bin/sh -c).
func cmdForm(s string) []string {
	if strings.HasPrefix(s, "[") {
		var args []string
		if json.Unmarshal([]byte(s), &args) == nil {
			return args
		}
	}
	return []string{"/bin/sh", "-c", s}
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// keyValues parses "k=v k2="v 2"" (and, for ENV, the legacy "k v" form).
func keyValues(s string, legacy bool) ([][2]string, error) {
	words, err := shellWords(s)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, nil
	}
	if legacy && !strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(s, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// shellWords splits on spaces, honouring quotes and backslash escapes.
func shellWords(s string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		quote rune
		in    bool
		esc   bool
	)
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\' && quote != '\'':
			esc, in = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote")
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
