package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ContainerCreateOptions is POST /containers/create.
type ContainerCreateOptions struct {
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
	Platform         *ocispec.Platform
	Name             string
	Image            string
}

// ContainerCreateResult is the new container's ID and the daemon's warnings.
type ContainerCreateResult struct {
	ID       string
	Warnings []string
}

// ContainerCreate creates a container.
func (cli *Client) ContainerCreate(ctx context.Context, options ContainerCreateOptions) (ContainerCreateResult, error) {
	cfg := options.Config
	if cfg == nil {
		cfg = &container.Config{}
	}
	if options.Image != "" {
		if cfg.Image != "" {
			return ContainerCreateResult{}, cerrdefs.ErrInvalidArgument.WithMessage("either Image or config.Image should be set")
		}
		c := *cfg
		c.Image = options.Image
		cfg = &c
	}
	if cfg.Image == "" {
		return ContainerCreateResult{}, cerrdefs.ErrInvalidArgument.WithMessage("config.Image or Image is required")
	}
	query := url.Values{}
	if options.Platform != nil {
		if p := formatPlatform(*options.Platform); p != "unknown" {
			query.Set("platform", p)
		}
	}
	if options.Name != "" {
		query.Set("name", options.Name)
	}
	resp, err := cli.post(ctx, "/containers/create", query, nil, container.CreateRequest{
		Config:           cfg,
		HostConfig:       normalizeHostConfig(options.HostConfig),
		NetworkingConfig: options.NetworkingConfig,
	})
	defer ensureReaderClosed(resp)
	if err != nil {
		return ContainerCreateResult{}, err
	}
	var r container.CreateResponse
	err = json.NewDecoder(resp.Body).Decode(&r)
	return ContainerCreateResult{ID: r.ID, Warnings: r.Warnings}, err
}

func formatPlatform(p ocispec.Platform) string {
	if p.OS == "" {
		return "unknown"
	}
	return path.Join(p.OS, p.Architecture, p.Variant)
}

// normalizeHostConfig writes capabilities as CAP_X, sorted and unique, as
// moby's client sends them.
func normalizeHostConfig(hc *container.HostConfig) *container.HostConfig {
	if hc == nil {
		return nil
	}
	n := *hc
	n.CapAdd = normalizeCapabilities(hc.CapAdd)
	n.CapDrop = normalizeCapabilities(hc.CapDrop)
	return &n
}

