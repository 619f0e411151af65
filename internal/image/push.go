package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushOptions configure Push.
type PushOptions struct {
	Auth     CredentialFunc
	Progress func(ProgressEvent)
}

// PushResult is docker push's last line: "<tag>: digest: <d> size: <n>".
type PushResult struct {
	Tag    string
	Digest digest.Digest
	Size   int64
}

// Push uploads a local image under ref: its layers (skipping those the
// registry has), config, then the manifest.
func (s *Store) Push(ctx context.Context, ref string, opts PushOptions) (*PushResult, error) {
	named, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	img, err := s.Get(ctx, named.String())
	if err != nil {
		if errdefs.IsNotFound(err) {
			//lint:ignore ST1005 docker's wording
			return nil, fmt.Errorf("An image does not exist locally with the tag: %s: %w", reference.FamiliarName(named), err)
		}
		return nil, err
	}
	ps := &progressSink{fn: opts.Progress}
	defer ps.close()
	ps.emit(ProgressEvent{Status: "The push refers to repository [" + named.Name() + "]"})

	eps, err := s.endpoints(named, true)
	if err != nil {
		return nil, err
	}
	ep := eps[len(eps)-1]
	creds := opts.Auth
	if creds == nil {
		creds = s.creds
	}
	auth, err := authenticator(creds, ep.host)
	if err != nil {
		return nil, err
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(s.baseTransport)}
	cl, err := s.client(ctx, ep, creds, true)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", FamiliarString(named), err)
	}

	mb, err := s.cs.ReadAll(img.Target.Digest)
	if err != nil {
		return nil, fmt.Errorf("push %s: manifest: %w", FamiliarString(named), err)
	}
	blobs := append([]ocispec.Descriptor{}, img.Manifest.Layers...)
	blobs = append(blobs, img.Manifest.Config)
	var (
		wg    sync.WaitGroup
		sem   = make(chan struct{}, s.opts.MaxConcurrentDownloads)
		mu    sync.Mutex
		first error
	)
	for i, b := range blobs {
		if isForeign(b.MediaType) {
			continue
		}
		isLayer := i < len(blobs)-1
		id := shortID(b.Digest)
		if isLayer {
			ps.emit(ProgressEvent{ID: id, Status: "Preparing"})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			err := s.pushBlob(ctx, cl, ep, b, ropts, func(ev string, cur int64) {
				if isLayer {
					ps.emit(ProgressEvent{ID: id, Status: ev, Current: cur, Total: b.Size})
				}
			})
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("push %s: blob %s: %w", FamiliarString(named), b.Digest, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	tag := "latest"
	var target name.Reference = ep.repo.Tag(tag)
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
		target = ep.repo.Tag(tag)
	} else if d, ok := named.(reference.Digested); ok {
		tag = d.Digest().String()
		target = ep.repo.Digest(tag)
	}
	if err := remote.Put(target, rawManifest{mb, img.Target.MediaType}, ropts...); err != nil {
		return nil, fmt.Errorf("push %s: manifest: %w", FamiliarString(named), classifyConnErr(err))
	}
	res := &PushResult{Tag: tag, Digest: img.Target.Digest, Size: int64(len(mb))}
	ps.emit(ProgressEvent{Status: fmt.Sprintf("%s: digest: %s size: %d", tag, res.Digest, res.Size)})
	// The pushed name now has a repo digest, as docker records it.
	if dn, err := repoDigestName(named, img.Target.Digest); err == nil {
		rec, _ := s.getRecord(img.ID)
		if rec != nil {
			_ = s.commitImage(rec, map[string]ocispec.Descriptor{dn: img.Target})
		}
	}
	return res, nil
}

func (s *Store) pushBlob(ctx context.Context, cl *client, ep endpoint, b ocispec.Descriptor, ropts []remote.Option, ev func(string, int64)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, cl.url("blobs", b.Digest.String()), nil)
	if err != nil {
		return err
	}
	if resp, err := cl.http.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ev("Layer already exists", 0)
			return nil
		}
	}
	if !s.cs.Has(b.Digest) {
		return fmt.Errorf("not in the local content store: %w", errdefs.ErrNotFound)
	}
	ev("Pushing", 0)
	l, err := partial.CompressedToLayer(storeLayer{s: s, d: b, ctx: ctx, progress: ev})
	if err != nil {
		return err
	}
	if err := remote.WriteLayer(ep.repo, l, ropts...); err != nil {
		return classifyConnErr(err)
	}
	ev("Pushed", 0)
	return nil
}

