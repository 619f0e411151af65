// Package runtime is berth's OCI runtime: it turns a bundle (config.json +
// rootfs) into a container and manages it afterwards. The daemon uses it
// in-process; cmd/berth-runtime wraps it in a runc-compatible CLI.
//
// Process model (as runc's): Create re-executes a protected copy of the
// runtime binary as the container init. A C constructor (nsexec.c) moves it
// into its namespaces before the Go runtime starts; the Go init (init_linux.go)
// builds the rootfs, reports READY and blocks on <state>/exec.fifo. Create
// then returns and the calling process may exit: the init is reparented to the
// nearest subreaper (a shim/monitor that set PR_SET_CHILD_SUBREAPER) or to
// pid 1. Start opens the fifo, the init execs the user process.
//
// Importing this package installs the init personality: a process started
// with _BERTH_INITPIPE in its environment becomes a container init in this
// package's init function, before main runs.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime/cgroups"
)

// DefaultRoot is where container state lives unless Runtime.Root says otherwise.
const DefaultRoot = "/run/berth-runtime"

// Runtime manages the containers whose state lives under Root. Safe for
// concurrent use, also across processes (per-container flock).
type Runtime struct {
	// Root is the state directory (default DefaultRoot).
	Root string
	// SeccompCacheDir keeps compiled seccomp programs across processes
	// (default <Root>/.seccomp).
	SeccompCacheDir string
	// Exe is the binary a container init runs (its read-only clone, see
	// exe.go): one that links this package, so that its nsexec.c
	// constructor takes over. Default /proc/self/exe; a caller that is not
	// itself berth-runtime (the daemon) names berth-runtime here.
	Exe string
}

func (r *Runtime) root() string {
	if r.Root == "" {
		return DefaultRoot
	}
	return r.Root
}

// CreateOpts are the optional parts of Create.
type CreateOpts struct {
	// ConsoleSocket is a unix socket path that receives the pty master
	// (SCM_RIGHTS) when process.terminal is set.
	ConsoleSocket string
	// OnConsole, for in-process callers, receives the pty master instead of
	// ConsoleSocket.
	OnConsole func(master *os.File)
	// PidFile receives the init's host pid.
	PidFile      string
	NoPivot      bool
	NoNewKeyring bool
	// ExtraFiles become fds 3, 4, ... of the container process
	// (runc --preserve-fds).
	ExtraFiles []*os.File
	// Stdio of the container (without a terminal); nil means /dev/null.
	Stdin, Stdout, Stderr *os.File
	// Fork, when set, starts the init in place of a fork of this process,
	// and the init's stdio is the forker's (Stdin, Stdout and Stderr are
	// then unused). The daemon has the container's monitor fork it, so
	// that the init is the monitor's child with no runtime process in
	// between. exe is an fd of the binary to execute (as /proc/self/fd/N),
	// files become the child's fds 3, 4, …, and cloneFlags go to its
	// clone. It returns the child's pid; the child is not the caller's to
	// wait for.
	Fork func(exe int, argv, env []string, files []int, cloneFlags uintptr) (int, error)
	// Config, when set, is the bundle's config.json as the caller just
	// wrote it, so that create need not read it back.
	Config []byte
}

// Container is what List returns.
type Container struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

// Create creates container id from bundle: afterwards its init waits for
// Start. On error nothing is left behind (state dir, cgroup, processes).
func (r *Runtime) Create(ctx context.Context, id, bundle string, o *CreateOpts) error {
	_, err := r.CreateInit(ctx, id, bundle, o)
	return err
}

