package runtime

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fastSpec must decode exactly what encoding/json decodes, or give up.
func TestFastSpecMatchesEncodingJSON(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	un := func(v uint) *uint { return &v }
	n := func(v int) *int { return &v }
	fm := os.FileMode(0o620)
	w := uint16(300)
	yes := true
	rich := testSpec("sh", "-c", "true")
	rich.Process.Terminal = true
	rich.Process.ConsoleSize = &specs.Box{Height: 24, Width: 80}
	rich.Process.User = specs.User{UID: 1, GID: 2, Umask: ptrU32(0o22), AdditionalGids: []uint32{3, 4}}
	rich.Process.OOMScoreAdj = n(-17)
	rich.Process.NoNewPrivileges = true
	rich.Process.ApparmorProfile, rich.Process.SelinuxLabel = "prof", "label"
	rich.Process.Capabilities.Ambient = []string{}
	rich.Process.Rlimits = append(rich.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_CORE", Hard: ^uint64(0), Soft: 1 << 60})
	rich.Domainname = "d"
	rich.Annotations = map[string]string{"a": "b", "c": ""}
	rich.Hooks = &specs.Hooks{
		//lint:ignore SA1019 prestart is deprecated but still decoded
		Prestart:        []specs.Hook{{Path: "/p", Args: []string{"p", "x"}, Env: []string{"A=1"}, Timeout: n(5)}},
		CreateRuntime:   []specs.Hook{{Path: "/cr"}},
		CreateContainer: []specs.Hook{},
		StartContainer:  []specs.Hook{{Path: "/sc"}},
		Poststart:       []specs.Hook{{Path: "/ps"}},
		Poststop:        []specs.Hook{{Path: "/pst", Timeout: n(0)}},
	}
	rich.Mounts = append(rich.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/y", Options: []string{}})
	l := rich.Linux
	l.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	l.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	l.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	l.CgroupsPath = "/x/y"
	l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"})
	l.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &fm, UID: ptrU32(0), GID: ptrU32(5)}}
	l.Resources = &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: i64(1), Minor: i64(-1), Access: "r"}},
		Memory:  &specs.LinuxMemory{Limit: i64(1 << 30), Reservation: i64(0), Swap: i64(-1), Swappiness: u64(10), DisableOOMKiller: &yes},
		CPU:     &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0-1", Mems: "0", RealtimeRuntime: i64(0), RealtimePeriod: u64(0)},
		Pids:    &specs.LinuxPids{Limit: i64(100)},
		BlockIO: &specs.LinuxBlockIO{Weight: &w},
		Unified: map[string]string{"memory.high": "max"},
	}
	l.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, DefaultErrnoRet: un(38),
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		ListenerPath:  "/l", ListenerMetadata: "m",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow, ErrnoRet: un(1),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, ValueTwo: 1, Op: specs.OpMaskedEqual}}},
		},
	}
	l.RootfsPropagation, l.MountLabel = "rslave", "ml"
	l.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: -5, Nanosecs: 7}}

	docs := map[string][]byte{}
	for name, s := range map[string]*specs.Spec{"default": testSpec("true"), "rich": rich} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		docs[name] = b
	}
	docs["empty arrays"] = []byte(`{"ociVersion":"1.0.2","process":{"args":[],"env":[],"cwd":"/","user":{"uid":0,"gid":0}},"root":{"path":"r"},"mounts":[],"linux":{"namespaces":[],"maskedPaths":[],"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","architectures":[],"flags":[],"syscalls":[]}},"annotations":{}}`)
	for name, b := range docs {
		got, ok := fastSpec(b)
		if !ok {
			t.Errorf("%s: fastSpec gave up", name)
			continue
		}
		var want specs.Spec
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, &want) {
			g, _ := json.Marshal(got)
			t.Errorf("%s: fastSpec differs:\n got %s\nwant %s", name, g, b)
		}
	}
	// what it does not know exactly goes to encoding/json
	for _, b := range []string{
		`{"ociVersion":"1.0.2","Hostname":"case"}`,
		`{"ociVersion":"1.0.2","process":null}`,
		`{"ociVersion":"1.0.2","process":{"user":{"uid":-1}}}`,
		`{"ociVersion":"1.0.2","process":{"user":{"uid":4294967296}}}`,
		`{"ociVersion":"1.0.2","linux":{"resources":{"blockIO":{"weightDevice":[]}}}}`,
		`{"ociVersion":"1.0.2","linux":{"intelRdt":{}}}`,
		`{"ociVersion":"1.0.2","process":{"rlimits":[{"type":"RLIMIT_NOFILE","hard":1.5,"soft":1}]}}`,
		`{"ociVersion":"1.0.2"} trailing`,
	} {
		if _, ok := fastSpec([]byte(b)); ok {
			t.Errorf("fastSpec accepted %s", b)
		}
	}
}
