package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime/seccomp"
)

// initEnv carries the init socket's fd number to the re-executed runtime;
// nsexec.c reads it before the Go runtime starts.
const initEnv = "_BERTH_INITPIPE"

// unshareEnv carries namespaces (CLONE_NEW* bits, decimal) that nsexec.c
// unshares before it reads the bootstrap (see spawn).
const unshareEnv = "_BERTH_UNSHARE"

// initConfig is the CONFIG message: everything the Go init needs.
type initConfig struct {
	Exec        bool              `json:"exec,omitempty"` // joining a running container
	ID          string            `json:"id"`
	Pid         int               `json:"pid"` // host pid, for hook state
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// SpecJSON is config.json as the parent read it (create): sent raw so
	// that the parent never encodes the spec.
	SpecJSON    json.RawMessage `json:"spec,omitempty"`
	Spec        *specs.Spec     `json:"-"`
	Process     *specs.Process  `json:"process,omitempty"` // exec
	NoPivot     bool            `json:"noPivot,omitempty"`
	NoKeyring   bool            `json:"noKeyring,omitempty"`
	PreserveFDs int             `json:"preserveFDs,omitempty"`
	StateDirFd  int             `json:"stateDirFd"`
	Seccomp     []byte          `json:"seccomp,omitempty"`
	Notify      bool            `json:"notify,omitempty"` // seccomp has SCMP_ACT_NOTIFY
	ParentHooks bool            `json:"parentHooks,omitempty"`
	UserNS      bool            `json:"userNS,omitempty"`
}

func init() {
	if os.Getenv(initEnv) == "" {
		return
	}
	// Everything below must happen on the thread nsexec.c set up, and the
	// final execve must come from the thread whose credentials we changed.
	goruntime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(initEnv))
	if err != nil {
		os.Exit(1)
	}
	os.Unsetenv(initEnv)
	sock := os.NewFile(uintptr(fd), "init-socket")
	err = containerInit(sock)
	// containerInit only returns on failure
	msg := "container init: " + err.Error()
	if sendMsg(sock, msgError, []byte(msg), -1) != nil {
		// the parent is gone (failure after READY): tell the container's stderr
		fmt.Fprintln(os.Stderr, "berth-runtime: "+msg)
	}
	os.Exit(1)
}

func containerInit(sock *os.File) error {
	m, err := expect(sock, msgConfig)
	if err != nil {
		return err
	}
	var cfg initConfig
	if err := json.Unmarshal(m.data, &cfg); err != nil {
		return fmt.Errorf("decode config: %w", err)
	}
	// Stop Go from handling the signals the user process must see.
	if cfg.Exec {
		return execInit(sock, &cfg)
	}
	cfg.Spec = new(specs.Spec)
	if err := json.Unmarshal(cfg.SpecJSON, cfg.Spec); err != nil {
		return fmt.Errorf("decode spec: %w", err)
	}
	cfg.Process = cfg.Spec.Process
	return createInit(sock, &cfg)
}

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

