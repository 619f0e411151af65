package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func invalid(format string, a ...any) error {
	return fmt.Errorf("config.json: "+format+": %w", append(a, errdefs.ErrInvalidArgument)...)
}

// LoadSpec reads and validates bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	s, _, err := loadSpec(bundle)
	return s, err
}

func loadSpec(bundle string) (*specs.Spec, []byte, error) {
	b, err := readSpec(bundle)
	if err != nil {
		return nil, nil, err
	}
	s, err := ParseSpec(b)
	return s, b, err
}

func readSpec(bundle string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("bundle %s has no config.json: %w", bundle, errdefs.ErrInvalidArgument)
		}
		return nil, err
	}
	return b, nil
}

// ParseSpec decodes a config.json, reporting the offending field of a
// malformed document, then checks what the runtime needs.
func ParseSpec(b []byte) (*specs.Spec, error) {
	if s, ok := fastSpec(b); ok {
		return s, ValidateSpec(s)
	}
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&s); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return nil, invalid("field %q: expected %s, got JSON %s", te.Field, te.Type, te.Value)
		case errors.As(err, &se):
			line := 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
			return nil, invalid("line %d: %v", line, se)
		}
		return nil, invalid("%v", err)
	}
	return &s, ValidateSpec(&s)
}

var nsTypes = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// ValidateSpec checks the fields the runtime relies on.
func ValidateSpec(s *specs.Spec) error {
	if s.Version == "" {
		return invalid("ociVersion: missing")
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return invalid("ociVersion: %q is not a 1.x version", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return invalid("root.path: missing")
	}
	if s.Process == nil {
		return invalid("process: missing")
	}
	if err := validateProcess(s.Process, "process."); err != nil {
		return err
	}
	if s.Linux == nil {
		return invalid("linux: missing (only Linux containers are supported)")
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for i, ns := range s.Linux.Namespaces {
		if _, ok := nsTypes[ns.Type]; !ok {
			return invalid("linux.namespaces[%d].type: unknown namespace type %q", i, ns.Type)
		}
		if seen[ns.Type] {
			return invalid("linux.namespaces[%d]: namespace %q listed twice", i, ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" {
			if !filepath.IsAbs(ns.Path) {
				return invalid("linux.namespaces[%d].path: %q is not absolute", i, ns.Path)
			}
			var st unix.Statfs_t
			if err := unix.Statfs(ns.Path, &st); err != nil {
				return invalid("linux.namespaces[%d].path: %v", i, err)
			}
			if st.Type != unix.NSFS_MAGIC && st.Type != unix.PROC_SUPER_MAGIC {
				return invalid("linux.namespaces[%d].path: %s is not a namespace file", i, ns.Path)
			}
		}
	}
	hasUserNS := seen[specs.UserNamespace]
	if (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) && !hasUserNS {
		return invalid("linux.uidMappings: set without a user namespace")
	}
	if hasUserNS {
		for _, ns := range s.Linux.Namespaces {
			if ns.Type == specs.UserNamespace && ns.Path == "" && len(s.Linux.UIDMappings) == 0 {
				return invalid("linux.uidMappings: a new user namespace needs uid and gid mappings")
			}
		}
	}
	if s.Linux.Sysctl != nil && !seen[specs.NetworkNamespace] {
		for k := range s.Linux.Sysctl {
			if strings.HasPrefix(k, "net.") {
				return invalid("linux.sysctl: %s needs its own network namespace", k)
			}
		}
	}
	if s.Hostname != "" && !seen[specs.UTSNamespace] {
		return invalid("hostname: setting it needs a new uts namespace")
	}
	for i, m := range s.Mounts {
		if m.Destination == "" {
			return invalid("mounts[%d].destination: missing", i)
		}
		if !filepath.IsAbs(m.Destination) {
			return invalid("mounts[%d].destination: %q is not absolute", i, m.Destination)
		}
	}
	if s.Linux.RootfsPropagation != "" {
		if _, ok := propagationFlags[s.Linux.RootfsPropagation]; !ok {
			return invalid("linux.rootfsPropagation: unknown value %q", s.Linux.RootfsPropagation)
		}
	}
	for i, d := range s.Linux.Devices {
		if !filepath.IsAbs(d.Path) {
			return invalid("linux.devices[%d].path: %q is not absolute", i, d.Path)
		}
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return invalid("linux.devices[%d].type: %q is not one of c, b, u, p", i, d.Type)
		}
	}
	if s.Linux.IntelRdt != nil {
		return fmt.Errorf("config.json: linux.intelRdt: not supported: %w", errdefs.ErrNotImplemented)
	}
	return nil
}

func validateProcess(p *specs.Process, field string) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return invalid("%sargs: missing", field)
	}
	if p.Cwd == "" {
		return invalid("%scwd: missing", field)
	}
	if !filepath.IsAbs(p.Cwd) {
		return invalid("%scwd: %q is not absolute", field, p.Cwd)
	}
	for i, rl := range p.Rlimits {
		if _, ok := rlimitNames[rl.Type]; !ok {
			return invalid("%srlimits[%d].type: unknown rlimit %q", field, i, rl.Type)
		}
		if rl.Soft > rl.Hard {
			return invalid("%srlimits[%d]: soft limit %d above hard limit %d", field, i, rl.Soft, rl.Hard)
		}
	}
	if p.Capabilities != nil {
		for _, set := range [][]string{p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted, p.Capabilities.Inheritable, p.Capabilities.Ambient} {
			for _, c := range set {
				if _, ok := capByName(c); !ok {
					return invalid("%scapabilities: unknown capability %q", field, c)
				}
			}
		}
	}
	if p.ConsoleSize != nil && !p.Terminal {
		return invalid("%sconsoleSize: set without terminal", field)
	}
	return nil
}

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// checkRlimits fails early, with the reason, when the spec asks for a hard
// limit above ours and we cannot raise it (no CAP_SYS_RESOURCE, as on
// machines where even root lacks it).
func checkRlimits(p *specs.Process, field string) error {
	if len(p.Rlimits) == 0 || hasCap(capSysResource) {
		return nil
	}
	for i, rl := range p.Rlimits {
		var cur unix.Rlimit
		if err := unix.Getrlimit(rlimitNames[rl.Type], &cur); err != nil {
			continue
		}
		if rl.Hard > cur.Max {
			return fmt.Errorf("%srlimits[%d]: %s hard limit %d is above this process's hard limit %d and raising it needs CAP_SYS_RESOURCE, which the runtime lacks: %w",
				field, i, rl.Type, rl.Hard, cur.Max, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
