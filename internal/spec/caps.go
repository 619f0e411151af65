package spec

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// allCapabilities lists Linux capabilities in kernel number order (0..40).
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities is docker's default set, in docker's order.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
}

var defaultCaps = DefaultCapabilities()

// CapabilitiesFromMask names the capabilities set in a kernel capability
// mask (e.g. CapBnd of /proc/self/status), in kernel order: the daemon's
// bounding set is what it can grant (Host.Capabilities). Bits this package
// does not know are left out.
func CapabilitiesFromMask(mask uint64) []string {
	out := []string{}
	for i, c := range allCapabilities {
		if mask&(1<<uint(i)) != 0 {
			out = append(out, c)
		}
	}
	return out
}

// available returns the capabilities the daemon can grant, in kernel order.
func (h *Host) available() []string {
	if h.Capabilities == nil {
		return allCapabilities
	}
	out := make([]string, 0, len(h.Capabilities))
	for _, c := range allCapabilities {
		if slices.Contains(h.Capabilities, c) {
			out = append(out, c)
		}
	}
	return out
}

// normalizeCaps upper-cases, adds CAP_, and checks each name (docker's
// NormalizeLegacyCapabilities); "ALL" passes through.
func normalizeCaps(caps []string, avail []string) ([]string, error) {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		c = strings.ToUpper(c)
		if c == "ALL" {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !slices.Contains(allCapabilities, c) {
			return nil, invalidf("unknown capability: %q", c)
		}
		if !slices.Contains(avail, c) {
			return nil, invalidf("capability not supported by your kernel or not available in the current environment: %q", c)
		}
		out = append(out, c)
	}
	return out, nil
}

// tweakCaps is docker's TweakCapabilities: privileged gets everything; ALL in
// CapAdd wins over CapDrop; ALL in CapDrop keeps only CapAdd.
func tweakCaps(adds, drops []string, privileged bool, avail []string) ([]string, error) {
	if privileged {
		return avail, nil
	}
	if len(adds) == 0 && len(drops) == 0 {
		return defaultCaps, nil
	}
	// docker's messages name the field: "invalid CapAdd: unknown capability: …".
	capDrop, err := normalizeCaps(drops, avail)
	if err != nil {
		return nil, fmt.Errorf("invalid CapDrop: %w", err)
	}
	capAdd, err := normalizeCaps(adds, avail)
	if err != nil {
		return nil, fmt.Errorf("invalid CapAdd: %w", err)
	}
	var caps []string
	switch {
	case slices.Contains(capAdd, "ALL"):
		for _, c := range avail {
			if !slices.Contains(capDrop, c) {
				caps = append(caps, c)
			}
		}
	case slices.Contains(capDrop, "ALL"):
		caps = dedupe(capAdd)
	default:
		for _, c := range defaultCaps {
			if !slices.Contains(capDrop, c) {
				caps = append(caps, c)
			}
		}
		caps = dedupe(append(caps, capAdd...))
	}
	if caps == nil {
		caps = []string{}
	}
	return caps, nil
}

func dedupe(in []string) []string {
	out := in[:0:0]
	for _, c := range in {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// capabilities sets bounding = effective = permitted; inheritable and ambient
// stay empty (CVE-2022-29162: an inheritable set leaks caps through exec of
// file-capability binaries).
func (g *gen) capabilities() error {
	caps, err := tweakCaps(g.o.CapAdd, g.o.CapDrop, g.o.Privileged, g.o.Host.available())
	if err != nil {
		return err
	}
	// One clipped copy shared by the three sets: an append by a caller reallocates.
	caps = slices.Clip(slices.Clone(caps))
	g.s.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:  caps,
		Effective: caps,
		Permitted: caps,
	}
	return nil
}
