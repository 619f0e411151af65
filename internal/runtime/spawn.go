package runtime

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/berth-dev/berth/internal/runtime/seccomp"
)

// initProcess is the parent's handle on a child it spawned (create or exec).
type initProcess struct {
	child int // the process we started (nsexec.c may fork once more)
	pid   int // the process that execs the user program (host pid)
}

// waitChild reaps the process we started.
func (p *initProcess) waitChild() {
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(p.child, &ws, 0, nil); err != unix.EINTR {
			return
		}
	}
}

func (p *initProcess) kill() {
	if p.pid > 0 {
		_ = unix.Kill(p.pid, unix.SIGKILL)
	}
	if p.child > 0 {
		_ = unix.Kill(p.child, unix.SIGKILL)
		p.waitChild()
	}
	if p.pid > 0 && p.child > 0 && p.pid != p.child {
		// grandchild: reaped by whoever is its subreaper; if that is us,
		// reap it here
		var ws unix.WaitStatus
		_, _ = unix.Wait4(p.pid, &ws, unix.WNOHANG, nil)
	}
}

// spawnOpts is what create and exec have in common.
type spawnOpts struct {
	cfg         *initConfig
	nsPaths     []string // "type=path"
	cloneFlags  uintptr
	uidMap      []specs.LinuxIDMapping
	gidMap      []specs.LinuxIDMapping
	timens      string
	oomScoreAdj *int
	extra       []*os.File
	stateDir    *os.File
	stdin       *os.File
	stdout      *os.File
	stderr      *os.File
	cg          cgroups.Manager
	resources   *specs.LinuxResources
	onConsole   func(*os.File) error
	onHooks     func(pid int) error
	onSeccomp   func(fd int, pid int) error
	// plan, when set, builds the C init's plan (plan.go) for the spawned
	// child pid; the Go init is then never started and gets no CONFIG.
	plan func(pid, stateDirFd int) ([]byte, error)
	exe  string // the binary to run (Runtime.Exe)
	// fork replaces our own fork (CreateOpts.Fork); stdin, stdout and
	// stderr are then the forker's.
	fork func(exe int, argv, env []string, files []int, cloneFlags uintptr) (int, error)
}

