// Package apitest is an in-memory backend for the API server: enough of a
// container engine to drive the real docker CLI and the moby Go client
// through create → attach → wait → start → wait → remove, logs, events,
// images and pulls, without running anything. Tests of internal/api and
// of the CLI use it; it is not a conformance reference for the daemon.
//
// "Programs" a fake container understands (Config.Cmd, after Entrypoint):
//
//	echo ARGS...   writes ARGS joined by spaces and "\n" to stdout, exits 0
//	err ARGS...    the same to stderr, exits 0
//	exit N         exits with status N
//	cat            copies attached stdin to stdout until stdin EOF, exits 0
//	sleep ...      runs until stopped or killed
//	nonexistent    start fails with docker's "executable file not found"
//
// Anything else exits 0 without output.
package apitest

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
)

// Fake implements the container, stream, image, registry and system
// backends. The zero value is not usable; call New.
type Fake struct {
	mu         sync.Mutex
	seq        int
	containers map[string]*ctr // by ID
	images     map[string]*img // by ID
	remote     map[string]string
	events     []events.Message
	subs       map[chan events.Message]struct{}
	now        func() time.Time
	execs      map[string]*execRec
	nets       map[string]*netRec
	vols       map[string]*volume.Volume
}

type img struct {
	id   string
	tags []string
}

type ctr struct {
	id, name  string
	cfg       *container.Config
	hc        *container.HostConfig
	created   time.Time
	state     container.ContainerState
	exitCode  int
	started   time.Time
	finished  time.Time
	logs      []backend.LogMessage
	attached  []*attachment
	followers []chan backend.LogMessage
	exitWait  []chan backend.WaitResult // next exit
	rmWait    []chan backend.WaitResult
	stop      chan struct{} // closed to end a running program
	stdinCh   chan io.Reader
	copied    map[string]string // files copied into /tmp
}

type attachment struct {
	stdout, stderr io.Writer
	done           chan struct{}
}

// New returns an empty fake engine.
func New() *Fake {
	return &Fake{
		containers: map[string]*ctr{}, images: map[string]*img{},
		remote: map[string]string{}, subs: map[chan events.Message]struct{}{},
		now: time.Now, execs: map[string]*execRec{},
	}
}

// Backends wires f into an API server as every backend.
func (f *Fake) Backends() api.Backends {
	return api.Backends{Containers: f, ContainerInfo: f, ContainerAdmin: f, Streams: f, Archive: f, Exec: f,
		Images: f, Registry: f, ImageArchive: f, System: f, Networks: f, Volumes: f}
}

// AddImage adds a local image with the given references; it returns its ID.
func (f *Fake) AddImage(refs ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addImageLocked(refs...)
}

func (f *Fake) addImageLocked(refs ...string) string {
	f.seq++
	id := fmt.Sprintf("sha256:%064x", f.seq)
	f.images[id] = &img{id: id, tags: normalizeRefs(refs)}
	return id
}

// AddRemote makes ref pullable. A ref named "*fail*" fails mid-pull.
func (f *Fake) AddRemote(ref string) {
	f.mu.Lock()
	f.remote[normalizeRef(ref)] = ref
	f.mu.Unlock()
}

func normalizeRefs(refs []string) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = normalizeRef(r)
	}
	return out
}

// normalizeRef adds ":latest" when there is no tag (a registry port is not a tag).
func normalizeRef(r string) string {
	r = strings.TrimPrefix(r, "docker.io/library/")
	r = strings.TrimPrefix(r, "docker.io/")
	if strings.Contains(r, "@") {
		return r
	}
	if i := strings.LastIndex(r, ":"); i < 0 || strings.Contains(r[i:], "/") {
		return r + ":latest"
	}
	return r
}

func (f *Fake) findImageLocked(name string) *img {
	n := normalizeRef(name)
	for _, im := range f.images {
		if im.id == name || strings.HasPrefix(im.id, "sha256:"+name) || strings.HasPrefix(im.id, name) && len(name) >= 12 {
			return im
		}
		for _, t := range im.tags {
			if t == n {
				return im
			}
		}
	}
	return nil
}

