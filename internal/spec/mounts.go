package spec

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultMounts is docker's default mount list (oci.DefaultLinuxSpec).
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777"}},
	}
}

// DefaultMaskedPaths is docker's list (28.x, incl. the 2025 advisories).
func DefaultMaskedPaths() []string {
	return []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/sys/devices/virtual/powercap",
		"/sys/firmware",
	}
}

// DefaultReadonlyPaths is docker's list.
func DefaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// mounts follows moby's withMounts: defaults minus those a user mount
// replaces (and everything under /dev if /dev is user-mounted), /dev/shm
// sized or dropped (ipc none), user mounts sorted by depth, then read-only
// rootfs, privileged and userns adjustments.
func (g *gen) mounts() error {
	o := g.o
	user, err := g.userMounts()
	if err != nil {
		return err
	}
	dests := make(map[string]bool, len(user))
	for _, m := range user {
		dests[m.Destination] = true
	}
	mountDev := dests["/dev"]
	shm := o.ShmSize
	if shm == 0 {
		shm = o.Daemon.ShmSize
	}
	if shm == 0 {
		shm = DefaultShmSize
	}
	if shm < 0 {
		return invalidf("SHM size can not be less than 0")
	}

	out := make([]specs.Mount, 0, 8+len(user))
	for _, m := range defaultMounts() {
		if dests[m.Destination] || (mountDev && strings.HasPrefix(m.Destination, "/dev/")) {
			continue
		}
		if m.Destination == "/dev/shm" {
			if g.ipcMode() == "none" {
				continue
			}
			m.Options = append(m.Options, "size="+strconv.FormatInt(shm, 10))
		}
		if o.ReadonlyRootfs {
			switch m.Destination {
			case "/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev":
			default:
				if !slices.Contains(m.Options, "ro") {
					m.Options = append(m.Options, "ro")
				}
			}
		}
		if o.Privileged && m.Destination == "/sys" {
			m.Options = without(m.Options, "ro")
		}
		// docker: writable cgroups for privileged containers and under
		// userns-remap (a remount in a user namespace cannot keep ro).
		if m.Type == "cgroup" && (o.Privileged || g.userNS) {
			m.Options = without(m.Options, "ro")
		}
		out = append(out, m)
	}
	out = append(out, user...)
	if g.initMount != nil {
		// Last, so that a user-mounted /dev does not hide it.
		out = append(out, *g.initMount)
	}
	g.s.Mounts = out

	l := g.s.Linux
	switch {
	case o.MaskedPaths != nil:
		l.MaskedPaths = o.MaskedPaths
	case o.Privileged || g.sec.unconfinedPaths:
	default:
		l.MaskedPaths = append(DefaultMaskedPaths(), o.Host.ExtraMaskedPaths...)
	}
	switch {
	case o.ReadonlyPaths != nil:
		l.ReadonlyPaths = o.ReadonlyPaths
	case o.Privileged || g.sec.unconfinedPaths:
	default:
		l.ReadonlyPaths = DefaultReadonlyPaths()
	}
	return nil
}

func without(opts []string, drop string) []string {
	out := make([]string, 0, len(opts))
	for _, o := range opts {
		if o != drop {
			out = append(out, o)
		}
	}
	return out
}

var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

