package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client/pkg/versions"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImagePullOptions is POST /images/create?fromImage=….
type ImagePullOptions struct {
	All           bool
	RegistryAuth  string // base64 X-Registry-Auth
	PrivilegeFunc func(context.Context) (string, error)
	Platforms     []ocispec.Platform
}

// ImagePull pulls an image; the answer is a JSON progress stream.
func (cli *Client) ImagePull(ctx context.Context, refStr string, options ImagePullOptions) (io.ReadCloser, error) {
	ref, err := parseNormalizedNamed(refStr)
	if err != nil {
		return nil, err
	}
	query := url.Values{}
	query.Set("fromImage", ref.name)
	if !options.All {
		if ref.digest != "" {
			query.Set("tag", ref.digest.String())
		} else {
			query.Set("tag", ref.tagOrLatest())
		}
	}
	if len(options.Platforms) > 0 {
		if len(options.Platforms) > 1 {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage("specifying multiple platforms is not yet supported")
		}
		query.Set("platform", formatPlatform(options.Platforms[0]))
	}
	return cli.withAuth(ctx, options.RegistryAuth, options.PrivilegeFunc, func(h header) (*response, error) {
		return cli.post(ctx, "/images/create", query, h, nil)
	})
}

// withAuth sends with the X-Registry-Auth header, and once more with fresh
// credentials from privilegeFunc if the daemon answers unauthorized.
func (cli *Client) withAuth(ctx context.Context, auth string, privilegeFunc func(context.Context) (string, error), send func(header) (*response, error)) (io.ReadCloser, error) {
	try := func(auth string) (*response, error) {
		h := header{}
		if auth != "" {
			h.Set(registry.AuthHeader, auth)
		}
		return send(h)
	}
	resp, err := try(auth)
	if cerrdefs.IsUnauthorized(err) && privilegeFunc != nil {
		ensureReaderClosed(resp)
		if auth, err = privilegeFunc(ctx); err != nil {
			return nil, err
		}
		resp, err = try(auth)
	}
	if err != nil {
		ensureReaderClosed(resp)
		return nil, err
	}
	return resp.Body, nil
}

// ImagePushOptions is POST /images/NAME/push.
type ImagePushOptions struct {
	All           bool
	RegistryAuth  string // base64 X-Registry-Auth
	PrivilegeFunc func(context.Context) (string, error)
	Platform      *ocispec.Platform `json:",omitempty"`
}

// ImagePush pushes an image; the answer is a JSON progress stream.
func (cli *Client) ImagePush(ctx context.Context, img string, options ImagePushOptions) (io.ReadCloser, error) {
	ref, err := parseNormalizedNamed(img)
	if err != nil {
		return nil, err
	}
	if ref.digest != "" {
		return nil, errors.New("cannot push a digest reference")
	}
	query := url.Values{}
	if !options.All {
		query.Set("tag", ref.tagOrLatest())
	}
	if options.Platform != nil {
		if err := cli.requiresVersion(ctx, "1.46", "platform"); err != nil {
			return nil, err
		}
		p, err := json.Marshal(*options.Platform)
		if err != nil {
			return nil, fmt.Errorf("invalid platform: %v", err)
		}
		query.Set("platform", string(p))
	}
	return cli.withAuth(ctx, options.RegistryAuth, options.PrivilegeFunc, func(h header) (*response, error) {
		return cli.post(ctx, "/images/"+ref.name+"/push", query, h, noBody)
	})
}

// ImageTagOptions is POST /images/SOURCE/tag.
type ImageTagOptions struct {
	Source string
	Target string
}

// ImageTagResult is empty.
type ImageTagResult struct{}

// ImageTag tags an image.
func (cli *Client) ImageTag(ctx context.Context, options ImageTagOptions) (ImageTagResult, error) {
	if err := parseAnyReference(options.Source); err != nil {
		return ImageTagResult{}, fmt.Errorf("error parsing reference: %q is not a valid repository/tag: %w", options.Source, err)
	}
	ref, err := parseNormalizedNamed(options.Target)
	if err != nil {
		return ImageTagResult{}, fmt.Errorf("error parsing reference: %q is not a valid repository/tag: %w", options.Target, err)
	}
	if ref.digest != "" {
		return ImageTagResult{}, errors.New("refusing to create a tag with a digest reference")
	}
	query := url.Values{"repo": {ref.name}, "tag": {ref.tagOrLatest()}}
	resp, err := cli.post(ctx, "/images/"+options.Source+"/tag", query, nil, nil)
	ensureReaderClosed(resp)
	return ImageTagResult{}, err
}

