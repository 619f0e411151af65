// Package backend declares what the Docker Engine API server (internal/api)
// consumes: small interfaces, one per router, and the berth-side request
// structs they take. The daemon imports this package to implement them
// without importing the HTTP layer.
//
// Contract for every method:
//
//   - Requests arrive normalized: the API has already applied every
//     API-version-dependent default and rename (internal/api/normalize.go),
//     so an implementation sees one current request shape and never looks
//     at the client's API version.
//   - Errors are classified with github.com/containerd/errdefs. The API maps
//     the class to an HTTP status in exactly one place and sends err.Error()
//     verbatim as docker's {"message": ...}; so the message must be docker's
//     text, e.g. errdefs.ErrNotFound.WithMessage("No such container: " + id).
//     NotFound→404, InvalidArgument→400, Conflict/AlreadyExists→409,
//     NotModified→304, FailedPrecondition→409 (304 on start and stop),
//     PermissionDenied→403, Unauthenticated→401, NotImplemented→501,
//     Unavailable→503, anything else→500.
//   - ctx is the request's context: it is cancelled when the client goes
//     away or the server shuts down; streaming methods must stop then.
//   - IDs and names ("id" parameters) are what the client typed: a full ID,
//     a unique ID prefix or a name; resolving them is the backend's job.
//
// A nil backend in api.Backends makes its routes answer 501.
package backend