// CreateInit is Create that also returns the init's host pid.
func (r *Runtime) CreateInit(ctx context.Context, id, bundle string, o *CreateOpts) (pid int, err error) {
	if o == nil {
		o = &CreateOpts{}
	}
	if err := validateID(id); err != nil {
		return 0, err
	}
	bundle, err = filepath.Abs(bundle)
	if err != nil {
		return 0, err
	}
	raw := o.Config
	if raw == nil {
		if raw, err = readSpec(bundle); err != nil {
			return 0, err
		}
	}
	spec, raw, hint, err := r.loadSpecCached(raw)
	if err != nil {
		return 0, err
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if st, err := os.Stat(rootfs); err != nil || !st.IsDir() {
		return 0, fmt.Errorf("config.json: root.path: rootfs %s is not a directory: %w", rootfs, errdefs.ErrInvalidArgument)
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" && o.OnConsole == nil {
		return 0, fmt.Errorf("process.terminal is set: a console socket is needed (--console-socket): %w", errdefs.ErrInvalidArgument)
	}
	if !spec.Process.Terminal && o.ConsoleSocket != "" {
		return 0, fmt.Errorf("--console-socket given but process.terminal is false: %w", errdefs.ErrInvalidArgument)
	}
	if err := checkRlimits(spec.Process, "process."); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(r.root(), 0o711); err != nil {
		return 0, err
	}
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if os.IsExist(err) {
			return 0, fmt.Errorf("container %s already exists: %w", id, errdefs.ErrAlreadyExists)
		}
		return 0, err
	}
	st := &containerState{
		ID: id, Bundle: bundle, Rootfs: rootfs, Created: time.Now().UTC(),
		Annotations: spec.Annotations, Owner: "root",
		HasPoststart: spec.Hooks != nil && len(spec.Hooks.Poststart) > 0,
		HasPoststop:  spec.Hooks != nil && len(spec.Hooks.Poststop) > 0,
		CgroupPath:   cgroupPath(spec, id),
		HostPidNS:    !hasNS(spec, specs.PIDNamespace),
	}
	var cg cgroups.Manager
	var p *initProcess
	defer func() {
		if err == nil {
			return
		}
		if p != nil {
			p.kill()
		}
		if cg != nil {
			_ = cg.Destroy()
		}
		os.RemoveAll(dir)
	}()
	unlock, err := r.lock(id)
	if err != nil {
		return 0, err
	}
	defer unlock()
	if err := os.WriteFile(filepath.Join(dir, configFile), raw, 0o600); err != nil {
		return 0, err
	}
	if err := r.writeState(st); err != nil {
		return 0, err
	}
	if err := unix.Mkfifo(filepath.Join(dir, fifoName), 0o600); err != nil {
		return 0, fmt.Errorf("exec fifo: %w", err)
	}
	if uid, gid, ok := rootIDs(spec); ok {
		// the init opens the fifo as the container's root
		if err := os.Chown(filepath.Join(dir, fifoName), uid, gid); err != nil {
			return 0, err
		}
	}
	cg, err = cgroups.New(st.CgroupPath)
	if err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", st.CgroupPath, err)
	}
	p, err = r.spawnInit(ctx, st, spec, raw, hint, cg, o)
	if err != nil {
		return 0, err
	}
	st.Pid = p.pid
	st.StartTime = procStartTime(p.pid)
	if err := r.writeState(st); err != nil {
		return 0, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, p.pid); err != nil {
			return 0, err
		}
	}
	return p.pid, nil
}

// rootIDs returns the host ids of the container's root in a new user
// namespace.
func rootIDs(s *specs.Spec) (uid, gid int, ok bool) {
	if !hasNS(s, specs.UserNamespace) {
		return 0, 0, false
	}
	uid, gid = -1, -1
	for _, m := range s.Linux.UIDMappings {
		if m.ContainerID == 0 {
			uid = int(m.HostID)
		}
	}
	for _, m := range s.Linux.GIDMappings {
		if m.ContainerID == 0 {
			gid = int(m.HostID)
		}
	}
	return uid, gid, uid >= 0 || gid >= 0
}

func cgroupPath(s *specs.Spec, id string) string {
	if s.Linux != nil && s.Linux.CgroupsPath != "" {
		return s.Linux.CgroupsPath
	}
	return "/berth/" + id
}

