package spec

import (
	"fmt"
	"testing"
	"testing/fstest"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/entry", "-x"}, Cmd: []string{"default", "cmd"}}
	noEntry := ocispec.ImageConfig{Cmd: []string{"sh"}}
	for _, tc := range []struct {
		name       string
		img        ocispec.ImageConfig
		entrypoint []string
		cmd        []string
		want       []string
		err        string
	}{
		{name: "image only", img: img, want: []string{"/entry", "-x", "default", "cmd"}},
		{name: "cmd overrides image cmd, keeps entrypoint", img: img, cmd: []string{"a"}, want: []string{"/entry", "-x", "a"}},
		{name: "entrypoint drops image cmd", img: img, entrypoint: []string{"/other"}, want: []string{"/other"}},
		{name: "entrypoint and cmd", img: img, entrypoint: []string{"/other"}, cmd: []string{"b"}, want: []string{"/other", "b"}},
		{name: `--entrypoint "" clears entrypoint and image cmd`, img: img, entrypoint: []string{""}, err: "no command specified"},
		{name: `--entrypoint "" with cmd`, img: img, entrypoint: []string{""}, cmd: []string{"echo", "hi"}, want: []string{"echo", "hi"}},
		{name: "API empty entrypoint: none, image cmd kept", img: img, entrypoint: []string{}, want: []string{"default", "cmd"}},
		{name: "no entrypoint image", img: noEntry, want: []string{"sh"}},
		{name: "no entrypoint image, cmd", img: noEntry, cmd: []string{"ls", "-l"}, want: []string{"ls", "-l"}},
		{name: "nothing at all", img: ocispec.ImageConfig{}, err: "no command specified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts()
			o.Entrypoint, o.Cmd = tc.entrypoint, tc.cmd
			if tc.err != "" {
				wantErr(t, genErr(t, tc.img, o), tc.err)
				return
			}
			eq(t, "args", mustGen(t, tc.img, o).Process.Args, tc.want)
		})
	}
}

func TestEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		imgEnv   []string
		env      []string
		tty      bool
		hostname string
		want     []string
	}{
		{name: "PATH default when missing", want: []string{DefaultPathEnv, "HOSTNAME=4f1c3a9e2b7d"}},
		{name: "image PATH replaces default in place", imgEnv: []string{"PATH=/x", "A=1"},
			want: []string{"PATH=/x", "HOSTNAME=4f1c3a9e2b7d", "A=1"}},
		{name: "container wins over image; container order first", imgEnv: []string{"A=img", "B=img"}, env: []string{"B=ctr", "C=ctr"},
			want: []string{DefaultPathEnv, "HOSTNAME=4f1c3a9e2b7d", "B=ctr", "C=ctr", "A=img"}},
		{name: "tty adds TERM", tty: true, want: []string{DefaultPathEnv, "HOSTNAME=4f1c3a9e2b7d", "TERM=xterm"}},
		{name: "TERM overridable", tty: true, env: []string{"TERM=dumb"}, want: []string{DefaultPathEnv, "HOSTNAME=4f1c3a9e2b7d", "TERM=dumb"}},
		{name: "explicit hostname", hostname: "web", want: []string{DefaultPathEnv, "HOSTNAME=web"}},
		{name: "bare key unsets", imgEnv: []string{"PATH=/x"}, env: []string{"HOSTNAME"}, want: []string{"PATH=/x"}},
		{name: "empty value kept", env: []string{"E="}, want: []string{DefaultPathEnv, "HOSTNAME=4f1c3a9e2b7d", "E="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts()
			o.Env, o.Tty, o.Hostname = tc.env, tc.tty, tc.hostname
			s := mustGen(t, ocispec.ImageConfig{Env: tc.imgEnv, Cmd: []string{"sh"}}, o)
			eq(t, "env", s.Process.Env, tc.want)
			eq(t, "terminal", s.Process.Terminal, tc.tty)
		})
	}
}