import (
	"context"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ContainerBackend runs the container state machine.
// created → running ⇄ paused; running → exited (by itself, stop or kill);
// exited → running (start/restart); any → removed.
type ContainerBackend interface {
	// ContainerCreate records a new container in state "created". Name is
	// optional (generate docker-style names when empty); a taken name is
	// Conflict ("Conflict. The container name \"/x\" is already in use by
	// container \"<id>\". You have to remove (or rename) that container to be
	// able to reuse that name."); an image that is not present is NotFound
	// ("No such image: busybox:latest") so that clients pull and retry.
	ContainerCreate(ctx context.Context, req ContainerCreateRequest) (container.CreateResponse, error)
	// ContainerStart starts a created or exited container. Already running:
	// return errdefs.ErrNotModified (the API answers 304, no body). If the
	// start fails, an AutoRemove container must be removed (the CLI's --rm
	// waits for condition=removed after a failed start), and the message
	// must keep docker's phrases: the CLI exits 127 on "executable file not
	// found" / "no such file or directory", 126 on "permission denied".
	ContainerStart(ctx context.Context, id string) error
	// ContainerStop sends opts.Signal (default: the container's stop signal,
	// else SIGTERM), waits opts.Timeout (nil: the container's stop timeout,
	// else 10 s; -1: forever) and then SIGKILLs. Not running: ErrNotModified.
	ContainerStop(ctx context.Context, id string, opts StopOptions) error
	// ContainerRestart is stop (if running) followed by start.
	ContainerRestart(ctx context.Context, id string, opts StopOptions) error
	// ContainerKill sends signal ("" means SIGKILL; names like "HUP",
	// "SIGHUP" or numbers). Not running: Conflict ("Container x is not running").
	ContainerKill(ctx context.Context, id string, signal string) error
	// ContainerPause freezes a running container (Conflict if not running or
	// already paused); ContainerUnpause thaws it (Conflict if not paused).
	ContainerPause(ctx context.Context, id string) error
	ContainerUnpause(ctx context.Context, id string) error
	// ContainerRemove deletes a container. Running without opts.Force:
	// Conflict ("cannot remove container \"/x\": container is running: stop
	// the container before removing or force remove").
	ContainerRemove(ctx context.Context, id string, opts RemoveOptions) error
	// ContainerWait validates id synchronously (NotFound → 404 before any
	// byte is sent), then returns a channel that delivers exactly one result
	// when condition is met:
	//   not-running: now if not running, else at the next exit;
	//   next-exit:   at the next exit, even if not running now (the docker
	//                CLI calls this before start);
	//   removed:     once the container is removed (after --rm's cleanup).
	// The channel must not block the sender forever if ctx is cancelled.
	ContainerWait(ctx context.Context, id string, condition container.WaitCondition) (<-chan WaitResult, error)
}

// ContainerInfoBackend answers read-only questions about containers.
type ContainerInfoBackend interface {
	// ContainerList lists containers in docker's order (newest first).
	// Filters (already parsed): id, name, label, exited, status, ancestor,
	// before, since, volume, network, publish, expose, health, isolation, is-task.
	// Unknown filter keys: InvalidArgument ("invalid filter 'x'").
	ContainerList(ctx context.Context, opts ListOptions) ([]container.Summary, error)
	// ContainerInspect returns docker's inspect shape; size fills SizeRw/SizeRootFs.
	ContainerInspect(ctx context.Context, id string, size bool) (container.InspectResponse, error)
	// ContainerTop runs ps inside the container's PID namespace view;
	// psArgs defaults to "-ef".
	ContainerTop(ctx context.Context, id string, psArgs string) (container.TopResponse, error)
	// ContainerStats returns a channel of samples: one sample and close when
	// !opts.Stream; otherwise one per second until ctx is cancelled or the
	// container is removed. opts.OneShot: don't wait for a second sample to
	// fill PreCPUStats.
	ContainerStats(ctx context.Context, id string, opts StatsOptions) (<-chan container.StatsResponse, error)
	// ContainerChanges lists the writable layer's changes against the image.
	ContainerChanges(ctx context.Context, id string) ([]container.FilesystemChange, error)
}

// ContainerAdminBackend changes container records without running them.
type ContainerAdminBackend interface {
	// ContainerRename: newName taken → Conflict; same name → InvalidArgument.
	ContainerRename(ctx context.Context, id, newName string) error
	// ContainerUpdate changes resources/restart policy, live if running.
	ContainerUpdate(ctx context.Context, id string, cfg container.UpdateConfig) (container.UpdateResponse, error)
	// ContainerPrune removes stopped containers matching filters (until, label).
	ContainerPrune(ctx context.Context, filters Filters) (container.PruneReport, error)
	// ContainerCommit makes an image of a container's filesystem and config.
	ContainerCommit(ctx context.Context, opts CommitOptions) (container.CommitResponse, error)
}

// StreamBackend connects clients to a container's stdio.
type StreamBackend interface {
	// ContainerAttach resolves id (errors returned before calling
	// opts.Streams go out as ordinary HTTP errors), then calls
	// opts.Streams(tty) exactly once to hijack the connection and copies
	// until the container exits (return nil; the API closes the connection,
	// which is the client's EOF), the client detaches with opts.DetachKeys,
	// or ctx is cancelled. With opts.Logs, replay the log first; with
	// !opts.Stream, return after the replay. Streams sends the 101 the
	// docker CLI waits for before it starts the container, so register
	// the attach with the container (e.g. as a pending attach) BEFORE
	// calling Streams: output of a start that follows must not be lost.
	// Stdin EOF (client half-close) closes the container's stdin if the
	// container has StdinOnce (docker run -i); otherwise it only ends the
	// stdin copy.
	ContainerAttach(ctx context.Context, id string, opts AttachOptions) error
	// ContainerLogs returns the log as a stream of messages. The channel is
	// closed at the end of the log (or, with Follow, when the container
	// stops, or ctx is cancelled). TTY tells the API not to multiplex.
	ContainerLogs(ctx context.Context, id string, opts LogsOptions) (LogStream, error)
	// ContainerResize sets the container's TTY size. Not running: Conflict.
	ContainerResize(ctx context.Context, id string, height, width uint) error
}

// ArchiveBackend copies files in and out of a container's root filesystem.
// Paths are resolved inside the container root, never following symlinks
// out of it (CVE-2018-15664).
type ArchiveBackend interface {
	// ContainerStatPath: missing path → NotFound.
	ContainerStatPath(ctx context.Context, id, path string) (container.PathStat, error)
	// ContainerArchivePath returns a tar of path (the caller closes it).
	ContainerArchivePath(ctx context.Context, id, path string) (io.ReadCloser, container.PathStat, error)
	// ContainerExtractToDir untars content into the directory path.
	ContainerExtractToDir(ctx context.Context, id, path string, opts ExtractOptions, content io.Reader) error
	// ContainerExport returns a tar of the whole root filesystem.
	ContainerExport(ctx context.Context, id string) (io.ReadCloser, error)
}

// ExecBackend runs extra processes in running containers.
type ExecBackend interface {
	// ExecCreate records an exec in container id (Conflict if the container
	// is not running) and returns its ID.
	ExecCreate(ctx context.Context, id string, cfg container.ExecCreateRequest) (container.ExecCreateResponse, error)
	// ExecStart starts the exec. With opts.Detach, return once it started
	// (opts.Streams is nil). Otherwise call opts.Streams(tty) once (tty from
	// the exec's config) and copy until the process exits; record the exit
	// code before returning, since the docker CLI inspects the exec as soon
	// as the stream ends. Already started: Conflict.
	ExecStart(ctx context.Context, execID string, opts ExecStartOptions) error
	ExecInspect(ctx context.Context, execID string) (container.ExecInspectResponse, error)
	ExecResize(ctx context.Context, execID string, height, width uint) error
}

// ImageBackend manages local images.
type ImageBackend interface {
	// ImageList: filters dangling, label, before, since, reference, until.
	ImageList(ctx context.Context, opts ImageListOptions) ([]image.Summary, error)
	// ImageInspect: name is a reference, full/short ID; missing → NotFound
	// ("No such image: x").
	ImageInspect(ctx context.Context, name string) (image.InspectResponse, error)
	ImageHistory(ctx context.Context, name string) ([]image.HistoryResponseItem, error)
	// ImageTag makes repo:tag point at source (tag "" means "latest").
	ImageTag(ctx context.Context, source, repo, tag string) error
	// ImageRemove untags/deletes. In use by a container without force:
	// Conflict ("conflict: unable to remove repository reference ...").
	ImageRemove(ctx context.Context, name string, opts ImageRemoveOptions) ([]image.DeleteResponse, error)
	ImagePrune(ctx context.Context, filters Filters) (image.PruneReport, error)
}

// RegistryBackend talks to registries.
type RegistryBackend interface {
	// ImagePull pulls opts.Ref:opts.Tag (opts.Tag "" means all tags, as
	// `docker pull -a`). progress receives docker's progress messages; an
	// error returned before the first message goes out as an HTTP error,
	// after it as an in-stream {"errorDetail":...,"error":...} message.
	// A missing repository or tag: NotFound ("pull access denied for x,
	// repository does not exist or may require 'docker login'" or
	// "manifest for x:y not found: manifest unknown").
	ImagePull(ctx context.Context, opts PullOptions, progress ProgressFunc) error
	ImagePush(ctx context.Context, opts PushOptions, progress ProgressFunc) error
	// ImageSearch queries the registry's /v1/search.
	ImageSearch(ctx context.Context, opts SearchOptions) ([]registry.SearchResult, error)
	// RegistryLogin checks credentials; wrong ones → Unauthorized.
	RegistryLogin(ctx context.Context, auth registry.AuthConfig) (registry.AuthResponse, error)
}

// ImageArchiveBackend moves images in and out as tarballs.
type ImageArchiveBackend interface {
	// ImageSave writes a docker-archive of names to w. Errors before the
	// first write become HTTP errors; later ones abort the connection.
	ImageSave(ctx context.Context, names []string, opts ImageSaveOptions, w io.Writer) error
	// ImageLoad reads a docker-archive or OCI layout tar.
	ImageLoad(ctx context.Context, r io.Reader, opts ImageLoadOptions, progress ProgressFunc) error
	// ImageImport makes a one-layer image from a rootfs tarball: r when
	// opts.Source is "-", else the URL opts.Source.
	ImageImport(ctx context.Context, r io.Reader, opts ImageImportOptions, progress ProgressFunc) error
}

// SystemBackend answers daemon-wide questions.
type SystemBackend interface {
	// SystemInfo: the API does not touch the result.
	SystemInfo(ctx context.Context) (system.Info, error)
	// SystemVersion: the API overwrites APIVersion and MinAPIVersion.
	SystemVersion(ctx context.Context) (system.VersionResponse, error)
	SystemDiskUsage(ctx context.Context, opts DiskUsageOptions) (DiskUsage, error)
	// SystemEvents replays recorded events with time ≥ opts.Since (zero:
	// none), then, unless opts.Until is set and past, streams live ones. The
	// channel is closed when ctx is cancelled. The API applies Filters and
	// Until itself; the backend may use them to do less work.
	SystemEvents(ctx context.Context, opts EventsOptions) (<-chan events.Message, error)
}

// NetworkBackend manages networks (issue 5).
type NetworkBackend interface {
	NetworkList(ctx context.Context, filters Filters) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, id string, opts NetworkInspectOptions) (network.Inspect, error)
	// NetworkCreate: duplicate name → Conflict; bad IPAM → InvalidArgument.
	NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	// NetworkRemove: in use → Conflict ("error while removing network: ...").
	NetworkRemove(ctx context.Context, id string) error
	NetworkPrune(ctx context.Context, filters Filters) (network.PruneReport, error)
	NetworkConnect(ctx context.Context, id string, req network.ConnectRequest) error
	NetworkDisconnect(ctx context.Context, id string, req network.DisconnectRequest) error
}

