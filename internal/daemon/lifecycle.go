package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/network"
	bruntime "github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/snapshot"
)

// ContainerCreate implements backend.ContainerBackend.
func (d *Daemon) ContainerCreate(ctx context.Context, req backend.ContainerCreateRequest) (container.CreateResponse, error) {
	cfg, hc := req.Config, req.HostConfig
	if cfg.Image == "" {
		return container.CreateResponse{}, errMsg(errInvalid, "no command specified")
	}
	d.imageRefs.RLock() // until the container is listed: see Daemon.imageRefs
	defer d.imageRefs.RUnlock()
	img, err := d.images.Get(ctx, cfg.Image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			// docker: a reference that does not parse is the client's error (400).
			if _, perr := reference.ParseAnyReference(cfg.Image); perr != nil {
				return container.CreateResponse{}, errMsg(errInvalid, "%s", perr.Error())
			}
			return container.CreateResponse{}, errMsg(errdefs.ErrNotFound, "No such image: %s", cfg.Image)
		}
		return container.CreateResponse{}, err
	}
	cfg.Healthcheck = d.mergeHealthcheck(img, cfg.Healthcheck)
	if err := d.validateCreate(cfg, hc); err != nil {
		return container.CreateResponse{}, err
	}
	if err := d.createResources(hc); err != nil { // update.go: docker's resource checks and defaults
		return container.CreateResponse{}, err
	}
	if _, _, err := d.runtimeFor(hc.Runtime); err != nil {
		return container.CreateResponse{}, err
	}
	if err := d.mergeLogConfig(&hc.LogConfig); err != nil { // logfiles.go: daemon log-opts merged, checked
		return container.CreateResponse{}, err
	}

	c := &Container{removedCh: make(chan struct{}), exitCh: make(chan struct{}), execs: map[string]*execProc{}}
	c.ID = newID()
	c.Created = time.Now().UTC()
	c.Config = cfg
	c.HostConfig = hc
	c.Image = img.ID.String()
	c.ImageName = cfg.Image
	c.Runtime = hc.Runtime
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = d.cfg.LogDriver
	}
	if hc.LogConfig.Config == nil {
		hc.LogConfig.Config = map[string]string{}
	}
	c.State.Status = container.StateCreated
	c.Path, c.Args = commandOf(cfg, img.Config.Config)
	if err := d.checkSpec(c, img); err != nil { // specgen.go: bad security options fail the create, as docker's
		return container.CreateResponse{}, err
	}

	name := req.Name
	if name != "" {
		if !validName(name) {
			return container.CreateResponse{}, errMsg(errInvalid, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
		}
		name = "/" + strings.TrimPrefix(name, "/")
		if err := d.ctrs.reserveName(name, c.ID); err != nil {
			return container.CreateResponse{}, err
		}
	} else {
		for i := 0; ; i++ {
			name = "/" + generateName(i)
			if d.ctrs.reserveName(name, c.ID) == nil {
				break
			}
		}
	}
	c.Name = name

	// Order: writable snapshot, then the record. A crash in between leaves a
	// snapshot with no record, which restore sweeps.
	if err := d.prepareRootfs(ctx, c, img); err != nil { // userns.go: the shifted image under userns-remap
		d.ctrs.releaseName(name, c.ID)
		return container.CreateResponse{}, fmt.Errorf("prepare rootfs: %w", err)
	}
	if err := os.MkdirAll(d.containerDir(c.ID), 0o710); err != nil {
		d.cleanupCreate(ctx, c)
		return container.CreateResponse{}, err
	}
	if err := d.createMounts(ctx, c, img.Config.Config); err != nil { // volumes.go
		d.cleanupCreate(ctx, c)
		return container.CreateResponse{}, err
	}
	if nc := req.NetworkingConfig; nc != nil && len(nc.EndpointsConfig) > 0 {
		if err := d.saveNetworking(c.ID, nc.EndpointsConfig); err != nil {
			d.cleanupCreate(ctx, c)
			return container.CreateResponse{}, err
		}
	}
	ls, _ := resolveLog(hc.LogConfig.Type, hc.LogConfig.Config, &d.cfg)
	if ls.Driver != "none" {
		c.LogPath = filepath.Join(d.containerDir(c.ID), c.ID+"-json.log")
	}
	if err := d.saveRecord(c); err != nil {
		d.cleanupCreate(ctx, c)
		return container.CreateResponse{}, err
	}
	d.ctrs.add(c)
	d.containerEvent(c, events.ActionCreate, nil)
	return container.CreateResponse{ID: c.ID, Warnings: []string{}}, nil
}