func createInit(sock *os.File, cfg *initConfig) error {
	s := cfg.Spec
	p := cfg.Process
	var console *os.File
	var err error
	if hasNS(s, specs.MountNamespace) {
		if console, err = setupRootfs(sock, cfg); err != nil {
			return err
		}
	} else {
		if cfg.ParentHooks {
			if err := parentHooks(sock); err != nil {
				return err
			}
		}
		if p.Terminal {
			if console, err = newConsole(sock, unix.AT_FDCWD, p); err != nil {
				return err
			}
		}
		// As runc does without a mount namespace: chroot into the rootfs,
		// so that the process (and the create-time check of its path) sees
		// the container's files, not the host's.
		if err := unix.Chroot(cfg.Rootfs); err != nil {
			return fmt.Errorf("chroot %s: %w", cfg.Rootfs, err)
		}
		if err := unix.Chdir("/"); err != nil {
			return err
		}
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("setdomainname: %w", err)
		}
	}
	if !cfg.NoKeyring {
		// A fresh session keyring so the container cannot read the host's.
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + cfg.ID); err != nil && err != unix.ENOSYS && err != unix.EACCES && err != unix.EPERM {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	if err := setRlimits(p); err != nil {
		return err
	}
	prog, err := loadProgram(cfg)
	if err != nil {
		return err
	}
	if cfg.Notify {
		if err := loadSeccompNotify(sock, prog, p); err != nil {
			return err
		}
		prog = nil
	}
	// As runc does: a command missing from PATH, or an absolute path that
	// is missing or not executable, fails create rather than start, so
	// clients report it as docker does (exit 127 or 126).
	if len(p.Args) > 0 && (!strings.Contains(p.Args[0], "/") || filepath.IsAbs(p.Args[0])) {
		if _, err := lookPath(p); err != nil {
			return err
		}
	}
	if err := sendMsg(sock, msgReady, nil, -1); err != nil {
		return err
	}
	// Wait for start: opening the fifo for writing blocks until a reader
	// comes. The state dir fd was opened before pivot_root.
	ff, err := unix.Openat(cfg.StateDirFd, fifoName, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	if _, err := unix.Write(ff, []byte{'0'}); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	unix.Close(ff)
	unix.Close(cfg.StateDirFd)
	if s.Hooks != nil && len(s.Hooks.StartContainer) > 0 {
		st := hookState(cfg, specs.StateRunning)
		if err := runHooks(s.Hooks.StartContainer, st, "startContainer"); err != nil {
			return err
		}
	}
	return finalize(sock, cfg, p, prog, console)
}

func loadProgram(cfg *initConfig) (*seccomp.Program, error) {
	if len(cfg.Seccomp) == 0 {
		return nil, nil
	}
	prog := new(seccomp.Program)
	if err := prog.UnmarshalBinary(cfg.Seccomp); err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	return prog, nil
}

// loadSeccompNotify installs a filter with SCMP_ACT_NOTIFY before READY so
// that the parent can pass the listener fd on while it is still alive.
func loadSeccompNotify(sock *os.File, prog *seccomp.Program, p *specs.Process) error {
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	fd, err := seccomp.Load(prog)
	if err != nil {
		return fmt.Errorf("load seccomp: %w", err)
	}
	if fd >= 0 {
		err = sendMsg(sock, msgSeccompFd, nil, fd)
		unix.Close(fd)
	}
	return err
}

func parentHooks(sock *os.File) error {
	if err := sendMsg(sock, msgHooks, nil, -1); err != nil {
		return err
	}
	_, err := expect(sock, msgHooksDone)
	return err
}

func setupRootfs(sock *os.File, cfg *initConfig) (*os.File, error) {
	s := cfg.Spec
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if s.Linux.RootfsPropagation != "" {
		prop = propagationFlags[s.Linux.RootfsPropagation]
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return nil, fmt.Errorf("set root propagation: %w", err)
	}
	rootfs := cfg.Rootfs
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("bind rootfs: %w", err)
	}
	// pivot_root refuses a shared new root or a shared parent of it: make
	// both private for the switch, and share "/" again afterwards.
	if prop&unix.MS_SHARED != 0 {
		if pm := mountPointOf(filepath.Dir(rootfs)); pm != "" {
			_ = unix.Mount("", pm, "", unix.MS_PRIVATE, "")
		}
		if err := unix.Mount("", rootfs, "", unix.MS_PRIVATE, ""); err != nil {
			return nil, fmt.Errorf("make rootfs private: %w", err)
		}
	}
	rootfd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootfd)
	var pst unix.Statfs_t
	if err := unix.Statfs("/proc/self", &pst); err != nil || pst.Type != unix.PROC_SUPER_MAGIC {
		return nil, errors.New("host /proc is not procfs")
	}
	devBound := false
	for i := range s.Mounts {
		m := &s.Mounts[i]
		if err := mountOne(rootfd, m, cfg.Bundle, hasNS(s, specs.CgroupNamespace)); err != nil {
			return nil, err
		}
		if filepath.Clean(m.Destination) == "/dev" && isBind(m) {
			devBound = true
		}
	}
	if !devBound {
		if err := createDevices(rootfd, s.Linux.Devices, cfg.UserNS); err != nil {
			return nil, err
		}
	}
	var console *os.File
	if cfg.Process.Terminal {
		if console, err = newConsole(sock, rootfd, cfg.Process); err != nil {
			return nil, err
		}
	}
	if cfg.ParentHooks {
		if err := parentHooks(sock); err != nil {
			return nil, err
		}
	}
	if s.Hooks != nil && len(s.Hooks.CreateContainer) > 0 {
		if err := runHooks(s.Hooks.CreateContainer, hookState(cfg, specs.StateCreated), "createContainer"); err != nil {
			return nil, err
		}
	}
	if cfg.NoPivot {
		if err := unix.Chdir(rootfs); err != nil {
			return nil, err
		}
		if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
			return nil, fmt.Errorf("move rootfs: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return nil, fmt.Errorf("chroot: %w", err)
		}
	} else if err := pivotRoot(rootfs); err != nil {
		return nil, err
	}
	if err := unix.Chdir("/"); err != nil {
		return nil, err
	}
	// As runc does: a missing cwd is created, inside the new root (so a
	// symlink in it cannot lead out), before the root turns read-only.
	if c := cfg.Process.Cwd; c != "" && c != "/" {
		if err := os.MkdirAll(c, 0o755); err != nil {
			return nil, fmt.Errorf("create cwd %s: %w", c, err)
		}
	}
	if prop&unix.MS_SHARED != 0 {
		if err := unix.Mount("", "/", "", prop, ""); err != nil {
			return nil, fmt.Errorf("rootfsPropagation: %w", err)
		}
	}
	if len(s.Linux.MaskedPaths) > 0 {
		devnull, err := openDevNull()
		if err != nil {
			return nil, err
		}
		for _, p := range s.Linux.MaskedPaths {
			if err := maskPath(p, devnull); err != nil {
				unix.Close(devnull)
				return nil, err
			}
		}
		unix.Close(devnull)
	}
	for k, v := range s.Linux.Sysctl {
		if err := writeProcFile("/proc/sys/"+strings.ReplaceAll(k, ".", "/"), v); err != nil {
			return nil, fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	for _, p := range s.Linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return nil, err
		}
	}
	if s.Root.Readonly {
		if err := remountBind("/", unix.MS_RDONLY); err != nil {
			return nil, fmt.Errorf("make root read-only: %w", err)
		}
	}
	return console, nil
}

