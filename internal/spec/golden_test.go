package spec

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const testID = "4f1c3a9e2b7d4c1f8a6e5d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a"

// busybox's /etc/passwd and /etc/group, as in 127.0.0.1:5000/busybox:latest.
var busyboxFS = fstest.MapFS{
	"etc/passwd": {Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
	"etc/group":  {Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
}

var busyboxImage = ocispec.ImageConfig{
	Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	Cmd: []string{"sh"},
}

// thisHost is the test machine as the daemon would describe it: cgroup v1,
// kernel 6.18, amd64, 2 CPUs, no LSMs.
func thisHost() Host {
	return Host{Kernel: "6.18.0-1-amd64", Arch: "amd64", NCPU: 2, Cpus: "0-1", Mems: "0", HugepageSizes: []string{"2MB", "1GB"}}
}

func baseOpts() *Options {
	return &Options{ID: testID, RootFS: busyboxFS, Host: thisHost()}
}

func mustGen(t testing.TB, img ocispec.ImageConfig, o *Options) *specs.Spec {
	t.Helper()
	s, err := Generate(img, o)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s
}

func genErr(t *testing.T, img ocispec.ImageConfig, o *Options) error {
	t.Helper()
	_, err := Generate(img, o)
	if err == nil {
		t.Fatalf("Generate: expected an error")
	}
	return err
}

func wantErr(t *testing.T, err error, msg string) {
	t.Helper()
	if err == nil || err.Error() != msg {
		t.Fatalf("error = %v, want %q", err, msg)
	}
	if !errdefs.IsInvalidArgument(err) && !errdefs.IsNotImplemented(err) {
		t.Fatalf("error %q is not classified (errdefs)", err)
	}
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Fatalf("%s:\n got  %s\n want %s", what, gj, wj)
	}
}

func findMount(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func nsTypes(s *specs.Spec) []string {
	var out []string
	for _, n := range s.Linux.Namespaces {
		if n.Path != "" {
			out = append(out, string(n.Type)+"="+n.Path)
		} else {
			out = append(out, string(n.Type))
		}
	}
	return out
}

// TestGoldenDockerRunBusybox: `docker run busybox` as docker 28 generates it
// (config.json under /run/docker/containerd/…/<id>/), field by field.
func TestGoldenDockerRunBusybox(t *testing.T) {
	s := mustGen(t, busyboxImage, baseOpts())

	eq(t, "args", s.Process.Args, []string{"sh"})
	eq(t, "env", s.Process.Env, []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME=4f1c3a9e2b7d",
	})
	eq(t, "cwd", s.Process.Cwd, "/")
	eq(t, "user", s.Process.User, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}})
	eq(t, "terminal", s.Process.Terminal, false)
	eq(t, "hostname", s.Hostname, "4f1c3a9e2b7d")
	eq(t, "noNewPrivileges", s.Process.NoNewPrivileges, false)
	eq(t, "oomScoreAdj", *s.Process.OOMScoreAdj, 0)
	eq(t, "rlimits", s.Process.Rlimits, []specs.POSIXRlimit(nil))

	dockerCaps := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
	eq(t, "caps", s.Process.Capabilities, &specs.LinuxCapabilities{
		Bounding: dockerCaps, Effective: dockerCaps, Permitted: dockerCaps,
	})

	eq(t, "mounts", s.Mounts, []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
	})
	eq(t, "maskedPaths", s.Linux.MaskedPaths, []string{
		"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
		"/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
	})
	eq(t, "readonlyPaths", s.Linux.ReadonlyPaths, []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"})
	eq(t, "namespaces (cgroup v1: host cgroupns)", nsTypes(s), []string{"mount", "network", "uts", "pid", "ipc"})
	eq(t, "devices", s.Linux.Devices, []specs.LinuxDevice(nil))

	// The device cgroup docker + runc end up with.
	var rules []string
	for _, r := range s.Linux.Resources.Devices {
		rules = append(rules, ruleString(r))
	}
	eq(t, "device rules", rules, []string{
		"deny a *:* rwm",
		"allow c *:* m", "allow b *:* m",
		"allow c 1:3 rwm", "allow c 1:5 rwm", "allow c 1:7 rwm",
		"allow c 5:0 rwm", "allow c 5:1 rwm", "allow c 5:2 rwm",
		"allow c 1:8 rwm", "allow c 1:9 rwm",
		"allow c 136:* rwm", "allow c 10:200 rwm",
	})
	eq(t, "sysctls", s.Linux.Sysctl, map[string]string{
		"net.ipv4.ping_group_range":           "0 2147483647",
		"net.ipv4.ip_unprivileged_port_start": "0",
	})
	eq(t, "memory", s.Linux.Resources.Memory, &specs.LinuxMemory{DisableOOMKiller: new(bool)})
	eq(t, "cpu", s.Linux.Resources.CPU, (*specs.LinuxCPU)(nil))
	eq(t, "pids", s.Linux.Resources.Pids, (*specs.LinuxPids)(nil))
	eq(t, "cgroupsPath", s.Linux.CgroupsPath, "/berth/"+testID)
	eq(t, "root", s.Root, &specs.Root{Path: "rootfs"})
	if s.Hooks != nil {
		t.Fatalf("hooks = %+v, want none", s.Hooks)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Fatalf("seccomp = %+v, want docker's default profile", s.Linux.Seccomp)
	}
	eq(t, "seccomp arches", s.Linux.Seccomp.Architectures, []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32})
	eq(t, "apparmor", s.Process.ApparmorProfile, "")
	eq(t, "selinux", s.Process.SelinuxLabel, "")
	eq(t, "stop signal", s.Annotations[AnnotationStopSignal], "SIGTERM")

	// The spec must survive a JSON round trip unchanged (what the runtime reads).
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(&back)
	if string(b) != string(b2) {
		t.Fatalf("spec does not round-trip through JSON")
	}
}