// VolumeBackend manages named volumes (issue 6).
type VolumeBackend interface {
	VolumeList(ctx context.Context, filters Filters) (volume.ListResponse, error)
	VolumeInspect(ctx context.Context, name string) (volume.Volume, error)
	// VolumeCreate: an existing name with the same driver returns it.
	VolumeCreate(ctx context.Context, req volume.CreateRequest) (volume.Volume, error)
	// VolumeRemove: in use → Conflict unless force.
	VolumeRemove(ctx context.Context, name string, force bool) error
	VolumePrune(ctx context.Context, filters Filters) (volume.PruneReport, error)
}

// ContainerCreateRequest is POST /containers/create after normalization.
// Config and HostConfig are never nil; NetworkingConfig may be.
type ContainerCreateRequest struct {
	Name             string
	Platform         *ocispec.Platform
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

// StopOptions for stop and restart. Signal "" means the container's default.
// Timeout nil means the container's default; -1 means wait forever.
type StopOptions struct {
	Signal  string
	Timeout *int
}

// RemoveOptions for DELETE /containers/{id}.
type RemoveOptions struct {
	Force         bool // kill first if running
	RemoveVolumes bool // v=1: remove anonymous volumes
	RemoveLink    bool // link=1: remove the link name only (legacy links)
}

// WaitResult is what ContainerWait delivers. Err is set when waiting
// failed (e.g. removal failed); StatusCode is the exit code.
type WaitResult struct {
	StatusCode int64
	Err        error
}

// ListOptions for GET /containers/json.
type ListOptions struct {
	All     bool
	Limit   int // ≤0: no limit; >0 implies All
	Size    bool
	Filters Filters
}

// StatsOptions for GET /containers/{id}/stats.
type StatsOptions struct {
	Stream  bool
	OneShot bool
}

// CommitOptions for POST /commit.
type CommitOptions struct {
	Container string
	Repo, Tag string
	Comment   string
	Author    string
	Changes   []string // Dockerfile instructions (CMD, ENV, ...)
	Pause     bool
	Config    *container.Config // may be nil
}

// AttachStreams is the hijacked connection as the backend sees it. For a
// TTY, Stdout and Stderr are the same raw writer; otherwise they write
// docker's 8-byte-header frames. A stream the client did not ask for is
// nil (attach); exec start always offers all three and the exec's own
// Attach* settings decide. Stdin returns io.EOF when the client
// half-closes (CloseWrite). Writes are safe from several goroutines.
type AttachStreams struct {
	Stdin  io.ReadCloser
	Stdout io.Writer
	Stderr io.Writer
}

// StreamsFunc hijacks the connection, sends the response header (101
// UPGRADED) and returns the streams; tty selects raw vs multiplexed
// framing. Call it once, after validating the request (errors before it
// are ordinary HTTP errors). The API closes the connection when the
// backend method returns.
type StreamsFunc func(tty bool) (AttachStreams, error)

// AttachOptions for POST /containers/{id}/attach.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool   // which streams the client wants
	Logs                  bool   // replay the log first
	Stream                bool   // then stream live output
	DetachKeys            []byte // parsed by the API; nil means the default (DefaultDetachKeys)
	Streams               StreamsFunc
}