func (f *Fake) findLocked(idOrName string) (*ctr, error) {
	if c, ok := f.containers[idOrName]; ok {
		return c, nil
	}
	n := strings.TrimPrefix(idOrName, "/")
	var match *ctr
	for _, c := range f.containers {
		if c.name == n {
			return c, nil
		}
		if idOrName != "" && strings.HasPrefix(c.id, idOrName) {
			if match != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage("multiple IDs found with provided prefix: " + idOrName)
			}
			match = c
		}
	}
	if match == nil {
		return nil, errdefs.ErrNotFound.WithMessage("No such container: " + idOrName)
	}
	return match, nil
}

func (f *Fake) emitLocked(typ events.Type, action events.Action, id string, attrs map[string]string) {
	t := f.now()
	m := events.Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: t.Unix(), TimeNano: t.UnixNano()}
	f.events = append(f.events, m)
	for ch := range f.subs {
		select {
		case ch <- m:
		default: // a slow subscriber loses events rather than blocking the engine
		}
	}
}

func (c *ctr) attrs() map[string]string {
	a := map[string]string{"name": c.name, "image": c.cfg.Image}
	for k, v := range c.cfg.Labels {
		a[k] = v
	}
	return a
}

// ContainerCreate implements backend.ContainerBackend.
func (f *Fake) ContainerCreate(_ context.Context, req backend.ContainerCreateRequest) (container.CreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.findImageLocked(req.Config.Image) == nil {
		return container.CreateResponse{}, errdefs.ErrNotFound.WithMessage("No such image: " + normalizeRef(req.Config.Image))
	}
	f.seq++
	id := fmt.Sprintf("%012x%052x", f.seq, f.seq)
	name := req.Name
	if name == "" {
		name = fmt.Sprintf("fake_%d", f.seq)
	}
	for _, c := range f.containers {
		if c.name == name {
			return container.CreateResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf(
				"Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, c.id))
		}
	}
	if req.HostConfig.LogConfig.Type == "" {
		req.HostConfig.LogConfig.Type = "json-file" // the daemon's default driver; docker-py reads it
	}
	c := &ctr{id: id, name: name, cfg: req.Config, hc: req.HostConfig, created: f.now(), state: container.StateCreated}
	f.containers[id] = c
	f.emitLocked(events.ContainerEventType, events.ActionCreate, id, c.attrs())
	return container.CreateResponse{ID: id}, nil
}

// ContainerStart implements backend.ContainerBackend.
func (f *Fake) ContainerStart(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(id)
	if err != nil {
		return err
	}
	if c.state == container.StateRunning || c.state == container.StatePaused {
		return errdefs.ErrNotModified
	}
	if argv := append(append([]string{}, c.cfg.Entrypoint...), c.cfg.Cmd...); len(argv) > 0 && argv[0] == "nonexistent" {
		// As dockerd: a container with AutoRemove whose start fails is
		// removed (the CLI's --rm waits for that), with exit code 127.
		c.exitCode = 127
		if c.hc != nil && c.hc.AutoRemove {
			f.removeLocked(c)
		}
		// docker's text; the CLI turns "executable file not found" into exit 127
		return errdefs.ErrInvalidArgument.WithMessage(`failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nonexistent": executable file not found in $PATH: unknown`)
	}
	c.state, c.started, c.stop = container.StateRunning, f.now(), make(chan struct{})
	if c.stdinCh == nil {
		c.stdinCh = make(chan io.Reader, 1)
	}
	f.emitLocked(events.ContainerEventType, events.ActionStart, c.id, c.attrs())
	go f.run(c, c.stop, c.stdinCh)
	return nil
}

func (f *Fake) run(c *ctr, stop <-chan struct{}, stdin <-chan io.Reader) {
	argv := append(append([]string{}, c.cfg.Entrypoint...), c.cfg.Cmd...)
	code := runProgram(argv, func() (io.Reader, bool) {
		select {
		case r := <-stdin:
			return r, true
		case <-stop:
			return nil, false
		}
	}, func(stream, s string) { f.output(c, stream, s) }, stop)
	f.exit(c, code)
}

// runProgram interprets argv (see the package comment). stdin waits for
// an attached stdin (false: stopped meanwhile); out writes to a stream.
func runProgram(argv []string, stdin func() (io.Reader, bool), out func(stream, s string), stop <-chan struct{}) int {
	if len(argv) == 0 {
		return 0
	}
	switch argv[0] {
	case "echo":
		out("stdout", strings.Join(argv[1:], " ")+"\n")
	case "err":
		out("stderr", strings.Join(argv[1:], " ")+"\n")
	case "exit":
		code := 0
		if len(argv) > 1 {
			code, _ = strconv.Atoi(argv[1])
		}
		return code
	case "cat":
		r, ok := stdin()
		if !ok {
			return 137
		}
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				out("stdout", string(buf[:n]))
			}
			if err != nil {
				return 0
			}
		}
	case "sleep":
		<-stop
		return 137
	}
	return 0
}

