package spec

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// goToSeccompArch maps GOARCH to the libseccomp name docker's profile
// filters use (includes/excludes "arches") and to the profile's archMap key.
var goToSeccompArch = map[string]struct {
	native string
	arch   specs.Arch
}{
	"386":         {"x86", specs.ArchX86},
	"amd64":       {"amd64", specs.ArchX86_64},
	"arm":         {"arm", specs.ArchARM},
	"arm64":       {"arm64", specs.ArchAARCH64},
	"loong64":     {"loongarch64", specs.ArchLOONGARCH64},
	"mips64":      {"mips64", specs.ArchMIPS64},
	"mips64le":    {"mipsel64", specs.ArchMIPSEL64},
	"mipsle":      {"mipsel", specs.ArchMIPSEL},
	"ppc64":       {"ppc64", specs.ArchPPC64},
	"ppc64le":     {"ppc64le", specs.ArchPPC64LE},
	"riscv64":     {"riscv64", specs.ArchRISCV64},
	"s390x":       {"s390x", specs.ArchS390X},
	"mips64p32":   {"mips64n32", specs.ArchMIPS64N32},
	"mips64p32le": {"mips3l64n32", specs.ArchMIPSEL64N32},
}

// defaultProfile is docker's default profile; DefaultProfile() builds a new
// value each call, so build it once.
var defaultProfile = sync.OnceValue(seccomp.DefaultProfile)

// seccompCache holds rendered profiles by (profile, arch, kernel, caps).
// Rendering the default profile walks ~400 rules; a run must not pay that.
var seccompCache struct {
	sync.RWMutex
	m map[string]*specs.LinuxSeccomp
}

// maxCachedProfiles bounds the cache against a stream of distinct custom
// profiles; the default profile's few variants never get near it.
const maxCachedProfiles = 256

func (g *gen) seccomp() error {
	o := g.o
	prof := g.sec.seccomp
	if prof == "" {
		prof = o.Daemon.SeccompProfile
	}
	if prof == "unconfined" {
		return nil
	}
	if o.Privileged && g.sec.seccomp == "" {
		// docker: privileged containers run unconfined unless a profile is
		// asked for explicitly on the container.
		return nil
	}
	if o.Host.NoSeccomp {
		if prof != "" && prof != "builtin" {
			return invalidf("seccomp is not enabled in your kernel, cannot run a custom seccomp profile")
		}
		return nil
	}
	var body string
	switch {
	case prof == "" || prof == "builtin":
	case strings.HasPrefix(strings.TrimSpace(prof), "{"):
		body = prof
	default:
		// A path: docker's CLI reads the file; accept one from berth's CLI too.
		read := o.Host.ReadFile
		if read == nil {
			read = os.ReadFile
		}
		b, err := read(prof)
		if err != nil {
			return invalidf("opening seccomp profile (%s) failed: %w", prof, err)
		}
		body = string(b)
	}
	caps := g.s.Process.Capabilities.Bounding
	sc, err := renderCached(body, g.arch(), o.Host.Kernel, caps)
	if err != nil {
		return err
	}
	g.s.Linux.Seccomp = sc
	return nil
}

func renderCached(body, arch, kernel string, caps []string) (*specs.LinuxSeccomp, error) {
	var kb strings.Builder
	kb.Grow(len(body) + len(arch) + len(kernel) + 16*len(caps) + 4)
	kb.WriteString(arch)
	kb.WriteByte(0)
	kb.WriteString(kernelKey(kernel))
	kb.WriteByte(0)
	// Only the bounding set matters, not its order.
	if slices.IsSorted(caps) {
		for _, c := range caps {
			kb.WriteString(c)
			kb.WriteByte(',')
		}
	} else {
		sorted := slices.Sorted(slices.Values(caps))
		for _, c := range sorted {
			kb.WriteString(c)
			kb.WriteByte(',')
		}
	}
	kb.WriteByte(0)
	kb.WriteString(body)
	key := kb.String()

	seccompCache.RLock()
	sc, ok := seccompCache.m[key]
	seccompCache.RUnlock()
	if ok {
		return sc, nil
	}

	var prof *seccomp.Seccomp
	if body == "" {
		prof = defaultProfile()
	} else {
		prof = new(seccomp.Seccomp)
		if err := json.Unmarshal([]byte(body), prof); err != nil {
			return nil, invalidf("Decoding seccomp profile failed: %w", err)
		}
	}
	sc, err := renderSeccomp(prof, arch, kernel, caps)
	if err != nil {
		return nil, err
	}
	seccompCache.Lock()
	if seccompCache.m == nil || len(seccompCache.m) >= maxCachedProfiles {
		seccompCache.m = make(map[string]*specs.LinuxSeccomp)
	}
	seccompCache.m[key] = sc
	seccompCache.Unlock()
	return sc, nil
}