func (d *Daemon) cleanupCreate(ctx context.Context, c *Container) {
	d.removeMounts(ctx, c, true)
	_ = d.snaps.Remove(ctx, c.ID)
	_ = os.RemoveAll(d.containerDir(c.ID))
	d.ctrs.releaseName(c.Name, c.ID)
}

// validateCreate rejects what berth cannot honour yet with a clear error,
// rather than accepting a flag that would do nothing.
func (d *Daemon) validateCreate(cfg *container.Config, hc *container.HostConfig) error {
	if err := d.validateNetworking(context.Background(), hc); err != nil {
		return err
	}
	if err := validateHealthcheck(cfg.Healthcheck); err != nil {
		return err
	}
	if cfg.StopSignal != "" {
		if _, err := parseSignal(cfg.StopSignal); err != nil {
			return err
		}
	}
	switch hc.RestartPolicy.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if hc.RestartPolicy.MaximumRetryCount != 0 {
			return errMsg(errInvalid, "invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if hc.RestartPolicy.MaximumRetryCount < 0 {
			return errMsg(errInvalid, "invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return errMsg(errInvalid, "invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", hc.RestartPolicy.Name)
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled {
		return errMsg(errInvalid, "can't create 'AutoRemove' container with restart policy")
	}
	return nil
}

func validName(n string) bool {
	n = strings.TrimPrefix(n, "/")
	if n == "" {
		return false
	}
	for i, r := range n {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if i > 0 {
			ok = ok || r == '_' || r == '.' || r == '-'
		}
		if !ok {
			return false
		}
	}
	return true
}

// commandOf is docker's Path/Args: the entrypoint and cmd after merging
// with the image's.
func commandOf(cfg *container.Config, img ocispec.ImageConfig) (string, []string) {
	entrypoint, cmd := cfg.Entrypoint, cfg.Cmd
	switch {
	case len(entrypoint) == 1 && entrypoint[0] == "":
		entrypoint = nil // --entrypoint "": none, and the image's Cmd is dropped too
	case entrypoint == nil:
		entrypoint = img.Entrypoint
		if len(cmd) == 0 {
			cmd = img.Cmd
		}
	}
	argv := append(append([]string{}, entrypoint...), cmd...)
	if len(argv) == 0 {
		return "", nil
	}
	return argv[0], argv[1:]
}

// ContainerStart implements backend.ContainerBackend.
func (d *Daemon) ContainerStart(ctx context.Context, id string) error {
	c, err := d.ctrs.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.State.Status {
	case container.StateRunning, container.StatePaused:
		return errdefs.ErrNotModified
	case container.StateRemoving, container.StateDead:
		return errMsg(errConflict, "container is marked for removal and cannot be started")
	}
	if c.restartTimer != nil {
		c.restartTimer.Stop()
		c.restartTimer = nil
	}
	c.ManualStop = false
	return d.startLocked(ctx, c)
}

// startLocked runs the container; c.mu is held.
func (d *Daemon) startLocked(ctx context.Context, c *Container) (err error) {
	defer func() {
		if err != nil {
			c.State.Error = err.Error()
			c.State.ExitCode = 128
			if c.State.Status != container.StateCreated {
				c.State.Status = container.StateExited
			}
			_ = d.saveRecord(c)
			d.teardown(context.WithoutCancel(ctx), c)
			// Attaches waiting for this start end: there is nothing to stream.
			closeAttachWaiters(c)
			// --rm: docker removes a container whose start failed; the
			// client waits for that removal. c.mu is held here, so later.
			if c.HostConfig.AutoRemove {
				id := c.ID
				go func() {
					_ = d.ContainerRemove(context.Background(), id, backend.RemoveOptions{Force: true})
				}()
			}
		}
	}()
	img, err := d.images.Get(ctx, c.Image)
	if err != nil {
		return fmt.Errorf("image of container %s: %w", c.ID[:12], err)
	}
	// Root filesystem.
	mounts, err := d.snaps.Mounts(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	rootfs := d.rootfsDir(c.ID)
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	if err := d.remapStateDir(c); err != nil { // userns.go
		return err
	}
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		return fmt.Errorf("mount rootfs: %w", err)
	}
	// Network namespace: private (loopback only) unless host, none or shared.
	nsPaths := map[string]string{}
	nm := string(c.HostConfig.NetworkMode)
	switch {
	case nm == "host":
	case nm == "none":
		// The runtime makes the namespace (loopback only) in its clone; a
		// daemon-made one would cost an unshare, a bind mount and its
		// removal, and nothing joins it: a "none" container cannot be
		// connected to networks.
	case strings.HasPrefix(nm, "container:"):
		other, err := d.ctrs.get(strings.TrimPrefix(nm, "container:"))
		if err != nil {
			return err
		}
		if !other.State.running() {
			return errMsg(errConflict, "cannot join network of a non running container: %s", other.ID)
		}
		nsPaths["network"] = fmt.Sprintf("/proc/%d/ns/net", other.State.Pid)
	default:
		p := d.netnsPath(c.ID)
		_ = network.RemoveNamespace(p)
		if err := network.NewNamespace(ctx, p); err != nil {
			return err
		}
		nsPaths["network"] = p
		if err := d.connectNetworks(ctx, c, img.Config.Config, p); err != nil {
			return err
		}
	}
	if err := d.mountVolumes(ctx, c, rootfs); err != nil { // volumes.go
		return err
	}
	sp, err := d.generateSpec(c, img, rootfs, nsPaths)
	if err != nil {
		return err
	}
	b, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.bundleDir(c.ID), "config.json"), b, 0o600); err != nil {
		return err
	}
	rt, _, err := d.runtimeFor(c.Runtime)
	if err != nil {
		return err
	}
	ls, err := resolveLog(c.HostConfig.LogConfig.Type, c.HostConfig.LogConfig.Config, &d.cfg)
	if err != nil {
		return err
	}
	// A leftover runtime state from a crash would make create fail.
	if _, err := os.Stat(filepath.Join(d.runtimeRoot(), c.ID)); err == nil {
		_ = d.forceDelete(ctx, c)
	}
	proc, err := d.createTask(ctx, c, monitor.Config{
		Binary:      d.monitorPath,
		ID:          c.ID,
		Bundle:      d.bundleDir(c.ID),
		StateDir:    d.stateDir(c.ID),
		Runtime:     rt,
		RuntimeRoot: d.runtimeRoot(),
		LogPath:     c.LogPath,
		LogMaxSize:  ls.MaxSize,
		LogMaxFiles: ls.MaxFiles,
		LogCompress: ls.Compress,
		Terminal:    c.Config.Tty,
		Stdin:       c.Config.OpenStdin,
		StdinOnce:   c.Config.StdinOnce,
	}, b)
	if err != nil {
		return errMsg(errdefs.ErrUnknown, "failed to create task for container: %v", err)
	}
	c.monitorPid = proc.Pid
	if c.Config.Tty && c.HostConfig.ConsoleSize[0] > 0 {
		_ = monitor.Resize(d.stateDir(c.ID), c.HostConfig.ConsoleSize[0], c.HostConfig.ConsoleSize[1])
	}
	// Connect the attaches made before start, so no output is lost.
	d.connectPendingAttaches(ctx, c)
	if err := d.runtimeDo(c, func(rt ociRuntime) error { return rt.Start(ctx, c.ID) }); err != nil {
		_ = d.forceDelete(ctx, c)
		_ = proc.Wait(ctx)
		return errMsg(errdefs.ErrUnknown, "failed to start container: %v", err)
	}
	c.State = State{Status: container.StateRunning, Pid: proc.InitPid, StartedAt: time.Now().UTC(), Health: c.State.Health}
	c.HasBeenStarted = true
	c.stopping = false
	if err := d.saveRecord(c); err != nil {
		d.log.Error("save container record", "id", c.ID, "err", err)
	}
	d.containerEvent(c, events.ActionStart, nil)
	d.watch(c, proc)
	d.startHealth(c)
	return nil
}

// ociRuntime is how the daemon drives a container's OCI runtime once the
// monitor has created it. Two implementations: berth's own runtime called
// in-process (*bruntime.Runtime: same code and state directory as the
// berth-runtime binary the monitor runs for create, without a process spawn
// per call), and any other runtime through its runc-compatible CLI.
type ociRuntime interface {
	Start(ctx context.Context, id string) error
	Delete(ctx context.Context, id string, force bool) error
	Kill(ctx context.Context, id string, sig unix.Signal, all bool) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	// Update changes a live container's cgroup limits (update.go).
	Update(ctx context.Context, id string, res *specs.LinuxResources) error
}

// runtimeOf returns c's runtime.
func (d *Daemon) runtimeOf(c *Container) (ociRuntime, error) {
	name := c.Runtime
	if name == "" {
		name = d.cfg.DefaultRuntime
	}
	if d.ownRuntime(name) {
		return &bruntime.Runtime{Root: d.runtimeRoot()}, nil
	}
	path, args, err := d.runtimeFor(name)
	if err != nil {
		return nil, err
	}
	return cliRuntime{path: path, args: args, root: d.runtimeRoot()}, nil
}

// forceDelete removes c's runtime state; a container the runtime does not
// know is not an error.
func (d *Daemon) forceDelete(ctx context.Context, c *Container) error {
	rt, err := d.runtimeOf(c)
	if err != nil {
		return err
	}
	if err := rt.Delete(ctx, c.ID, true); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// cliRuntime drives a runc-compatible runtime binary.
type cliRuntime struct {
	path string
	args []string
	root string
}

func (r cliRuntime) run(ctx context.Context, args ...string) error {
	full := append(append(append([]string{}, r.args...), "--root", r.root), args...)
	out, err := exec.CommandContext(ctx, r.path, full...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return errors.New(msg)
	}
	return nil
}

func (r cliRuntime) Start(ctx context.Context, id string) error { return r.run(ctx, "start", id) }
func (r cliRuntime) Pause(ctx context.Context, id string) error { return r.run(ctx, "pause", id) }
func (r cliRuntime) Resume(ctx context.Context, id string) error {
	return r.run(ctx, "resume", id)
}
func (r cliRuntime) Delete(ctx context.Context, id string, force bool) error {
	if force {
		return r.run(ctx, "delete", "--force", id)
	}
	return r.run(ctx, "delete", id)
}
func (r cliRuntime) Kill(ctx context.Context, id string, sig unix.Signal, all bool) error {
	if all {
		return r.run(ctx, "kill", "--all", id, strconv.Itoa(int(sig)))
	}
	return r.run(ctx, "kill", id, strconv.Itoa(int(sig)))
}

// runtimeDo runs one runtime operation for c.
func (d *Daemon) runtimeDo(c *Container, fn func(ociRuntime) error) error {
	rt, err := d.runtimeOf(c)
	if err != nil {
		return err
	}
	return fn(rt)
}

// watch waits for the monitor to record the exit, then handles it.
func (d *Daemon) watch(c *Container, proc *monitor.Process) {
	d.watchOOM(c) // oom.go: live oom events
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := proc.Wait(d.closeCtx); err != nil {
			return // daemon shutting down; the container keeps running
		}
		d.handleExit(c)
	}()
}

// handleExit records an exit, cleans up the run and applies the restart
// policy or AutoRemove.
func (d *Daemon) handleExit(c *Container) {
	ctx := context.Background()
	c.mu.Lock()
	if c.State.Status == container.StateRemoving {
		// Removal tore the run down and deleted the record; saving it now
		// would bring the container back with the next daemon.
		close(c.exitCh)
		c.exitCh = make(chan struct{})
		c.mu.Unlock()
		return
	}
	code, ok := monitor.ExitStatus(d.stateDir(c.ID))
	if !ok {
		code = 255
		c.State.Error = "container monitor exited without recording an exit status"
	}
	oomKilled, announceOOM := d.oomAtExit(c) // oom.go, before teardown removes the cgroup
	c.State.OOMKilled = oomKilled
	c.State.Status = container.StateExited
	c.State.ExitCode = code
	c.State.Pid = 0
	c.State.FinishedAt = time.Now().UTC()
	restart, delay := d.shouldRestart(c)
	if c.HostConfig.AutoRemove && !restart {
		d.releaseRun(ctx, c) // removal below unmounts the rootfs
	} else {
		d.teardown(ctx, c)
	}
	if restart {
		c.State.Status = container.StateRestarting
	}
	// --rm: the record is deleted just below, so skip a write (and its
	// fsync) on the way to the client's `wait condition=removed`. A crash
	// in between leaves a "running" record without a monitor: restore
	// records an exit and removes the container then.
	if !c.HostConfig.AutoRemove || restart {
		_ = d.saveRecord(c)
	}
	if announceOOM {
		d.containerEvent(c, events.ActionOOM, nil)
	}
	d.containerEvent(c, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(code)})
	// exitCh always stands for the next exit: close it, arm the next one.
	close(c.exitCh)
	c.exitCh = make(chan struct{})
	autoRemove := c.HostConfig.AutoRemove
	if restart {
		c.restartTimer = time.AfterFunc(delay, func() { d.policyRestart(c) })
	}
	c.mu.Unlock()
	if autoRemove && !restart {
		if err := d.ContainerRemove(ctx, c.ID, backend.RemoveOptions{RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
			d.log.Error("auto-remove", "id", c.ID, "err", err)
		}
	}
}

func (d *Daemon) policyRestart(c *Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.restartTimer = nil
	if c.State.Status != container.StateRestarting {
		return
	}
	c.RestartCount++
	if err := d.startLocked(context.Background(), c); err != nil {
		d.log.Error("restart", "id", c.ID, "err", err)
	}
}

// shouldRestart applies docker's restart policies and back-off: the delay
// starts at 100 ms and doubles per consecutive restart (capped at a minute);
// a run of 10 s or more resets it.
func (d *Daemon) shouldRestart(c *Container) (bool, time.Duration) {
	if c.stopping || c.ManualStop {
		return false, 0
	}
	p := c.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
	case container.RestartPolicyOnFailure:
		if c.State.ExitCode == 0 {
			return false, 0
		}
		if p.MaximumRetryCount > 0 && c.RestartCount >= p.MaximumRetryCount {
			return false, 0
		}
	default:
		return false, 0
	}
	if c.State.FinishedAt.Sub(c.State.StartedAt) >= 10*time.Second {
		c.RestartCount = 0
	}
	delay := 100 * time.Millisecond << min(c.RestartCount, 10)
	return true, min(delay, time.Minute)
}