// userMounts converts the daemon's mounts, the ipc /dev/shm bind and the
// network files into spec mounts sorted by destination depth (docker's
// sortMounts; stable, so equal depths keep the caller's order).
func (g *gen) userMounts() ([]specs.Mount, error) {
	o := g.o
	ms := make([]Mount, 0, len(o.Mounts)+4)
	seen := make(map[string]bool, len(o.Mounts))
	for _, m := range o.Mounts {
		if !path.IsAbs(m.Destination) {
			return nil, invalidf("invalid mount config: mount destination %s not absolute", m.Destination)
		}
		m.Destination = path.Clean(m.Destination)
		if m.Destination == "/" {
			return nil, invalidf("invalid specification: destination can't be '/'")
		}
		if seen[m.Destination] {
			return nil, invalidf("Duplicate mount point: %s", m.Destination)
		}
		seen[m.Destination] = true
		ms = append(ms, m)
	}
	if o.ShmPath != "" && !seen["/dev/shm"] {
		ms = append(ms, Mount{Type: "bind", Source: o.ShmPath, Destination: "/dev/shm"})
	}
	for _, nf := range [...]struct{ src, dst string }{
		{o.ResolvConfPath, "/etc/resolv.conf"},
		{o.HostnamePath, "/etc/hostname"},
		{o.HostsPath, "/etc/hosts"},
	} {
		if nf.src != "" && !seen[nf.dst] {
			ms = append(ms, Mount{Type: "bind", Source: nf.src, Destination: nf.dst, ReadOnly: o.ReadonlyRootfs})
		}
	}
	slices.SortStableFunc(ms, func(a, b Mount) int {
		return depth(a.Destination) - depth(b.Destination)
	})

	out := make([]specs.Mount, 0, len(ms))
	for _, m := range ms {
		switch m.Type {
		case "tmpfs":
			opts := []string{"noexec", "nosuid", "nodev", "rprivate"}
			if m.ReadOnly {
				opts = append(opts, "ro")
			}
			if m.TmpfsMode != 0 {
				opts = append(opts, fmt.Sprintf("mode=%o", unixMode(m.TmpfsMode)))
			}
			if m.TmpfsSize != 0 {
				opts = append(opts, "size="+tmpfsSize(m.TmpfsSize))
			}
			if m.TmpfsOptions != "" {
				opts = append(opts, strings.Split(m.TmpfsOptions, ",")...)
			}
			merged, err := mergeTmpfsOptions(opts)
			if err != nil {
				return nil, err
			}
			out = append(out, specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: merged})
		case "bind", "volume", "":
			if m.Source == "" || !path.IsAbs(m.Source) {
				return nil, invalidf("invalid mount config for type %q: mount source %q is not an absolute path", "bind", m.Source)
			}
			prop := m.Propagation
			if prop == "" && m.Type != "volume" {
				prop = "rprivate"
			}
			if prop != "" && !slices.Contains(propagations, prop) {
				return nil, invalidf("invalid propagation mode: %s", prop)
			}
			opts := make([]string, 0, 3)
			if m.NonRecursive {
				opts = append(opts, "bind")
			} else {
				opts = append(opts, "rbind")
			}
			if m.ReadOnly {
				if o.Host.RecursiveReadOnly && !m.NonRecursive {
					opts = append(opts, "rro")
				} else {
					opts = append(opts, "ro")
				}
			}
			if prop != "" {
				opts = append(opts, prop)
			}
			// A shared or slave mount needs a root propagation that lets
			// events through (docker checks the source mount too: the
			// daemon's job, it needs I/O).
			l := g.s.Linux
			switch prop {
			case "shared", "rshared":
				if l.RootfsPropagation != "shared" && l.RootfsPropagation != "rshared" {
					l.RootfsPropagation = "shared"
				}
			case "slave", "rslave":
				switch l.RootfsPropagation {
				case "shared", "rshared", "slave", "rslave":
				default:
					l.RootfsPropagation = "rslave"
				}
			}
			out = append(out, specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts})
		default:
			return nil, invalidf("invalid mount config: mount type unknown: %q", m.Type)
		}
	}
	return out, nil
}

// unixMode converts Go's mode bits to the octal a mount option wants.
func unixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= 04000
	}
	if m&os.ModeSetgid != 0 {
		u |= 02000
	}
	if m&os.ModeSticky != 0 {
		u |= 01000
	}
	return u
}

func depth(p string) int {
	return strings.Count(path.Clean(p), "/")
}

// tmpfsSize renders bytes like docker's ConvertTmpfsOptions: the largest of
// g, m, k that divides evenly, else plain bytes.
func tmpfsSize(n int64) string {
	for _, s := range []struct {
		unit   int64
		suffix string
	}{{1 << 30, "g"}, {1 << 20, "m"}, {1 << 10, "k"}} {
		if n%s.unit == 0 {
			return strconv.FormatInt(n/s.unit, 10) + s.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// tmpfsFlagClass groups mount flags that override each other; all
// propagation modes form one class.
var tmpfsFlagClass = map[string]string{
	"ro": "ro", "rw": "ro", "suid": "suid", "nosuid": "suid", "dev": "dev", "nodev": "dev",
	"exec": "exec", "noexec": "exec", "sync": "sync", "async": "sync", "dirsync": "dirsync",
	"remount": "remount", "mand": "mand", "nomand": "mand", "atime": "atime", "noatime": "atime",
	"diratime": "diratime", "nodiratime": "diratime", "bind": "bind", "rbind": "rbind",
	"unbindable": "prop", "runbindable": "prop", "private": "prop", "rprivate": "prop",
	"shared": "prop", "rshared": "prop", "slave": "prop", "rslave": "prop",
	"relatime": "relatime", "norelatime": "relatime", "strictatime": "strictatime", "nostrictatime": "strictatime",
}

var tmpfsDataKeys = map[string]bool{
	"size": true, "mode": true, "uid": true, "gid": true, "nr_inodes": true, "nr_blocks": true, "mpol": true,
}

// mergeTmpfsOptions keeps the last of each conflicting flag and data key, in
// the order of their last occurrence (moby/sys/mount MergeTmpfsOptions).
func mergeTmpfsOptions(opts []string) ([]string, error) {
	seen := make(map[string]bool, len(opts))
	out := make([]string, 0, len(opts))
	for i := len(opts) - 1; i >= 0; i-- {
		opt := opts[i]
		if opt == "defaults" || opt == "" {
			continue
		}
		key, isFlag := tmpfsFlagClass[opt]
		if !isFlag {
			k, _, ok := strings.Cut(opt, "=")
			if !ok || !tmpfsDataKeys[k] {
				return nil, invalidf("invalid tmpfs option %q", strings.SplitN(opt, "=", 2))
			}
			key = "=" + k
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, opt)
	}
	slices.Reverse(out)
	return out, nil
}