func writePidFile(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprint(pid)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Start lets a created container's init exec the user process.
func (r *Runtime) Start(ctx context.Context, id string) error {
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := r.readState(id)
	if err != nil {
		return err
	}
	status := r.status(st)
	if status != specs.StateCreated {
		return fmt.Errorf("container %s is %s, not created: %w", id, status, errdefs.ErrFailedPrecondition)
	}
	if err := openFifo(ctx, filepath.Join(r.dir(id), fifoName), st.Pid); err != nil {
		return err
	}
	os.Remove(filepath.Join(r.dir(id), fifoName))
	if st.HasPoststart {
		spec, err := r.config(st)
		if err != nil {
			return err
		}
		// the process was just started: say so even if it is gone already
		s := r.ociState(st)
		s.Status, s.Pid = specs.StateRunning, st.Pid
		if err := runHooks(spec.Hooks.Poststart, s, "poststart"); err != nil {
			return err
		}
	}
	return nil
}

// openFifo is start's side of exec.fifo: reading the byte the init writes
// once it sees a reader. A pidfd in the same poll notices an init that died.
func openFifo(ctx context.Context, path string, pid int) error {
	// The pidfd first: opening the fifo releases the init, which may run,
	// exit and be reaped before a later pidfd_open (ESRCH). Its byte stays
	// in the fifo, so the read below still succeeds.
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("container init %d: %w", pid, err)
	}
	defer unix.Close(pfd)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fd)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(pfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 200)
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil {
			return err
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			var b [1]byte
			if n, _ := unix.Read(fd, b[:]); n == 1 {
				return nil
			}
		}
		if fds[1].Revents != 0 || fds[0].Revents&unix.POLLHUP != 0 {
			return errors.New("container init exited before start")
		}
	}
}

// status derives the container status from the live system.
func (r *Runtime) status(st *containerState) specs.ContainerState {
	if st.Pid == 0 {
		return specs.StateCreating
	}
	if !st.alive() {
		return specs.StateStopped
	}
	if _, err := os.Lstat(filepath.Join(r.dir(st.ID), fifoName)); err == nil {
		return specs.StateCreated
	}
	if cg, err := r.cgroup(st); err == nil {
		if f, err := cg.Frozen(); err == nil && f {
			return "paused"
		}
	}
	return specs.StateRunning
}

func (r *Runtime) cgroup(st *containerState) (cgroups.Manager, error) {
	if len(st.CgroupPaths) > 0 {
		return cgroups.LoadPaths(st.CgroupPaths)
	}
	return cgroups.New(st.CgroupPath)
}

func (r *Runtime) ociState(st *containerState) specs.State {
	s := specs.State{
		Version: specs.Version, ID: st.ID, Status: r.status(st), Bundle: st.Bundle,
		Annotations: st.Annotations,
	}
	if s.Status != specs.StateStopped {
		s.Pid = st.Pid
	}
	return s
}

// State returns the OCI state of container id.
func (r *Runtime) State(ctx context.Context, id string) (*specs.State, error) {
	st, err := r.readState(id)
	if err != nil {
		return nil, err
	}
	s := r.ociState(st)
	return &s, nil
}

// Inspect is State plus what runc's state command prints besides.
func (r *Runtime) Inspect(ctx context.Context, id string) (*Container, error) {
	st, err := r.readState(id)
	if err != nil {
		return nil, err
	}
	return &Container{State: r.ociState(st), Rootfs: st.Rootfs, Created: st.Created, Owner: st.Owner}, nil
}

// Kill sends sig to the init, or with all to every process of the container.
func (r *Runtime) Kill(ctx context.Context, id string, sig unix.Signal, all bool) error {
	st, err := r.readState(id)
	if err != nil {
		return err
	}
	if !st.alive() {
		if all {
			if cg, err := r.cgroup(st); err == nil {
				_ = cg.Kill(sig)
			}
		}
		return fmt.Errorf("container %s is not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	if all || (st.HostPidNS && sig == unix.SIGKILL) {
		if cg, err := r.cgroup(st); err == nil {
			if err := cg.Kill(sig); err == nil {
				if sig == unix.SIGKILL {
					_ = cg.Thaw()
				}
				return nil
			}
		}
	}
	return signalPid(st, sig)
}

// signalPid signals the init through a pidfd, after checking it is still
// the process we started (pid reuse).
func signalPid(st *containerState, sig unix.Signal) error {
	pfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return fmt.Errorf("container %s init: %w", st.ID, err)
	}
	defer unix.Close(pfd)
	if procStartTime(st.Pid) != st.StartTime {
		return fmt.Errorf("container %s is not running: %w", st.ID, errdefs.ErrFailedPrecondition)
	}
	if err := unix.PidfdSendSignal(pfd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal container %s: %w", st.ID, err)
	}
	return nil
}

