// Package client is the berth CLI's Docker Engine API client: exactly the
// calls the CLI makes.
//
// Why not github.com/moby/moby/client: it links OpenTelemetry and
// github.com/distribution/reference, whose package inits (regexp compiles,
// otel globals) and extra pages cost ~10 ms on every CLI start, and the CLI
// start is on the critical path of `berth run --rm`. Names of methods,
// options and results follow moby's client so the CLI code reads the same,
// and the wire behaviour (paths, headers, version negotiation, error texts)
// is the same as moby's client v0.6.3 against our daemon.
//
// It does not link net/http (see transport.go for why and for the wire
// protocol).
//
// Request flow:
//
//	method ─▶ get/post/put/delete ─▶ apiPath (negotiates /vX.Y on first use via _ping)
//	       ─▶ transport.roundTrip ─▶ connection errors → errConnectionFailed
//	       ─▶ status ≥ 400 → "Error response from daemon: …" classified by errdefs
//	attach/exec start ─▶ postHijacked: own dial, "Upgrade: tcp", 101 → raw conn
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-connections/tlsconfig"
	"github.com/moby/moby/client/pkg/versions"
)

const (
	// MaxAPIVersion is the newest API version this client speaks; it is
	// lowered to the daemon's version on the first request.
	MaxAPIVersion = "1.57"
	// MinAPIVersion is the oldest daemon API version accepted in negotiation.
	MinAPIVersion = "1.40"
	// DefaultDockerHost is used when no WithHost option is given.
	DefaultDockerHost = "unix:///var/run/docker.sock"
	// dummyHost is the HTTP Host sent over unix sockets, as moby's client does.
	dummyHost = "api.moby.localhost"
	// dialTimeout bounds connecting, as docker's go-connections/sockets does.
	dialTimeout = 10 * time.Second
)

// ErrRedirect is returned when the daemon redirects a non-GET request.
var ErrRedirect = errors.New("unexpected redirect in response")

// Client talks to one daemon. It is safe for concurrent use; Close drops
// idle connections.
type Client struct {
	host     string // as given, e.g. unix:///run/berth/berth.sock
	proto    string // unix, tcp, ...
	addr     string // socket path or host:port
	basePath string // path prefix of a tcp:// host URL
	scheme   string // http or https

	userAgent *string
	tlsConfig *tls.Config

	mu         sync.Mutex // guards version, negotiated
	version    string
	negotiated bool

	manualVersion string
	transport     *transport
}

// Opt configures a Client in New.
type Opt func(*Client) error