// spawn starts a protected copy of this binary as a container init and
// walks it through the protocol of nsexec.c and msg.go up to READY.
func spawn(ctx context.Context, so *spawnOpts) (p *initProcess, err error) {
	exe, err := protectedExe(so.exe)
	if err != nil {
		return nil, err
	}
	defer exe.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	parent := os.NewFile(uintptr(fds[0]), "init-parent")
	child := os.NewFile(uintptr(fds[1]), "init-child")
	defer parent.Close()
	files := append([]*os.File{}, so.extra...)
	sockFd := 3 + len(files)
	files = append(files, child)
	if so.stateDir != nil {
		so.cfg.StateDirFd = 3 + len(files)
		files = append(files, so.stateDir)
	}
	// syscall.ForkExec rather than os/exec: os.StartProcess probes pidfd
	// support once per process by forking a throwaway child, and exec.Cmd
	// adds goroutines and a wait we do not need. A nil stdio file is
	// closed in the child, as exec.Cmd does with a nil *os.File.
	fdOf := func(f *os.File) uintptr {
		if f == nil {
			return ^uintptr(0)
		}
		return f.Fd()
	}
	attrFiles := []uintptr{fdOf(so.stdin), fdOf(so.stdout), fdOf(so.stderr)}
	for _, f := range files {
		attrFiles = append(attrFiles, f.Fd())
	}
	// Without a user namespace the new pid, mount, net, ipc and uts
	// namespaces are made by the clone that starts the init: nsexec.c then
	// need not fork into the pid namespace (one process less per
	// container). The user namespace must come first and the cgroup one
	// after the move into the cgroup, so those stay with nsexec.c, as does
	// everything when a user namespace is involved.
	cloneFlags := so.cloneFlags
	var early uintptr
	forks := cloneFlags&unix.CLONE_NEWTIME != 0 // nsexec.c forks into a time namespace
	for _, ns := range so.nsPaths {
		forks = forks || strings.HasPrefix(ns, "pid=") || strings.HasPrefix(ns, "time=")
	}
	if !so.cfg.UserNS && !forks {
		early = cloneFlags & (unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS)
		cloneFlags &^= early
	}
	// Of those, only the pid namespace must come with the clone (the init
	// is its pid 1). The others the init unshares first thing (nsexec.c,
	// _BERTH_UNSHARE), while we set up its cgroups and plan: making a
	// network namespace takes 1-5 ms here, which then runs beside our work
	// instead of before it, inside our clone call.
	env := []string{initEnv + "=" + strconv.Itoa(sockFd), "GOGC=off", "GOMAXPROCS=1"}
	if u := early &^ unix.CLONE_NEWPID; u != 0 {
		env = append(env, unshareEnv+"="+strconv.FormatUint(uint64(u), 10))
		early &= unix.CLONE_NEWPID
	}
	// The cgroup and its limits are made before the child exists: the
	// limits hold from its first instruction, and this work overlaps the
	// start of the monitor that forks it (CreateOpts.Fork).
	if so.cg != nil {
		if err := so.cg.Apply(0); err != nil {
			child.Close()
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		if so.resources != nil {
			if err := so.cg.Set(so.resources); err != nil {
				child.Close()
				return nil, fmt.Errorf("cgroup limits: %w", err)
			}
		}
	}
	argv := []string{"berth-runtime", "init"}
	var pid int
	if so.fork != nil {
		fds := make([]int, 0, len(files))
		for _, f := range files {
			fds = append(fds, int(f.Fd()))
		}
		pid, err = so.fork(int(exe.Fd()), argv, env, fds, early)
	} else {
		pid, err = syscall.ForkExec(fdPath(int(exe.Fd())), argv, &syscall.ProcAttr{
			// The Go init lives for milliseconds: no GC, one P (fewer
			// threads to start and to signal). Its environment is
			// replaced at execve.
			Env:   env,
			Files: attrFiles,
			Sys:   &syscall.SysProcAttr{Cloneflags: early},
		})
	}
	child.Close()
	if err != nil {
		return nil, fmt.Errorf("start container init: %w", err)
	}
	p = &initProcess{child: pid}
	stop := context.AfterFunc(ctx, p.kill)
	defer stop()
	defer func() {
		if err != nil {
			p.kill()
		}
	}()
	if so.cg != nil {
		if err := so.cg.Join(p.child); err != nil {
			return p, fmt.Errorf("cgroup: %w", err)
		}
	}
	var boot []byte
	boot = appendRecord(boot, recCloneFlags, []byte{byte(cloneFlags), byte(cloneFlags >> 8), byte(cloneFlags >> 16), byte(cloneFlags >> 24)})
	for _, ns := range so.nsPaths {
		boot = appendRecord(boot, recNsPath, []byte(ns))
	}
	if so.timens != "" {
		boot = appendRecord(boot, recTimens, []byte(so.timens))
	}
	var pl []byte
	if so.plan != nil {
		if pl, err = so.plan(p.child, so.cfg.StateDirFd); err != nil {
			return p, err
		}
		// the plan record's value, the bulk, follows as the message's tail
		boot = binary.NativeEndian.AppendUint32(boot, recPlan)
		boot = binary.NativeEndian.AppendUint32(boot, uint32(len(pl)))
	}
	if err := sendParts(parent, msgBootstrap, boot, pl); err != nil {
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
			// the init failed before reading it (unsharing): say why
			if _, rerr := expect(parent, 0); rerr != nil {
				return p, rerr
			}
		}
		return p, fmt.Errorf("bootstrap: %w", err)
	}
	for p.pid == 0 {
		m, err := expect(parent, 0)
		if err != nil {
			return p, err
		}
		switch m.typ {
		case msgUsermapReq:
			pid := int(uint32(m.data[0]) | uint32(m.data[1])<<8 | uint32(m.data[2])<<16 | uint32(m.data[3])<<24)
			if err := writeIDMaps(pid, so.uidMap, so.gidMap); err != nil {
				return p, err
			}
			if err := sendMsg(parent, msgUsermapAck, nil, -1); err != nil {
				return p, err
			}
		case msgChildPid:
			p.pid = int(uint32(m.data[0]) | uint32(m.data[1])<<8 | uint32(m.data[2])<<16 | uint32(m.data[3])<<24)
			if early&unix.CLONE_NEWPID != 0 {
				// no fork in nsexec.c: it is our child, which sees
				// itself as pid 1 of its new namespace
				p.pid = p.child
			}
		default:
			return p, fmt.Errorf("init socket: unexpected message %d", m.typ)
		}
	}
	if p.pid != p.child {
		// the intermediate process of nsexec.c exits after forking
		p.waitChild()
	}
	if so.oomScoreAdj != nil {
		if err := os.WriteFile("/proc/"+strconv.Itoa(p.pid)+"/oom_score_adj", []byte(strconv.Itoa(*so.oomScoreAdj)), 0); err != nil {
			if errors.Is(err, unix.EACCES) && *so.oomScoreAdj < 0 {
				return p, fmt.Errorf("process.oomScoreAdj %d: lowering oom_score_adj needs CAP_SYS_RESOURCE, which the runtime lacks: %w", *so.oomScoreAdj, err)
			}
			return p, fmt.Errorf("process.oomScoreAdj %d: %w", *so.oomScoreAdj, err)
		}
	}
	if so.plan == nil {
		so.cfg.Pid = p.pid
		b, err := json.Marshal(so.cfg)
		if err != nil {
			return p, err
		}
		if err := sendMsg(parent, msgConfig, b, -1); err != nil {
			return p, err
		}
	}
	for {
		m, err := expect(parent, 0)
		if err != nil {
			return p, err
		}
		switch m.typ {
		case msgReady:
			return p, nil
		case msgHooks:
			if so.onHooks != nil {
				if err := so.onHooks(p.pid); err != nil {
					return p, err
				}
			}
			if err := sendMsg(parent, msgHooksDone, nil, -1); err != nil {
				return p, err
			}
		case msgConsole:
			if m.fd < 0 {
				return p, errors.New("init sent no console fd")
			}
			f := os.NewFile(uintptr(m.fd), "pty-master")
			if so.onConsole == nil {
				f.Close()
				return p, errors.New("terminal requested but no console handler")
			}
			if err := so.onConsole(f); err != nil {
				return p, err
			}
		case msgSeccompFd:
			if m.fd < 0 {
				return p, errors.New("init sent no seccomp listener fd")
			}
			err := so.onSeccomp(m.fd, p.pid)
			unix.Close(m.fd)
			if err != nil {
				return p, err
			}
		default:
			return p, fmt.Errorf("init socket: unexpected message %d", m.typ)
		}
	}
}