// teardown releases what a run holds: runtime state, rootfs mount, netns.
// It keeps the writable snapshot and the record. c.mu is held.
func (d *Daemon) teardown(ctx context.Context, c *Container) {
	d.releaseRun(ctx, c)
	_ = snapshot.UnmountAll(d.rootfsDir(c.ID))
}

// releaseRun is teardown but for the rootfs mount, which removal unmounts
// only once the container is gone for clients: unmounting overlayfs syncs
// the whole upper filesystem, milliseconds here and far more while others
// write, and a `run --rm` client need not wait for it. c.mu is held.
func (d *Daemon) releaseRun(ctx context.Context, c *Container) {
	d.stopHealth(c)
	_ = d.forceDelete(ctx, c)
	d.unmountVolumes(ctx, c)
	d.releaseNetworks(ctx, c)
	_ = network.RemoveNamespace(d.netnsPath(c.ID))
	for _, f := range []string{"config.json", "exit", "pid", "monitor.pid", "runtime.log"} {
		_ = os.Remove(filepath.Join(d.stateDir(c.ID), f))
	}
	c.monitorPid = 0
}

// ContainerStop implements backend.ContainerBackend.
func (d *Daemon) ContainerStop(ctx context.Context, id string, opts backend.StopOptions) error {
	c, err := d.ctrs.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.restartTimer != nil {
		c.restartTimer.Stop()
		c.restartTimer = nil
		c.State.Status = container.StateExited
		_ = d.saveRecord(c)
	}
	if !c.State.running() {
		c.mu.Unlock()
		return errdefs.ErrNotModified
	}
	c.ManualStop = true
	c.mu.Unlock()
	return d.stop(ctx, c, opts)
}