func normalizeCapabilities(caps []string) []string {
	out := slices.Clone(caps)
	for i, c := range out {
		c = strings.ToUpper(c)
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out[i] = c
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ContainerInspectOptions is GET /containers/ID/json.
type ContainerInspectOptions struct{ Size bool }

// ContainerInspectResult holds the decoded and the raw inspect JSON.
type ContainerInspectResult struct {
	Container container.InspectResponse
	Raw       json.RawMessage
}

// ContainerInspect inspects a container.
func (cli *Client) ContainerInspect(ctx context.Context, containerID string, options ContainerInspectOptions) (ContainerInspectResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return ContainerInspectResult{}, err
	}
	query := url.Values{}
	if options.Size {
		query.Set("size", "1")
	}
	resp, err := cli.get(ctx, "/containers/"+containerID+"/json", query, nil)
	if err != nil {
		return ContainerInspectResult{}, err
	}
	var out ContainerInspectResult
	out.Raw, err = decodeWithRaw(resp, &out.Container)
	return out, err
}

// ContainerListOptions is GET /containers/json.
type ContainerListOptions struct {
	Size    bool
	All     bool
	Limit   int
	Filters Filters
}

// ContainerListResult is the list of containers.
type ContainerListResult = ListResult[container.Summary]

// ContainerList lists containers.
func (cli *Client) ContainerList(ctx context.Context, options ContainerListOptions) (ContainerListResult, error) {
	items, err := ListContainers[container.Summary](ctx, cli, options)
	return ContainerListResult{Items: items}, err
}

// ListContainers is ContainerList decoding into T, a struct with a subset
// of container.Summary's fields: the fields T lacks are skipped unread,
// which saves most of the allocations (and, on a host where a page fault
// is expensive, most of the time) when listing thousands of containers.
func ListContainers[T any](ctx context.Context, cli *Client, options ContainerListOptions) ([]T, error) {
	query := url.Values{}
	if options.All {
		query.Set("all", "1")
	}
	if options.Limit > 0 {
		query.Set("limit", strconv.Itoa(options.Limit))
	}
	if options.Size {
		query.Set("size", "1")
	}
	options.Filters.updateURLValues(query)
	return decode[[]T](cli.get(ctx, "/containers/json", query, nil))
}

// ContainerStartOptions is POST /containers/ID/start.
type ContainerStartOptions struct {
	CheckpointID  string
	CheckpointDir string
}

// ContainerStartResult is empty.
type ContainerStartResult struct{}

// ContainerStart starts a container.
func (cli *Client) ContainerStart(ctx context.Context, containerID string, options ContainerStartOptions) (ContainerStartResult, error) {
	query := url.Values{}
	if options.CheckpointID != "" {
		query.Set("checkpoint", options.CheckpointID)
	}
	if options.CheckpointDir != "" {
		query.Set("checkpoint-dir", options.CheckpointDir)
	}
	return ContainerStartResult{}, cli.containerPost(ctx, "container", containerID, "/start", query)
}

// containerPost is a body-less POST /containers/ID<action> (or /exec/…)
// whose answer carries nothing the CLI needs.
func (cli *Client) containerPost(ctx context.Context, kind, id, action string, query url.Values) error {
	id, err := trimID(kind, id)
	if err != nil {
		return err
	}
	prefix := "/containers/"
	if kind == "exec" {
		prefix = "/exec/"
	}
	resp, err := cli.post(ctx, prefix+id+action, query, nil, nil)
	ensureReaderClosed(resp)
	return err
}

// ContainerStopOptions is POST /containers/ID/stop.
type ContainerStopOptions struct {
	Signal  string `json:",omitempty"`
	Timeout *int   `json:",omitempty"`
}

// ContainerStopResult is empty.
type ContainerStopResult struct{}

// ContainerStop stops a container.
func (cli *Client) ContainerStop(ctx context.Context, containerID string, options ContainerStopOptions) (ContainerStopResult, error) {
	return ContainerStopResult{}, cli.containerPost(ctx, "container", containerID, "/stop", stopQuery(options.Signal, options.Timeout))
}

func stopQuery(signal string, timeout *int) url.Values {
	query := url.Values{}
	if timeout != nil {
		query.Set("t", strconv.Itoa(*timeout))
	}
	if signal != "" {
		query.Set("signal", signal)
	}
	return query
}

// ContainerRestartOptions is POST /containers/ID/restart.
type ContainerRestartOptions = ContainerStopOptions

// ContainerRestartResult is empty.
type ContainerRestartResult struct{}

// ContainerRestart restarts a container.
func (cli *Client) ContainerRestart(ctx context.Context, containerID string, options ContainerRestartOptions) (ContainerRestartResult, error) {
	return ContainerRestartResult{}, cli.containerPost(ctx, "container", containerID, "/restart", stopQuery(options.Signal, options.Timeout))
}

// ContainerKillOptions is POST /containers/ID/kill.
type ContainerKillOptions struct {
	Signal string `json:",omitempty"`
}

// ContainerKillResult is empty.
type ContainerKillResult struct{}

// ContainerKill sends a signal to a container.
func (cli *Client) ContainerKill(ctx context.Context, containerID string, options ContainerKillOptions) (ContainerKillResult, error) {
	return ContainerKillResult{}, cli.containerPost(ctx, "container", containerID, "/kill", stopQuery(options.Signal, nil))
}

// ContainerPauseOptions is POST /containers/ID/pause.
type ContainerPauseOptions struct{}

// ContainerPauseResult is empty.
type ContainerPauseResult struct{}

// ContainerPause freezes a container.
func (cli *Client) ContainerPause(ctx context.Context, containerID string, _ ContainerPauseOptions) (ContainerPauseResult, error) {
	return ContainerPauseResult{}, cli.containerPost(ctx, "container", containerID, "/pause", nil)
}

// ContainerUnpauseOptions is POST /containers/ID/unpause.
type ContainerUnpauseOptions struct{}

// ContainerUnpauseResult is empty.
type ContainerUnpauseResult struct{}

// ContainerUnpause thaws a container.
func (cli *Client) ContainerUnpause(ctx context.Context, containerID string, _ ContainerUnpauseOptions) (ContainerUnpauseResult, error) {
	return ContainerUnpauseResult{}, cli.containerPost(ctx, "container", containerID, "/unpause", nil)
}

// ContainerRenameOptions is POST /containers/ID/rename.
type ContainerRenameOptions struct{ NewName string }

// ContainerRenameResult is empty.
type ContainerRenameResult struct{}

// ContainerRename renames a container.
func (cli *Client) ContainerRename(ctx context.Context, containerID string, options ContainerRenameOptions) (ContainerRenameResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return ContainerRenameResult{}, err
	}
	name := strings.TrimSpace(options.NewName)
	if name == "" || strings.TrimPrefix(name, "/") == "" {
		return ContainerRenameResult{}, cerrdefs.ErrInvalidArgument.WithMessage("new name cannot be blank")
	}
	return ContainerRenameResult{}, cli.containerPost(ctx, "container", containerID, "/rename", url.Values{"name": {name}})
}