// Delete removes a stopped (or created) container; force kills a running one
// first. It cleans up whatever a crashed create left.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	if err := validateID(id); err != nil {
		return err
	}
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := r.readState(id)
	if err != nil {
		return err
	}
	status := r.status(st)
	if (status == specs.StateRunning || status == "paused") && !force {
		return fmt.Errorf("container %s is %s: stop it first or use --force: %w", id, status, errdefs.ErrConflict)
	}
	var cg cgroups.Manager
	if st.CgroupPath != "" {
		cg, _ = r.cgroup(st)
	}
	if st.alive() {
		if cg != nil {
			_ = cg.Kill(unix.SIGKILL)
			_ = cg.Thaw()
		}
		if pfd, err := unix.PidfdOpen(st.Pid, 0); err == nil {
			if procStartTime(st.Pid) == st.StartTime {
				_ = unix.PidfdSendSignal(pfd, unix.SIGKILL, nil, 0)
				waitPidfd(pfd, 5*time.Second)
			}
			unix.Close(pfd)
		}
	}
	if cg != nil {
		if err := cg.Destroy(); err != nil && force {
			return fmt.Errorf("remove cgroup of %s: %w", id, err)
		}
	}
	if st.HasPoststop {
		if spec, err := r.config(st); err == nil {
			s := r.ociState(st)
			s.Status = specs.StateStopped
			// poststop failures are never fatal (runtime spec)
			_ = runHooks(spec.Hooks.Poststop, s, "poststop")
		}
	}
	return os.RemoveAll(r.dir(id))
}

// waitPidfd waits until the process behind pfd has exited (it need not be
// our child).
func waitPidfd(pfd int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(time.Until(deadline)/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		return n > 0
	}
	return false
}

// List returns every container under Root.
func (r *Runtime) List(ctx context.Context) ([]Container, error) {
	ents, err := os.ReadDir(r.root())
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []Container
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		st, err := r.readState(e.Name())
		if err != nil {
			continue
		}
		out = append(out, Container{State: r.ociState(st), Rootfs: st.Rootfs, Created: st.Created, Owner: st.Owner})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Pause freezes every process of the container.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	return r.withCgroup(id, specs.StateRunning, func(cg cgroups.Manager) error { return cg.Freeze() })
}

// Resume thaws a paused container.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	return r.withCgroup(id, "paused", func(cg cgroups.Manager) error { return cg.Thaw() })
}

// Update changes the resource limits of a live container.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	return r.withCgroup(id, "", func(cg cgroups.Manager) error { return cg.Set(res) })
}

// Stats returns the cgroup statistics of the container.
func (r *Runtime) Stats(ctx context.Context, id string) (*cgroups.Stats, error) {
	var s *cgroups.Stats
	err := r.withCgroup(id, "", func(cg cgroups.Manager) (err error) { s, err = cg.Stats(); return err })
	return s, err
}

// Ps lists the host pids of the container's processes.
func (r *Runtime) Ps(ctx context.Context, id string) ([]int, error) {
	var pids []int
	err := r.withCgroup(id, "", func(cg cgroups.Manager) (err error) { pids, err = cg.Pids(); return err })
	return pids, err
}

func (r *Runtime) withCgroup(id string, want specs.ContainerState, f func(cgroups.Manager) error) error {
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := r.readState(id)
	if err != nil {
		return err
	}
	status := r.status(st)
	if want != "" && status != want {
		return fmt.Errorf("container %s is %s, not %s: %w", id, status, want, errdefs.ErrFailedPrecondition)
	}
	if status == specs.StateStopped {
		return fmt.Errorf("container %s is stopped: %w", id, errdefs.ErrFailedPrecondition)
	}
	cg, err := r.cgroup(st)
	if err != nil {
		return err
	}
	return f(cg)
}

// ProcessTemplate returns a copy of the container's own process spec, the
// base that `exec` with plain arguments modifies.
func (r *Runtime) ProcessTemplate(ctx context.Context, id string) (*specs.Process, error) {
	st, err := r.readState(id)
	if err != nil {
		return nil, err
	}
	spec, err := r.config(st)
	if err != nil || spec.Process == nil {
		return nil, fmt.Errorf("container %s has no recorded config: %w", id, errors.Join(err, errdefs.ErrFailedPrecondition))
	}
	p := *spec.Process
	p.Env = append([]string{}, p.Env...)
	p.Terminal, p.ConsoleSize, p.Args = false, nil, nil
	return &p, nil
}

// OOMKills counts OOM kills in the container's cgroup.
func (r *Runtime) OOMKills(ctx context.Context, id string) (uint64, error) {
	var n uint64
	err := r.withCgroup(id, "", func(cg cgroups.Manager) (err error) { n, err = cg.OOMKills(); return err })
	return n, err
}