func (d *Daemon) stop(ctx context.Context, c *Container, opts backend.StopOptions) error {
	sig := opts.Signal
	if sig == "" {
		sig = c.Config.StopSignal
	}
	if sig == "" {
		sig = "SIGTERM"
	}
	timeout := 10
	if c.Config.StopTimeout != nil {
		timeout = *c.Config.StopTimeout
	}
	if opts.Timeout != nil {
		timeout = *opts.Timeout
	}
	c.mu.Lock()
	c.stopping = true
	exitCh := c.exitCh
	paused := c.State.Status == container.StatePaused
	running := c.State.running()
	c.mu.Unlock()
	if !running {
		return nil
	}
	if paused {
		// A frozen process cannot handle SIGTERM: thaw it first, as docker does.
		_ = d.runtimeDo(c, func(rt ociRuntime) error { return rt.Resume(ctx, c.ID) })
	}
	if err := d.signal(ctx, c, sig); err != nil {
		d.log.Debug("stop signal", "id", c.ID, "err", err)
	}
	var wait <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(time.Duration(timeout) * time.Second)
		defer t.Stop()
		wait = t.C
	}
	select {
	case <-exitCh:
		d.containerEvent(c, events.ActionStop, nil)
		return nil
	case <-wait:
	case <-ctx.Done():
		return ctx.Err()
	}
	_ = d.signal(ctx, c, "SIGKILL")
	select {
	case <-exitCh:
	case <-time.After(30 * time.Second):
		return errMsg(errdefs.ErrUnknown, "container %s did not exit after SIGKILL", c.ID[:12])
	}
	d.containerEvent(c, events.ActionStop, nil)
	return nil
}

