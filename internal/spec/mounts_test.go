package spec

import (
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func userPart(s *specs.Spec) []specs.Mount {
	// Everything after docker's default mounts (which come first).
	for i, m := range s.Mounts {
		switch m.Destination {
		case "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue":
			continue
		}
		if m.Destination == "/dev/shm" && m.Source == "shm" {
			continue
		}
		return s.Mounts[i:]
	}
	return nil
}

func TestUserMounts(t *testing.T) {
	o := baseOpts()
	o.Mounts = []Mount{
		{Type: "bind", Source: "/srv/data/sub", Destination: "/data/sub"},
		{Type: "bind", Source: "/srv/data", Destination: "/data", ReadOnly: true},
		{Type: "volume", Source: "/var/lib/berth/volumes/v/_data", Destination: "/var/lib/db"},
		{Type: "bind", Source: "/srv/shared", Destination: "/mnt", Propagation: "rshared"},
		{Type: "bind", Source: "/srv/one", Destination: "/one", NonRecursive: true},
		{Type: "tmpfs", Destination: "/run", TmpfsOptions: "rw,size=64m,exec"},
		{Type: "tmpfs", Destination: "/tmp/t", TmpfsSize: 16 << 20, TmpfsMode: 0o1777 | os.ModeSticky},
	}
	o.HostsPath, o.HostnamePath, o.ResolvConfPath = "/c/hosts", "/c/hostname", "/c/resolv.conf"
	s := mustGen(t, busyboxImage, o)
	eq(t, "user mounts, by depth (stable)", userPart(s), []specs.Mount{
		{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "ro", "rprivate"}},
		{Destination: "/mnt", Type: "bind", Source: "/srv/shared", Options: []string{"rbind", "rshared"}},
		{Destination: "/one", Type: "bind", Source: "/srv/one", Options: []string{"bind", "rprivate"}},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "rprivate", "rw", "size=64m", "exec"}},
		{Destination: "/data/sub", Type: "bind", Source: "/srv/data/sub", Options: []string{"rbind", "rprivate"}},
		{Destination: "/tmp/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "rprivate", "mode=1777", "size=16m"}},
		{Destination: "/etc/resolv.conf", Type: "bind", Source: "/c/resolv.conf", Options: []string{"rbind", "rprivate"}},
		{Destination: "/etc/hostname", Type: "bind", Source: "/c/hostname", Options: []string{"rbind", "rprivate"}},
		{Destination: "/etc/hosts", Type: "bind", Source: "/c/hosts", Options: []string{"rbind", "rprivate"}},
		{Destination: "/var/lib/db", Type: "bind", Source: "/var/lib/berth/volumes/v/_data", Options: []string{"rbind"}},
	})
	eq(t, "rootfs propagation for a shared mount", s.Linux.RootfsPropagation, "shared")

	o.Mounts = []Mount{{Type: "bind", Source: "/srv/s", Destination: "/s", Propagation: "rslave"}}
	eq(t, "rootfs propagation for a slave mount", mustGen(t, busyboxImage, o).Linux.RootfsPropagation, "rslave")
}