// ContainerResizeOptions is the terminal size for POST …/resize.
type ContainerResizeOptions struct {
	Height uint
	Width  uint
}

// ContainerResizeResult is empty.
type ContainerResizeResult struct{}

// ContainerResize resizes a container's TTY.
func (cli *Client) ContainerResize(ctx context.Context, containerID string, options ContainerResizeOptions) (ContainerResizeResult, error) {
	return ContainerResizeResult{}, cli.containerPost(ctx, "container", containerID, "/resize", sizeQuery(options.Height, options.Width))
}

func sizeQuery(h, w uint) url.Values {
	return url.Values{"h": {strconv.FormatUint(uint64(h), 10)}, "w": {strconv.FormatUint(uint64(w), 10)}}
}

// ExecResizeOptions is the terminal size for POST /exec/ID/resize.
type ExecResizeOptions ContainerResizeOptions

// ExecResizeResult is empty.
type ExecResizeResult struct{}

// ExecResize resizes an exec's TTY.
func (cli *Client) ExecResize(ctx context.Context, execID string, options ExecResizeOptions) (ExecResizeResult, error) {
	return ExecResizeResult{}, cli.containerPost(ctx, "exec", execID, "/resize", sizeQuery(options.Height, options.Width))
}

// ContainerRemoveOptions is DELETE /containers/ID.
type ContainerRemoveOptions struct {
	RemoveVolumes bool
	RemoveLinks   bool
	Force         bool
}

// ContainerRemoveResult is empty.
type ContainerRemoveResult struct{}

// ContainerRemove removes a container.
func (cli *Client) ContainerRemove(ctx context.Context, containerID string, options ContainerRemoveOptions) (ContainerRemoveResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return ContainerRemoveResult{}, err
	}
	query := url.Values{}
	if options.RemoveVolumes {
		query.Set("v", "1")
	}
	if options.RemoveLinks {
		query.Set("link", "1")
	}
	if options.Force {
		query.Set("force", "1")
	}
	resp, err := cli.delete(ctx, "/containers/"+containerID, query, nil)
	ensureReaderClosed(resp)
	return ContainerRemoveResult{}, err
}