// renderSeccomp turns docker's conditional profile into a runtime-spec one for
// one arch, kernel and capability set. The semantics are those documented for
// moby's profile format:
//   - archMap: the entry for the native arch contributes it and its sub-arches;
//     "architectures" and "archMap" are mutually exclusive.
//   - a rule is dropped when an excludes filter matches: the native arch is in
//     excludes.arches, ANY of excludes.caps is in the bounding set, or the
//     kernel is at least excludes.minKernel;
//   - a rule is kept only when every includes filter matches: the arch is in
//     includes.arches, ALL of includes.caps are in the bounding set, and the
//     kernel is at least includes.minKernel.
//   - the legacy "name" field is a one-element "names".
//
// It never mutates prof (the default profile is shared).
func renderSeccomp(prof *seccomp.Seccomp, goarch, kernel string, caps []string) (*specs.LinuxSeccomp, error) {
	if prof.DefaultAction == "" && len(prof.Syscalls) == 0 {
		return nil, nil
	}
	if len(prof.Architectures) != 0 && len(prof.ArchMap) != 0 {
		return nil, invalidf("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'")
	}
	if len(prof.LinuxSeccomp.Syscalls) != 0 {
		return nil, invalidf("the LinuxSeccomp.Syscalls field should be empty")
	}
	out := prof.LinuxSeccomp // copies the scalar fields
	out.Architectures = slices.Clone(prof.Architectures)
	out.Flags = slices.Clone(prof.Flags)
	out.Syscalls = make([]specs.LinuxSyscall, 0, len(prof.Syscalls))
	a, known := goToSeccompArch[goarch]
	if known {
		for _, m := range prof.ArchMap {
			if m.Arch == a.arch {
				out.Architectures = append(out.Architectures, m.Arch)
				out.Architectures = append(out.Architectures, m.SubArches...)
				break
			}
		}
	}
	native := a.native
	if !known {
		native = goarch
	}
	kv, err := parseKernel(kernel)
	if err != nil {
		return nil, err
	}
	atLeast := func(v *seccomp.KernelVersion) bool {
		return kv.Kernel > v.Kernel || (kv.Kernel == v.Kernel && kv.Major >= v.Major)
	}

next:
	for _, call := range prof.Syscalls {
		sc := call.LinuxSyscall
		//lint:ignore SA1019 docker still accepts old profiles that use "name"
		if call.Name != "" {
			if len(call.Names) != 0 {
				return nil, invalidf("both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'")
			}
			sc.Names = []string{call.Name} //lint:ignore SA1019 see above
		}
		if ex := call.Excludes; ex != nil {
			if slices.Contains(ex.Arches, native) {
				continue next
			}
			for _, c := range ex.Caps {
				if slices.Contains(caps, c) {
					continue next
				}
			}
			if ex.MinKernel != nil && atLeast(ex.MinKernel) {
				continue next
			}
		}
		if in := call.Includes; in != nil {
			if len(in.Arches) > 0 && !slices.Contains(in.Arches, native) {
				continue next
			}
			for _, c := range in.Caps {
				if !slices.Contains(caps, c) {
					continue next
				}
			}
			if in.MinKernel != nil && !atLeast(in.MinKernel) {
				continue next
			}
		}
		out.Syscalls = append(out.Syscalls, sc)
	}
	return &out, nil
}

// parseKernel reads "major.minor" from a release string; empty means a
// kernel new enough for every rule.
func parseKernel(release string) (seccomp.KernelVersion, error) {
	if release == "" {
		return seccomp.KernelVersion{Kernel: 1 << 31}, nil
	}
	maj, rest, _ := strings.Cut(release, ".")
	minor := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = rest[:i]
	}
	k, err1 := strconv.ParseUint(maj, 10, 64)
	m, err2 := strconv.ParseUint(minor, 10, 64)
	if err1 != nil || err2 != nil {
		return seccomp.KernelVersion{}, invalidf("failed to parse kernel version %q", release)
	}
	return seccomp.KernelVersion{Kernel: k, Major: m}, nil
}

// kernelKey reduces a release to what rules can test, so "6.18.0-1-amd64"
// and "6.18.3" share a cache entry.
func kernelKey(release string) string {
	kv, err := parseKernel(release)
	if err != nil {
		return release
	}
	return strconv.FormatUint(kv.Kernel, 10) + "." + strconv.FormatUint(kv.Major, 10)
}

func kernelAtLeast(release string, major, minor uint64) bool {
	kv, err := parseKernel(release)
	if err != nil {
		return true
	}
	return kv.Kernel > major || (kv.Kernel == major && kv.Major >= minor)
}
