package spec

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCapabilities(t *testing.T) {
	def := DefaultCapabilities()
	minus := func(drop ...string) []string {
		var out []string
		for _, c := range def {
			if !slices.Contains(drop, c) {
				out = append(out, c)
			}
		}
		return out
	}
	withoutResource := slices.DeleteFunc(slices.Clone(allCapabilities), func(c string) bool { return c == "CAP_SYS_RESOURCE" })
	for _, tc := range []struct {
		name       string
		add, drop  []string
		privileged bool
		avail      []string
		want       []string
		err        string
	}{
		{name: "default", want: def},
		{name: "add with prefix", add: []string{"CAP_SYS_ADMIN"}, want: append(slices.Clone(def), "CAP_SYS_ADMIN")},
		{name: "add without prefix, lower case", add: []string{"sys_ptrace", "Net_Admin"}, want: append(slices.Clone(def), "CAP_SYS_PTRACE", "CAP_NET_ADMIN")},
		{name: "add one already present: no duplicate", add: []string{"chown"}, want: def},
		{name: "drop", drop: []string{"net_raw", "CAP_MKNOD"}, want: minus("CAP_NET_RAW", "CAP_MKNOD")},
		{name: "drop then add same", drop: []string{"chown"}, add: []string{"chown"}, want: append(minus("CAP_CHOWN"), "CAP_CHOWN")},
		{name: "drop ALL", drop: []string{"ALL"}, want: []string{}},
		{name: "drop all (lower) + add", drop: []string{"all"}, add: []string{"net_bind_service"}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "add ALL", add: []string{"ALL"}, want: allCapabilities},
		{name: "add ALL drop one", add: []string{"ALL"}, drop: []string{"sys_admin"}, want: slices.DeleteFunc(slices.Clone(allCapabilities), func(c string) bool { return c == "CAP_SYS_ADMIN" })},
		{name: "privileged: all", privileged: true, drop: []string{"chown"}, want: allCapabilities},
		{name: "privileged: what the daemon has", privileged: true, avail: withoutResource, want: withoutResource},
		{name: "unknown", add: []string{"foo"}, err: `invalid CapAdd: unknown capability: "CAP_FOO"`},
		{name: "unknown drop", drop: []string{"CAP_BAR"}, err: `invalid CapDrop: unknown capability: "CAP_BAR"`},
		{name: "unavailable", add: []string{"sys_resource"}, avail: withoutResource, err: `invalid CapAdd: capability not supported by your kernel or not available in the current environment: "CAP_SYS_RESOURCE"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts()
			o.CapAdd, o.CapDrop, o.Privileged = tc.add, tc.drop, tc.privileged
			o.Host.Capabilities = tc.avail
			if tc.err != "" {
				wantErr(t, genErr(t, busyboxImage, o), tc.err)
				return
			}
			c := mustGen(t, busyboxImage, o).Process.Capabilities
			eq(t, "bounding", c.Bounding, tc.want)
			eq(t, "effective", c.Effective, tc.want)
			eq(t, "permitted", c.Permitted, tc.want)
			if c.Inheritable != nil || c.Ambient != nil {
				t.Fatalf("inheritable %v ambient %v: want empty (CVE-2022-29162)", c.Inheritable, c.Ambient)
			}
		})
	}
}

func TestCapsNotShared(t *testing.T) {
	a := mustGen(t, busyboxImage, baseOpts())
	a.Process.Capabilities.Bounding[0] = "CAP_MUTATED"
	b := mustGen(t, busyboxImage, baseOpts())
	if b.Process.Capabilities.Bounding[0] != "CAP_CHOWN" || DefaultCapabilities()[0] != "CAP_CHOWN" {
		t.Fatal("mutating one spec's caps changed another's")
	}
}

func TestPrivileged(t *testing.T) {
	o := baseOpts()
	o.Privileged = true
	o.Host.Devices = []HostDevice{
		{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0, FileMode: 0o660, GID: 6},
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: 0o666},
	}
	o.Host.StatDevice = fakeStat
	o.Devices = []DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse"}, {PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda"}}
	s := mustGen(t, busyboxImage, o)
	eq(t, "caps", s.Process.Capabilities.Bounding, allCapabilities)
	var paths []string
	for _, d := range s.Linux.Devices {
		paths = append(paths, d.Path)
	}
	eq(t, "devices", paths, []string{"/dev/sda", "/dev/fuse", "/dev/xvda"})
	eq(t, "device cgroup", s.Linux.Resources.Devices, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}})
	if s.Linux.Seccomp != nil {
		t.Fatal("privileged: seccomp must be off")
	}
	eq(t, "masked", s.Linux.MaskedPaths, []string(nil))
	eq(t, "readonly", s.Linux.ReadonlyPaths, []string(nil))
	eq(t, "/sys writable", findMount(s, "/sys").Options, []string{"nosuid", "noexec", "nodev"})
	eq(t, "cgroup writable", findMount(s, "/sys/fs/cgroup").Options, []string{"nosuid", "noexec", "nodev"})
	eq(t, "cgroupns host on v1", nsTypes(s), []string{"mount", "network", "uts", "pid", "ipc"})

	o.Host.CgroupV2 = true
	eq(t, "cgroupns private on v2", nsTypes(mustGen(t, busyboxImage, o)), []string{"mount", "network", "uts", "pid", "ipc", "cgroup"})

	// An explicit profile still applies under --privileged (docker).
	o.SecurityOpt = []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["reboot"],"action":"SCMP_ACT_ERRNO"}]}`}
	if mustGen(t, busyboxImage, o).Linux.Seccomp == nil {
		t.Fatal("privileged with explicit seccomp profile: profile dropped")
	}
}

func TestMaskedPaths(t *testing.T) {
	o := baseOpts()
	o.SecurityOpt = []string{"systempaths=unconfined"}
	s := mustGen(t, busyboxImage, o)
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Fatalf("systempaths=unconfined: %v %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	o = baseOpts()
	o.MaskedPaths, o.ReadonlyPaths = []string{}, []string{}
	s = mustGen(t, busyboxImage, o)
	eq(t, "CLI form: empty lists", [][]string{s.Linux.MaskedPaths, s.Linux.ReadonlyPaths}, [][]string{{}, {}})
	o = baseOpts()
	o.MaskedPaths = []string{"/proc/x"}
	o.Host.ExtraMaskedPaths = []string{"/sys/devices/system/cpu/cpu0/thermal_throttle"}
	s = mustGen(t, busyboxImage, o)
	eq(t, "explicit", s.Linux.MaskedPaths, []string{"/proc/x"})
	o.MaskedPaths = nil
	s = mustGen(t, busyboxImage, o)
	eq(t, "extra", s.Linux.MaskedPaths[len(s.Linux.MaskedPaths)-1], "/sys/devices/system/cpu/cpu0/thermal_throttle")
}

func TestSecurityOptErrors(t *testing.T) {
	for _, tc := range []struct {
		opt, err string
	}{
		{"bogus", `invalid --security-opt 1: "bogus"`},
		{"foo=bar", `invalid --security-opt 2: "foo=bar"`},
		{"no-new-privileges=maybe", `invalid --security-opt 2: "no-new-privileges=maybe"`},
		{"systempaths=confined", `invalid --security-opt 2: "systempaths=confined"`},
		{"apparmor=docker-default", "AppArmor is not enabled on this host: cannot apply --security-opt apparmor=docker-default"},
		{"label=type:svirt_t", "SELinux is not enabled on this host: cannot apply --security-opt label=type:svirt_t"},
		{"label:user:x", "SELinux is not enabled on this host: cannot apply --security-opt label=user:x"},
	} {
		t.Run(tc.opt, func(t *testing.T) {
			o := baseOpts()
			o.SecurityOpt = []string{tc.opt}
			wantErr(t, genErr(t, busyboxImage, o), tc.err)
		})
	}
}

func TestAppArmorSELinux(t *testing.T) {
	// Unconfined needs no LSM: accepted where there is none.
	o := baseOpts()
	o.SecurityOpt = []string{"apparmor=unconfined", "label=disable", "label:disable"}
	s := mustGen(t, busyboxImage, o)
	eq(t, "no LSM: profile", s.Process.ApparmorProfile, "")
	eq(t, "no LSM: label", s.Process.SelinuxLabel, "")

	o = baseOpts()
	o.Host.AppArmor = true
	o.Daemon.AppArmorProfile = "berth-default"
	eq(t, "default profile", mustGen(t, busyboxImage, o).Process.ApparmorProfile, "berth-default")
	o.SecurityOpt = []string{"apparmor=custom"}
	eq(t, "explicit", mustGen(t, busyboxImage, o).Process.ApparmorProfile, "custom")
	o.SecurityOpt = nil
	o.Privileged = true
	eq(t, "privileged", mustGen(t, busyboxImage, o).Process.ApparmorProfile, "unconfined")

	o = baseOpts()
	o.Host.SELinux = true
	o.SELinuxLevel = "s0:c1,c2"
	s = mustGen(t, busyboxImage, o)
	eq(t, "process label", s.Process.SelinuxLabel, "system_u:system_r:container_t:s0:c1,c2")
	eq(t, "mount label", s.Linux.MountLabel, "system_u:object_r:container_file_t:s0:c1,c2")
	o.SecurityOpt = []string{"label=type:spc_t", "label=level:s0:c9,c10"}
	eq(t, "overrides", mustGen(t, busyboxImage, o).Process.SelinuxLabel, "system_u:system_r:spc_t:s0:c9,c10")
	o.SecurityOpt = []string{"label=disable"}
	eq(t, "disable", mustGen(t, busyboxImage, o).Process.SelinuxLabel, "")
	o.SecurityOpt = []string{"label=bogus:x"}
	wantErr(t, genErr(t, busyboxImage, o), `bad label option "bogus:x", valid options 'disable' or 'user, role, level, type, filetype' followed by ':' and a value`)
}