// ContainerWaitOptions is POST /containers/ID/wait.
type ContainerWaitOptions struct {
	Condition container.WaitCondition
}

// ContainerWaitResult delivers either the exit result or an error, once.
type ContainerWaitResult struct {
	Result <-chan container.WaitResponse
	Error  <-chan error
}

// ContainerWait waits for a container (the request is sent before it returns).
func (cli *Client) ContainerWait(ctx context.Context, containerID string, options ContainerWaitOptions) ContainerWaitResult {
	resultC := make(chan container.WaitResponse)
	errC := make(chan error, 1)
	res := ContainerWaitResult{Result: resultC, Error: errC}
	containerID, err := trimID("container", containerID)
	if err != nil {
		errC <- err
		return res
	}
	query := url.Values{}
	if options.Condition != "" {
		query.Set("condition", string(options.Condition))
	}
	resp, err := cli.post(ctx, "/containers/"+containerID+"/wait", query, nil, nil)
	if err != nil {
		ensureReaderClosed(resp)
		errC <- err
		return res
	}
	go func() {
		defer ensureReaderClosed(resp)
		// A body that is not JSON is the error text of a daemon that failed
		// after sending 200 (max 2 KiB shown).
		var text bytes.Buffer
		stream := io.TeeReader(resp.Body, &text)
		var r container.WaitResponse
		if err := json.NewDecoder(stream).Decode(&r); err != nil {
			if errors.As(err, new(*json.SyntaxError)) {
				_, _ = io.ReadAll(io.LimitReader(stream, 2<<10))
				errC <- errors.New(text.String())
			} else {
				errC <- err
			}
			return
		}
		resultC <- r
	}()
	return res
}

// ContainerAttachOptions is POST /containers/ID/attach.
type ContainerAttachOptions struct {
	Stream     bool
	Stdin      bool
	Stdout     bool
	Stderr     bool
	DetachKeys string
	Logs       bool
}

// ContainerAttachResult is the hijacked connection.
type ContainerAttachResult struct {
	HijackedResponse
}

// ContainerAttach attaches to a container's streams over a hijacked connection.
func (cli *Client) ContainerAttach(ctx context.Context, containerID string, options ContainerAttachOptions) (ContainerAttachResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return ContainerAttachResult{}, err
	}
	query := url.Values{}
	for _, f := range []struct {
		on   bool
		name string
	}{{options.Stream, "stream"}, {options.Stdin, "stdin"}, {options.Stdout, "stdout"}, {options.Stderr, "stderr"}} {
		if f.on {
			query.Set(f.name, "1")
		}
	}
	if options.DetachKeys != "" {
		query.Set("detachKeys", options.DetachKeys)
	}
	if options.Logs {
		query.Set("logs", "1")
	}
	hj, err := cli.postHijacked(ctx, "/containers/"+containerID+"/attach", query, header{"Content-Type": {"text/plain"}}, nil)
	if err != nil {
		return ContainerAttachResult{}, err
	}
	return ContainerAttachResult{HijackedResponse: hj}, nil
}

// ContainerLogsOptions is GET /containers/ID/logs.
type ContainerLogsOptions struct {
	ShowStdout bool
	ShowStderr bool
	Since      string
	Until      string
	Timestamps bool
	Follow     bool
	Tail       string
	Details    bool
}

// ContainerLogs streams a container's logs (stdcopy frames unless it has a TTY).
func (cli *Client) ContainerLogs(ctx context.Context, containerID string, options ContainerLogsOptions) (io.ReadCloser, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return nil, err
	}
	query := url.Values{}
	if options.ShowStdout {
		query.Set("stdout", "1")
	}
	if options.ShowStderr {
		query.Set("stderr", "1")
	}
	for _, t := range []struct{ name, value string }{{"since", options.Since}, {"until", options.Until}} {
		if t.value == "" {
			continue
		}
		ts, err := getTimestamp(t.value, time.Now())
		if err != nil {
			return nil, fmt.Errorf(`invalid value for %q: %w`, t.name, err)
		}
		query.Set(t.name, ts)
	}
	if options.Timestamps {
		query.Set("timestamps", "1")
	}
	if options.Details {
		query.Set("details", "1")
	}
	if options.Follow {
		query.Set("follow", "1")
	}
	if options.Tail != "" && options.Tail != "all" {
		query.Set("tail", options.Tail)
	}
	return cli.stream(ctx, "GET", "/containers/"+containerID+"/logs", query, nil, nil)
}