func writeIDMaps(pid int, uid, gid []specs.LinuxIDMapping) error {
	format := func(ms []specs.LinuxIDMapping) []byte {
		var sb strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&sb, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		return []byte(sb.String())
	}
	base := "/proc/" + strconv.Itoa(pid) + "/"
	if err := os.WriteFile(base+"uid_map", format(uid), 0); err != nil {
		return fmt.Errorf("linux.uidMappings: write uid_map: %w", err)
	}
	if err := os.WriteFile(base+"gid_map", format(gid), 0); err != nil {
		return fmt.Errorf("linux.gidMappings: write gid_map: %w", err)
	}
	return nil
}

// sendFdTo connects to the unix socket at path and sends data with fd
// (SCM_RIGHTS). Raw syscalls: package net would add startup cost to
// every runtime command.
func sendFdTo(path string, data []byte, fd int) error {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	if err := unix.Connect(s, &unix.SockaddrUnix{Name: path}); err != nil {
		return err
	}
	return unix.Sendmsg(s, data, unix.UnixRights(fd), nil, 0)
}

// sendConsole passes the pty master to the --console-socket listener.
func sendConsole(path string, master *os.File) error {
	defer master.Close()
	if err := sendFdTo(path, []byte("berth-console"), int(master.Fd())); err != nil {
		return fmt.Errorf("console socket %s: %w", path, err)
	}
	return nil
}

// sendSeccompListener passes the seccomp listener fd and the container
// process state to linux.seccomp.listenerPath.
func sendSeccompListener(path string, meta string, fd int, st specs.State) error {
	ps := specs.ContainerProcessState{
		Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: st.Pid,
		Metadata: meta, State: st,
	}
	b, err := json.Marshal(ps)
	if err != nil {
		return err
	}
	if err := sendFdTo(path, b, fd); err != nil {
		return fmt.Errorf("linux.seccomp.listenerPath %s: %w", path, err)
	}
	return nil
}

