package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/image/content"
)

// Registry protocol used here (distribution API v2), all over one
// authenticated transport per repository (go-containerregistry's transport
// does the /v2/ ping, basic auth and bearer token dance):
//
//	GET /v2/<repo>/manifests/<tag|digest>   Accept: OCI + docker schema2 manifest/index types
//	GET /v2/<repo>/blobs/<digest>           Range: bytes=<off>- when resuming after a transient error
//	GET /v1/search?q=<term>&n=<limit>       (Search)
//
// Blobs and manifests are fetched by hand rather than with remote.Layer so a
// retry can resume where the last attempt stopped and a stalled body can be
// cut by an idle timer.

const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeDockerForeign      = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	mediaTypeDockerManifest, mediaTypeDockerManifestList,
}, ", ")

// maxManifestSize bounds what we read for a manifest or config (docker uses 4 MiB for manifests).
const maxManifestSize = 8 << 20

// statusError is an HTTP answer we did not want.
type statusError struct {
	url    string
	status int
	body   string
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("GET %s: %s", e.url, http.StatusText(e.status))
	if e.body != "" {
		s += ": " + e.body
	}
	return s
}

func (e *statusError) Unwrap() error {
	switch e.status {
	case http.StatusNotFound:
		return errdefs.ErrNotFound
	case http.StatusUnauthorized:
		return errdefs.ErrUnauthenticated
	case http.StatusForbidden:
		return errdefs.ErrPermissionDenied
	}
	if e.status >= 500 {
		return errdefs.ErrUnavailable
	}
	return errdefs.ErrUnknown
}

var errIdle = errors.New("stalled: no data within the idle timeout")

// transient reports whether err is worth another attempt.
func transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errIdle) {
		return true
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.status >= 500 || se.status == http.StatusTooManyRequests || se.status == http.StatusRequestTimeout
	}
	if errors.Is(err, errIdle) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.Temporary()
	}
	return false
}

// endpoint is one place a repository can be fetched from: the registry
// itself or a mirror of it.
type endpoint struct {
	repo   name.Repository
	mirror bool
	// host is the registry host as credentials are keyed ("docker.io").
	host string
}

// registryHost returns docker's host name for a reference (docker.io for Hub).
func registryHost(named reference.Named) string { return reference.Domain(named) }

// endpoints lists where named can be pulled from, mirrors first.
func (s *Store) endpoints(named reference.Named, push bool) ([]endpoint, error) {
	host := registryHost(named)
	path := reference.Path(named)
	var eps []endpoint
	if !push {
		mirrors := s.opts.Mirrors[host]
		if host == "docker.io" {
			mirrors = append(append([]string{}, mirrors...), s.opts.RegistryMirrors...)
		}
		for _, m := range mirrors {
			insecure := strings.HasPrefix(m, "http://")
			m = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(m, "https://"), "http://"), "/")
			mhost, prefix, _ := strings.Cut(m, "/")
			reg, err := s.registry(mhost, insecure)
			if err != nil {
				return nil, fmt.Errorf("mirror %q: %w", m, err)
			}
			p := path
			if prefix != "" {
				p = prefix + "/" + path
			}
			eps = append(eps, endpoint{repo: reg.Repo(p), mirror: true, host: mhost})
		}
	}
	regHost := host
	if host == "docker.io" {
		regHost = name.DefaultRegistry
	}
	reg, err := s.registry(regHost, false)
	if err != nil {
		return nil, err
	}
	eps = append(eps, endpoint{repo: reg.Repo(path), host: host})
	return eps, nil
}

func (s *Store) registry(host string, forceInsecure bool) (name.Registry, error) {
	var opts []name.Option
	if forceInsecure || s.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return reg, fmt.Errorf("registry %q: %v: %w", host, err, errdefs.ErrInvalidArgument)
	}
	return reg, nil
}