func (f *Fake) output(c *ctr, stream, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.cfg.Tty {
		s = strings.ReplaceAll(s, "\n", "\r\n")
	}
	m := backend.LogMessage{Stream: stream, Line: []byte(s), Timestamp: f.now()}
	c.logs = append(c.logs, m)
	for _, a := range c.attached {
		w := a.stdout
		if stream == "stderr" {
			w = a.stderr
		}
		if w != nil {
			_, _ = io.WriteString(w, s)
		}
	}
	for _, ch := range c.followers {
		ch <- m // buffered generously by the follower
	}
}

func (f *Fake) exit(c *ctr, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.state != container.StateRunning && c.state != container.StatePaused {
		return
	}
	c.state, c.exitCode, c.finished = container.StateExited, code, f.now()
	f.emitLocked(events.ContainerEventType, events.ActionDie, c.id, mergeAttrs(c.attrs(), "exitCode", strconv.Itoa(code)))
	for _, a := range c.attached {
		close(a.done)
	}
	c.attached = nil
	for _, ch := range c.followers {
		close(ch)
	}
	c.followers = nil
	for _, ch := range c.exitWait {
		ch <- backend.WaitResult{StatusCode: int64(code)}
	}
	c.exitWait = nil
	if c.hc != nil && c.hc.AutoRemove {
		f.removeLocked(c)
	}
}

func mergeAttrs(a map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		a[kv[i]] = kv[i+1]
	}
	return a
}

func (f *Fake) removeLocked(c *ctr) {
	delete(f.containers, c.id)
	f.emitLocked(events.ContainerEventType, events.ActionDestroy, c.id, c.attrs())
	for _, ch := range c.rmWait {
		ch <- backend.WaitResult{StatusCode: int64(c.exitCode)}
	}
	c.rmWait = nil
}

// ContainerStop implements backend.ContainerBackend.
func (f *Fake) ContainerStop(_ context.Context, id string, _ backend.StopOptions) error {
	f.mu.Lock()
	c, err := f.findLocked(id)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	if c.state != container.StateRunning && c.state != container.StatePaused {
		f.mu.Unlock()
		return errdefs.ErrNotModified
	}
	stop := c.stop
	f.mu.Unlock()
	close(stop)
	f.waitState(c, container.StateRunning, false)
	return nil
}

