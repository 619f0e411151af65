package spec

import (
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

// defaultDeviceRules is what a docker container's device cgroup ends up
// allowing: docker's config.json rules (deny all; null, zero, full, random,
// urandom, tty, console) merged with the rules runc adds on its own (mknod of
// any node, ptmx, /dev/pts/*, tun). berth writes them all into the spec so
// that no runtime-side defaults are needed. docker's explicit "deny c 10:229"
// (fuse) is dropped: it follows deny-all and runc's "c *:* m" re-allows its
// mknod anyway, so it changes nothing.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Access: "m"},                                    // mknod any char device
		{Allow: true, Type: "b", Access: "m"},                                    // mknod any block device
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},    // /dev/null
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},    // /dev/zero
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rwm"},    // /dev/full
		{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"},    // /dev/tty
		{Allow: true, Type: "c", Major: i64(5), Minor: i64(1), Access: "rwm"},    // /dev/console
		{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"},    // /dev/ptmx
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"},    // /dev/random
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"},    // /dev/urandom
		{Allow: true, Type: "c", Major: i64(136), Access: "rwm"},                 // /dev/pts/*
		{Allow: true, Type: "c", Major: i64(10), Minor: i64(200), Access: "rwm"}, // /dev/net/tun
	}
}

// devices sets linux.devices and the device cgroup (moby's WithDevices).
func (g *gen) devices() error {
	o := g.o
	res := g.resourcesObj()
	if o.Privileged {
		devs := make([]specs.LinuxDevice, 0, len(o.Host.Devices)+len(o.Devices))
		for _, d := range o.Host.Devices {
			devs = append(devs, linuxDevice(d, d.Path))
		}
		// Extra mappings still apply under another name; same-path ones
		// already exist and custom permissions are moot.
		for _, m := range o.Devices {
			in := m.PathInContainer
			if in == "" || in == m.PathOnHost {
				continue
			}
			d, err := g.statDevice(m.PathOnHost)
			if err != nil {
				return err
			}
			devs = append(devs, linuxDevice(d, in))
		}
		g.s.Linux.Devices = devs
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		return nil
	}

	rules := defaultDeviceRules()
	var devs []specs.LinuxDevice
	for _, m := range o.Devices {
		perms := m.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		if !validPerms(perms) {
			return invalidf("invalid device mode: %s", perms)
		}
		in := m.PathInContainer
		if in == "" {
			in = m.PathOnHost
		}
		if !strings.HasPrefix(in, "/") {
			return invalidf("%s is not an absolute path", in)
		}
		d, err := g.statDevice(m.PathOnHost)
		if err != nil {
			return err
		}
		ld := linuxDevice(d, in)
		devs = append(devs, ld)
		rules = append(rules, specs.LinuxDeviceCgroup{
			Allow: true, Type: ld.Type, Major: i64(ld.Major), Minor: i64(ld.Minor), Access: perms,
		})
	}
	for _, r := range o.DeviceCgroupRules {
		rule, err := parseDeviceCgroupRule(r)
		if err != nil {
			return err
		}
		rules = append(rules, rule)
	}
	g.s.Linux.Devices = devs
	res.Devices = rules
	return nil
}

func (g *gen) statDevice(path string) (HostDevice, error) {
	if g.o.Host.StatDevice == nil {
		return HostDevice{}, invalidf("error gathering device information while adding custom device %q: %w", path, errNoStat)
	}
	d, err := g.o.Host.StatDevice(path)
	if err != nil {
		return HostDevice{}, invalidf("error gathering device information while adding custom device %q: %w", path, err)
	}
	if d.Type != "c" && d.Type != "b" && d.Type != "p" {
		return HostDevice{}, invalidf("error gathering device information while adding custom device %q: not a device node", path)
	}
	return d, nil
}

func linuxDevice(d HostDevice, path string) specs.LinuxDevice {
	mode := d.FileMode
	uid, gid := d.UID, d.GID
	return specs.LinuxDevice{
		Path: path, Type: d.Type, Major: d.Major, Minor: d.Minor,
		FileMode: &mode, UID: &uid, GID: &gid,
	}
}

func validPerms(p string) bool {
	if p == "" || len(p) > 3 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c != 'r' && c != 'w' && c != 'm' || strings.IndexByte(p[:i], c) >= 0 {
			return false
		}
	}
	return true
}

// parseDeviceCgroupRule parses "<a|b|c> <major|*>:<minor|*> <rwm>", docker's
// --device-cgroup-rule grammar, without a regexp on the run path.
func parseDeviceCgroupRule(rule string) (specs.LinuxDeviceCgroup, error) {
	bad := func() (specs.LinuxDeviceCgroup, error) {
		return specs.LinuxDeviceCgroup{}, invalidf("invalid device cgroup rule format: '%s'", rule)
	}
	typ, rest, ok := strings.Cut(rule, " ")
	if !ok || (typ != "a" && typ != "b" && typ != "c") {
		return bad()
	}
	nums, access, ok := strings.Cut(rest, " ")
	if !ok || len(access) == 0 || len(access) > 3 || strings.Trim(access, "rwm") != "" {
		return bad()
	}
	majS, minS, ok := strings.Cut(nums, ":")
	if !ok {
		return bad()
	}
	num := func(s string) (*int64, bool) {
		if s == "*" {
			return nil, true
		}
		if s == "" || strings.Trim(s, "0123456789") != "" {
			return nil, false
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, false
		}
		return &v, true
	}
	maj, ok1 := num(majS)
	minor, ok2 := num(minS)
	if !ok1 || !ok2 {
		return bad()
	}
	return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: maj, Minor: minor, Access: access}, nil
}
