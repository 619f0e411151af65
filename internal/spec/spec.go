// Package spec turns an image config and a container's create options into an
// OCI runtime spec, with docker's defaults and docker's validation messages.
//
// It is pure: it reads no host state. Everything docker would look up on the
// host (kernel features, devices, the daemon's capabilities, the other
// container's namespace paths, the resolved volume paths) is handed in through
// Options, Host and Daemon. The only reads it performs are of things handed to
// it explicitly: /etc/passwd and /etc/group in Options.RootFS, a seccomp profile
// path, and Host.StatDevice for --device and the blkio device limits.
//
// Generate mirrors the order moby applies its spec options in
// (daemon/oci_linux.go createSpec): common options, cgroups, resources,
// sysctls, user, devices, rlimits, namespaces, capabilities, seccomp, mounts,
// apparmor, selinux, oom score.
package spec

import (
	"io/fs"
	"os"
	"path"
	"runtime"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options is berth's create request, decoupled from the moby API types so that
// this package imports none of them. internal/daemon fills it from docker's
// container.Config (C) and container.HostConfig (H), after resolving names,
// volumes and paths; the mapping is given per field as "C.Field" / "H.Field".
//
// Slices keep docker's nil-versus-empty meaning where docker gives one
// (Entrypoint, MaskedPaths, ReadonlyPaths).
type Options struct {
	// ID is the container's full ID: cgroupsPath is <parent>/<ID>, and the
	// hostname defaults to its first 12 characters.
	ID string
	// RootfsPath is spec.Root.Path: the prepared root filesystem (absolute, or
	// relative to the bundle). Empty means "rootfs".
	RootfsPath string
	// RootFS reads the container's /etc/passwd and /etc/group (paths
	// "etc/passwd", "etc/group") for -u and --group-add name resolution. It
	// must resolve symlinks inside the root (os.Root.FS does; os.DirFS does
	// NOT). Nil: only numeric users and groups resolve, as in an empty image.
	RootFS fs.FS

	// Process (C = container.Config).
	Entrypoint []string // C.Entrypoint. nil: the image's; [""] (--entrypoint ""): none, and the image's Cmd is dropped too
	Cmd        []string // C.Cmd. empty: the image's Cmd (only when Entrypoint is nil or empty)
	Env        []string // C.Env ("K=V"; a bare "K" unsets K). Merged over the image's Env, container wins
	WorkingDir string   // C.WorkingDir. empty: the image's, else "/"
	User       string   // C.User: uid, uid:gid, name, name:group. empty: the image's User
	Hostname   string   // C.Hostname. empty: ID[:12]. Also sets HOSTNAME
	Domainname string   // C.Domainname → sysctl kernel.domainname (as docker)
	Tty        bool     // C.Tty → process.terminal, TERM=xterm
	StopSignal string   // C.StopSignal, else the image's, else SIGTERM → annotation AnnotationStopSignal
	// ConsoleSize is H.ConsoleSize: {height, width}; applied when Tty.
	ConsoleSize [2]uint
	// Annotations is H.Annotations, copied into spec.Annotations.
	Annotations map[string]string

	// Security.
	Privileged bool     // H.Privileged
	CapAdd     []string // H.CapAdd: with or without CAP_, any case, or ALL
	CapDrop    []string // H.CapDrop
	// SecurityOpt is H.SecurityOpt verbatim: no-new-privileges[=bool],
	// seccomp=unconfined|builtin|<profile JSON, as the docker CLI sends it>|<path>,
	// apparmor=<profile>, label=user:|role:|type:|level:|disable,
	// systempaths=unconfined (the CLI normally turns that into empty
	// MaskedPaths/ReadonlyPaths), "key:value" accepted like docker.
	SecurityOpt []string
	// MaskedPaths / ReadonlyPaths are H.MaskedPaths / H.ReadonlyPaths:
	// nil = docker's defaults, empty = none.
	MaskedPaths   []string
	ReadonlyPaths []string
	// SELinuxLevel is the MCS level the daemon reserved for this container
	// (e.g. "s0:c1,c2"), used when SELinux is on and label=level: is not given.
	SELinuxLevel   string
	ReadonlyRootfs bool              // H.ReadonlyRootfs → root.readonly
	GroupAdd       []string          // H.GroupAdd: names (via /etc/group) or numeric gids
	OomScoreAdj    int               // H.OomScoreAdj, -1000..1000
	Ulimits        []Ulimit          // H.Ulimits (merged over Daemon.Ulimits by name)
	Sysctls        map[string]string // H.Sysctls (checked against docker's namespaced allow-list)
	// Init is H.Init: nil = Daemon.Init. With a private pid namespace the
	// Daemon.InitPath binary is bind-mounted read-only at InitPathInContainer
	// and prepended to the args with "--", as docker does with docker-init.
	Init *bool

	// Namespaces. Modes are docker's strings; "container:<x>" modes need the
	// resolved path in NSPaths (the daemon resolves x to its pid: /proc/<pid>/ns/<t>).
	NetworkMode  string // H.NetworkMode: ""/default/bridge/<network>: private; none; host; container:<x>
	IpcMode      string // H.IpcMode: ""(Daemon.IpcMode, else private)/private/shareable/none/host/container:<x>
	PidMode      string // H.PidMode: ""/host/container:<x>
	UTSMode      string // H.UTSMode: ""/host
	CgroupnsMode string // H.CgroupnsMode: ""(Daemon.CgroupnsMode, else private on v2, host on v1)/private/host
	UsernsMode   string // H.UsernsMode: ""(remapped when Daemon.UIDMappings is set)/host
	// NSPaths holds namespace paths to join, by type: for container:<x> modes,
	// the network namespace the daemon created for bridge/user networks, and
	// the user namespace of a joined container under userns-remap.
	NSPaths map[specs.LinuxNamespaceType]string
	// IPv6: one of the container's networks gives it IPv6. Without it, as
	// docker, IPv6 is disabled in a private network namespace (no ::1, no
	// link-local addresses) when the host has IPv6 (Host.IPv6).
	IPv6 bool

	// Mounts, all resolved by the daemon (volumes to their host paths, binds
	// validated, nocopy and volume population already handled):
	//   H.Binds "/src:/dst:ro,rslave"       → {Type: "bind", Source, Destination, ReadOnly, Propagation}
	//   H.Binds "name:/dst", image VOLUMEs  → {Type: "volume", Source: <volume dir>, Destination, ReadOnly}
	//   H.Mounts type=bind                  → Propagation from BindOptions.Propagation, NonRecursive from BindOptions.NonRecursive
	//   H.Mounts type=volume                → {Type: "volume", ...}
	//   H.Mounts type=tmpfs                 → {Type: "tmpfs", TmpfsSize: TmpfsOptions.SizeBytes, TmpfsMode: TmpfsOptions.Mode, ReadOnly}
	//   H.Tmpfs {"/run": "rw,size=64m"}     → {Type: "tmpfs", Destination: "/run", TmpfsOptions: "rw,size=64m"}
	//   H.VolumesFrom                       → the other container's mounts, resolved
	Mounts []Mount
	// ShmSize is H.ShmSize in bytes. 0: Daemon.ShmSize, else 64 MiB.
	ShmSize int64
	// ShmPath, when set, is bind-mounted at /dev/shm instead of a private
	// tmpfs, as docker's IpcMounts: the tmpfs the daemon keeps for
	// --ipc shareable, the other container's for container:<x>, the host's
	// /dev/shm for --ipc host.
	ShmPath string
	// HostsPath, HostnamePath, ResolvConfPath are the daemon-written files
	// bind-mounted at /etc/hosts, /etc/hostname, /etc/resolv.conf ("" = none).
	HostsPath      string
	HostnamePath   string
	ResolvConfPath string

	// Devices. A --device naming a directory is expanded by the daemon into
	// one mapping per device node under it (as docker's DevicesFromPath).
	Devices           []DeviceMapping // H.Devices (--device)
	DeviceCgroupRules []string        // H.DeviceCgroupRules ("c 1:3 rwm")

	// Resources is H.Resources; CgroupParent is H.CgroupParent.
	Resources    Resources
	CgroupParent string

	// Host describes the machine; Daemon the daemon-wide configuration.
	Host   Host
	Daemon Daemon
}

// Ulimit is one --ulimit (docker's units.Ulimit).
type Ulimit struct {
	Name string // "nofile", without RLIMIT_
	Soft int64
	Hard int64
}

// Mount is one resolved container mount (docker's container.Mount).
type Mount struct {
	// Type is "bind", "volume" (a bind of the volume's directory) or "tmpfs".
	Type        string
	Source      string // host path; ignored for tmpfs
	Destination string
	ReadOnly    bool
	// Propagation: private, rprivate, shared, rshared, slave, rslave.
	// Empty: rprivate for binds (docker's default), none for volumes.
	Propagation string
	// NonRecursive: "bind" instead of "rbind" (bind-recursive=disabled).
	NonRecursive bool
	// TmpfsSize (bytes) and TmpfsMode come from --mount type=tmpfs;
	// TmpfsOptions is the raw --tmpfs option string ("rw,size=64m,exec").
	TmpfsSize    int64
	TmpfsMode    os.FileMode
	TmpfsOptions string
}

// DeviceMapping is one --device (docker's container.DeviceMapping).
type DeviceMapping struct {
	PathOnHost        string
	PathInContainer   string // empty: PathOnHost
	CgroupPermissions string // subset of "rwm"; empty: "rwm"
}

// HostDevice describes a device node on the host.
type HostDevice struct {
	Path     string
	Type     string // "c", "b" or "p"
	Major    int64
	Minor    int64
	FileMode os.FileMode
	UID      uint32
	GID      uint32
}

// WeightDevice is one --blkio-weight-device.
type WeightDevice struct {
	Path   string
	Weight uint16
}

// ThrottleDevice is one --device-{read,write}-{bps,iops}.
type ThrottleDevice struct {
	Path string
	Rate uint64
}

// Resources is docker's container.Resources, the parts Linux uses.
type Resources struct {
	Memory               int64  // --memory, bytes; 0 = unlimited; min 6MB
	MemoryReservation    int64  // --memory-reservation
	MemorySwap           int64  // --memory-swap: memory+swap; -1 unlimited; 0 = 2×Memory
	MemorySwappiness     *int64 // --memory-swappiness 0..100 (-1 = unset, like docker)
	OomKillDisable       *bool  // --oom-kill-disable
	KernelMemory         int64  // ignored, as docker ≥ 20.10 on modern kernels
	NanoCPUs             int64  // --cpus × 1e9 → quota/period 100000
	CPUShares            int64
	CPUPeriod            int64
	CPUQuota             int64
	CPURealtimePeriod    int64
	CPURealtimeRuntime   int64
	CpusetCpus           string
	CpusetMems           string
	PidsLimit            *int64 // nil: none; ≤0: unlimited (-1)
	BlkioWeight          uint16 // 10..1000, 0 = unset
	BlkioWeightDevice    []WeightDevice
	BlkioDeviceReadBps   []ThrottleDevice
	BlkioDeviceWriteBps  []ThrottleDevice
	BlkioDeviceReadIOps  []ThrottleDevice
	BlkioDeviceWriteIOps []ThrottleDevice
	// HugepageLimits: Pagesize like "2MB", "1GB" (must be in Host.HugepageSizes).
	HugepageLimits []specs.LinuxHugepageLimit
}

// Host describes what the machine offers. The daemon probes it once.
type Host struct {
	AppArmor bool
	SELinux  bool
	// NoSeccomp: the kernel lacks seccomp (then the default profile is
	// skipped and a custom one is an error, as docker).
	NoSeccomp bool
	CgroupV2  bool
	// IPv6: the kernel has IPv6 (/proc/sys/net/ipv6 exists), so its
	// sysctls can be set in a container's network namespace.
	IPv6 bool
	// Kernel is the release ("6.18.0-1-amd64"); used for seccomp minKernel
	// rules and for sysctls that need a minimum kernel. Empty: assume new.
	Kernel string
	// Arch is a GOARCH ("amd64"); empty: runtime.GOARCH.
	Arch string
	// NCPU for --cpus validation; 0: runtime.NumCPU().
	NCPU int
	// Cpus / Mems are the cpuset the daemon may use ("0-1"); empty: not checked.
	Cpus string
	Mems string
	// HugepageSizes available ("2MB", "1GB").
	HugepageSizes []string
	// Capabilities the daemon can grant (its bounding set, "CAP_…"). Nil: all
	// capabilities this package knows. A known capability missing here gives
	// docker's "capability not supported by your kernel…" error.
	Capabilities []string
	// Devices are the host's device nodes, given to --privileged containers.
	Devices []HostDevice
	// StatDevice describes the device node at a host path, following a
	// symlink (for --device and the blkio device limits). Nil: those options
	// fail. A regular file is returned with an empty Type.
	StatDevice func(path string) (HostDevice, error)
	// RecursiveReadOnly: the runtime and kernel (≥5.12) support "rro"; docker
	// then makes read-only binds recursively read-only.
	RecursiveReadOnly bool
	// ExtraMaskedPaths are appended to the default masked paths (docker masks
	// each existing /sys/devices/system/cpu/cpu*/thermal_throttle).
	ExtraMaskedPaths []string
	// ReadFile reads a seccomp profile given as a path; nil: os.ReadFile.
	ReadFile func(path string) ([]byte, error)
}

// Daemon is the daemon-wide configuration (daemon.json) that changes specs.
type Daemon struct {
	// CgroupParent: default parent cgroup; empty "/berth".
	CgroupParent string
	Init         bool   // "init": true
	InitPath     string // host path of the init binary (required for --init)
	// NoNewPrivileges is daemon.json "no-new-privileges".
	NoNewPrivileges bool
	Ulimits         []Ulimit // "default-ulimits"
	ShmSize         int64    // "default-shm-size"
	IpcMode         string   // "default-ipc-mode"
	CgroupnsMode    string   // "default-cgroupns-mode"
	// SeccompProfile is the daemon's "seccomp-profile" as JSON, or
	// "unconfined"; empty: docker's built-in default profile.
	SeccompProfile string
	// AppArmorProfile is the default profile name applied when AppArmor is
	// on (the daemon loads it); empty: none.
	AppArmorProfile string
	// UIDMappings / GIDMappings: userns-remap; containers get a user
	// namespace with these maps unless --userns=host.
	UIDMappings []specs.LinuxIDMapping
	GIDMappings []specs.LinuxIDMapping
}

const (
	// InitPathInContainer is where --init's binary appears. /dev is a tmpfs the
	// runtime creates, so the mountpoint never touches the image's rootfs and
	// works with --read-only.
	InitPathInContainer = "/dev/init"
	// AnnotationStopSignal carries the resolved stop signal to the daemon and
	// runtime (the key containerd and CRI-O use).
	AnnotationStopSignal = "org.opencontainers.image.stopSignal"
	// DefaultCgroupParent is berth's cgroup parent.
	DefaultCgroupParent = "/berth"
	// DefaultShmSize is docker's 64 MiB /dev/shm.
	DefaultShmSize = 64 << 20
	// DefaultPathEnv is docker's PATH for Linux containers.
	DefaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Generate builds the OCI spec for a container from its image's config and
// its create options. Errors carry docker's messages and an errdefs class
// (mostly ErrInvalidArgument; ErrNotImplemented for absent LSMs).
//
// The returned spec's Linux.Seccomp is shared with other specs generated with
// the same profile and capability set (rendering is cached): treat it as
// read-only.
func Generate(img ocispec.ImageConfig, o *Options) (*specs.Spec, error) {
	if o == nil {
		o = &Options{}
	}
	g := gen{o: o, img: &img}
	return g.run()
}

// gen carries the state of one Generate call.
type gen struct {
	o   *Options
	img *ocispec.ImageConfig
	s   *specs.Spec
	sec secOpts
	// userNS: the container gets (or joins) a remapped user namespace.
	userNS bool
	// initMount is --init's bind mount, placed after all other mounts.
	initMount *specs.Mount
}

func (g *gen) run() (*specs.Spec, error) {
	o := g.o
	root := o.RootfsPath
	if root == "" {
		root = "rootfs"
	}
	g.s = &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{},
		Root:    &specs.Root{Path: root, Readonly: o.ReadonlyRootfs},
		Linux:   &specs.Linux{},
	}
	sec, err := parseSecurityOpts(o.SecurityOpt, o.Daemon.NoNewPrivileges)
	if err != nil {
		return nil, err
	}
	g.sec = sec
	if len(o.Daemon.UIDMappings) > 0 && !isHost(o.UsernsMode) {
		g.userNS = true
		if err := g.checkUserns(); err != nil {
			return nil, err
		}
	}
	steps := []func() error{
		g.process,
		g.cgroups,
		g.resources,
		g.user,
		g.devices,
		g.rlimits,
		g.namespaces,
		g.sysctls,
		g.capabilities,
		g.seccomp,
		g.mounts,
		g.lsm,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return g.s, nil
}

func (g *gen) checkUserns() error {
	o := g.o
	if o.Privileged {
		return invalidf("privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode")
	}
	if isHost(o.NetworkMode) {
		return invalidf("cannot share the host's network namespace when user namespaces are enabled")
	}
	if isHost(o.PidMode) {
		return invalidf("cannot share the host PID namespace when user namespaces are enabled")
	}
	return nil
}

func (g *gen) cgroups() error {
	parent := g.o.CgroupParent
	if parent == "" {
		parent = g.o.Daemon.CgroupParent
	}
	if parent == "" {
		parent = DefaultCgroupParent
	}
	// path.Join cleans "../" out of a hostile parent or ID.
	g.s.Linux.CgroupsPath = path.Join("/", parent, g.o.ID)
	return nil
}

func (g *gen) arch() string {
	if g.o.Host.Arch != "" {
		return g.o.Host.Arch
	}
	return runtime.GOARCH
}

func isHost(mode string) bool { return mode == "host" }

func containerRef(mode string) (string, bool) {
	const p = "container:"
	if len(mode) > len(p) && mode[:len(p)] == p {
		return mode[len(p):], true
	}
	return "", false
}