// stream sends a request whose answer the caller reads until EOF; the body
// closes when ctx ends.
func (cli *Client) stream(ctx context.Context, method, p string, query url.Values, headers header, body io.Reader) (io.ReadCloser, error) {
	resp, err := cli.sendRequest(ctx, method, p, query, headers, body)
	if err != nil {
		ensureReaderClosed(resp)
		return nil, err
	}
	return newCancelReadCloser(ctx, resp.Body), nil
}

// ContainerStatsOptions is GET /containers/ID/stats.
type ContainerStatsOptions struct {
	Stream                bool
	IncludePreviousSample bool
}

// ContainerStatsResult is the stats JSON stream.
type ContainerStatsResult struct {
	Body io.ReadCloser
}

// ContainerStats gets one sample or a stream of resource usage samples.
func (cli *Client) ContainerStats(ctx context.Context, containerID string, options ContainerStatsOptions) (ContainerStatsResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return ContainerStatsResult{}, err
	}
	query := url.Values{}
	if options.Stream {
		query.Set("stream", "true")
	} else {
		query.Set("stream", "false")
		if !options.IncludePreviousSample {
			query.Set("one-shot", "true")
		}
	}
	body, err := cli.stream(ctx, "GET", "/containers/"+containerID+"/stats", query, nil, nil)
	if err != nil {
		return ContainerStatsResult{}, err
	}
	return ContainerStatsResult{Body: body}, nil
}

// ContainerTopOptions is GET /containers/ID/top.
type ContainerTopOptions struct{ Arguments []string }

// ContainerTopResult is ps output as a table.
type ContainerTopResult struct {
	Processes [][]string
	Titles    []string
}

// ContainerTop lists a container's processes.
func (cli *Client) ContainerTop(ctx context.Context, containerID string, options ContainerTopOptions) (ContainerTopResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return ContainerTopResult{}, err
	}
	query := url.Values{}
	if len(options.Arguments) > 0 {
		query.Set("ps_args", strings.Join(options.Arguments, " "))
	}
	r, err := decode[container.TopResponse](cli.get(ctx, "/containers/"+containerID+"/top", query, nil))
	return ContainerTopResult{Processes: r.Processes, Titles: r.Titles}, err
}

// ContainerUpdateOptions is POST /containers/ID/update.
type ContainerUpdateOptions struct {
	Resources     *container.Resources
	RestartPolicy *container.RestartPolicy
}

// ContainerUpdateResult holds the daemon's warnings.
type ContainerUpdateResult struct{ Warnings []string }

// ContainerUpdate changes a container's resources or restart policy.
func (cli *Client) ContainerUpdate(ctx context.Context, containerID string, options ContainerUpdateOptions) (ContainerUpdateResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return ContainerUpdateResult{}, err
	}
	var uc container.UpdateConfig
	if options.Resources != nil {
		uc.Resources = *options.Resources
	}
	if options.RestartPolicy != nil {
		uc.RestartPolicy = *options.RestartPolicy
	}
	r, err := decode[container.UpdateResponse](cli.post(ctx, "/containers/"+containerID+"/update", nil, nil, uc))
	return ContainerUpdateResult{Warnings: r.Warnings}, err
}

// ContainerCommitOptions is POST /commit.
type ContainerCommitOptions struct {
	Reference string
	Comment   string
	Author    string
	Changes   []string
	NoPause   bool
	Config    *container.Config
}