// ImageImportSource is the tar stream (SourceName "-") or a URL to import.
type ImageImportSource struct {
	Source     io.Reader
	SourceName string
}

// ImageImportOptions is POST /images/create?fromSrc=….
type ImageImportOptions struct {
	Tag      string
	Message  string
	Changes  []string
	Platform ocispec.Platform
}

// ImageImport creates an image from a tarball; the answer is a JSON progress stream.
func (cli *Client) ImageImport(ctx context.Context, source ImageImportSource, ref string, options ImageImportOptions) (io.ReadCloser, error) {
	if ref != "" {
		if _, err := parseNormalizedNamed(ref); err != nil {
			return nil, err
		}
	}
	query := url.Values{}
	if source.SourceName != "" {
		query.Set("fromSrc", source.SourceName)
	}
	if ref != "" {
		query.Set("repo", ref)
	}
	if options.Tag != "" {
		query.Set("tag", options.Tag)
	}
	if options.Message != "" {
		query.Set("message", options.Message)
	}
	if p := formatPlatform(options.Platform); p != "unknown" {
		query.Set("platform", p)
	}
	for _, c := range options.Changes {
		query.Add("changes", c)
	}
	return cli.stream(ctx, "POST", "/images/create", query, nil, source.Source)
}

// ImageLoadOption configures ImageLoad.
type ImageLoadOption func(*imageLoadOpts) error

type imageLoadOpts struct {
	quiet     bool
	platforms []ocispec.Platform
}

// ImageLoadWithQuiet suppresses the progress output.
func ImageLoadWithQuiet(quiet bool) ImageLoadOption {
	return func(o *imageLoadOpts) error { o.quiet = quiet; return nil }
}

// ImageLoad loads images from a tar stream; the answer is a JSON progress stream.
func (cli *Client) ImageLoad(ctx context.Context, input io.Reader, loadOpts ...ImageLoadOption) (io.ReadCloser, error) {
	var opts imageLoadOpts
	for _, o := range loadOpts {
		if err := o(&opts); err != nil {
			return nil, err
		}
	}
	query := url.Values{"quiet": {"0"}}
	if opts.quiet {
		query.Set("quiet", "1")
	}
	if err := cli.setPlatforms(ctx, query, "platform", opts.platforms); err != nil {
		return nil, err
	}
	return cli.stream(ctx, "POST", "/images/load", query, header{"Content-Type": {"application/x-tar"}}, input)
}

// setPlatforms adds each distinct platform as JSON (API ≥ 1.48).
func (cli *Client) setPlatforms(ctx context.Context, query url.Values, key string, platforms []ocispec.Platform) error {
	if len(platforms) == 0 {
		return nil
	}
	if err := cli.requiresVersion(ctx, "1.48", "platform"); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range platforms {
		b, err := json.Marshal(&platforms[i])
		if err != nil {
			return fmt.Errorf("%w: invalid platform: %v", cerrdefs.ErrInvalidArgument, err)
		}
		if !seen[string(b)] {
			seen[string(b)] = true
			query.Add(key, string(b))
		}
	}
	return nil
}

// ImageSaveOption configures ImageSave.
type ImageSaveOption func(*imageSaveOpts) error

type imageSaveOpts struct{ platforms []ocispec.Platform }

// ImageSaveWithPlatforms saves only the given platforms.
func ImageSaveWithPlatforms(platforms ...ocispec.Platform) ImageSaveOption {
	return func(o *imageSaveOpts) error {
		if o.platforms != nil {
			return fmt.Errorf("platforms already set to %v", o.platforms)
		}
		o.platforms = platforms
		return nil
	}
}

