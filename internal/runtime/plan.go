package runtime

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/berth-dev/berth/internal/runtime/seccomp"
)

// The C init (cinit.c) runs a plan built here instead of the Go init when
// the spec needs nothing only the Go init does: it saves the Go runtime's
// start and a second decoding of the spec in every container. The plan
// mirrors setupRootfs/createInit/finalize of init_linux.go step by step;
// change both together. BERTH_INIT=go forces the Go init (tests, and to
// compare).

// Op codes and fields: see cinit.c.
const (
	opRootPrep = 1
	opMount    = 2
	opRemount  = 3
	opDevice   = 4
	opDevLinks = 5
	opHooks    = 6
	opPivot    = 7
	opMkCwd    = 8
	opSetProp  = 9
	opMask     = 10
	opSysctl   = 11
	opROPath   = 12
	opRootRO   = 13
	opHostname = 14
	opDomain   = 15
	opKeyring  = 16
	opRlimit   = 17
	opSeccomp  = 18
	opProcess  = 19

	fbNone    = 0
	fbSysfs   = 1
	fbMqueue  = 2
	fbCgroup2 = 3
)

// planBuf encodes ops: u32 code | u32 length | fields, each field
// u32 length | bytes | NUL (numbers as 8 bytes little endian).
type planBuf []byte

func (b *planBuf) op(code uint32, fields ...any) {
	start := len(*b)
	*b = binary.NativeEndian.AppendUint32(*b, code)
	*b = binary.NativeEndian.AppendUint32(*b, 0)
	for _, f := range fields {
		switch x := f.(type) {
		case string:
			*b = binary.NativeEndian.AppendUint32(*b, uint32(len(x)))
			*b = append(*b, x...)
		case []byte:
			*b = binary.NativeEndian.AppendUint32(*b, uint32(len(x)))
			*b = append(*b, x...)
		case bool:
			n := uint64(0)
			if x {
				n = 1
			}
			b.num(n)
		case int:
			b.num(uint64(int64(x)))
		case uint64:
			b.num(x)
		case uintptr:
			b.num(uint64(x))
		case uint32:
			b.num(uint64(x))
		default:
			panic("plan: field type")
		}
		*b = append(*b, 0)
	}
	binary.NativeEndian.PutUint32((*b)[start+4:], uint32(len(*b)-start-8))
}

func (b *planBuf) num(v uint64) {
	*b = binary.NativeEndian.AppendUint32(*b, 8)
	*b = binary.LittleEndian.AppendUint64(*b, v)
}

// planOK reports whether the C init can run this container: a new mount
// namespace, no user namespace, no terminal, no hooks that run inside the
// container, no seccomp listener, nothing the C strings cannot carry.
func planOK(s *specs.Spec, prog *seccomp.Program) bool {
	if os.Getenv("BERTH_INIT") == "go" || s.Linux == nil || s.Process == nil {
		return false
	}
	p := s.Process
	if p.Terminal || len(p.Args) == 0 || (prog != nil && prog.NeedsListener) {
		return false
	}
	if h := s.Hooks; h != nil && (len(h.CreateContainer) > 0 || len(h.StartContainer) > 0) {
		return false
	}
	newMnt := false
	for _, ns := range s.Linux.Namespaces {
		switch ns.Type {
		case specs.UserNamespace:
			return false
		case specs.MountNamespace:
			newMnt = ns.Path == ""
		}
	}
	if !newMnt {
		return false
	}
	for _, l := range [][]string{p.Args, p.Env} {
		for _, a := range l {
			if strings.IndexByte(a, 0) >= 0 {
				return false
			}
		}
	}
	return true
}