var nsProcName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// spawnInit is Create's spawn.
func (r *Runtime) spawnInit(ctx context.Context, st *containerState, spec *specs.Spec, raw []byte, hint *seccompHint, cg cgroups.Manager, o *CreateOpts) (*initProcess, error) {
	so := &spawnOpts{
		cfg: &initConfig{
			ID: st.ID, Bundle: st.Bundle, Rootfs: st.Rootfs, Annotations: spec.Annotations,
			SpecJSON: raw, NoPivot: o.NoPivot, NoKeyring: o.NoNewKeyring,
			PreserveFDs: len(o.ExtraFiles),
		},
		extra: o.ExtraFiles, stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr,
		cg: cg, resources: withDefaultDevices(spec), oomScoreAdj: spec.Process.OOMScoreAdj,
		exe: r.Exe, fork: o.Fork,
	}
	if spec.Process.Terminal {
		// the pty replaces stdio; keeping the caller's would hold its
		// pipes open (containerd's shim waits for EOF on them)
		so.stdin, so.stdout, so.stderr = nil, nil, nil
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path != "" {
			so.nsPaths = append(so.nsPaths, string(ns.Type)+"="+ns.Path)
		} else {
			so.cloneFlags |= nsTypes[ns.Type]
		}
		if ns.Type == specs.UserNamespace {
			so.cfg.UserNS = true
		}
	}
	so.uidMap, so.gidMap = spec.Linux.UIDMappings, spec.Linux.GIDMappings
	if len(spec.Linux.TimeOffsets) > 0 {
		var sb strings.Builder
		for clock, off := range spec.Linux.TimeOffsets {
			fmt.Fprintf(&sb, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
		}
		so.timens = sb.String()
	}
	dir, err := os.OpenFile(r.dir(st.ID), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	so.stateDir = dir
	var prog *seccomp.Program
	if spec.Linux.Seccomp != nil {
		if hint != nil && hint.prog != nil {
			prog = hint.prog
		} else {
			if prog, err = r.compileSeccomp(spec.Linux.Seccomp); err != nil {
				return nil, err
			}
			if hint != nil {
				seccomp.StoreRaw(hint.raw, prog, r.seccompOpts())
			}
		}
		so.cfg.Notify = prog.NeedsListener
		so.onSeccomp = func(fd, pid int) error {
			s := r.ociState(st)
			s.Pid, s.Status = pid, specs.StateCreating
			return sendSeccompListener(spec.Linux.Seccomp.ListenerPath, spec.Linux.Seccomp.ListenerMetadata, fd, s)
		}
	}
	//lint:ignore SA1019 prestart is deprecated but still honoured
	if h := spec.Hooks; h != nil && (len(h.Prestart) > 0 || len(h.CreateRuntime) > 0) {
		so.cfg.ParentHooks = true
		so.onHooks = func(pid int) error {
			s := r.ociState(st)
			s.Pid, s.Status = pid, specs.StateCreated
			//lint:ignore SA1019 prestart is deprecated but still honoured
			if err := runHooks(h.Prestart, s, "prestart"); err != nil {
				return err
			}
			return runHooks(h.CreateRuntime, s, "createRuntime")
		}
	}
	so.onConsole = func(master *os.File) error {
		if o.OnConsole != nil {
			o.OnConsole(master)
			return nil
		}
		return sendConsole(o.ConsoleSocket, master)
	}
	if planOK(spec, prog) {
		so.plan = func(pid, stateDirFd int) ([]byte, error) {
			return buildPlan(spec, so.cfg, prog, pid, stateDirFd)
		}
	} else if prog != nil {
		// only the Go init reads the CONFIG message's program
		if so.cfg.Seccomp, err = prog.MarshalBinary(); err != nil {
			return nil, err
		}
	}
	p, err := spawn(ctx, so)
	if err != nil {
		return p, err
	}
	st.CgroupPaths = cg.Paths()
	return p, nil
}

func (r *Runtime) seccompOpts() *seccomp.Options {
	dir := r.SeccompCacheDir
	if dir == "" {
		dir = r.root() + "/.seccomp"
	}
	return &seccomp.Options{CacheDir: dir}
}

func (r *Runtime) compileSeccomp(s *specs.LinuxSeccomp) (*seccomp.Program, error) {
	prog, err := seccomp.Compile(s, r.seccompOpts())
	if err != nil {
		return nil, fmt.Errorf("config.json: linux.seccomp: %w", errors.Join(err, errdefs.ErrInvalidArgument))
	}
	return prog, nil
}

// ExecOpts are the optional parts of Exec.
type ExecOpts struct {
	ConsoleSocket         string
	OnConsole             func(master *os.File)
	PidFile               string
	ExtraFiles            []*os.File
	Stdin, Stdout, Stderr *os.File
}

// Process is a process started by Exec.
type Process struct {
	Pid int
}

// Wait waits for the process to exit and returns its exit status (128+N when
// killed by signal N). The caller must be its parent or its subreaper
// (PR_SET_CHILD_SUBREAPER set before Exec/Create).
func (p *Process) Wait() (int, error) {
	return waitExit(p.Pid)
}

func waitExit(pid int) (int, error) {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		return exitCode(ws), nil
	}
}

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// Exec starts proc inside the running container id.
func (r *Runtime) Exec(ctx context.Context, id string, proc *specs.Process, o *ExecOpts) (*Process, error) {
	if o == nil {
		o = &ExecOpts{}
	}
	if err := validateProcess(proc, "process."); err != nil {
		return nil, err
	}
	if err := checkRlimits(proc, "process."); err != nil {
		return nil, err
	}
	if proc.Terminal && o.ConsoleSocket == "" && o.OnConsole == nil {
		return nil, fmt.Errorf("process.terminal is set: a console socket is needed: %w", errdefs.ErrInvalidArgument)
	}
	st, err := r.readState(id)
	if err != nil {
		return nil, err
	}
	if status := r.status(st); status != specs.StateRunning && status != specs.StateCreated {
		return nil, fmt.Errorf("container %s is %s, cannot exec: %w", id, status, errdefs.ErrFailedPrecondition)
	}
	spec, err := r.config(st)
	if err != nil {
		return nil, err
	}
	so := &spawnOpts{
		cfg:   &initConfig{Exec: true, ID: id, Bundle: st.Bundle, Process: proc, PreserveFDs: len(o.ExtraFiles)},
		extra: o.ExtraFiles, stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr,
		oomScoreAdj: proc.OOMScoreAdj,
	}
	if proc.Terminal {
		so.stdin, so.stdout, so.stderr = nil, nil, nil
	}
	if spec != nil && spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			so.nsPaths = append(so.nsPaths, string(ns.Type)+"=/proc/"+strconv.Itoa(st.Pid)+"/ns/"+nsProcName[ns.Type])
			if ns.Type == specs.UserNamespace {
				so.cfg.UserNS = true
			}
		}
		if spec.Linux.Seccomp != nil {
			prog, err := r.compileSeccomp(spec.Linux.Seccomp)
			if err != nil {
				return nil, err
			}
			if so.cfg.Seccomp, err = prog.MarshalBinary(); err != nil {
				return nil, err
			}
		}
	}
	if cg, err := r.cgroup(st); err == nil {
		so.cg = cg
	}
	so.onConsole = func(master *os.File) error {
		if o.OnConsole != nil {
			o.OnConsole(master)
			return nil
		}
		return sendConsole(o.ConsoleSocket, master)
	}
	// the process must still be the one we started when we join its namespaces
	if procStartTime(st.Pid) != st.StartTime {
		return nil, fmt.Errorf("container %s is not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	p, err := spawn(ctx, so)
	if err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, p.pid); err != nil {
			p.kill()
			return nil, err
		}
	}
	return &Process{Pid: p.pid}, nil
}

