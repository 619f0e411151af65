package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Capabilities are set with capset(2) and prctl(2) directly: five syscalls,
// no library needed.

var capNames = []string{
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

const capSysResource = 24

func capByName(name string) (int, bool) {
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for i, c := range capNames {
		if c == n {
			return i, true
		}
	}
	return 0, false
}

// lastCap is the highest capability the kernel knows: the last one
// PR_CAPBSET_READ accepts (past it the kernel answers EINVAL). Two prctl
// calls on current kernels, cheaper than reading the procfs file at every
// create.
func lastCap() int {
	read := func(c int) error { return unix.Prctl(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0) }
	c := len(capNames) - 1
	for ; c > 0; c-- { // an older kernel knows fewer
		err := read(c)
		if err == nil {
			break
		}
		if err != unix.EINVAL {
			return lastCapProc()
		}
	}
	for c < 63 && read(c+1) == nil { // a newer one more
		c++
	}
	return c
}

func lastCapProc() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return len(capNames) - 1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return len(capNames) - 1
	}
	return n
}

// hasCap reports whether the calling process has cap in its effective set.
func hasCap(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0
}

type capSet [2]uint32

func makeSet(names []string, last int) capSet {
	var s capSet
	for _, n := range names {
		if c, ok := capByName(n); ok && c <= last {
			s[c/32] |= 1 << (uint(c) % 32)
		}
	}
	return s
}

func (s capSet) has(c int) bool { return s[c/32]&(1<<(uint(c)%32)) != 0 }

// applyBounding drops every capability not in the bounding set. Must run
// while the thread still has CAP_SETPCAP, i.e. before the uid change.
func applyBounding(c *specs.LinuxCapabilities) error {
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	last := lastCap()
	b := makeSet(c.Bounding, last)
	for i := 0; i <= last; i++ {
		if b.has(i) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d from the bounding set: %w", i, err)
		}
	}
	return nil
}

// applyCaps sets effective, permitted and inheritable, then the ambient
// set. The inheritable set stays empty unless the spec names capabilities
// in it (CVE-2022-29162: a non-empty inheritable set lets file capabilities
// of a binary in the image grant privileges the container was not given).
func applyCaps(c *specs.LinuxCapabilities) error {
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	last := lastCap()
	e, p, in := makeSet(c.Effective, last), makeSet(c.Permitted, last), makeSet(c.Inheritable, last)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := 0; i < 2; i++ {
		// effective must be a subset of permitted
		data[i] = unix.CapUserData{Effective: e[i] & p[i], Permitted: p[i], Inheritable: in[i]}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for _, n := range c.Ambient {
		ci, ok := capByName(n)
		if !ok || ci > last {
			continue
		}
		// The kernel allows an ambient capability only when it is both
		// permitted and inheritable; like runc, skip the others.
		if !p.has(ci) || !in.has(ci) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(ci), 0, 0); err != nil {
			return fmt.Errorf("raise ambient capability %s: %w", n, err)
		}
	}
	return nil
}

// CapabilityNames lists the capabilities the runtime knows (features).
func CapabilityNames() []string { return append([]string{}, capNames...) }