// buildPlan turns the spec into the C init's plan. pid is the spawned
// child (its /proc/pid/cgroup is the container's), stateDirFd the number
// of the state directory fd in the child.
func buildPlan(s *specs.Spec, cfg *initConfig, prog *seccomp.Program, pid, stateDirFd int) ([]byte, error) {
	// sized once: growing it (the seccomp program alone is several KiB)
	// copies and faults in every intermediate size
	size := 8 << 10
	if prog != nil {
		size += 8 * len(prog.Filter)
	}
	for _, l := range [][]string{s.Process.Args, s.Process.Env} {
		for _, a := range l {
			size += len(a) + 1
		}
	}
	b := make(planBuf, 0, size)
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if s.Linux.RootfsPropagation != "" {
		prop = propagationFlags[s.Linux.RootfsPropagation]
	}
	shared := prop&unix.MS_SHARED != 0
	pm := ""
	if shared {
		pm = mountPointOf(filepath.Dir(cfg.Rootfs))
	}
	b.op(opRootPrep, prop, cfg.Rootfs, shared, pm)

	devBound := false
	cgroupns := hasNS(s, specs.CgroupNamespace)
	for i := range s.Mounts {
		m := &s.Mounts[i]
		flags, props, data := parseMountOptions(m.Options)
		if m.Type == "cgroup" {
			if err := planCgroup(&b, m, flags, cgroupns, pid); err != nil {
				return nil, err
			}
			continue
		}
		bind := isBind(m)
		src, fstype, rest, fb := m.Source, m.Type, uintptr(0), fbNone
		if bind {
			if !filepath.IsAbs(src) {
				src = filepath.Join(cfg.Bundle, src)
			}
			rest = flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
			if filepath.Clean(m.Destination) == "/dev" {
				devBound = true
			}
		} else if fstype == "" {
			fstype = m.Source
		}
		switch fstype {
		case "sysfs":
			fb = fbSysfs
		case "mqueue":
			fb = fbMqueue
		}
		f := []any{src, m.Destination, fstype, flags, data, bind, rest, fb}
		for _, p := range props {
			f = append(f, p)
		}
		b.op(opMount, f...)
	}
	if !devBound {
		for _, d := range mergeDevices(s.Linux.Devices) {
			dir, base := filepath.Split(filepath.Clean(d.Path))
			mode := uint32(0o666)
			if d.FileMode != nil {
				mode = uint32(*d.FileMode) & 0o7777
			}
			switch d.Type {
			case "c", "u":
				mode |= unix.S_IFCHR
			case "b":
				mode |= unix.S_IFBLK
			case "p":
				mode |= unix.S_IFIFO
			}
			uid, gid := -1, -1
			if d.UID != nil {
				uid = int(*d.UID)
			}
			if d.GID != nil {
				gid = int(*d.GID)
			}
			b.op(opDevice, dir, base, mode, unix.Mkdev(uint32(d.Major), uint32(d.Minor)), uid, gid, d.Path)
		}
		b.op(opDevLinks)
	}
	if cfg.ParentHooks {
		b.op(opHooks)
	}
	b.op(opPivot, cfg.NoPivot, cfg.Rootfs)
	p := s.Process
	if c := p.Cwd; c != "" && c != "/" {
		b.op(opMkCwd, c)
	}
	if shared {
		b.op(opSetProp, prop)
	}
	for _, m := range s.Linux.MaskedPaths {
		b.op(opMask, m)
	}
	for k, v := range s.Linux.Sysctl {
		b.op(opSysctl, "/proc/sys/"+strings.ReplaceAll(k, ".", "/"), v, k)
	}
	for _, r := range s.Linux.ReadonlyPaths {
		b.op(opROPath, r)
	}
	if s.Root.Readonly {
		b.op(opRootRO)
	}
	if s.Hostname != "" {
		b.op(opHostname, s.Hostname)
	}
	if s.Domainname != "" {
		b.op(opDomain, s.Domainname)
	}
	if !cfg.NoKeyring {
		b.op(opKeyring, "_ses."+cfg.ID)
	}
	for _, rl := range p.Rlimits {
		b.op(opRlimit, rlimitNames[rl.Type], rl.Soft, rl.Hard, rl.Type)
	}
	if prog != nil {
		filter := make([]byte, 0, 8*len(prog.Filter))
		for _, f := range prog.Filter {
			filter = binary.NativeEndian.AppendUint16(filter, f.Code)
			filter = append(filter, f.Jt, f.Jf)
			filter = binary.NativeEndian.AppendUint32(filter, f.K)
		}
		b.op(opSeccomp, prog.Flags, filter)
	}

	havePath, path := false, ""
	for _, e := range p.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			havePath, path = true, v
		}
	}
	umask := -1
	if p.User.Umask != nil {
		umask = int(*p.User.Umask)
	}
	groups := make([]byte, 0, 4*len(p.User.AdditionalGids))
	for _, g := range p.User.AdditionalGids {
		groups = binary.NativeEndian.AppendUint32(groups, g)
	}
	c := p.Capabilities
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	last := lastCap()
	mask := func(names []string) uint64 {
		s := makeSet(names, last)
		return uint64(s[0]) | uint64(s[1])<<32
	}
	perm, inh := mask(c.Permitted), mask(c.Inheritable)
	// the kernel allows an ambient capability only when it is both
	// permitted and inheritable; like runc, skip the others
	amb := mask(c.Ambient) & perm & inh
	b.op(opProcess, p.Cwd, havePath, path, cfg.PreserveFDs, stateDirFd, p.User.UID, p.User.GID, umask,
		groups, mask(c.Bounding), mask(c.Effective), perm, inh, amb, last, p.NoNewPrivileges,
		nulJoin(p.Args), nulJoin(p.Env))
	return b, nil
}

func nulJoin(l []string) []byte {
	var b []byte
	for _, s := range l {
		b = append(append(b, s...), 0)
	}
	return b
}

// planCgroup is mountCgroup of mount.go as plan ops: the container's own
// cgroups are those of the spawned child (pid), the hierarchies those of
// our mount namespace, which the child's new one copies.
func planCgroup(b *planBuf, m *specs.Mount, flags uintptr, cgroupns bool, pid int) error {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		b.op(opMount, "cgroup2", m.Destination, "cgroup2", flags&^unix.MS_RELATIME, "", false, 0, fbCgroup2)
		return nil
	}
	b.op(opMount, "tmpfs", m.Destination, "tmpfs", uintptr(unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC), "mode=755", false, 0, fbNone)
	mi, err := cgroups.Mountinfo() // read once by cgroups.New already
	if err != nil {
		return err
	}
	mounts := parseCgroupMounts(mi)
	own, err := cgroupsOf("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return err
	}
	for _, cm := range mounts {
		rel, ok := own[cm.key]
		if !ok {
			continue
		}
		src := filepath.Join(cm.mountpoint, strings.TrimPrefix(rel, cm.root))
		if _, err := os.Stat(src); err != nil {
			src = cm.mountpoint
		}
		dst := filepath.Join(m.Destination, filepath.Base(cm.mountpoint))
		mflags := (flags | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC) &^ unix.MS_RELATIME
		switch {
		case cgroupns && cm.key == "":
			b.op(opMount, "cgroup2", dst, "cgroup2", mflags, "", false, 0, fbNone)
		case cgroupns:
			b.op(opMount, "cgroup", dst, "cgroup", mflags, cm.key, false, 0, fbNone)
		default:
			b.op(opMount, src, dst, "", uintptr(unix.MS_BIND|unix.MS_REC), "", true, mflags, fbNone)
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		b.op(opRemount, m.Destination, uintptr(unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC), "mode=755")
	}
	return nil
}