// pivotRoot switches to rootfs without a temporary directory: pivot_root
// ".", "." stacks the old root on top of the new one, which is then
// detached.
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// createDevices makes the default devices plus the spec's in the
// container's /dev. In a user namespace mknod is not allowed: bind-mount
// the host's node instead.
func createDevices(rootfd int, devs []specs.LinuxDevice, userns bool) error {
	for _, d := range mergeDevices(devs) {
		dir, base := filepath.Split(filepath.Clean(d.Path))
		pfd, err := mkdirInRoot(rootfd, dir, false)
		if err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
		dfd, err := openInRoot(pfd, ".", unix.O_DIRECTORY|unix.O_RDONLY, unix.RESOLVE_BENEATH)
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
		err = makeDevice(dfd, base, &d, userns)
		unix.Close(dfd)
		if err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	links := [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}}
	if fd, err := openInRoot(rootfd, "/dev/pts/ptmx", unix.O_PATH, resolveInRoot); err == nil {
		unix.Close(fd)
		links = append(links, [2]string{"pts/ptmx", "ptmx"})
	}
	dev, err := openInRoot(rootfd, "/dev", unix.O_DIRECTORY|unix.O_RDONLY, resolveInRoot)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	for _, l := range links {
		err := unix.Symlinkat(l[0], dev, l[1])
		if err == unix.EEXIST && l[1] == "ptmx" {
			// ptmx replaces what is there (a device node from the rootfs)
			_ = unix.Unlinkat(dev, "ptmx", 0)
			err = unix.Symlinkat(l[0], dev, l[1])
		}
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// mergeDevices is the default device set with the spec's devices replacing
// or added to it.
func mergeDevices(devs []specs.LinuxDevice) []specs.LinuxDevice {
	all := append([]specs.LinuxDevice{}, defaultDevices...)
	for _, d := range devs {
		replaced := false
		for i := range all {
			if all[i].Path == d.Path {
				all[i], replaced = d, true
			}
		}
		if !replaced {
			all = append(all, d)
		}
	}
	return all
}

func makeDevice(dfd int, name string, d *specs.LinuxDevice, userns bool) error {
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(*d.FileMode) & 0o7777
	}
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	}
	if userns {
		host, err := unix.Open(d.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(host)
		f, err := unix.Openat(dfd, name, unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		unix.Close(f)
		t, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(t)
		return cloneMountOnto(host, t, false, 0)
	}
	// mknod first (cinit.c's op_device says why); replace what is there
	devno := int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))
	if err := unix.Mknodat(dfd, name, typ|mode, devno); err != nil {
		if err != unix.EEXIST {
			return err
		}
		_ = unix.Unlinkat(dfd, name, 0)
		if err := unix.Mknodat(dfd, name, typ|mode, devno); err != nil {
			return err
		}
	}
	// mknod honours the umask; set the mode the spec asked for.
	if err := unix.Fchmodat(dfd, name, mode, 0); err != nil {
		return err
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if uid >= 0 || gid >= 0 {
		return unix.Fchownat(dfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// newConsole opens a pty inside the container's devpts, bind-mounts the
// slave on /dev/console, hands the master to the parent and makes the
// slave our controlling terminal and stdio.
func newConsole(sock *os.File, rootfd int, p *specs.Process) (*os.File, error) {
	ptmx, err := openInRoot(rootfd, "/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY, resolveInRoot)
	if err != nil {
		ptmx, err = openInRoot(rootfd, "/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY, resolveInRoot)
	}
	if err != nil {
		return nil, fmt.Errorf("open ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(ptmx, unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER opens the slave from the master: no path lookup at all.
	r1, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(ptmx), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if e != 0 {
		return nil, fmt.Errorf("open pty slave: %w", e)
	}
	slave := int(r1)
	if p.ConsoleSize != nil {
		ws := &unix.Winsize{Row: uint16(p.ConsoleSize.Height), Col: uint16(p.ConsoleSize.Width)}
		_ = unix.IoctlSetWinsize(ptmx, unix.TIOCSWINSZ, ws)
	}
	if rootfd != unix.AT_FDCWD {
		// /dev/console: create a plain file, then check through an O_PATH
		// fd that it is one, on the container's own /dev, before mounting
		// (CVE-2025-52565: /dev/console made a symlink into procfs).
		if fd, err := mkdirInRoot(rootfd, "/dev/console", true); err == nil {
			unix.Close(fd)
		}
		cfd, err := openInRoot(rootfd, "/dev/console", unix.O_PATH|unix.O_NOFOLLOW, unix.RESOLVE_IN_ROOT|unix.RESOLVE_NO_SYMLINKS)
		if err != nil {
			return nil, fmt.Errorf("/dev/console: %w", err)
		}
		var st unix.Stat_t
		var sfs unix.Statfs_t
		if err := unix.Fstat(cfd, &st); err != nil {
			return nil, err
		}
		if err := unix.Fstatfs(cfd, &sfs); err != nil {
			return nil, err
		}
		mode := st.Mode & unix.S_IFMT
		if (mode != unix.S_IFREG && mode != unix.S_IFCHR) || sfs.Type == unix.PROC_SUPER_MAGIC || sfs.Type == unix.SYSFS_MAGIC {
			unix.Close(cfd)
			return nil, errors.New("/dev/console is not a plain file on the container's /dev: refusing to mount over it")
		}
		err = cloneMountOnto(slave, cfd, false, 0)
		unix.Close(cfd)
		if err != nil {
			return nil, fmt.Errorf("mount /dev/console: %w", err)
		}
	}
	if err := sendMsg(sock, msgConsole, nil, ptmx); err != nil {
		return nil, err
	}
	unix.Close(ptmx)
	return os.NewFile(uintptr(slave), "console"), nil
}

func attachConsole(console *os.File) error {
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	fd := int(console.Fd())
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return err
		}
	}
	if fd > 2 {
		console.Close()
	}
	return nil
}

func setRlimits(p *specs.Process) error {
	for _, rl := range p.Rlimits {
		lim := syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}
		if err := syscall.Setrlimit(rlimitNames[rl.Type], &lim); err != nil {
			var cur unix.Rlimit
			_ = unix.Getrlimit(rlimitNames[rl.Type], &cur)
			if err == syscall.EPERM && rl.Hard > cur.Max {
				return fmt.Errorf("rlimit %s hard %d: above the current hard limit %d and raising it needs CAP_SYS_RESOURCE: %w", rl.Type, rl.Hard, cur.Max, err)
			}
			return fmt.Errorf("rlimit %s soft %d hard %d: %w", rl.Type, rl.Soft, rl.Hard, err)
		}
	}
	return nil
}

// finalize turns this process into the container process: fds, cwd,
// user, capabilities, no_new_privs, seccomp, execve.
func finalize(sock *os.File, cfg *initConfig, p *specs.Process, prog *seccomp.Program, console *os.File) error {
	if console != nil {
		if err := attachConsole(console); err != nil {
			return err
		}
	}
	// No fd of ours may reach the container (CVE-2024-21626): everything
	// above stdio and the preserved fds is closed on exec, and the
	// directory fds are closed now, before the chdir below.
	if err := unix.CloseRange(uint(3+cfg.PreserveFDs), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	if err := unix.Chdir(p.Cwd); err != nil {
		return fmt.Errorf("cwd %s: %w", p.Cwd, err)
	}
	// The kernel reports a cwd outside our root as "(unreachable)...":
	// refuse it (a cwd of /proc/self/fd/N naming a leaked host dir).
	if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("cwd %s is outside the container root", p.Cwd)
	}
	path, err := lookPath(p)
	if err != nil {
		return err
	}
	env := withHome(p.Env, p.User.UID)
	var caps *specs.LinuxCapabilities
	if p.Capabilities != nil {
		caps = p.Capabilities
	}
	if err := applyBounding(caps); err != nil {
		return err
	}
	if prog != nil && !p.NoNewPrivileges {
		// Without no_new_privs, loading needs CAP_SYS_ADMIN: do it before
		// the capabilities go.
		if _, err := seccomp.Load(prog); err != nil {
			return fmt.Errorf("load seccomp: %w", err)
		}
		prog = nil
	}
	if err := setUser(p, cfg.UserNS); err != nil {
		return err
	}
	if err := applyCaps(caps); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	if prog != nil {
		if _, err := seccomp.Load(prog); err != nil {
			return fmt.Errorf("load seccomp: %w", err)
		}
	}
	// From here on errors cannot be reported (the socket is closed on
	// exec but must stay for a failed execve): keep it.
	err = unix.Exec(path, p.Args, env)
	return fmt.Errorf("exec %s: %w", p.Args[0], err)
}

// setUser switches uid/gid on this thread only (raw syscalls: we execve
// from this very thread, the others die with it).
func setUser(p *specs.Process, userns bool) error {
	u := p.User
	if u.Umask != nil {
		unix.Umask(int(*u.Umask))
	} else {
		unix.Umask(0o022)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return err
	}
	groups := make([]uint32, 0, len(u.AdditionalGids))
	groups = append(groups, u.AdditionalGids...)
	if err := rawSetgroups(groups); err != nil && !(userns && err == unix.EPERM && len(groups) == 0) {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	return unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0)
}

func rawSetgroups(g []uint32) error {
	var ptr uintptr
	if len(g) > 0 {
		ptr = uintptr(unsafe.Pointer(&g[0]))
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(g)), ptr, 0); e != 0 {
		return e
	}
	return nil
}

// withHome adds HOME when the process has none, as runc does: the home of
// uid in the container's /etc/passwd (we are inside its root), else "/".
func withHome(env []string, uid uint32) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	home := "/"
	if b, err := os.ReadFile("/etc/passwd"); err == nil {
		id := strconv.FormatUint(uint64(uid), 10)
		for _, l := range strings.Split(string(b), "\n") {
			// name:password:uid:gid:gecos:home:shell
			if f := strings.Split(l, ":"); len(f) >= 7 && f[2] == id && f[5] != "" {
				home = f[5]
				break
			}
		}
	}
	return append(env[:len(env):len(env)], "HOME="+home)
}

// lookPath resolves args[0] with the container's PATH (we are inside the
// container's root already). An absolute path is checked as execve would
// see it, with runc's messages.
func lookPath(p *specs.Process) (string, error) {
	name := p.Args[0]
	if filepath.IsAbs(name) {
		var st unix.Stat_t
		if err := unix.Stat(name, &st); err != nil {
			return "", fmt.Errorf("exec: %q: stat %s: %w", name, name, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o111 == 0 {
			return "", fmt.Errorf("exec: %q: %w", name, unix.EACCES)
		}
		return name, nil
	}
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range p.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		c := filepath.Join(dir, name)
		var st unix.Stat_t
		if unix.Stat(c, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0 {
			return c, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// execInit runs in a process that nsexec.c moved into the namespaces of a
// running container.
func execInit(sock *os.File, cfg *initConfig) error {
	p := cfg.Process
	var console *os.File
	var err error
	if p.Terminal {
		if console, err = newConsole(sock, unix.AT_FDCWD, p); err != nil {
			return err
		}
	}
	if err := setRlimits(p); err != nil {
		return err
	}
	prog, err := loadProgram(cfg)
	if err != nil {
		return err
	}
	if err := sendMsg(sock, msgReady, nil, -1); err != nil {
		return err
	}
	return finalize(sock, cfg, p, prog, console)
}