func TestGoldenCgroupV2(t *testing.T) {
	o := baseOpts()
	o.Host.CgroupV2 = true
	s := mustGen(t, busyboxImage, o)
	eq(t, "namespaces (cgroup v2: private cgroupns)", nsTypes(s), []string{"mount", "network", "uts", "pid", "ipc", "cgroup"})
}

func ruleString(r specs.LinuxDeviceCgroup) string {
	num := func(p *int64) string {
		if p == nil {
			return "*"
		}
		return itoa(*p)
	}
	typ := r.Type
	if typ == "" {
		typ = "a"
	}
	verb := "deny"
	if r.Allow {
		verb = "allow"
	}
	return verb + " " + typ + " " + num(r.Major) + ":" + num(r.Minor) + " " + r.Access
}

func itoa(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestNilOptions(t *testing.T) {
	s, err := Generate(ocispec.ImageConfig{Cmd: []string{"true"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "args", s.Process.Args, []string{"true"})
	eq(t, "cgroupsPath", s.Linux.CgroupsPath, "/berth")
}

func TestErrorsAreClassified(t *testing.T) {
	o := baseOpts()
	o.User = "nosuchuser"
	err := genErr(t, busyboxImage, o)
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("%v: not invalid argument", err)
	}
	o = baseOpts()
	o.SecurityOpt = []string{"apparmor=foo"}
	err = genErr(t, busyboxImage, o)
	if !errdefs.IsNotImplemented(err) || !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("%v: not 'not implemented'", err)
	}
	if strings.Contains(err.Error(), "not implemented:") {
		t.Fatalf("class leaked into message: %v", err)
	}
}

// TestMatchesRecordedDockerd compares with the config.json dockerd 20.10
// wrote on this machine for `docker run -d busybox sleep 30` (testdata; the
// container ID replaced by "ID", its directory by /c/ID, seccomp removed).
// Fields docker changed since 20.10 are left to the golden test above:
// masked paths (28.x masks more), device rules (berth writes runc's implicit
// rules out), resources (20.10 wrote zero shares and weight).
func TestMatchesRecordedDockerd(t *testing.T) {
	b, err := os.ReadFile("testdata/dockerd-20.10-run-busybox.json")
	if err != nil {
		t.Fatal(err)
	}
	var docker specs.Spec
	if err := json.Unmarshal(b, &docker); err != nil {
		t.Fatal(err)
	}
	o := baseOpts()
	o.ID = "ID"
	o.Hostname = docker.Hostname
	o.Cmd = []string{"sleep", "30"}
	o.Daemon.CgroupParent = "/docker"
	o.ResolvConfPath, o.HostnamePath, o.HostsPath = "/c/ID/resolv.conf", "/c/ID/hostname", "/c/ID/hosts"
	s := mustGen(t, busyboxImage, o)
	eq(t, "process.user", s.Process.User, docker.Process.User)
	eq(t, "process.args", s.Process.Args, docker.Process.Args)
	eq(t, "process.env", s.Process.Env, docker.Process.Env)
	eq(t, "process.cwd", s.Process.Cwd, docker.Process.Cwd)
	eq(t, "process.capabilities", s.Process.Capabilities, docker.Process.Capabilities)
	eq(t, "process.oomScoreAdj", s.Process.OOMScoreAdj, docker.Process.OOMScoreAdj)
	eq(t, "hostname", s.Hostname, docker.Hostname)
	eq(t, "mounts", s.Mounts, docker.Mounts)
	eq(t, "sysctl", s.Linux.Sysctl, docker.Linux.Sysctl)
	eq(t, "namespaces", s.Linux.Namespaces, docker.Linux.Namespaces)
	eq(t, "readonlyPaths", s.Linux.ReadonlyPaths, docker.Linux.ReadonlyPaths)
	eq(t, "cgroupsPath", s.Linux.CgroupsPath, docker.Linux.CgroupsPath)
	eq(t, "memory", s.Linux.Resources.Memory, docker.Linux.Resources.Memory)
	for _, p := range docker.Linux.MaskedPaths {
		if !slices.Contains(s.Linux.MaskedPaths, p) {
			t.Fatalf("dockerd 20.10 masks %s, berth does not", p)
		}
	}
	// Every device docker's rules allow, berth's allow too.
	for _, r := range docker.Linux.Resources.Devices {
		if r.Allow && !slices.ContainsFunc(s.Linux.Resources.Devices, func(x specs.LinuxDeviceCgroup) bool {
			return reflect.DeepEqual(x, r)
		}) {
			t.Fatalf("dockerd allows %s, berth does not", ruleString(r))
		}
	}
}

// TestMatchesRecordedDockerdFlags: the same against dockerd 20.10 for
//
//	docker run -d --cap-add NET_ADMIN --cap-drop MKNOD --read-only
//	  --tmpfs /run:rw,size=64m,exec -v /tmp/bx:/data:ro -v /tmp/bx2:/mnt/deep/x
//	  --memory 64m --memory-reservation 32m --cpus 1.5 --cpu-shares 512
//	  --pids-limit 100 --ulimit nofile=1024:2048 --sysctl net.core.somaxconn=1024
//	  --security-opt no-new-privileges --group-add 123 --user 1000:1000
//	  --hostname h1 --domainname example.org -e A=1 -w /tmp --device /dev/fuse
//	  --device-cgroup-rule 'c 42:* rm' --oom-score-adj 100 --shm-size 128m -t
//	  busybox sleep 30
//
// Differences by design or by docker version: docker ≥ 24 (moby#45511) sets
// effective and permitted for non-root users too (20.10 set bounding only);
// "*" in a device rule is nil in current moby, -1 in 20.10.
func TestMatchesRecordedDockerdFlags(t *testing.T) {
	b, err := os.ReadFile("testdata/dockerd-20.10-run-busybox-flags.json")
	if err != nil {
		t.Fatal(err)
	}
	var docker specs.Spec
	if err := json.Unmarshal(b, &docker); err != nil {
		t.Fatal(err)
	}
	o := baseOpts()
	o.ID = "ID"
	o.Daemon.CgroupParent = "/docker"
	o.ResolvConfPath, o.HostnamePath, o.HostsPath = "/c/ID/resolv.conf", "/c/ID/hostname", "/c/ID/hosts"
	o.Cmd = []string{"sleep", "30"}
	o.CapAdd, o.CapDrop = []string{"NET_ADMIN"}, []string{"MKNOD"}
	o.ReadonlyRootfs = true
	o.Mounts = []Mount{
		{Type: "bind", Source: "/tmp/bx", Destination: "/data", ReadOnly: true},
		{Type: "bind", Source: "/tmp/bx2", Destination: "/mnt/deep/x"},
		{Type: "tmpfs", Destination: "/run", TmpfsOptions: "rw,size=64m,exec"},
	}
	o.Resources = Resources{Memory: 64 << 20, MemoryReservation: 32 << 20, NanoCPUs: 1.5e9, CPUShares: 512, PidsLimit: p64(100)}
	o.Ulimits = []Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}
	o.Sysctls = map[string]string{"net.core.somaxconn": "1024"}
	o.SecurityOpt = []string{"no-new-privileges"}
	o.GroupAdd = []string{"123"}
	o.User = "1000:1000"
	o.Hostname, o.Domainname = "h1", "example.org"
	o.Env = []string{"A=1"}
	o.WorkingDir = "/tmp"
	o.Devices = []DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"}}
	o.Host.StatDevice = func(string) (HostDevice, error) {
		return HostDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: 0o600}, nil
	}
	o.DeviceCgroupRules = []string{"c 42:* rm"}
	o.OomScoreAdj = 100
	o.ShmSize = 128 << 20
	o.Tty = true
	s := mustGen(t, busyboxImage, o)

	eq(t, "process.terminal", s.Process.Terminal, docker.Process.Terminal)
	eq(t, "process.user", s.Process.User, docker.Process.User)
	eq(t, "process.args", s.Process.Args, docker.Process.Args)
	eq(t, "process.env", s.Process.Env, docker.Process.Env)
	eq(t, "process.cwd", s.Process.Cwd, docker.Process.Cwd)
	eq(t, "process.capabilities.bounding", s.Process.Capabilities.Bounding, docker.Process.Capabilities.Bounding)
	eq(t, "process.rlimits", s.Process.Rlimits, docker.Process.Rlimits)
	eq(t, "process.noNewPrivileges", s.Process.NoNewPrivileges, docker.Process.NoNewPrivileges)
	eq(t, "process.oomScoreAdj", s.Process.OOMScoreAdj, docker.Process.OOMScoreAdj)
	eq(t, "root", s.Root, docker.Root)
	eq(t, "hostname", s.Hostname, docker.Hostname)
	eq(t, "mounts", s.Mounts, docker.Mounts)
	eq(t, "sysctl", s.Linux.Sysctl, docker.Linux.Sysctl)
	eq(t, "namespaces", s.Linux.Namespaces, docker.Linux.Namespaces)
	eq(t, "devices", s.Linux.Devices, docker.Linux.Devices)
	eq(t, "memory", s.Linux.Resources.Memory, docker.Linux.Resources.Memory)
	eq(t, "cpu", s.Linux.Resources.CPU, docker.Linux.Resources.CPU)
	eq(t, "pids", s.Linux.Resources.Pids, docker.Linux.Resources.Pids)
	var got, want []string
	for _, r := range s.Linux.Resources.Devices[len(defaultDeviceRules()):] {
		got = append(got, ruleString(r))
	}
	for _, r := range docker.Linux.Resources.Devices[8:] {
		if r.Minor != nil && *r.Minor == -1 {
			r.Minor = nil
		}
		want = append(want, ruleString(r))
	}
	eq(t, "added device rules", got, want)
}