// ContainerCommitResult is the new image's ID.
type ContainerCommitResult = IDResult

// ContainerCommit creates an image from a container.
func (cli *Client) ContainerCommit(ctx context.Context, containerID string, options ContainerCommitOptions) (ContainerCommitResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return ContainerCommitResult{}, err
	}
	query := url.Values{}
	query.Set("container", containerID)
	if options.Reference != "" {
		ref, err := parseNormalizedNamed(options.Reference)
		if err != nil {
			return ContainerCommitResult{}, err
		}
		if ref.digest != "" {
			return ContainerCommitResult{}, errors.New("refusing to create a tag with a digest reference")
		}
		query.Set("repo", ref.name)
		query.Set("tag", ref.tagOrLatest())
	}
	if options.Comment != "" {
		query.Set("comment", options.Comment)
	}
	if options.Author != "" {
		query.Set("author", options.Author)
	}
	for _, c := range options.Changes {
		query.Add("changes", c)
	}
	if options.NoPause {
		query.Set("pause", "0")
	}
	r, err := decode[container.CommitResponse](cli.post(ctx, "/commit", query, nil, options.Config))
	return ContainerCommitResult{ID: r.ID}, err
}

// ContainerDiffOptions is GET /containers/ID/changes.
type ContainerDiffOptions struct{}

// ContainerDiffResult lists the changed paths.
type ContainerDiffResult struct{ Changes []container.FilesystemChange }

// ContainerDiff lists a container's filesystem changes.
func (cli *Client) ContainerDiff(ctx context.Context, containerID string, _ ContainerDiffOptions) (ContainerDiffResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return ContainerDiffResult{}, err
	}
	changes, err := decode[[]container.FilesystemChange](cli.get(ctx, "/containers/"+containerID+"/changes", url.Values{}, nil))
	if err != nil {
		return ContainerDiffResult{}, err
	}
	return ContainerDiffResult{Changes: changes}, nil
}

// ContainerExportOptions is GET /containers/ID/export.
type ContainerExportOptions struct{}

// ContainerExport streams a container's filesystem as a tar archive.
func (cli *Client) ContainerExport(ctx context.Context, containerID string, _ ContainerExportOptions) (io.ReadCloser, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return nil, err
	}
	return cli.stream(ctx, "GET", "/containers/"+containerID+"/export", url.Values{}, nil, nil)
}

// ContainerStatPathOptions is HEAD /containers/ID/archive.
type ContainerStatPathOptions struct{ Path string }

// ContainerStatPathResult is the stat of a path in a container.
type ContainerStatPathResult struct{ Stat container.PathStat }

// ContainerStatPath stats a path in a container.
func (cli *Client) ContainerStatPath(ctx context.Context, containerID string, options ContainerStatPathOptions) (ContainerStatPathResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return ContainerStatPathResult{}, err
	}
	query := url.Values{"path": {filepath.ToSlash(options.Path)}}
	resp, err := cli.head(ctx, "/containers/"+containerID+"/archive", query, nil)
	defer ensureReaderClosed(resp)
	if err != nil {
		return ContainerStatPathResult{}, err
	}
	stat, err := pathStatFromHeader(resp.Header)
	if err != nil {
		return ContainerStatPathResult{}, err
	}
	return ContainerStatPathResult{Stat: stat}, nil
}

// CopyToContainerOptions is PUT /containers/ID/archive (Content is a tar stream).
type CopyToContainerOptions struct {
	DestinationPath           string
	Content                   io.Reader
	AllowOverwriteDirWithFile bool
	CopyUIDGID                bool
}

// CopyToContainerResult is empty.
type CopyToContainerResult struct{}

