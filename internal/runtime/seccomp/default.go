package seccomp

import (
	"fmt"

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
func DefaultProfileFor(caps []string) (*specs.LinuxSeccomp, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	p, err := mobyseccomp.GetDefaultProfile(rs)
	if err != nil {
		return nil, fmt.Errorf("seccomp: render default profile: %w", err)
	}
	return p, nil
}