// ImageSave streams images as a docker-archive tar.
func (cli *Client) ImageSave(ctx context.Context, imageIDs []string, saveOpts ...ImageSaveOption) (io.ReadCloser, error) {
	var opts imageSaveOpts
	for _, o := range saveOpts {
		if err := o(&opts); err != nil {
			return nil, err
		}
	}
	query := url.Values{"names": imageIDs}
	if err := cli.setPlatforms(ctx, query, "platform", opts.platforms); err != nil {
		return nil, err
	}
	return cli.stream(ctx, "GET", "/images/get", query, nil, nil)
}

// ImageInspectOption configures ImageInspect.
type ImageInspectOption func(*imageInspectOpts)

type imageInspectOpts struct{ raw *bytes.Buffer }

// ImageInspectWithRawResponse also copies the raw JSON into raw.
func ImageInspectWithRawResponse(raw *bytes.Buffer) ImageInspectOption {
	return func(o *imageInspectOpts) { o.raw = raw }
}

// ImageInspectResult is the decoded image inspect JSON.
type ImageInspectResult struct {
	image.InspectResponse
}

type objectNotFoundError struct{ object, id string }

func (e objectNotFoundError) NotFound() {}

func (e objectNotFoundError) Error() string {
	return fmt.Sprintf("Error: No such %s: %s", e.object, e.id)
}

// ImageInspect inspects an image.
func (cli *Client) ImageInspect(ctx context.Context, imageID string, inspectOpts ...ImageInspectOption) (ImageInspectResult, error) {
	if imageID == "" {
		return ImageInspectResult{}, objectNotFoundError{object: "image", id: imageID}
	}
	var opts imageInspectOpts
	for _, o := range inspectOpts {
		o(&opts)
	}
	resp, err := cli.get(ctx, "/images/"+imageID+"/json", url.Values{}, nil)
	defer ensureReaderClosed(resp)
	if err != nil {
		return ImageInspectResult{}, err
	}
	buf := opts.raw
	if buf == nil {
		buf = &bytes.Buffer{}
	}
	if _, err := io.Copy(buf, resp.Body); err != nil {
		return ImageInspectResult{}, err
	}
	var out ImageInspectResult
	err = json.Unmarshal(buf.Bytes(), &out)
	return out, err
}

// ImageHistoryOption configures ImageHistory.
type ImageHistoryOption func(*imageHistoryOpts) error

type imageHistoryOpts struct{ platform *ocispec.Platform }

// ImageHistoryWithPlatform shows the history of one platform's image.
func ImageHistoryWithPlatform(platform ocispec.Platform) ImageHistoryOption {
	return func(o *imageHistoryOpts) error {
		if o.platform != nil {
			return fmt.Errorf("platform already set to %s", *o.platform)
		}
		o.platform = &platform
		return nil
	}
}

// ImageHistoryResult is an image's layer history.
type ImageHistoryResult = ListResult[image.HistoryResponseItem]

// ImageHistory shows an image's history.
func (cli *Client) ImageHistory(ctx context.Context, imageID string, historyOpts ...ImageHistoryOption) (ImageHistoryResult, error) {
	var opts imageHistoryOpts
	for _, o := range historyOpts {
		if err := o(&opts); err != nil {
			return ImageHistoryResult{}, err
		}
	}
	query := url.Values{}
	if opts.platform != nil {
		if err := cli.requiresVersion(ctx, "1.48", "platform"); err != nil {
			return ImageHistoryResult{}, err
		}
		p, err := json.Marshal(opts.platform)
		if err != nil {
			return ImageHistoryResult{}, fmt.Errorf("%w: invalid platform: %v", cerrdefs.ErrInvalidArgument, err)
		}
		query.Set("platform", string(p))
	}
	items, err := decode[[]image.HistoryResponseItem](cli.get(ctx, "/images/"+imageID+"/history", query, nil))
	return ImageHistoryResult{Items: items}, err
}

// ImageListOptions is GET /images/json.
type ImageListOptions struct {
	All        bool
	Filters    Filters
	SharedSize bool
	Manifests  bool
}

// ImageListResult is the list of images.
type ImageListResult = ListResult[image.Summary]

// ImageList lists images.
func (cli *Client) ImageList(ctx context.Context, options ImageListOptions) (ImageListResult, error) {
	query := url.Values{}
	options.Filters.updateURLValues(query)
	if options.All {
		query.Set("all", "1")
	}
	if options.SharedSize {
		query.Set("shared-size", "1")
	}
	if options.Manifests {
		if err := cli.checkVersion(ctx); err != nil {
			return ImageListResult{}, err
		}
		if versions.GreaterThanOrEqualTo(cli.ClientVersion(), "1.47") {
			query.Set("manifests", "1")
		}
	}
	items, err := decode[[]image.Summary](cli.get(ctx, "/images/json", query, nil))
	return ImageListResult{Items: items}, err
}