// LogsOptions for GET /containers/{id}/logs. Zero times mean unbounded.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Since, Until   time.Time
	Timestamps     bool   // the API formats them; informational
	Tail           string // "all" or a number of lines
	Details        bool
}

// LogStream is a container's log. Messages is closed at the end.
type LogStream struct {
	TTY      bool
	Messages <-chan LogMessage
}

// LogMessage is one log line (Line includes its trailing newline, if any).
// A message with Err set ends the stream with that error.
type LogMessage struct {
	Stream    string // "stdout" or "stderr"
	Line      []byte
	Timestamp time.Time
	Attrs     map[string]string // shown with details=1
	Err       error
}

// ExtractOptions for PUT /containers/{id}/archive.
type ExtractOptions struct {
	NoOverwriteDirNonDir bool
	CopyUIDGID           bool
}

// ExecStartOptions for POST /exec/{id}/start.
type ExecStartOptions struct {
	Detach      bool
	Tty         bool
	ConsoleSize *[2]uint // height, width
	Streams     StreamsFunc
}

// ImageListOptions for GET /images/json.
type ImageListOptions struct {
	All        bool
	Filters    Filters
	SharedSize bool
	Manifests  bool
}

// ImageRemoveOptions for DELETE /images/{name}.
type ImageRemoveOptions struct {
	Force   bool
	NoPrune bool
}