func TestReadonlyRootfsMounts(t *testing.T) {
	o := baseOpts()
	o.ReadonlyRootfs = true
	o.HostsPath = "/c/hosts"
	o.Mounts = []Mount{{Type: "bind", Source: "/srv", Destination: "/srv"}}
	s := mustGen(t, busyboxImage, o)
	eq(t, "/sys", findMount(s, "/sys").Options, []string{"nosuid", "noexec", "nodev", "ro"})
	eq(t, "/sys/fs/cgroup", findMount(s, "/sys/fs/cgroup").Options, []string{"ro", "nosuid", "noexec", "nodev"})
	eq(t, "/proc stays rw", findMount(s, "/proc").Options, []string{"nosuid", "noexec", "nodev"})
	eq(t, "/dev stays rw", findMount(s, "/dev").Options, []string{"nosuid", "strictatime", "mode=755", "size=65536k"})
	eq(t, "/dev/shm stays rw", findMount(s, "/dev/shm").Options, []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"})
	eq(t, "/etc/hosts ro", findMount(s, "/etc/hosts").Options, []string{"rbind", "ro", "rprivate"})
	eq(t, "user bind untouched", findMount(s, "/srv").Options, []string{"rbind", "rprivate"})
	eq(t, "root", s.Root.Readonly, true)

	o.Host.RecursiveReadOnly = true
	eq(t, "rro where supported", findMount(mustGen(t, busyboxImage, o), "/etc/hosts").Options, []string{"rbind", "rro", "rprivate"})
}

func TestDefaultMountOverrides(t *testing.T) {
	o := baseOpts()
	o.ShmSize = 128 << 20
	eq(t, "shm size", findMount(mustGen(t, busyboxImage, o), "/dev/shm").Options, []string{"nosuid", "noexec", "nodev", "mode=1777", "size=134217728"})
	o.ShmSize = 0
	o.Daemon.ShmSize = 1 << 20
	eq(t, "daemon shm size", findMount(mustGen(t, busyboxImage, o), "/dev/shm").Options[4], "size=1048576")

	// A user /dev hides every default /dev/* mount; a user /dev/shm replaces the default.
	o = baseOpts()
	o.Mounts = []Mount{{Type: "bind", Source: "/dev", Destination: "/dev"}}
	s := mustGen(t, busyboxImage, o)
	var dsts []string
	for _, m := range s.Mounts {
		dsts = append(dsts, m.Destination)
	}
	eq(t, "mounts with user /dev", dsts, []string{"/proc", "/sys", "/sys/fs/cgroup", "/dev"})
	o.Mounts = []Mount{{Type: "tmpfs", Destination: "/dev/shm/", TmpfsSize: 1 << 30}}
	eq(t, "user /dev/shm", *findMount(mustGen(t, busyboxImage, o), "/dev/shm"), specs.Mount{
		Destination: "/dev/shm", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "rprivate", "size=1g"}})

	// A user mount on a network file wins over the daemon's file.
	o = baseOpts()
	o.HostsPath = "/c/hosts"
	o.Mounts = []Mount{{Type: "bind", Source: "/my/hosts", Destination: "/etc/hosts", ReadOnly: true}}
	eq(t, "user /etc/hosts", findMount(mustGen(t, busyboxImage, o), "/etc/hosts").Source, "/my/hosts")
}

func TestMountErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    []Mount
		err  string
	}{
		{name: "relative destination", m: []Mount{{Type: "bind", Source: "/a", Destination: "a"}}, err: "invalid mount config: mount destination a not absolute"},
		{name: "root destination", m: []Mount{{Type: "bind", Source: "/a", Destination: "/"}}, err: "invalid specification: destination can't be '/'"},
		{name: "duplicate", m: []Mount{{Type: "bind", Source: "/a", Destination: "/x"}, {Type: "tmpfs", Destination: "/x/"}}, err: "Duplicate mount point: /x"},
		{name: "relative source", m: []Mount{{Type: "bind", Source: "a", Destination: "/x"}}, err: `invalid mount config for type "bind": mount source "a" is not an absolute path`},
		{name: "bad propagation", m: []Mount{{Type: "bind", Source: "/a", Destination: "/x", Propagation: "sideways"}}, err: "invalid propagation mode: sideways"},
		{name: "bad type", m: []Mount{{Type: "nfs", Source: "/a", Destination: "/x"}}, err: `invalid mount config: mount type unknown: "nfs"`},
		{name: "bad tmpfs option", m: []Mount{{Type: "tmpfs", Destination: "/x", TmpfsOptions: "foo=bar"}}, err: `invalid tmpfs option ["foo" "bar"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts()
			o.Mounts = tc.m
			wantErr(t, genErr(t, busyboxImage, o), tc.err)
		})
	}
	o := baseOpts()
	o.ShmSize = -1
	wantErr(t, genErr(t, busyboxImage, o), "SHM size can not be less than 0")
}

func TestMergeTmpfsOptions(t *testing.T) {
	got, err := mergeTmpfsOptions([]string{"noexec", "nosuid", "nodev", "rprivate", "exec", "size=1m", "shared", "size=2m", "defaults", "mode=700"})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "merged", got, []string{"nosuid", "nodev", "exec", "shared", "size=2m", "mode=700"})
	eq(t, "sizes", []string{tmpfsSize(1 << 30), tmpfsSize(3 << 20), tmpfsSize(5 << 10), tmpfsSize(1000)}, []string{"1g", "3m", "5k", "1000"})
}