// insecure reports whether host may be reached over plain HTTP: listed in
// InsecureRegistries (as host[:port] or in a CIDR), or a loopback address.
func (s *Store) insecure(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	if ip == nil {
		if addrs, err := net.LookupIP(h); err == nil && len(addrs) > 0 && len(s.insecureNets) > 0 {
			ip = addrs[0]
		}
	}
	if ip != nil && ip.IsLoopback() {
		return true
	}
	for _, r := range s.opts.InsecureRegistries {
		if r == host || r == h {
			return true
		}
	}
	for _, n := range s.insecureNets {
		if ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// client is an authenticated connection to one repository.
type client struct {
	ep   endpoint
	http *http.Client
	idle time.Duration
	st   *Store
}

type clientKey struct {
	repo string
	push bool
	cred Credential
}

// client returns an authenticated client for ep, cached per repository and
// credential so concurrent pulls share the token handshake and a new login
// takes effect at once.
func (s *Store) client(ctx context.Context, ep endpoint, creds CredentialFunc, push bool) (*client, error) {
	if creds == nil {
		creds = s.creds
	}
	cred, err := creds(ep.host)
	if err != nil {
		return nil, err
	}
	key := clientKey{ep.repo.String(), push, cred}
	s.clientsMu.Lock()
	c, ok := s.clients[key]
	s.clientsMu.Unlock()
	if ok {
		return c, nil
	}
	var auth authn.Authenticator = authn.Anonymous
	if cred != (Credential{}) {
		auth = credAuthenticator{cred}
	}
	scope := ep.repo.Scope(transport.PullScope)
	if push {
		scope = ep.repo.Scope(transport.PushScope)
	}
	var rt http.RoundTripper
	err = s.retry(ctx, func(int) error {
		var err error
		rt, err = transport.NewWithContext(ctx, ep.repo.Registry, auth, s.baseTransport, []string{scope})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", ep.repo.RegistryStr(), classifyConnErr(err))
	}
	c = &client{ep: ep, http: &http.Client{Transport: rt}, idle: s.opts.IdleTimeout, st: s}
	s.clientsMu.Lock()
	s.clients[key] = c
	s.clientsMu.Unlock()
	return c, nil
}

// Login checks cred against a registry as docker login does (the /v2/
// handshake with the credentials, a token fetch where the registry uses
// tokens). serverAddress may be docker's "https://index.docker.io/v1/".
// Storing the credential (config.json) is the CLI's job.
func (s *Store) Login(ctx context.Context, serverAddress string, cred Credential) error {
	host := configKeyHost(serverAddress)
	if host == "" {
		host = "docker.io"
	}
	regHost := host
	if host == "docker.io" {
		regHost = name.DefaultRegistry
	}
	reg, err := s.registry(regHost, false)
	if err != nil {
		return err
	}
	rt, err := transport.NewWithContext(ctx, reg, credAuthenticator{cred}, s.baseTransport, []string{reg.Scope("")})
	if err != nil {
		return fmt.Errorf("login to %s: %w", host, classifyConnErr(err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("login to %s: %w", host, classifyConnErr(err))
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("login to %s: unauthorized: incorrect username or password: %w", host, errdefs.ErrUnauthenticated)
	}
	return fmt.Errorf("login to %s: %w", host, &statusError{url: req.URL.String(), status: resp.StatusCode})
}

func classifyConnErr(err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w: %w", err, errdefs.ErrUnauthenticated)
		case http.StatusForbidden:
			return fmt.Errorf("%w: %w", err, errdefs.ErrPermissionDenied)
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
		}
	}
	if transient(err) {
		return fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable)
	}
	return err
}

func (c *client) url(kind, ref string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", c.ep.repo.Registry.Scheme(), c.ep.repo.RegistryStr(), c.ep.repo.RepositoryStr(), kind, ref)
}

func (c *client) get(ctx context.Context, url string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, &statusError{url: url, status: resp.StatusCode, body: strings.TrimSpace(string(b))}
	}
	return resp, nil
}

// manifest fetches a manifest or index by tag or digest. When ref is a
// digest the bytes are verified against it.
func (c *client) manifest(ctx context.Context, ref string) (ocispec.Descriptor, []byte, error) {
	var (
		desc ocispec.Descriptor
		body []byte
	)
	err := c.st.retry(ctx, func(int) error {
		resp, err := c.get(ctx, c.url("manifests", ref), http.Header{"Accept": {manifestAccept}})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
		if err != nil {
			return err
		}
		if len(body) > maxManifestSize {
			return fmt.Errorf("manifest %s is larger than %d bytes: %w", ref, maxManifestSize, errdefs.ErrInvalidArgument)
		}
		desc = ocispec.Descriptor{
			MediaType: strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0]),
			Digest:    digest.FromBytes(body),
			Size:      int64(len(body)),
		}
		return nil
	})
	if err != nil {
		return desc, nil, err
	}
	if want, err := digest.Parse(ref); err == nil && want != desc.Digest {
		return desc, nil, fmt.Errorf("manifest %s: content has digest %s: %w", want, desc.Digest, content.ErrDigestMismatch)
	}
	desc.MediaType = sniffMediaType(desc.MediaType, body)
	return desc, body, nil
}