// ProgressFunc receives progress messages to stream to the client as
// JSON lines; the API flushes each one. It returns an error when the
// client has gone away.
type ProgressFunc func(jsonstream.Message) error

// PullOptions for POST /images/create?fromImage=.
type PullOptions struct {
	Ref      string // e.g. "busybox", "127.0.0.1:5000/busybox" (no tag/digest)
	Tag      string // tag or digest ("sha256:..."); "" pulls all tags
	Platform *ocispec.Platform
	Auth     registry.AuthConfig
}

// PushOptions for POST /images/{name}/push.
type PushOptions struct {
	Ref      string
	Tag      string
	Platform *ocispec.Platform
	Auth     registry.AuthConfig
}

// SearchOptions for GET /images/search.
type SearchOptions struct {
	Term    string
	Limit   int
	Filters Filters // is-official, is-automated, stars
	Auth    registry.AuthConfig
}

// ImageSaveOptions for GET /images/get.
type ImageSaveOptions struct {
	Platforms []ocispec.Platform
}

// ImageLoadOptions for POST /images/load.
type ImageLoadOptions struct {
	Quiet     bool
	Platforms []ocispec.Platform
}

// ImageImportOptions for POST /images/create?fromSrc=.
type ImageImportOptions struct {
	Source   string // "-" (request body) or a URL
	Repo     string
	Tag      string
	Message  string
	Changes  []string
	Platform *ocispec.Platform
}

// DiskUsageOptions for GET /system/df; empty Types means all.
type DiskUsageOptions struct {
	Types []system.DiskUsageObject
}

// DiskUsage is what the backend knows; the API shapes it for the client's
// API version (the legacy lists before 1.52, the usage summaries after).
type DiskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
}

// EventsOptions for GET /events.
type EventsOptions struct {
	Since, Until time.Time
	Filters      Filters
}

// NetworkInspectOptions for GET /networks/{id}.
type NetworkInspectOptions struct {
	Verbose bool
	Scope   string
}