// CopyToContainer extracts a tar stream into a container.
func (cli *Client) CopyToContainer(ctx context.Context, containerID string, options CopyToContainerOptions) (CopyToContainerResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return CopyToContainerResult{}, err
	}
	query := url.Values{"path": {filepath.ToSlash(options.DestinationPath)}}
	if !options.AllowOverwriteDirWithFile {
		query.Set("noOverwriteDirNonDir", "true")
	}
	if options.CopyUIDGID {
		query.Set("copyUIDGID", "true")
	}
	resp, err := cli.putRaw(ctx, "/containers/"+containerID+"/archive", query, nil, options.Content)
	ensureReaderClosed(resp)
	return CopyToContainerResult{}, err
}

// CopyFromContainerOptions is GET /containers/ID/archive.
type CopyFromContainerOptions struct{ SourcePath string }

// CopyFromContainerResult is the tar stream and the stat of its root.
type CopyFromContainerResult struct {
	Content io.ReadCloser
	Stat    container.PathStat
}

// CopyFromContainer streams a path in a container as a tar archive.
func (cli *Client) CopyFromContainer(ctx context.Context, containerID string, options CopyFromContainerOptions) (CopyFromContainerResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return CopyFromContainerResult{}, err
	}
	query := url.Values{"path": {filepath.ToSlash(options.SourcePath)}}
	resp, err := cli.get(ctx, "/containers/"+containerID+"/archive", query, nil)
	if err != nil {
		return CopyFromContainerResult{}, err
	}
	stat, err := pathStatFromHeader(resp.Header)
	if err != nil {
		ensureReaderClosed(resp)
		return CopyFromContainerResult{Stat: stat}, fmt.Errorf("unable to get resource stat from response: %s", err)
	}
	return CopyFromContainerResult{Content: resp.Body, Stat: stat}, nil
}

// pathStatFromHeader decodes X-Docker-Container-Path-Stat (base64 JSON).
func pathStatFromHeader(h header) (container.PathStat, error) {
	var stat container.PathStat
	dec := base64.NewDecoder(base64.StdEncoding, strings.NewReader(h.Get("X-Docker-Container-Path-Stat")))
	if err := json.NewDecoder(dec).Decode(&stat); err != nil {
		return stat, fmt.Errorf("unable to decode container path stat header: %s", err)
	}
	return stat, nil
}

// ConsoleSize is a terminal size.
type ConsoleSize struct {
	Height, Width uint
}

func consoleSize(tty bool, cs ConsoleSize) (*[2]uint, error) {
	if cs.Height == 0 && cs.Width == 0 {
		return nil, nil
	}
	if !tty {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("console size is only supported when TTY is enabled")
	}
	return &[2]uint{cs.Height, cs.Width}, nil
}

// ExecCreateOptions is POST /containers/ID/exec.
type ExecCreateOptions struct {
	User         string
	Privileged   bool
	TTY          bool
	ConsoleSize  ConsoleSize
	AttachStdin  bool
	AttachStderr bool
	AttachStdout bool
	DetachKeys   string
	Env          []string
	WorkingDir   string
	Cmd          []string
}

// ExecCreateResult is the exec's ID.
type ExecCreateResult = IDResult

// ExecCreate creates an exec instance in a container.
func (cli *Client) ExecCreate(ctx context.Context, containerID string, options ExecCreateOptions) (ExecCreateResult, error) {
	containerID, err := trimID("container", containerID)
	if err != nil {
		return ExecCreateResult{}, err
	}
	cs, err := consoleSize(options.TTY, options.ConsoleSize)
	if err != nil {
		return ExecCreateResult{}, err
	}
	resp, err := cli.post(ctx, "/containers/"+containerID+"/exec", nil, nil, container.ExecCreateRequest{
		User:         options.User,
		Privileged:   options.Privileged,
		Tty:          options.TTY,
		ConsoleSize:  cs,
		AttachStdin:  options.AttachStdin,
		AttachStderr: options.AttachStderr,
		AttachStdout: options.AttachStdout,
		DetachKeys:   options.DetachKeys,
		Env:          options.Env,
		WorkingDir:   options.WorkingDir,
		Cmd:          options.Cmd,
	})
	r, err := decode[container.ExecCreateResponse](resp, err)
	return ExecCreateResult{ID: r.ID}, err
}