func TestCwdHostnameTerminal(t *testing.T) {
	o := baseOpts()
	s := mustGen(t, ocispec.ImageConfig{Cmd: []string{"sh"}, WorkingDir: "/app"}, o)
	eq(t, "image workdir", s.Process.Cwd, "/app")
	o.WorkingDir = "/srv"
	s = mustGen(t, ocispec.ImageConfig{Cmd: []string{"sh"}, WorkingDir: "/app"}, o)
	eq(t, "container workdir", s.Process.Cwd, "/srv")

	o = baseOpts()
	o.Tty = true
	o.ConsoleSize = [2]uint{40, 120}
	s = mustGen(t, busyboxImage, o)
	eq(t, "console", s.Process.ConsoleSize, &specs.Box{Height: 40, Width: 120})

	o = baseOpts()
	o.Hostname = "h"
	o.Domainname = "example.org"
	s = mustGen(t, busyboxImage, o)
	eq(t, "hostname", s.Hostname, "h")
	eq(t, "domainname sysctl", s.Linux.Sysctl["kernel.domainname"], "example.org")

	o = baseOpts()
	o.Hostname = "x123456789012345678901234567890123456789012345678901234567890123456789"
	wantErr(t, genErr(t, busyboxImage, o), `hostname "x123456789012345678901234567890123456789012345678901234567890123456789" is too long (maximum 64 bytes)`)
}

func TestUser(t *testing.T) {
	appFS := fstest.MapFS{
		"etc/passwd": {Data: []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")},
		"etc/group":  {Data: []byte("root:x:0:\napp:x:1000:\ndocker:x:999:app\nvideo:x:44:app,root\nstaff:x:50:\n")},
	}
	for _, tc := range []struct {
		name     string
		fs       fstest.MapFS
		user     string
		imgUser  string
		groupAdd []string
		want     specs.User
		err      string
	}{
		{name: "default root with supplementary groups", fs: appFS, want: specs.User{AdditionalGids: []uint32{0, 44}}},
		{name: "image USER", fs: appFS, imgUser: "app", want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 999, 44}}},
		{name: "-u overrides image USER", fs: appFS, imgUser: "app", user: "root", want: specs.User{AdditionalGids: []uint32{0, 44}}},
		{name: "name", fs: busyboxFS, user: "nobody", want: specs.User{UID: 65534, GID: 65534, AdditionalGids: []uint32{65534}}},
		{name: "uid known", fs: appFS, user: "1000", want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 999, 44}}},
		{name: "uid unknown", fs: appFS, user: "4242", want: specs.User{UID: 4242, GID: 0, AdditionalGids: []uint32{0}}},
		{name: "uid:gid numeric, no files", fs: nil, user: "1234:5678", want: specs.User{UID: 1234, GID: 5678, AdditionalGids: []uint32{5678}}},
		{name: "uid:gid numeric, files", fs: appFS, user: "1000:50", want: specs.User{UID: 1000, GID: 50, AdditionalGids: []uint32{50}}},
		{name: "name:group", fs: appFS, user: "app:staff", want: specs.User{UID: 1000, GID: 50, AdditionalGids: []uint32{50}}},
		{name: "unknown user", fs: appFS, user: "x", err: "unable to find user x: no matching entries in passwd file"},
		{name: "unknown user, no passwd file", fs: fstest.MapFS{}, user: "x", err: "unable to find user x: no matching entries in passwd file"},
		{name: "unknown group", fs: appFS, user: "app:nogrp", err: "unable to find group nogrp: no matching entries in group file"},
		{name: "uid out of range", fs: nil, user: "4294967296", err: "uids and gids must be in range 0-2147483647"},
		{name: "group-add name and number", fs: appFS, user: "app", groupAdd: []string{"staff"}, want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 999, 44, 50}}},
		{name: "group-add numeric without files", fs: nil, groupAdd: []string{"777"}, want: specs.User{AdditionalGids: []uint32{0, 777}}},
		{name: "group-add unknown", fs: appFS, groupAdd: []string{"nope"}, err: "Unable to find group nope: no matching entries in group file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts()
			o.RootFS = nil
			if tc.fs != nil {
				o.RootFS = tc.fs
			}
			o.User, o.GroupAdd = tc.user, tc.groupAdd
			img := ocispec.ImageConfig{Cmd: []string{"sh"}, User: tc.imgUser}
			if tc.err != "" {
				wantErr(t, genErr(t, img, o), tc.err)
				return
			}
			eq(t, "user", mustGen(t, img, o).Process.User, tc.want)
		})
	}
}

