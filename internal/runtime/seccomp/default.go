package seccomp

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// DockerDefaultCaps is docker's default capability set; DefaultProfile
// renders the default profile for it.
var DockerDefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// DefaultProfile is docker's default seccomp profile for docker's default
// capabilities.
func DefaultProfile() *specs.LinuxSeccomp {
	p, err := DefaultProfileFor(DockerDefaultCaps)
	if err != nil {
		// Only a failure to read the kernel version gets here.
		panic(err)
	}
	return p
}

// DefaultProfileFor renders docker's default profile (moby/profiles/seccomp)
// for a container whose bounding set is caps: rules included or excluded by
// capability, architecture and kernel version are resolved as dockerd does,
// so e.g. CAP_SYS_ADMIN unlocks mount and unrestricted clone.
//
// Renderings are cached per capability set (the kernel version, the other
// input, does not change under a running process); each call returns a copy
// the caller may modify.
func DefaultProfileFor(caps []string) (*specs.LinuxSeccomp, error) {
	key := strings.Join(caps, ",")
	rendered.Lock()
	p := rendered.m[key]
	rendered.Unlock()
	if p == nil {
		rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
		var err error
		p, err = mobyseccomp.GetDefaultProfile(rs)
		if err != nil {
			return nil, fmt.Errorf("seccomp: render default profile: %w", err)
		}
		rendered.Lock()
		if len(rendered.m) >= 64 {
			clear(rendered.m)
		}
		rendered.m[key] = p
		rendered.Unlock()
	}
	return cloneProfile(p), nil
}

var rendered = struct {
	sync.Mutex
	m map[string]*specs.LinuxSeccomp
}{m: map[string]*specs.LinuxSeccomp{}}

func cloneProfile(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	c := *p
	c.DefaultErrnoRet = cloneUint(p.DefaultErrnoRet)
	c.Architectures = slices.Clone(p.Architectures)
	c.Flags = slices.Clone(p.Flags)
	c.Syscalls = make([]specs.LinuxSyscall, len(p.Syscalls))
	for i, sc := range p.Syscalls {
		sc.Names = slices.Clone(sc.Names)
		sc.Args = slices.Clone(sc.Args)
		sc.ErrnoRet = cloneUint(sc.ErrnoRet)
		c.Syscalls[i] = sc
	}
	return &c
}

func cloneUint(v *uint) *uint {
	if v == nil {
		return nil
	}
	x := *v
	return &x
}