// WithHost sets the daemon address (unix://path, tcp://host:port[/base]).
func WithHost(host string) Opt {
	return func(c *Client) error {
		u, err := parseHostURL(host)
		if err != nil {
			return err
		}
		c.host, c.proto, c.addr, c.basePath = host, u.Scheme, u.Host, u.Path
		return nil
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Opt {
	return func(c *Client) error { c.userAgent = &ua; return nil }
}

// WithAPIVersion pins the API version and skips negotiation.
func WithAPIVersion(version string) Opt {
	return func(c *Client) error {
		version = strings.TrimSpace(version)
		if val := strings.TrimPrefix(version, "v"); val != "" {
			v, err := parseAPIVersion(val)
			if err != nil {
				return fmt.Errorf("invalid API version (%s): %w", version, err)
			}
			c.manualVersion = v
		}
		return nil
	}
}

// WithTLSClientConfig turns on TLS with the given PEM files (any may be "").
func WithTLSClientConfig(caFile, certFile, keyFile string) Opt {
	return func(c *Client) error {
		cfg, err := tlsconfig.Client(tlsconfig.Options{
			CAFile:             caFile,
			CertFile:           certFile,
			KeyFile:            keyFile,
			ExclusiveRootPools: true,
			MinVersion:         tls.VersionTLS12,
		})
		if err != nil {
			return fmt.Errorf("configure TLS: %w", err)
		}
		c.tlsConfig = cfg
		return nil
	}
}

// New returns a client for DefaultDockerHost changed by opts.
func New(opts ...Opt) (*Client, error) {
	c := &Client{version: MaxAPIVersion}
	if err := WithHost(DefaultDockerHost)(c); err != nil {
		return nil, err
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.manualVersion != "" {
		c.version, c.negotiated = c.manualVersion, true
	}
	switch c.proto {
	case "unix":
		if len(c.addr) > len(syscall.RawSockaddrUnix{}.Path) {
			return nil, fmt.Errorf("unix socket path %q is too long", c.addr)
		}
	case "npipe":
		return nil, errors.New("protocol not available")
	}
	c.scheme = "http"
	if c.tlsConfig != nil {
		c.scheme = "https"
	}
	c.transport = &transport{dial: c.dialFunc(), maxIdle: 6}
	return c, nil
}

// checkRedirect follows no redirect: a GET gets the 3xx response itself,
// other methods ErrRedirect (as the net/http client configured so did).
func checkRedirect(req *request, resp *response) error {
	switch resp.StatusCode {
	case 301, 302, 303, 307, 308:
		if req.Method != "GET" && resp.Header.Get("Location") != "" {
			return &url.Error{Op: opName(req.Method), URL: req.URL.String(), Err: ErrRedirect}
		}
	}
	return nil
}

// parseHostURL splits "proto://addr"; only tcp hosts may carry a base path.
func parseHostURL(host string) (*url.URL, error) {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok || addr == "" {
		return nil, fmt.Errorf("unable to parse docker host `%s`", host)
	}
	var basePath string
	if proto == "tcp" {
		u, err := url.Parse("tcp://" + addr)
		if err != nil {
			return nil, err
		}
		addr, basePath = u.Host, u.Path
	}
	return &url.URL{Scheme: proto, Host: addr, Path: basePath}, nil
}

// Close drops idle keep-alive connections.
func (cli *Client) Close() error {
	cli.transport.closeIdle()
	return nil
}

// DaemonHost returns the host the client was configured with.
func (cli *Client) DaemonHost() string { return cli.host }

// ClientVersion returns the API version in use (MaxAPIVersion until negotiated).
func (cli *Client) ClientVersion() string {
	cli.mu.Lock()
	defer cli.mu.Unlock()
	return cli.version
}

// checkVersion negotiates the API version with the daemon's _ping once.
func (cli *Client) checkVersion(ctx context.Context) error {
	cli.mu.Lock()
	defer cli.mu.Unlock()
	if cli.negotiated {
		return nil
	}
	apiVersion, err := cli.ping(ctx)
	if err != nil {
		return err
	}
	if apiVersion == "" {
		cli.version, cli.negotiated = MaxAPIVersion, true
		return nil
	}
	v, err := parseAPIVersion(apiVersion)
	if err != nil {
		return err
	}
	if versions.LessThan(v, MinAPIVersion) {
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("API version %s is not supported by this client: the minimum supported API version is %s", v, MinAPIVersion))
	}
	if versions.LessThan(v, cli.version) {
		cli.version = v
	}
	cli.negotiated = true
	return nil
}

// ping asks /_ping (HEAD, then GET as older daemons want) for Api-Version.
func (cli *Client) ping(ctx context.Context) (string, error) {
	p := path.Join(cli.basePath, "/_ping")
	req, err := cli.buildRequest(ctx, "HEAD", p, nil, nil)
	if err != nil {
		return "", err
	}
	resp, err := cli.doRequest(req)
	if err == nil && resp.StatusCode == 200 {
		ensureReaderClosed(resp)
		return resp.Header.Get("Api-Version"), nil
	}
	ensureReaderClosed(resp)
	req, err = cli.buildRequest(ctx, "GET", p, nil, nil)
	if err != nil {
		return "", err
	}
	resp, err = cli.doRequest(req)
	defer ensureReaderClosed(resp)
	if err != nil {
		return "", err
	}
	return resp.Header.Get("Api-Version"), checkResponseErr(resp)
}

// requiresVersion fails when the negotiated API is older than apiRequired.
func (cli *Client) requiresVersion(ctx context.Context, apiRequired, feature string) error {
	if err := cli.checkVersion(ctx); err != nil {
		return err
	}
	if v := cli.ClientVersion(); v != "" && versions.LessThan(v, apiRequired) {
		return fmt.Errorf("%q requires API version %s, but the Docker daemon API version is %s", feature, apiRequired, v)
	}
	return nil
}

// apiPath is /vX.Y/p?query; a failed negotiation leaves the current version
// (the request itself then reports the connection error).
func (cli *Client) apiPath(ctx context.Context, p string, query url.Values) string {
	_ = cli.checkVersion(ctx)
	v := cli.ClientVersion()
	var apiPath string
	if v != "" {
		apiPath = path.Join(cli.basePath, "/v"+strings.TrimPrefix(v, "v"), p)
	} else {
		apiPath = path.Join(cli.basePath, p)
	}
	return (&url.URL{Path: apiPath, RawQuery: query.Encode()}).String()
}

func (cli *Client) get(ctx context.Context, p string, query url.Values, headers header) (*response, error) {
	return cli.sendRequest(ctx, "GET", p, query, headers, nil)
}

func (cli *Client) head(ctx context.Context, p string, query url.Values, headers header) (*response, error) {
	return cli.sendRequest(ctx, "HEAD", p, query, headers, nil)
}

func (cli *Client) delete(ctx context.Context, p string, query url.Values, headers header) (*response, error) {
	return cli.sendRequest(ctx, "DELETE", p, query, headers, nil)
}

// post sends body as JSON (nil: no body).
func (cli *Client) post(ctx context.Context, p string, query url.Values, headers header, body any) (*response, error) {
	r, err := jsonEncode(body)
	if err != nil {
		return nil, err
	}
	if r != noBody {
		headers = headers.Clone()
		if headers == nil {
			headers = header{}
		}
		headers.Set("Content-Type", "application/json")
	}
	return cli.sendRequest(ctx, "POST", p, query, headers, r)
}

func (cli *Client) putRaw(ctx context.Context, p string, query url.Values, headers header, body io.Reader) (*response, error) {
	if body == nil {
		body = noBody
	}
	return cli.sendRequest(ctx, "PUT", p, query, headers, body)
}

func jsonEncode(data any) (io.Reader, error) {
	switch x := data.(type) {
	case nil:
		return noBody, nil
	case io.Reader:
		return x, nil
	}
	if v := reflect.ValueOf(data); v.Kind() == reflect.Pointer && v.IsNil() {
		return noBody, nil
	}
	b, err := marshalJSON(data)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

func (cli *Client) buildRequest(ctx context.Context, method, p string, headers header, body io.Reader) (*request, error) {
	req, err := newRequest(ctx, method, p, body)
	if err != nil {
		return nil, err
	}
	for k, v := range headers {
		req.Header[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	if cli.userAgent != nil {
		if *cli.userAgent == "" {
			req.Header.Set("User-Agent", "") // none
		} else {
			req.Header.Set("User-Agent", *cli.userAgent)
		}
	}
	req.URL.Scheme = cli.scheme
	req.URL.Host = cli.addr
	req.Host = cli.addr
	if cli.proto == "unix" || cli.proto == "npipe" {
		req.Host = dummyHost
	}
	return req, nil
}

func (cli *Client) sendRequest(ctx context.Context, method, p string, query url.Values, headers header, body io.Reader) (*response, error) {
	req, err := cli.buildRequest(ctx, method, cli.apiPath(ctx, p, query), headers, body)
	if err != nil {
		return nil, err
	}
	resp, err := cli.doRequest(req)
	if err != nil {
		return resp, err
	}
	return resp, checkResponseErr(resp)
}

// errConnectionFailed marks errors reaching the daemon (IsErrConnectionFailed).
type errConnectionFailed struct{ error }

func (e errConnectionFailed) Unwrap() error { return e.error }

// IsErrConnectionFailed reports whether err is a failure to reach the daemon.
func IsErrConnectionFailed(err error) bool {
	return errors.As(err, &errConnectionFailed{})
}

func connectionFailed(host string) error {
	//lint:ignore ST1005 moby's exact text; the CLI replaces it with berth's own
	return errConnectionFailed{fmt.Errorf("Cannot connect to the Docker daemon at %s. Is the docker daemon running?", host)}
}

// doRequest sends req and turns transport errors into moby's messages.
func (cli *Client) doRequest(req *request) (*response, error) {
	resp, err := cli.transport.roundTrip(req)
	if err == nil {
		if err := checkRedirect(req, resp); err != nil {
			ensureReaderClosed(resp)
			return nil, errConnectionFailed{fmt.Errorf("error during connect: %w", err)}
		}
		return resp, nil
	}
	msg := err.Error()
	if cli.scheme != "https" && strings.Contains(msg, "malformed HTTP response") {
		return nil, errConnectionFailed{fmt.Errorf("%w.\n* Are you trying to connect to a TLS-enabled daemon without TLS?", err)}
	}
	if cli.scheme == "https" && (strings.Contains(msg, "handshake failure") || strings.Contains(msg, "bad certificate") || strings.Contains(msg, "certificate required")) {
		return nil, errConnectionFailed{fmt.Errorf("the server probably has client authentication (--tlsverify) enabled; check your TLS client certification settings: %w", err)}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	if errors.Is(err, os.ErrPermission) {
		return nil, errConnectionFailed{fmt.Errorf("permission denied while trying to connect to the docker API at %v", cli.host)}
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, errConnectionFailed{fmt.Errorf("failed to connect to the docker API at %v; check if the path is correct and if the daemon is running: %w", cli.host, errors.Unwrap(err))}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return nil, errConnectionFailed{fmt.Errorf("failed to connect to the docker API at %v: %w", cli.host, dnsErr)}
	}
	var nErr net.Error
	if errors.As(err, &nErr) {
		if nErr.Timeout() || strings.Contains(nErr.Error(), "connection refused") || strings.Contains(nErr.Error(), "dial unix") {
			return nil, connectionFailed(cli.host)
		}
	}
	return nil, errConnectionFailed{fmt.Errorf("error during connect: %w", err)}
}

// errorResponse is the daemon's JSON error body.
type errorResponse struct {
	Message string `json:"message"`
}

// checkResponseErr turns a status ≥ 400 into "Error response from daemon: …",
// classified by errdefs from the status code.
func checkResponseErr(resp *response) error {
	if resp == nil || (resp.StatusCode >= 200 && resp.StatusCode < 400) {
		return nil
	}
	return classify(responseError(resp), resp.StatusCode)
}

func responseError(resp *response) error {
	var reqURL, reqMethod string
	if resp.Request != nil {
		reqURL, reqMethod = resp.Request.URL.String(), resp.Request.Method
	}
	statusMsg := resp.Status
	if statusMsg == "" {
		statusMsg = statusText(resp.StatusCode)
	}
	var body []byte
	if resp.Body != nil && reqMethod != "HEAD" {
		const bodyMax = 1 << 20
		lr := &io.LimitedReader{R: resp.Body, N: bodyMax}
		var err error
		if body, err = io.ReadAll(lr); err != nil {
			return err
		}
		if lr.N == 0 {
			if reqURL != "" {
				return fmt.Errorf("request returned %s with a message (> %d bytes) for API route and version %s, check if the server supports the requested API version", statusMsg, bodyMax, reqURL)
			}
			return fmt.Errorf("request returned %s with a message (> %d bytes); check if the server supports the requested API version", statusMsg, bodyMax)
		}
	}
	if len(body) == 0 {
		if reqURL != "" {
			return fmt.Errorf("request returned %s for API route and version %s, check if the server supports the requested API version", statusMsg, reqURL)
		}
		return fmt.Errorf("request returned %s; check if the server supports the requested API version", statusMsg)
	}
	var daemonErr error
	if resp.Header.Get("Content-Type") == "application/json" {
		var er errorResponse
		if err := json.Unmarshal(body, &er); err != nil {
			return fmt.Errorf("error reading JSON: %w", err)
		}
		if er.Message == "" {
			daemonErr = fmt.Errorf("API returned a %d (%s) but provided no error-message", resp.StatusCode, statusText(resp.StatusCode))
		} else {
			daemonErr = errors.New(strings.TrimSpace(er.Message))
		}
	} else {
		daemonErr = errors.New(strings.TrimSpace(string(body)))
	}
	return fmt.Errorf("Error response from daemon: %w", daemonErr)
}

// httpError keeps the message of err and answers errors.Is for the errdefs
// class of the HTTP status.
type httpError struct {
	err   error
	class error
}

func (e *httpError) Error() string        { return e.err.Error() }
func (e *httpError) Unwrap() error        { return e.err }
func (e *httpError) Is(target error) bool { return errors.Is(e.class, target) }

// FromStatusCode classifies err by an HTTP status code (as moby's client
// does for errors in JSON progress streams); 0 and statuses < 400 leave
// err as it is.
func FromStatusCode(err error, status int) error { return classify(err, status) }

func classify(err error, status int) error {
	if err == nil || status == 0 || (status >= 200 && status < 400) {
		return err
	}
	class := statusClass(status)
	if class == nil {
		switch {
		case status >= 400 && status < 500:
			class = cerrdefs.ErrInvalidArgument
		case status >= 500 && status < 600:
			class = cerrdefs.ErrInternal
		default:
			class = cerrdefs.ErrUnknown
		}
	}
	return &httpError{err: err, class: class}
}

// statusClass is the errdefs class of an HTTP status, as containerd's
// errhttp.ToNative maps it (that package imports net/http); nil: unknown.
func statusClass(status int) error {
	switch status {
	case 404:
		return cerrdefs.ErrNotFound
	case 400:
		return cerrdefs.ErrInvalidArgument
	case 409:
		return cerrdefs.ErrConflict
	case 412:
		return cerrdefs.ErrFailedPrecondition
	case 401:
		return cerrdefs.ErrUnauthenticated
	case 403:
		return cerrdefs.ErrPermissionDenied
	case 304:
		return cerrdefs.ErrNotModified
	case 429:
		return cerrdefs.ErrResourceExhausted
	case 500:
		return cerrdefs.ErrInternal
	case 501:
		return cerrdefs.ErrNotImplemented
	case 503:
		return cerrdefs.ErrUnavailable
	}
	return nil
}

// ensureReaderClosed drains a little of the body (so the connection can be
// reused) and closes it.
func ensureReaderClosed(resp *response) {
	if resp == nil || resp.Body == nil {
		return
	}
	if resp.ContentLength != 0 && (resp.Request == nil || resp.Request.Method != "HEAD") {
		_, _ = io.CopyN(io.Discard, resp.Body, 512)
	}
	_ = resp.Body.Close()
}

// decodeWithRaw decodes resp's JSON into out and also returns the raw bytes.
func decodeWithRaw[T any](resp *response, out *T) (json.RawMessage, error) {
	if resp == nil || resp.Body == nil {
		return nil, errors.New("empty response")
	}
	defer ensureReaderClosed(resp)
	var buf bytes.Buffer
	if err := json.NewDecoder(io.TeeReader(resp.Body, &buf)).Decode(out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decode takes a request's result: on success it decodes the JSON body
// into a T; either way the body is closed.
func decode[T any](resp *response, err error) (T, error) {
	var out T
	defer ensureReaderClosed(resp)
	if err != nil {
		return out, err
	}
	err = decodeBody(resp, &out)
	return out, err
}

// decodeBody decodes a JSON body. With a Content-Length (our daemon sends
// one with every JSON reply) the body is read into one buffer of that size
// and unmarshalled: json.Decoder grows its buffer from 512 bytes by
// doubling, which for `ps -a` of 1000 containers (660 KB) allocates and
// page-faults 2 MB.
func decodeBody(resp *response, out any) error {
	if n := resp.ContentLength; n > 0 && n <= 256<<20 {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return err
		}
		return json.Unmarshal(b, out)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// cancelReadCloser closes a streamed body when ctx ends, so a blocked Read returns.
type cancelReadCloser struct {
	rc    io.ReadCloser
	close func() error
	stop  func() bool
}

func newCancelReadCloser(ctx context.Context, rc io.ReadCloser) io.ReadCloser {
	c := &cancelReadCloser{rc: rc, close: sync.OnceValue(rc.Close)}
	c.stop = context.AfterFunc(ctx, func() { _ = c.close() })
	return c
}

func (c *cancelReadCloser) Read(p []byte) (int, error) { return c.rc.Read(p) }

func (c *cancelReadCloser) Close() error {
	c.stop()
	return c.close()
}

type emptyIDError string

func (e emptyIDError) InvalidParameter() {}

func (e emptyIDError) Error() string { return "invalid " + string(e) + " name or ID: value is empty" }

func trimID(objType, id string) (string, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return "", emptyIDError(objType)
	}
	return id, nil
}

// parseAPIVersion normalizes "1.41" (no "v") to "major.minor".
func parseAPIVersion(version string) (string, error) {
	if strings.TrimPrefix(strings.TrimSpace(version), "v") == "" {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("value is empty")
	}
	if strings.HasPrefix(version, "v") {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("must be formatted <major>.<minor>")
	}
	majS, minS, ok := strings.Cut(version, ".")
	if !ok {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("must be formatted <major>.<minor>")
	}
	major, err := strconv.Atoi(majS)
	if err != nil {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("invalid major version: must be formatted <major>.<minor>")
	}
	minor, err := strconv.Atoi(minS)
	if err != nil {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("invalid minor version: must be formatted <major>.<minor>")
	}
	return fmt.Sprintf("%d.%d", major, minor), nil
}

// ListResult is the answer of a list call.
type ListResult[T any] struct{ Items []T }

// PruneResult is the report of a prune call.
type PruneResult[T any] struct{ Report T }

// IDResult is the ID of a created object.
type IDResult struct{ ID string }

// FilterOptions are the options of calls that take only filters.
type FilterOptions struct{ Filters Filters }

// Filters is the "filters" query parameter: {"term": {"value": true}}.
type Filters map[string]map[string]bool

// Add adds values under term and returns f.
func (f Filters) Add(term string, values ...string) Filters {
	if _, ok := f[term]; !ok {
		f[term] = make(map[string]bool)
	}
	for _, v := range values {
		f[term][v] = true
	}
	return f
}

func (f Filters) updateURLValues(values url.Values) {
	if len(f) == 0 {
		values.Del("filters")
		return
	}
	b, err := marshalJSON(f)
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	values.Set("filters", string(b))
}

// Clone returns a deep copy of f.
func (f Filters) Clone() Filters {
	out := make(Filters, len(f))
	for term, values := range f {
		inner := make(map[string]bool, len(values))
		for v, on := range values {
			inner[v] = on
		}
		out[term] = inner
	}
	return out
}
