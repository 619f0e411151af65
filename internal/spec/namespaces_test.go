package spec

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestNamespaces(t *testing.T) {
	paths := map[specs.LinuxNamespaceType]string{
		specs.NetworkNamespace: "/proc/42/ns/net",
		specs.IPCNamespace:     "/proc/42/ns/ipc",
		specs.PIDNamespace:     "/proc/42/ns/pid",
		specs.UserNamespace:    "/proc/42/ns/user",
	}
	for _, tc := range []struct {
		name  string
		set   func(o *Options)
		want  []string
		check func(t *testing.T, s *specs.Spec)
		err   string
	}{
		{name: "default", want: []string{"mount", "network", "uts", "pid", "ipc"}},
		{name: "net host", set: func(o *Options) { o.NetworkMode = "host" }, want: []string{"mount", "uts", "pid", "ipc"},
			check: func(t *testing.T, s *specs.Spec) {
				if _, ok := s.Linux.Sysctl["net.ipv4.ping_group_range"]; ok {
					t.Fatal("network sysctls set in the host's netns")
				}
			}},
		{name: "net none", set: func(o *Options) { o.NetworkMode = "none" }, want: []string{"mount", "network", "uts", "pid", "ipc"}},
		{name: "net bridge, daemon netns", set: func(o *Options) {
			o.NetworkMode = "bridge"
			o.NSPaths = map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "/run/berth/netns/x"}
		}, want: []string{"mount", "network=/run/berth/netns/x", "uts", "pid", "ipc"}},
		{name: "net container", set: func(o *Options) { o.NetworkMode = "container:abc"; o.NSPaths = paths },
			want: []string{"mount", "network=/proc/42/ns/net", "uts", "pid", "ipc"},
			check: func(t *testing.T, s *specs.Spec) {
				if len(s.Linux.Sysctl) != 0 {
					t.Fatalf("sysctls %v set in another container's netns", s.Linux.Sysctl)
				}
			}},
		{name: "net container unresolved", set: func(o *Options) { o.NetworkMode = "container:abc" },
			err: "cannot join network namespace of container abc: no namespace path resolved"},
		{name: "ipc host", set: func(o *Options) { o.IpcMode = "host" }, want: []string{"mount", "network", "uts", "pid"}},
		{name: "ipc shareable", set: func(o *Options) { o.IpcMode = "shareable" }, want: []string{"mount", "network", "uts", "pid", "ipc"}},
		{name: "ipc none", set: func(o *Options) { o.IpcMode = "none" }, want: []string{"mount", "network", "uts", "pid", "ipc"},
			check: func(t *testing.T, s *specs.Spec) {
				if findMount(s, "/dev/shm") != nil {
					t.Fatal("ipc none: /dev/shm mounted")
				}
			}},
		{name: "ipc container", set: func(o *Options) {
			o.IpcMode = "container:abc"
			o.NSPaths = only(paths, specs.IPCNamespace)
			o.ShmPath = "/var/lib/berth/c/abc/shm"
		},
			want: []string{"mount", "network", "uts", "pid", "ipc=/proc/42/ns/ipc"},
			check: func(t *testing.T, s *specs.Spec) {
				eq(t, "shm", *findMount(s, "/dev/shm"), specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/var/lib/berth/c/abc/shm", Options: []string{"rbind", "rprivate"}})
			}},
		{name: "ipc daemon default", set: func(o *Options) { o.Daemon.IpcMode = "host" }, want: []string{"mount", "network", "uts", "pid"}},
		{name: "ipc invalid", set: func(o *Options) { o.IpcMode = "bogus" }, err: "invalid IPC mode: bogus"},
		{name: "pid host", set: func(o *Options) { o.PidMode = "host" }, want: []string{"mount", "network", "uts", "ipc"}},
		{name: "pid container", set: func(o *Options) { o.PidMode = "container:abc"; o.NSPaths = only(paths, specs.PIDNamespace) },
			want: []string{"mount", "network", "uts", "pid=/proc/42/ns/pid", "ipc"}},
		{name: "pid invalid", set: func(o *Options) { o.PidMode = "private" }, err: "invalid PID mode: private"},
		{name: "uts host", set: func(o *Options) { o.UTSMode = "host" }, want: []string{"mount", "network", "pid", "ipc"},
			check: func(t *testing.T, s *specs.Spec) { eq(t, "hostname", s.Hostname, "") }},
		{name: "uts invalid", set: func(o *Options) { o.UTSMode = "container:x" }, err: "invalid UTS mode: container:x"},
		{name: "cgroupns private on v1", set: func(o *Options) { o.CgroupnsMode = "private" }, want: []string{"mount", "network", "uts", "pid", "ipc", "cgroup"}},
		{name: "cgroupns host on v2", set: func(o *Options) { o.Host.CgroupV2 = true; o.CgroupnsMode = "host" }, want: []string{"mount", "network", "uts", "pid", "ipc"}},
		{name: "cgroupns daemon default", set: func(o *Options) { o.Daemon.CgroupnsMode = "private" }, want: []string{"mount", "network", "uts", "pid", "ipc", "cgroup"}},
		{name: "cgroupns invalid", set: func(o *Options) { o.CgroupnsMode = "shared" }, err: "invalid cgroup namespace mode: shared"},
		{name: "userns remap", set: func(o *Options) {
			o.Daemon.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			o.Daemon.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		}, want: []string{"mount", "network", "uts", "pid", "ipc", "user"},
			check: func(t *testing.T, s *specs.Spec) {
				eq(t, "uid map", s.Linux.UIDMappings, []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}})
				eq(t, "gid map", s.Linux.GIDMappings, []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}})
				if _, ok := s.Linux.Sysctl["net.ipv4.ping_group_range"]; ok {
					t.Fatal("ping_group_range cannot be set in a user namespace")
				}
				eq(t, "cgroup mount writable", findMount(s, "/sys/fs/cgroup").Options, []string{"nosuid", "noexec", "nodev"})
			}},
		{name: "userns remap joins the other container's userns", set: func(o *Options) {
			o.Daemon.UIDMappings = []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}
			o.PidMode = "container:abc"
			o.NSPaths = only(paths, specs.PIDNamespace, specs.UserNamespace)
		}, want: []string{"mount", "network", "uts", "pid=/proc/42/ns/pid", "ipc", "user=/proc/42/ns/user"}},
		{name: "userns host opt-out", set: func(o *Options) {
			o.Daemon.UIDMappings = []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}
			o.UsernsMode = "host"
			o.Privileged = true
		}, want: []string{"mount", "network", "uts", "pid", "ipc"}},
		{name: "userns + privileged", set: func(o *Options) {
			o.Daemon.UIDMappings = []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}
			o.Privileged = true
		}, err: "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode"},
		{name: "userns + net host", set: func(o *Options) {
			o.Daemon.UIDMappings = []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}
			o.NetworkMode = "host"
		}, err: "cannot share the host's network namespace when user namespaces are enabled"},
		{name: "userns + pid host", set: func(o *Options) {
			o.Daemon.UIDMappings = []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}
			o.PidMode = "host"
		}, err: "cannot share the host PID namespace when user namespaces are enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts()
			if tc.set != nil {
				tc.set(o)
			}
			if tc.err != "" {
				wantErr(t, genErr(t, busyboxImage, o), tc.err)
				return
			}
			s := mustGen(t, busyboxImage, o)
			eq(t, "namespaces", nsTypes(s), tc.want)
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func TestSysctls(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(o *Options)
		want map[string]string
		err  string
	}{
		{name: "ipc and net allowed", set: func(o *Options) {
			o.Sysctls = map[string]string{"kernel.shmmax": "1", "kernel.msgmax": "2", "fs.mqueue.msg_max": "3", "net.core.somaxconn": "4", "net.ipv4.ping_group_range": "1 1"}
		}, want: map[string]string{"kernel.shmmax": "1", "kernel.msgmax": "2", "fs.mqueue.msg_max": "3", "net.core.somaxconn": "4",
			"net.ipv4.ping_group_range": "1 1", "net.ipv4.ip_unprivileged_port_start": "0"}},
		{name: "old kernel: no ip_unprivileged_port_start", set: func(o *Options) { o.Host.Kernel = "4.9.0" },
			want: map[string]string{"net.ipv4.ping_group_range": "0 2147483647"}},
		{name: "not namespaced", set: func(o *Options) { o.Sysctls = map[string]string{"kernel.panic": "1"} }, err: "sysctl kernel.panic is not allowed"},
		{name: "vm", set: func(o *Options) { o.Sysctls = map[string]string{"vm.swappiness": "1"} }, err: "sysctl vm.swappiness is not allowed"},
		{name: "net with host netns", set: func(o *Options) { o.NetworkMode = "host"; o.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"} },
			err: "sysctl net.ipv4.ip_forward is not allowed in the host's or another container's network namespace"},
		{name: "ipc with host ipc", set: func(o *Options) { o.IpcMode = "host"; o.Sysctls = map[string]string{"kernel.sem": "1"} },
			err: "sysctl kernel.sem is not allowed in the host's IPC namespace"},
		{name: "domainname with host uts", set: func(o *Options) { o.UTSMode = "host"; o.Sysctls = map[string]string{"kernel.domainname": "x"} },
			err: "sysctl kernel.domainname is not allowed in the host's UTS namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts()
			tc.set(o)
			if tc.err != "" {
				wantErr(t, genErr(t, busyboxImage, o), tc.err)
				return
			}
			eq(t, "sysctl", mustGen(t, busyboxImage, o).Linux.Sysctl, tc.want)
		})
	}
}

// only keeps the paths of the given types, as the daemon resolves just the
// namespaces the container joins.
func only(m map[specs.LinuxNamespaceType]string, types ...specs.LinuxNamespaceType) map[specs.LinuxNamespaceType]string {
	out := map[specs.LinuxNamespaceType]string{}
	for _, t := range types {
		out[t] = m[t]
	}
	return out
}