// signal sends sig (a name or number) to the container's init.
func (d *Daemon) signal(ctx context.Context, c *Container, sig string) error {
	s, err := parseSignal(sig)
	if err != nil {
		return err
	}
	return d.runtimeDo(c, func(rt ociRuntime) error { return rt.Kill(ctx, c.ID, unix.Signal(s), false) })
}

func parseSignal(sig string) (syscall.Signal, error) {
	if sig == "" {
		return syscall.SIGKILL, nil
	}
	if n, err := strconv.Atoi(sig); err == nil {
		if n <= 0 || n > 64 {
			return 0, errMsg(errInvalid, "Invalid signal: %s", sig)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(sig)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if s := unix.SignalNum(name); s != 0 {
		return s, nil
	}
	return 0, errMsg(errInvalid, "Invalid signal: %s", sig)
}

// ContainerRestart implements backend.ContainerBackend.
func (d *Daemon) ContainerRestart(ctx context.Context, id string, opts backend.StopOptions) error {
	c, err := d.ctrs.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.State.running()
	c.mu.Unlock()
	if running {
		if err := d.stop(ctx, c, opts); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.State.Status {
	case container.StateRemoving, container.StateDead:
		// Removed (docker rm -f) while this restart was stopping it: starting
		// now would resurrect its record and leave its directories behind.
		return errMsg(errConflict, "container is marked for removal and cannot be started")
	}
	if c.restartTimer != nil {
		c.restartTimer.Stop()
		c.restartTimer = nil
	}
	if c.State.running() {
		return nil
	}
	c.ManualStop = false
	if err := d.startLocked(ctx, c); err != nil {
		return err
	}
	d.containerEvent(c, events.ActionRestart, nil)
	return nil
}

// ContainerKill implements backend.ContainerBackend.
func (d *Daemon) ContainerKill(ctx context.Context, id string, sig string) error {
	c, err := d.ctrs.get(id)
	if err != nil {
		return err
	}
	s, err := parseSignal(sig)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.State.running() {
		return errMsg(errConflict, "Cannot kill container: %s: Container %s is not running", id, c.ID)
	}
	if s == syscall.SIGKILL || s == syscall.SIGTERM || s == syscall.SIGINT {
		c.stopping = true
	}
	if err := d.runtimeDo(c, func(rt ociRuntime) error { return rt.Kill(ctx, c.ID, unix.Signal(s), false) }); err != nil {
		return errMsg(errdefs.ErrUnknown, "Cannot kill container: %s: %v", id, err)
	}
	if s == syscall.SIGKILL && c.State.Status == container.StatePaused {
		// A frozen process does not die of SIGKILL until thawed; docker
		// thaws it so that kill of a paused container ends it (137).
		_ = d.runtimeDo(c, func(rt ociRuntime) error { return rt.Resume(ctx, c.ID) })
	}
	d.containerEvent(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(s))})
	return nil
}

// ContainerPause implements backend.ContainerBackend.
func (d *Daemon) ContainerPause(ctx context.Context, id string) error {
	c, err := d.ctrs.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.State.Status {
	case container.StateRunning:
	case container.StatePaused:
		return errMsg(errConflict, "Container %s is already paused", c.ID)
	default:
		return errMsg(errConflict, "Container %s is not running", c.ID)
	}
	if err := d.runtimeDo(c, func(rt ociRuntime) error { return rt.Pause(ctx, c.ID) }); err != nil {
		return errMsg(errdefs.ErrUnknown, "Cannot pause container %s: %v", c.ID, err)
	}
	c.State.Status = container.StatePaused
	d.stopHealth(c)
	_ = d.saveRecord(c)
	d.containerEvent(c, events.ActionPause, nil)
	return nil
}

// ContainerUnpause implements backend.ContainerBackend.
func (d *Daemon) ContainerUnpause(ctx context.Context, id string) error {
	c, err := d.ctrs.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Status != container.StatePaused {
		return errMsg(errConflict, "Container %s is not paused", c.ID)
	}
	if err := d.runtimeDo(c, func(rt ociRuntime) error { return rt.Resume(ctx, c.ID) }); err != nil {
		return errMsg(errdefs.ErrUnknown, "Cannot unpause container %s: %v", c.ID, err)
	}
	c.State.Status = container.StateRunning
	d.resumeHealth(c)
	_ = d.saveRecord(c)
	d.containerEvent(c, events.ActionUnPause, nil)
	return nil
}

// ContainerRemove implements backend.ContainerBackend.
func (d *Daemon) ContainerRemove(ctx context.Context, id string, opts backend.RemoveOptions) error {
	if opts.RemoveLink {
		return d.removeLink(ctx, id)
	}
	c, err := d.ctrs.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.State.Status == container.StateRemoving {
		c.mu.Unlock()
		return errMsg(errConflict, "removal of container %s is already in progress", c.ID)
	}
	if c.restartTimer != nil {
		c.restartTimer.Stop()
		c.restartTimer = nil
	}
	// A loop: a restart racing with this removal may start it again while
	// c.mu is released for the kill.
	for c.State.running() {
		if !opts.Force {
			c.mu.Unlock()
			if c.State.Status == container.StatePaused {
				return errMsg(errConflict, "cannot remove container %q: container is paused and must be unpaused first", c.Name)
			}
			return errMsg(errConflict, "cannot remove container %q: container is running: stop the container before removing or force remove", c.Name)
		}
		c.stopping = true
		exitCh := c.exitCh
		c.mu.Unlock()
		_ = d.runtimeDo(c, func(rt ociRuntime) error { return rt.Resume(ctx, c.ID) })
		_ = d.signal(ctx, c, "SIGKILL")
		select {
		case <-exitCh:
		case <-time.After(30 * time.Second):
			return errMsg(errdefs.ErrUnknown, "could not kill running container %s, cannot remove", c.ID)
		}
		c.mu.Lock()
	}
	c.State.Status = container.StateRemoving
	closeAttachWaiters(c)
	d.releaseRun(ctx, c)
	// Order: record first, then data (the rootfs mount too). A crash in
	// between leaves a mount, a snapshot and directories with no record,
	// which restore sweeps.
	if err := d.deleteRecord(c.ID); err != nil {
		c.State.Status = container.StateDead
		c.mu.Unlock()
		return err
	}
	d.ctrs.remove(c)
	d.removeMounts(ctx, c, opts.RemoveVolumes)
	removedCh := c.removedCh
	c.mu.Unlock()
	// The container is gone for every client now (no record, no name):
	// release `wait condition=removed` (what run --rm waits for) before
	// the data removal below, which only this call still waits for.
	close(removedCh)
	_ = snapshot.UnmountAll(d.rootfsDir(c.ID))
	if err := d.snaps.Remove(ctx, c.ID); err != nil && !errdefs.IsNotFound(err) {
		d.log.Warn("remove snapshot", "id", c.ID, "err", err)
	}
	_ = os.RemoveAll(d.stateDir(c.ID))
	_ = os.RemoveAll(d.containerDir(c.ID))
	forgetNetFile(d.networksFile(c.ID))
	d.containerEvent(c, events.ActionDestroy, nil)
	return nil
}

// ContainerWait implements backend.ContainerBackend.
func (d *Daemon) ContainerWait(ctx context.Context, id string, cond container.WaitCondition) (<-chan backend.WaitResult, error) {
	c, err := d.ctrs.get(id)
	if err != nil {
		return nil, err
	}
	out := make(chan backend.WaitResult, 1)
	c.mu.Lock()
	running := c.State.running() || c.State.Status == container.StateRestarting
	removedCh := c.removedCh
	if cond == "" {
		cond = container.WaitConditionNotRunning
	}
	if cond == container.WaitConditionNotRunning && !running {
		out <- backend.WaitResult{StatusCode: int64(c.State.ExitCode)}
		c.mu.Unlock()
		return out, nil
	}
	c.mu.Unlock()
	c.mu.Lock()
	exitCh := c.exitCh
	c.mu.Unlock()
	go func() {
		if cond == container.WaitConditionRemoved {
			select {
			case <-removedCh:
				c.mu.Lock()
				out <- backend.WaitResult{StatusCode: int64(c.State.ExitCode)}
				c.mu.Unlock()
			case <-ctx.Done():
			}
			return
		}
		select {
		case <-exitCh:
			c.mu.Lock()
			res := backend.WaitResult{StatusCode: int64(c.State.ExitCode)}
			if c.State.Error != "" {
				res.Err = errors.New(c.State.Error)
			}
			c.mu.Unlock()
			out <- res
		case <-removedCh:
			c.mu.Lock()
			out <- backend.WaitResult{StatusCode: int64(c.State.ExitCode)}
			c.mu.Unlock()
		case <-ctx.Done():
		}
	}()
	return out, nil
}