type storeLayer struct {
	s        *Store
	d        ocispec.Descriptor
	ctx      context.Context
	progress func(string, int64)
}

func (l storeLayer) Digest() (v1.Hash, error)            { return v1.NewHash(l.d.Digest.String()) }
func (l storeLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l storeLayer) MediaType() (types.MediaType, error) { return types.MediaType(l.d.MediaType), nil }
func (l storeLayer) Compressed() (io.ReadCloser, error) {
	f, err := l.s.cs.Open(l.d.Digest)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{&countingReader{r: f, fn: func(n int64) { l.progress("Pushing", n) }}, f}, nil
}

type rawManifest struct {
	b  []byte
	mt string
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.b, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.MediaType(m.mt), nil }

// SearchResult is one row of docker search (the registry's v1 JSON).
type SearchResult struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	StarCount   int    `json:"star_count"`
	IsOfficial  bool   `json:"is_official"`
	IsAutomated bool   `json:"is_automated"`
}

// SearchOptions configure Search.
type SearchOptions struct {
	// Limit is the maximum number of results (docker's default 25, max 100).
	Limit int
	// Filters: stars=<n>, is-official=true|false, is-automated=true|false.
	Filters map[string][]string
	Auth    CredentialFunc
}

// Search queries a registry's GET /v1/search. term may start with a
// registry host ("127.0.0.1:5000/busy"); otherwise Docker Hub is searched.
func (s *Store) Search(ctx context.Context, term string, opts SearchOptions) ([]SearchResult, error) {
	host, q := "docker.io", term
	if i := strings.IndexByte(term, '/'); i > 0 {
		first := term[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			host, q = first, term[i+1:]
		}
	}
	if opts.Limit <= 0 {
		opts.Limit = 25
	}
	if opts.Limit > 100 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("limit %d is outside the range of [1, 100]", opts.Limit))
	}
	var minStars int
	var official, automated *bool
	for k, vs := range opts.Filters {
		for _, v := range vs {
			switch k {
			case "stars":
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'stars=%s'", v))
				}
				minStars = n
			case "is-official", "is-automated":
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s=%s'", k, v))
				}
				if k == "is-official" {
					official = &b
				} else {
					automated = &b
				}
			default:
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s'", k))
			}
		}
	}
	apiHost := host
	if host == "docker.io" {
		apiHost = "index.docker.io"
	}
	scheme := "https"
	if s.insecure(host) {
		scheme = "http"
	}
	u := fmt.Sprintf("%s://%s/v1/search?q=%s&n=%d", scheme, apiHost, url.QueryEscape(q), opts.Limit)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	creds := opts.Auth
	if creds == nil {
		creds = s.creds
	}
	if c, err := creds(host); err == nil && c.Username != "" {
		req.SetBasicAuth(c.Username, c.Password)
	}
	resp, err := (&http.Client{Transport: s.baseTransport}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", host, classifyConnErr(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		// dockerd says "Unexpected status code 404"; name the registry
		// and what it lacks instead.
		return nil, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("registry %s does not support search (GET /v1/search answered %s)", host, resp.Status))
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("search %s: %w", host, &statusError{url: u, status: resp.StatusCode, body: strings.TrimSpace(string(b))})
	}
	var body struct {
		Results []SearchResult `json:"results"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxManifestSize)).Decode(&body); err != nil {
		return nil, fmt.Errorf("search %s: bad answer: %w", host, err)
	}
	out := body.Results[:0]
	for _, r := range body.Results {
		if r.StarCount < minStars || official != nil && r.IsOfficial != *official || automated != nil && r.IsAutomated != *automated {
			continue
		}
		out = append(out, r)
	}
	if len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}