// ImageRemoveOptions is DELETE /images/NAME.
type ImageRemoveOptions struct {
	Platforms     []ocispec.Platform
	Force         bool
	PruneChildren bool
}

// ImageRemoveResult lists what was untagged and deleted.
type ImageRemoveResult = ListResult[image.DeleteResponse]

// ImageRemove removes an image.
func (cli *Client) ImageRemove(ctx context.Context, imageID string, options ImageRemoveOptions) (ImageRemoveResult, error) {
	query := url.Values{}
	if options.Force {
		query.Set("force", "1")
	}
	if !options.PruneChildren {
		query.Set("noprune", "1")
	}
	for i := range options.Platforms {
		b, err := json.Marshal(&options.Platforms[i])
		if err != nil {
			return ImageRemoveResult{}, fmt.Errorf("%w: invalid platform: %v", cerrdefs.ErrInvalidArgument, err)
		}
		if !containsString(query["platforms"], string(b)) {
			query.Add("platforms", string(b))
		}
	}
	items, err := decode[[]image.DeleteResponse](cli.delete(ctx, "/images/"+imageID, query, nil))
	return ImageRemoveResult{Items: items}, err
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ImagePruneOptions is POST /images/prune.
type ImagePruneOptions = FilterOptions

// ImagePruneResult is the prune report.
type ImagePruneResult = PruneResult[image.PruneReport]

// ImagePrune removes unused images.
func (cli *Client) ImagePrune(ctx context.Context, opts ImagePruneOptions) (ImagePruneResult, error) {
	return prune[image.PruneReport](ctx, cli, "/images/prune", opts.Filters, "Error retrieving disk usage: %v")
}

// ImageSearchOptions is GET /images/search.
type ImageSearchOptions struct {
	RegistryAuth  string
	PrivilegeFunc func(context.Context) (string, error)
	Filters       Filters
	Limit         int
}

// ImageSearchResult is the registry's search results.
type ImageSearchResult = ListResult[registry.SearchResult]

// ImageSearch searches a registry.
func (cli *Client) ImageSearch(ctx context.Context, term string, options ImageSearchOptions) (ImageSearchResult, error) {
	query := url.Values{"term": {term}}
	if options.Limit > 0 {
		query.Set("limit", strconv.Itoa(options.Limit))
	}
	options.Filters.updateURLValues(query)
	try := func(auth string) (*response, error) {
		// The header goes even when empty, as moby's client sends it.
		return cli.get(ctx, "/images/search", query, header{registry.AuthHeader: {auth}})
	}
	resp, err := try(options.RegistryAuth)
	if cerrdefs.IsUnauthorized(err) && options.PrivilegeFunc != nil {
		ensureReaderClosed(resp)
		auth, perr := options.PrivilegeFunc(ctx)
		if perr != nil {
			return ImageSearchResult{}, perr
		}
		resp, err = try(auth)
	}
	items, err := decode[[]registry.SearchResult](resp, err)
	return ImageSearchResult{Items: items}, err
}

// RegistryLoginOptions is POST /auth.
type RegistryLoginOptions struct {
	Username      string
	Password      string
	ServerAddress string
	IdentityToken string
	RegistryToken string
}

// RegistryLoginResult is the daemon's answer to a login.
type RegistryLoginResult struct{ Auth registry.AuthResponse }

// RegistryLogin checks credentials with a registry.
func (cli *Client) RegistryLogin(ctx context.Context, options RegistryLoginOptions) (RegistryLoginResult, error) {
	auth, err := decode[registry.AuthResponse](cli.post(ctx, "/auth", url.Values{}, nil, registry.AuthConfig{
		Username:      options.Username,
		Password:      options.Password,
		ServerAddress: options.ServerAddress,
		IdentityToken: options.IdentityToken,
		RegistryToken: options.RegistryToken,
	}))
	return RegistryLoginResult{Auth: auth}, err
}