// ExecStartOptions is POST /exec/ID/start without attaching.
type ExecStartOptions struct {
	Detach      bool
	TTY         bool
	ConsoleSize ConsoleSize
}

// ExecStartResult is empty.
type ExecStartResult struct{}

// ExecStart starts an exec without attaching to it.
func (cli *Client) ExecStart(ctx context.Context, execID string, options ExecStartOptions) (ExecStartResult, error) {
	cs, err := consoleSize(options.TTY, options.ConsoleSize)
	if err != nil {
		return ExecStartResult{}, err
	}
	resp, err := cli.post(ctx, "/exec/"+execID+"/start", nil, nil, container.ExecStartRequest{
		Detach: options.Detach, Tty: options.TTY, ConsoleSize: cs,
	})
	ensureReaderClosed(resp)
	return ExecStartResult{}, err
}

// ExecAttachOptions is POST /exec/ID/start, attached.
type ExecAttachOptions struct {
	TTY         bool
	ConsoleSize ConsoleSize `json:",omitzero"`
}

// ExecAttachResult is the hijacked connection.
type ExecAttachResult struct {
	HijackedResponse
}

// ExecAttach starts an exec and attaches to its streams.
func (cli *Client) ExecAttach(ctx context.Context, execID string, options ExecAttachOptions) (ExecAttachResult, error) {
	cs, err := consoleSize(options.TTY, options.ConsoleSize)
	if err != nil {
		return ExecAttachResult{}, err
	}
	hj, err := cli.postHijacked(ctx, "/exec/"+execID+"/start", nil, header{"Content-Type": {"application/json"}},
		container.ExecStartRequest{Tty: options.TTY, ConsoleSize: cs})
	return ExecAttachResult{HijackedResponse: hj}, err
}

// ExecInspectOptions is GET /exec/ID/json.
type ExecInspectOptions struct{}

// ExecInspectResult is an exec's state.
type ExecInspectResult struct {
	ID          string
	ContainerID string
	Running     bool
	ExitCode    int
	PID         int
}

// ExecInspect inspects an exec.
func (cli *Client) ExecInspect(ctx context.Context, execID string, _ ExecInspectOptions) (ExecInspectResult, error) {
	r, err := decode[container.ExecInspectResponse](cli.get(ctx, "/exec/"+execID+"/json", nil, nil))
	if err != nil {
		return ExecInspectResult{}, err
	}
	var ec int
	if r.ExitCode != nil {
		ec = *r.ExitCode
	}
	return ExecInspectResult{ID: r.ID, ContainerID: r.ContainerID, Running: r.Running, ExitCode: ec, PID: r.Pid}, nil
}

// ContainerPruneOptions is POST /containers/prune.
type ContainerPruneOptions = FilterOptions

// ContainerPruneResult is the prune report.
type ContainerPruneResult = PruneResult[container.PruneReport]

// ContainerPrune removes stopped containers.
func (cli *Client) ContainerPrune(ctx context.Context, opts ContainerPruneOptions) (ContainerPruneResult, error) {
	return prune[container.PruneReport](ctx, cli, "/containers/prune", opts.Filters, "Error retrieving disk usage: %v")
}

// prune POSTs a prune request and decodes its report; decodeErr formats a bad body.
func prune[T any](ctx context.Context, cli *Client, p string, f Filters, decodeErr string) (PruneResult[T], error) {
	query := url.Values{}
	f.updateURLValues(query)
	resp, err := cli.post(ctx, p, query, nil, nil)
	if err != nil {
		ensureReaderClosed(resp)
		return PruneResult[T]{}, err
	}
	r, err := decode[T](resp, nil)
	if err != nil {
		return PruneResult[T]{}, fmt.Errorf(decodeErr, err)
	}
	return PruneResult[T]{Report: r}, nil
}