func TestRlimitsOOMNNP(t *testing.T) {
	o := baseOpts()
	o.Ulimits = []Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: -1, Hard: -1}}
	o.Daemon.Ulimits = []Ulimit{{Name: "nofile", Soft: 1, Hard: 1}, {Name: "core", Soft: 0, Hard: 0}}
	o.OomScoreAdj = 500
	o.SecurityOpt = []string{"no-new-privileges"}
	s := mustGen(t, busyboxImage, o)
	eq(t, "rlimits", s.Process.Rlimits, []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048},
		{Type: "RLIMIT_NPROC", Soft: ^uint64(0), Hard: ^uint64(0)},
		{Type: "RLIMIT_CORE", Soft: 0, Hard: 0},
	})
	eq(t, "oom", *s.Process.OOMScoreAdj, 500)
	eq(t, "nnp", s.Process.NoNewPrivileges, true)

	for _, tc := range []struct {
		opt  []string
		nnp  bool
		dnnp bool
	}{
		{opt: []string{"no-new-privileges=true"}, nnp: true},
		{opt: []string{"no-new-privileges:true"}, nnp: true},
		{opt: []string{"no-new-privileges=false"}, dnnp: true, nnp: false},
		{dnnp: true, nnp: true},
	} {
		o := baseOpts()
		o.SecurityOpt, o.Daemon.NoNewPrivileges = tc.opt, tc.dnnp
		eq(t, fmt.Sprintf("nnp %v daemon=%v", tc.opt, tc.dnnp), mustGen(t, busyboxImage, o).Process.NoNewPrivileges, tc.nnp)
	}
}

func TestRlimitErrors(t *testing.T) {
	o := baseOpts()
	o.Ulimits = []Ulimit{{Name: "bogus", Soft: 1, Hard: 1}}
	wantErr(t, genErr(t, busyboxImage, o), "invalid ulimit type: bogus")
	o.Ulimits = []Ulimit{{Name: "nofile", Soft: 10, Hard: 1}}
	wantErr(t, genErr(t, busyboxImage, o), "ulimit soft limit must be less than or equal to hard limit: 10 > 1")
	o = baseOpts()
	o.OomScoreAdj = 1001
	wantErr(t, genErr(t, busyboxImage, o), "Invalid value 1001, range for oom score adj is [-1000, 1000]")
}

func TestInitStopSignalAnnotations(t *testing.T) {
	yes, no := true, false
	o := baseOpts()
	o.Init = &yes
	o.Daemon.InitPath = "/usr/libexec/berth/berth-init"
	o.Mounts = []Mount{{Type: "bind", Source: "/host/dev", Destination: "/dev"}}
	s := mustGen(t, busyboxImage, o)
	eq(t, "args", s.Process.Args, []string{"/dev/init", "--", "sh"})
	eq(t, "last mount is init", s.Mounts[len(s.Mounts)-1], specs.Mount{
		Destination: "/dev/init", Type: "bind", Source: "/usr/libexec/berth/berth-init", Options: []string{"bind", "ro"},
	})

	// Daemon default, overridden per container; no init outside a private pid ns.
	o = baseOpts()
	o.Daemon.Init, o.Daemon.InitPath = true, "/init"
	eq(t, "daemon init", mustGen(t, busyboxImage, o).Process.Args, []string{"/dev/init", "--", "sh"})
	o.Init = &no
	eq(t, "--init=false", mustGen(t, busyboxImage, o).Process.Args, []string{"sh"})
	o.Init = &yes
	o.PidMode = "host"
	s = mustGen(t, busyboxImage, o)
	eq(t, "pid host", s.Process.Args, []string{"sh"})
	if findMount(s, "/dev/init") != nil {
		t.Fatal("init mounted with --pid host")
	}
	o = baseOpts()
	o.Init = &yes
	wantErr(t, genErr(t, busyboxImage, o), "--init requested but the daemon has no init binary")

	o = baseOpts()
	o.Annotations = map[string]string{"a": "b"}
	s = mustGen(t, ocispec.ImageConfig{Cmd: []string{"sh"}, StopSignal: "SIGQUIT"}, o)
	eq(t, "annotations", s.Annotations, map[string]string{"a": "b", AnnotationStopSignal: "SIGQUIT"})
	o.StopSignal = "SIGUSR1"
	eq(t, "stop signal", mustGen(t, ocispec.ImageConfig{Cmd: []string{"sh"}, StopSignal: "SIGQUIT"}, o).Annotations[AnnotationStopSignal], "SIGUSR1")
}

func TestCgroupsPathAndRoot(t *testing.T) {
	o := baseOpts()
	o.RootfsPath = "/var/lib/berth/c/x/rootfs"
	o.ReadonlyRootfs = true
	s := mustGen(t, busyboxImage, o)
	eq(t, "root", s.Root, &specs.Root{Path: "/var/lib/berth/c/x/rootfs", Readonly: true})
	o.Daemon.CgroupParent = "/daemon"
	eq(t, "daemon parent", mustGen(t, busyboxImage, o).Linux.CgroupsPath, "/daemon/"+testID)
	o.CgroupParent = "custom/../../x"
	eq(t, "container parent, cleaned", mustGen(t, busyboxImage, o).Linux.CgroupsPath, "/x/"+testID)
}