func i64p(v int64) *int64 { return &v }

// withDefaultDevices appends to the spec's device cgroup rules the
// allowances every container gets (the default device set, ptys, mknod),
// and the devices the spec creates, as runc does.
func withDefaultDevices(s *specs.Spec) *specs.LinuxResources {
	if s.Linux.Resources == nil {
		return nil
	}
	r := *s.Linux.Resources
	r.Devices = append([]specs.LinuxDeviceCgroup{}, r.Devices...)
	r.Devices = append(r.Devices,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Access: "m"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "b", Access: "m"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64p(136), Access: "rwm"}, // /dev/pts/*
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64p(5), Minor: i64p(2), Access: "rwm"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64p(5), Minor: i64p(1), Access: "rwm"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64p(10), Minor: i64p(200), Access: "rwm"},
	)
	for _, d := range append(append([]specs.LinuxDevice{}, defaultDevices...), s.Linux.Devices...) {
		typ := d.Type
		switch typ {
		case "u":
			typ = "c"
		case "p":
			continue // fifos are not under the device controller
		}
		r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: i64p(d.Major), Minor: i64p(d.Minor), Access: "rwm"})
	}
	r.Devices = dedupDeviceRules(r.Devices)
	return &r
}

// dedupDeviceRules drops an allow rule equal to an earlier one with no deny
// rule between them: it changes nothing, and every rule costs a write into
// the devices cgroup (v1) or code in the device program (v2). Specs made by
// docker-like engines already hold the defaults appended above.
func dedupDeviceRules(rules []specs.LinuxDeviceCgroup) []specs.LinuxDeviceCgroup {
	type key struct {
		typ, access  string
		major, minor int64 // -1: any
	}
	num := func(p *int64) int64 {
		if p == nil {
			return -1
		}
		return *p
	}
	out := rules[:0:0]
	seen := map[key]bool{}
	for _, d := range rules {
		if !d.Allow {
			clear(seen)
			out = append(out, d)
			continue
		}
		k := key{d.Type, d.Access, num(d.Major), num(d.Minor)}
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}