// waitState polls until c's state is (or, with is false, is not) s.
func (f *Fake) waitState(c *ctr, s container.ContainerState, is bool) {
	for {
		f.mu.Lock()
		cur := c.state
		f.mu.Unlock()
		if (cur == s) == is {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// ContainerRestart implements backend.ContainerBackend.
func (f *Fake) ContainerRestart(ctx context.Context, id string, opts backend.StopOptions) error {
	if err := f.ContainerStop(ctx, id, opts); err != nil && !errdefs.IsNotModified(err) {
		return err
	}
	return f.ContainerStart(ctx, id)
}

// ContainerKill implements backend.ContainerBackend.
func (f *Fake) ContainerKill(ctx context.Context, id string, _ string) error {
	f.mu.Lock()
	c, err := f.findLocked(id)
	if err == nil && c.state != container.StateRunning {
		err = errdefs.ErrConflict.WithMessage(fmt.Sprintf("Cannot kill container: %s: Container %s is not running", id, c.id))
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.ContainerStop(ctx, id, backend.StopOptions{})
}

// ContainerPause implements backend.ContainerBackend.
func (f *Fake) ContainerPause(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(id)
	if err != nil {
		return err
	}
	if c.state != container.StateRunning {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", c.id))
	}
	c.state = container.StatePaused
	return nil
}

// ContainerUnpause implements backend.ContainerBackend.
func (f *Fake) ContainerUnpause(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(id)
	if err != nil {
		return err
	}
	if c.state != container.StatePaused {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not paused", c.id))
	}
	c.state = container.StateRunning
	return nil
}

// ContainerRemove implements backend.ContainerBackend.
func (f *Fake) ContainerRemove(ctx context.Context, id string, opts backend.RemoveOptions) error {
	f.mu.Lock()
	c, err := f.findLocked(id)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	if c.state == container.StateRunning || c.state == container.StatePaused {
		if !opts.Force {
			f.mu.Unlock()
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf(
				"cannot remove container \"/%s\": container is running: stop the container before removing or force remove", c.name))
		}
		f.mu.Unlock()
		if err := f.ContainerStop(ctx, c.id, backend.StopOptions{}); err != nil {
			return err
		}
		f.mu.Lock()
	}
	if _, ok := f.containers[c.id]; ok {
		f.removeLocked(c)
	}
	f.mu.Unlock()
	return nil
}

// ContainerWait implements backend.ContainerBackend.
func (f *Fake) ContainerWait(_ context.Context, id string, cond container.WaitCondition) (<-chan backend.WaitResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(id)
	if err != nil {
		return nil, err
	}
	ch := make(chan backend.WaitResult, 1)
	switch cond {
	case container.WaitConditionRemoved:
		c.rmWait = append(c.rmWait, ch)
	case container.WaitConditionNextExit:
		c.exitWait = append(c.exitWait, ch)
	default:
		if c.state != container.StateRunning && c.state != container.StatePaused {
			ch <- backend.WaitResult{StatusCode: int64(c.exitCode)}
		} else {
			c.exitWait = append(c.exitWait, ch)
		}
	}
	return ch, nil
}

// ContainerList implements backend.ContainerInfoBackend (filters: label,
// name, id, status).
func (f *Fake) ContainerList(_ context.Context, opts backend.ListOptions) ([]container.Summary, error) {
	if bad := opts.Filters.Validate("label", "name", "id", "status"); bad != "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid filter '" + bad + "'")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []container.Summary
	for _, c := range f.containers {
		if !opts.All && !opts.Filters.Has("status") && c.state != container.StateRunning {
			continue
		}
		if !opts.Filters.MatchKVList("label", c.cfg.Labels) || !opts.Filters.Match("name", c.name) ||
			!opts.Filters.ExactMatch("status", string(c.state)) || !fuzzyID(opts.Filters, c.id) {
			continue
		}
		out = append(out, f.summaryLocked(c))
	}
	sortSummaries(out)
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}

func fuzzyID(f backend.Filters, id string) bool {
	if !f.Has("id") {
		return true
	}
	for _, v := range f.Get("id") {
		if strings.HasPrefix(id, v) {
			return true
		}
	}
	return false
}

func sortSummaries(s []container.Summary) {
	sort.Slice(s, func(i, j int) bool { // newest first, then by ID: stable output
		if s[i].Created != s[j].Created {
			return s[i].Created > s[j].Created
		}
		return s[i].ID > s[j].ID
	})
}

func (f *Fake) summaryLocked(c *ctr) container.Summary {
	s := container.Summary{
		ID: c.id, Names: []string{"/" + c.name}, Image: c.cfg.Image, Command: strings.Join(append(append([]string{}, c.cfg.Entrypoint...), c.cfg.Cmd...), " "),
		Created: c.created.Unix(), Labels: c.cfg.Labels, State: c.state, Status: statusText(c, f.now()),
		Ports: []container.PortSummary{}, Mounts: []container.MountPoint{},
	}
	if im := f.findImageLocked(c.cfg.Image); im != nil {
		s.ImageID = im.id
	}
	return s
}

func statusText(c *ctr, now time.Time) string {
	switch c.state {
	case container.StateRunning:
		return "Up " + humanDuration(now.Sub(c.started))
	case container.StatePaused:
		return "Up " + humanDuration(now.Sub(c.started)) + " (Paused)"
	case container.StateExited:
		return fmt.Sprintf("Exited (%d) %s ago", c.exitCode, humanDuration(now.Sub(c.finished)))
	}
	return "Created"
}

func humanDuration(d time.Duration) string {
	if s := int(d.Seconds()); s < 60 {
		if s < 1 {
			return "Less than a second"
		}
		return fmt.Sprintf("%d seconds", s)
	}
	return fmt.Sprintf("%d minutes", int(d.Minutes()))
}

// ContainerInspect implements backend.ContainerInfoBackend.
func (f *Fake) ContainerInspect(_ context.Context, id string, _ bool) (container.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(id)
	if err != nil {
		return container.InspectResponse{}, err
	}
	r := container.InspectResponse{
		ID: c.id, Name: "/" + c.name, Created: c.created.UTC().Format(time.RFC3339Nano), Image: c.cfg.Image,
		State: &container.State{
			Status: c.state, Running: c.state == container.StateRunning || c.state == container.StatePaused,
			Paused: c.state == container.StatePaused, ExitCode: c.exitCode,
			StartedAt: c.started.UTC().Format(time.RFC3339Nano), FinishedAt: c.finished.UTC().Format(time.RFC3339Nano),
		},
		Config: c.cfg, HostConfig: c.hc, Driver: "overlay2", Platform: "linux",
		Mounts: []container.MountPoint{}, NetworkSettings: &container.NetworkSettings{},
	}
	if im := f.findImageLocked(c.cfg.Image); im != nil {
		r.Image = im.id
	}
	if len(c.cfg.Cmd) > 0 {
		r.Path, r.Args = c.cfg.Cmd[0], c.cfg.Cmd[1:]
	}
	return r, nil
}

// ContainerTop implements backend.ContainerInfoBackend.
func (f *Fake) ContainerTop(_ context.Context, id string, psArgs string) (container.TopResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(id)
	if err != nil {
		return container.TopResponse{}, err
	}
	if c.state != container.StateRunning {
		return container.TopResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", c.id))
	}
	return container.TopResponse{Titles: []string{"PID", "CMD", "ARGS"}, Processes: [][]string{{"1", strings.Join(c.cfg.Cmd, " "), psArgs}}}, nil
}

// ContainerStats implements backend.ContainerInfoBackend: a fixed sample.
func (f *Fake) ContainerStats(ctx context.Context, id string, opts backend.StatsOptions) (<-chan container.StatsResponse, error) {
	f.mu.Lock()
	c, err := f.findLocked(id)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	ch := make(chan container.StatsResponse)
	go func() {
		defer close(ch)
		for i := 0; ; i++ {
			st := container.StatsResponse{ID: c.id, Name: "/" + c.name, Read: f.now()}
			st.MemoryStats.Usage, st.MemoryStats.Limit = 1<<20, 1<<30
			st.PidsStats.Current = 1
			select {
			case ch <- st:
			case <-ctx.Done():
				return
			}
			if !opts.Stream {
				return
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// ContainerChanges implements backend.ContainerInfoBackend.
func (f *Fake) ContainerChanges(_ context.Context, id string) ([]container.FilesystemChange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.findLocked(id); err != nil {
		return nil, err
	}
	return []container.FilesystemChange{{Kind: container.ChangeAdd, Path: "/tmp/x"}}, nil
}

// ContainerAttach implements backend.StreamBackend.
func (f *Fake) ContainerAttach(ctx context.Context, id string, opts backend.AttachOptions) error {
	// The lock is held across Streams (which sends the 101): the client
	// cannot start the container before the attachment is registered.
	f.mu.Lock()
	c, err := f.findLocked(id)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	streams, err := opts.Streams(c.cfg.Tty)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	a := &attachment{done: make(chan struct{})}
	if opts.Stdout {
		a.stdout = streams.Stdout
	}
	if opts.Stderr {
		a.stderr = streams.Stderr
	}
	if opts.Logs {
		for _, m := range c.logs {
			w := a.stdout
			if m.Stream == "stderr" {
				w = a.stderr
			}
			if w != nil {
				_, _ = w.Write(m.Line)
			}
		}
	}
	live := opts.Stream && (c.state == container.StateCreated || c.state == container.StateRunning || c.state == container.StatePaused)
	if live {
		c.attached = append(c.attached, a)
		if streams.Stdin != nil {
			if c.stdinCh == nil {
				c.stdinCh = make(chan io.Reader, 1)
			}
			select {
			case c.stdinCh <- streams.Stdin:
			default:
			}
		}
	}
	f.mu.Unlock()
	if !live {
		return nil
	}
	select {
	case <-a.done:
	case <-ctx.Done():
	}
	return nil
}

// ContainerLogs implements backend.StreamBackend.
func (f *Fake) ContainerLogs(ctx context.Context, id string, opts backend.LogsOptions) (backend.LogStream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(id)
	if err != nil {
		return backend.LogStream{}, err
	}
	var lines []backend.LogMessage
	for _, m := range c.logs {
		if (m.Stream == "stdout" && opts.Stdout) || (m.Stream == "stderr" && opts.Stderr) {
			lines = append(lines, m)
		}
	}
	if n, err := strconv.Atoi(opts.Tail); err == nil && n >= 0 && n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	ch := make(chan backend.LogMessage, len(lines)+1024)
	for _, m := range lines {
		ch <- m
	}
	if opts.Follow && c.state == container.StateRunning {
		c.followers = append(c.followers, ch)
	} else {
		close(ch)
	}
	return backend.LogStream{TTY: c.cfg.Tty, Messages: ch}, nil
}

// ContainerResize implements backend.StreamBackend.
func (f *Fake) ContainerResize(_ context.Context, id string, _, _ uint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(id)
	if err != nil {
		return err
	}
	if c.state != container.StateRunning {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", c.id))
	}
	return nil
}

// ImageList implements backend.ImageBackend (filter: reference).
func (f *Fake) ImageList(_ context.Context, opts backend.ImageListOptions) ([]image.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []image.Summary{}
	for _, im := range f.images {
		if opts.Filters.Has("reference") {
			ok := false
			for _, t := range im.tags {
				if opts.Filters.Match("reference", t) {
					ok = true
				}
			}
			if !ok {
				continue
			}
		}
		out = append(out, image.Summary{ID: im.id, RepoTags: im.tags, RepoDigests: []string{}, Created: 1700000000, Size: 4 << 20, Containers: -1, Labels: map[string]string{}})
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].ID < out[j-1].ID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// ImageInspect implements backend.ImageBackend.
func (f *Fake) ImageInspect(_ context.Context, name string) (image.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	im := f.findImageLocked(name)
	if im == nil {
		return image.InspectResponse{}, errdefs.ErrNotFound.WithMessage("No such image: " + name)
	}
	return image.InspectResponse{ID: im.id, RepoTags: im.tags, RepoDigests: []string{}, Os: "linux", Architecture: "amd64", Size: 4 << 20, RootFS: image.RootFS{Type: "layers"}}, nil
}

// ImageHistory implements backend.ImageBackend.
func (f *Fake) ImageHistory(ctx context.Context, name string) ([]image.HistoryResponseItem, error) {
	im, err := f.ImageInspect(ctx, name)
	if err != nil {
		return nil, err
	}
	return []image.HistoryResponseItem{{ID: im.ID, Created: 1700000000, CreatedBy: "/bin/sh -c #(nop) ADD file:x in /", Size: im.Size, Tags: im.RepoTags}}, nil
}

// ImageTag implements backend.ImageBackend.
func (f *Fake) ImageTag(_ context.Context, source, repo, tag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	im := f.findImageLocked(source)
	if im == nil {
		return errdefs.ErrNotFound.WithMessage("No such image: " + source)
	}
	im.tags = append(im.tags, repo+":"+tag)
	f.emitLocked(events.ImageEventType, events.ActionTag, im.id, map[string]string{"name": repo + ":" + tag})
	return nil
}

// ImageRemove implements backend.ImageBackend: untags name; deletes the
// image when no tag is left.
func (f *Fake) ImageRemove(_ context.Context, name string, opts backend.ImageRemoveOptions) ([]image.DeleteResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	im := f.findImageLocked(name)
	if im == nil {
		return nil, errdefs.ErrNotFound.WithMessage("No such image: " + name)
	}
	if !opts.Force {
		for _, c := range f.containers {
			if f.findImageLocked(c.cfg.Image) == im {
				return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", name, c.id[:12], im.id[7:19]))
			}
		}
	}
	var out []image.DeleteResponse
	n := normalizeRef(name)
	for i, t := range im.tags {
		if t == n {
			im.tags = append(im.tags[:i], im.tags[i+1:]...)
			out = append(out, image.DeleteResponse{Untagged: t})
			break
		}
	}
	if len(im.tags) == 0 {
		delete(f.images, im.id)
		out = append(out, image.DeleteResponse{Deleted: im.id})
	}
	return out, nil
}

// ImagePrune implements backend.ImageBackend.
func (f *Fake) ImagePrune(context.Context, backend.Filters) (image.PruneReport, error) {
	return image.PruneReport{}, nil
}

// ImagePull implements backend.RegistryBackend.
func (f *Fake) ImagePull(ctx context.Context, opts backend.PullOptions, progress backend.ProgressFunc) error {
	ref := normalizeRef(opts.Ref + ":" + opts.Tag)
	f.mu.Lock()
	_, ok := f.remote[ref]
	f.mu.Unlock()
	if !ok {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("pull access denied for %s, repository does not exist or may require 'docker login'", opts.Ref))
	}
	if err := progress(jsonstream.Message{Status: "Pulling from " + opts.Ref, ID: opts.Tag}); err != nil {
		return err
	}
	if err := progress(jsonstream.Message{Status: "Downloading", ID: "0123456789ab", Progress: &jsonstream.Progress{Current: 512, Total: 1024}}); err != nil {
		return err
	}
	if strings.Contains(opts.Ref, "fail") {
		return fmt.Errorf("failed to register layer: unexpected EOF")
	}
	f.mu.Lock()
	f.addImageLocked(ref)
	f.emitLocked(events.ImageEventType, events.ActionPull, ref, map[string]string{"name": ref})
	f.mu.Unlock()
	if err := progress(jsonstream.Message{Status: "Digest: sha256:" + strings.Repeat("a", 64)}); err != nil {
		return err
	}
	return progress(jsonstream.Message{Status: "Status: Downloaded newer image for " + ref})
}

// ImagePush implements backend.RegistryBackend.
func (f *Fake) ImagePush(ctx context.Context, opts backend.PushOptions, progress backend.ProgressFunc) error {
	if _, err := f.ImageInspect(ctx, opts.Ref+":"+opts.Tag); err != nil {
		return errdefs.ErrNotFound.WithMessage("An image does not exist locally with the tag: " + opts.Ref)
	}
	return progress(jsonstream.Message{Status: opts.Tag + ": digest: sha256:" + strings.Repeat("b", 64) + " size: 527"})
}

// ImageSearch implements backend.RegistryBackend.
func (f *Fake) ImageSearch(_ context.Context, opts backend.SearchOptions) ([]registry.SearchResult, error) {
	return []registry.SearchResult{{Name: opts.Term, Description: "fake", StarCount: 1, IsOfficial: true}}, nil
}

// RegistryLogin implements backend.RegistryBackend: password "secret" is right.
func (f *Fake) RegistryLogin(_ context.Context, auth registry.AuthConfig) (registry.AuthResponse, error) {
	if auth.Password != "secret" {
		return registry.AuthResponse{}, errdefs.ErrUnauthenticated.WithMessage("login attempt to " + auth.ServerAddress + " failed with status: 401 Unauthorized")
	}
	return registry.AuthResponse{Status: "Login Succeeded"}, nil
}

// SystemInfo implements backend.SystemBackend.
func (f *Fake) SystemInfo(context.Context) (system.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info := system.Info{
		ID: "FAKE", Name: "fakehost", ServerVersion: "20.10.0-berth", OperatingSystem: "berth-fake",
		OSType: "linux", Architecture: "x86_64", Driver: "overlay2", LoggingDriver: "json-file",
		CgroupDriver: "cgroupfs", CgroupVersion: "1", NCPU: 2, MemTotal: 1 << 30, Images: len(f.images),
		DockerRootDir: "/var/lib/berth", IndexServerAddress: "https://index.docker.io/v1/",
		DefaultRuntime: "berth-runtime", Runtimes: map[string]system.RuntimeWithStatus{"berth-runtime": {}},
		SecurityOptions: []string{"name=seccomp,profile=builtin"},
	}
	for _, c := range f.containers {
		info.Containers++
		switch c.state {
		case container.StateRunning:
			info.ContainersRunning++
		case container.StatePaused:
			info.ContainersPaused++
		default:
			info.ContainersStopped++
		}
	}
	return info, nil
}

// SystemVersion implements backend.SystemBackend.
func (f *Fake) SystemVersion(context.Context) (system.VersionResponse, error) {
	return system.VersionResponse{
		Platform: system.PlatformInfo{Name: "berth fake"}, Version: "20.10.0-berth", Os: "linux", Arch: "amd64",
		GoVersion: "go1", KernelVersion: "6.0", GitCommit: "fake",
		Components: []system.ComponentVersion{{Name: "Engine", Version: "20.10.0-berth"}},
	}, nil
}

// SystemDiskUsage implements backend.SystemBackend.
func (f *Fake) SystemDiskUsage(ctx context.Context, _ backend.DiskUsageOptions) (backend.DiskUsage, error) {
	imgs, _ := f.ImageList(ctx, backend.ImageListOptions{})
	ctrs, _ := f.ContainerList(ctx, backend.ListOptions{All: true})
	return backend.DiskUsage{LayersSize: 4 << 20, Images: imgs, Containers: ctrs}, nil
}

// SystemEvents implements backend.SystemBackend.
func (f *Fake) SystemEvents(ctx context.Context, opts backend.EventsOptions) (<-chan events.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var past []events.Message
	if !opts.Since.IsZero() {
		for _, m := range f.events {
			if time.Unix(0, m.TimeNano).Before(opts.Since) {
				continue
			}
			past = append(past, m)
		}
	}
	live := opts.Until.IsZero() || opts.Until.After(f.now())
	out := make(chan events.Message, len(past)+256)
	for _, m := range past {
		out <- m
	}
	if !live {
		close(out)
		return out, nil
	}
	sub := make(chan events.Message, 256)
	f.subs[sub] = struct{}{}
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, sub)
		f.mu.Unlock()
	}()
	go func() {
		for {
			select {
			case m := <-sub:
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