// fetchBlob writes blob desc into the leader ingest ing, resuming after
// transient failures with a Range request.
func (c *client) fetchBlob(ctx context.Context, desc ocispec.Descriptor, ing *content.Ingest, progress func(int64)) error {
	return c.st.retry(ctx, func(int) error {
		off := ing.Offset()
		hdr := http.Header{}
		if off > 0 {
			// A closed range: some registries refuse the open form.
			hdr.Set("Range", fmt.Sprintf("bytes=%d-%d", off, desc.Size-1))
		}
		actx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		resp, err := c.get(actx, c.url("blobs", desc.Digest.String()), hdr)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body := io.Reader(resp.Body)
		if off > 0 && resp.StatusCode != http.StatusPartialContent {
			// Server ignored Range: skip what we already have.
			if _, err := io.CopyN(io.Discard, body, off); err != nil {
				return err
			}
		}
		ir := &idleReader{r: body, d: c.idle, cancel: cancel}
		_, err = copyProgress(ing, ir, off, progress)
		ir.stop()
		if err != nil && context.Cause(actx) == errIdle {
			return errIdle
		}
		return err
	})
}

func copyProgress(w io.Writer, r io.Reader, start int64, progress func(int64)) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	last := time.Time{}
	for {
		m, err := r.Read(buf)
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
			if progress != nil {
				if now := time.Now(); now.Sub(last) > 100*time.Millisecond {
					last = now
					progress(start + n)
				}
			}
		}
		if err == io.EOF {
			if progress != nil {
				progress(start + n)
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// idleReader cancels the request when a Read has waited longer than d.
type idleReader struct {
	r      io.Reader
	d      time.Duration
	cancel context.CancelCauseFunc
	once   sync.Once
	t      *time.Timer
}

func (ir *idleReader) Read(p []byte) (int, error) {
	if ir.d <= 0 {
		return ir.r.Read(p)
	}
	ir.once.Do(func() {
		ir.t = time.AfterFunc(ir.d, func() { ir.cancel(errIdle) })
	})
	ir.t.Reset(ir.d)
	n, err := ir.r.Read(p)
	return n, err
}

func (ir *idleReader) stop() {
	if ir.t != nil {
		ir.t.Stop()
	}
}

// retry runs fn up to 1+Retries times while it fails transiently, backing
// off exponentially between attempts.
func (s *Store) retry(ctx context.Context, fn func(attempt int) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = fn(attempt)
		if err == nil || !transient(err) || attempt >= s.opts.Retries || ctx.Err() != nil {
			return err
		}
		d := s.opts.RetryBackoff << attempt
		if d > 10*time.Second {
			d = 10 * time.Second
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return err
		}
	}
}
