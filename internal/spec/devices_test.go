package spec

import (
	"io/fs"
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeStat stands in for the daemon's lstat of host device nodes.
func fakeStat(path string) (HostDevice, error) {
	switch path {
	case "/dev/sda":
		return HostDevice{Path: path, Type: "b", Major: 8, Minor: 0, FileMode: 0o660, GID: 6}, nil
	case "/dev/fuse":
		return HostDevice{Path: path, Type: "c", Major: 10, Minor: 229, FileMode: 0o666}, nil
	case "/dev/ttyUSB0":
		return HostDevice{Path: path, Type: "c", Major: 188, Minor: 0, FileMode: 0o660, GID: 20}, nil
	case "/etc/passwd":
		return HostDevice{Path: path, Type: "", FileMode: 0o644}, nil
	}
	return HostDevice{}, &fs.PathError{Op: "stat", Path: path, Err: os.ErrNotExist}
}

func TestDevices(t *testing.T) {
	o := baseOpts()
	o.Host.StatDevice = fakeStat
	o.Devices = []DeviceMapping{
		{PathOnHost: "/dev/fuse"},
		{PathOnHost: "/dev/ttyUSB0", PathInContainer: "/dev/modem", CgroupPermissions: "rw"},
	}
	o.DeviceCgroupRules = []string{"c 189:* rmw", "a *:* r", "b 8:0 w"}
	s := mustGen(t, busyboxImage, o)
	m666, m660 := os.FileMode(0o666), os.FileMode(0o660)
	zero, twenty := uint32(0), uint32(20)
	eq(t, "devices", s.Linux.Devices, []specs.LinuxDevice{
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &m666, UID: &zero, GID: &zero},
		{Path: "/dev/modem", Type: "c", Major: 188, Minor: 0, FileMode: &m660, UID: &zero, GID: &twenty},
	})
	rules := s.Linux.Resources.Devices
	var tail []string
	for _, r := range rules[len(defaultDeviceRules()):] {
		tail = append(tail, ruleString(r))
	}
	eq(t, "added rules", tail, []string{
		"allow c 10:229 rwm",
		"allow c 188:0 rw",
		"allow c 189:* rmw",
		"allow a *:* r",
		"allow b 8:0 w",
	})
}

func TestDeviceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(o *Options)
		err  string
	}{
		{name: "missing device", set: func(o *Options) { o.Devices = []DeviceMapping{{PathOnHost: "/dev/nope"}} },
			err: `error gathering device information while adding custom device "/dev/nope": stat /dev/nope: file does not exist`},
		{name: "not a device", set: func(o *Options) { o.Devices = []DeviceMapping{{PathOnHost: "/etc/passwd"}} },
			err: `error gathering device information while adding custom device "/etc/passwd": not a device node`},
		{name: "bad mode", set: func(o *Options) { o.Devices = []DeviceMapping{{PathOnHost: "/dev/fuse", CgroupPermissions: "rwx"}} },
			err: "invalid device mode: rwx"},
		{name: "repeated mode", set: func(o *Options) { o.Devices = []DeviceMapping{{PathOnHost: "/dev/fuse", CgroupPermissions: "rr"}} },
			err: "invalid device mode: rr"},
		{name: "relative container path", set: func(o *Options) {
			o.Devices = []DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "dev/fuse"}}
		}, err: "dev/fuse is not an absolute path"},
		{name: "no stat func", set: func(o *Options) { o.Host.StatDevice = nil; o.Devices = []DeviceMapping{{PathOnHost: "/dev/fuse"}} },
			err: `error gathering device information while adding custom device "/dev/fuse": host device lookup is not available`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts()
			o.Host.StatDevice = fakeStat
			tc.set(o)
			wantErr(t, genErr(t, busyboxImage, o), tc.err)
		})
	}
}

func TestParseDeviceCgroupRule(t *testing.T) {
	good := map[string]string{
		"c 1:3 rwm":   "allow c 1:3 rwm",
		"b *:* m":     "allow b *:* m",
		"a *:* rwm":   "allow a *:* rwm",
		"c 136:* rw":  "allow c 136:* rw",
		"c 10:200 wm": "allow c 10:200 wm",
	}
	for in, want := range good {
		r, err := parseDeviceCgroupRule(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		eq(t, in, ruleString(r), want)
	}
	for _, in := range []string{"", "c", "c 1:3", "x 1:3 rwm", "c 1 rwm", "c 1:3 rwx", "c 1:3 rwmr", "c a:3 rwm", "c 1:3  rwm", "c -1:3 rwm", " c 1:3 rwm", "c 1:3 ", "c :3 r"} {
		_, err := parseDeviceCgroupRule(in)
		wantErr(t, err, "invalid device cgroup rule format: '"+in+"'")
	}
}
