package runtimecli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/berth-dev/berth/internal/runtime"
)

func specVersion() string { return specs.Version }

func ptr[T any](v T) *T { return &v }

// defaultSpec is what `spec` writes: runc's default, so bundles made for
// one work with the other.
func defaultSpec(rootless bool) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{
			Terminal: true,
			User:     specs.User{},
			Args:     []string{"sh"},
			Env:      []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:      "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Hostname: "berth",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if rootless {
		s.Linux.Resources = nil
		s.Linux.Namespaces = []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
			{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace}, {Type: specs.UserNamespace},
		}
		uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uid, Size: 1}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: gid, Size: 1}}
		var ms []specs.Mount
		for _, m := range s.Mounts {
			switch m.Destination {
			case "/sys":
				m = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			case "/dev/pts":
				m.Options = []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
			case "/sys/fs/cgroup", "/dev/mqueue":
				if m.Destination == "/dev/mqueue" {
					break
				}
				continue
			}
			ms = append(ms, m)
		}
		s.Mounts = ms
	}
	return s
}

func cmdSpec(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	fs := flag.NewFlagSet("spec", flag.ContinueOnError)
	var bundle string
	var rootless bool
	fs.StringVar(&bundle, "bundle", ".", "bundle directory")
	fs.StringVar(&bundle, "b", ".", "bundle directory")
	fs.BoolVar(&rootless, "rootless", false, "spec for a rootless container")
	if err := parse(fs, args); err != nil {
		return 2, err
	}
	path := filepath.Join(bundle, "config.json")
	if _, err := os.Stat(path); err == nil {
		return 1, fmt.Errorf("spec: %s exists already", path)
	}
	b, _ := json.MarshalIndent(defaultSpec(rootless), "", "\t")
	return 0, os.WriteFile(path, append(b, '\n'), 0o666)
}

func cmdFeatures(ctx context.Context, g *globals, rt *runtime.Runtime, args []string) (int, error) {
	f := features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  runtime.MountOptions(),
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
			Capabilities: runtime.CapabilityNames(),
			Cgroup:       &features.Cgroup{V1: ptr(true), V2: ptr(true), Systemd: ptr(false), SystemdUser: ptr(false)},
			Seccomp: &features.Seccomp{
				Enabled: ptr(true),
				Actions: []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
					"SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"},
				Operators: []string{"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"},
				Archs:     []string{"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"},
			},
			Apparmor: &features.Apparmor{Enabled: ptr(false)},
			Selinux:  &features.Selinux{Enabled: ptr(false)},
		},
		Annotations: map[string]string{"org.opencontainers.runtime-spec.features": "berth"},
	}
	b, _ := json.MarshalIndent(f, "", "    ")
	fmt.Println(string(b))
	return 0, nil
}
