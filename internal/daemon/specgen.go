package daemon

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/spec"
)

var (
	hostOnce sync.Once
	hostInfo spec.Host
)

// probeHost describes the machine once for spec generation.
func probeHost() spec.Host {
	hostOnce.Do(func() {
		var u unix.Utsname
		_ = unix.Uname(&u)
		hostInfo = spec.Host{
			Kernel:     unix.ByteSliceToString(u.Release[:]),
			Arch:       runtime.GOARCH,
			NCPU:       runtime.NumCPU(),
			StatDevice: statDevice,
		}
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
			hostInfo.CgroupV2 = true
		}
		if _, err := os.Stat("/proc/sys/net/ipv6/conf/all/disable_ipv6"); err == nil {
			hostInfo.IPv6 = true
		}
		if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.TrimSpace(string(b)) == "Y" {
			hostInfo.AppArmor = true
		}
		if _, err := os.Stat("/sys/fs/selinux/enforce"); err == nil {
			hostInfo.SELinux = true
		}
		// What the daemon can grant is its bounding set (docker's
		// caps.GetAllCapabilities): here CAP_SYS_RESOURCE may be missing.
		hostInfo.Capabilities = boundingCaps()
	})
	return hostInfo
}

// boundingCaps reads the daemon's capability bounding set; nil (all) if
// /proc cannot tell.
func boundingCaps() []string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
				return spec.CapabilitiesFromMask(m)
			}
		}
	}
	return nil
}

// hostDevices lists the host's device nodes for a --privileged container,
// as runc's devices.HostDevices: /dev walked, skipping the directories a
// container gets its own of. Scanned per start: devices come and go.
func hostDevices() []spec.HostDevice {
	var out []spec.HostDevice
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			p := dir + "/" + e.Name()
			if e.IsDir() {
				switch e.Name() {
				case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				default:
					walk(p)
				}
				continue
			}
			if e.Type()&(os.ModeDevice|os.ModeNamedPipe) == 0 || p == "/dev/console" {
				continue
			}
			if hd, err := lstatDevice(p); err == nil {
				out = append(out, hd)
			}
		}
	}
	walk("/dev")
	return out
}

// statDevice returns the bare errno: spec adds docker's "error gathering
// device information…" prefix.
func statDevice(path string) (spec.HostDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return spec.HostDevice{}, err
	}
	return deviceOf(path, &st)
}

func lstatDevice(path string) (spec.HostDevice, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return spec.HostDevice{}, err
	}
	return deviceOf(path, &st)
}

func deviceOf(path string, st *unix.Stat_t) (spec.HostDevice, error) {
	hd := spec.HostDevice{Path: path, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)), FileMode: os.FileMode(st.Mode & 0o777), UID: st.Uid, GID: st.Gid}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		hd.Type = "c"
	case unix.S_IFBLK:
		hd.Type = "b"
	case unix.S_IFIFO:
		hd.Type = "p"
	default:
		return hd, fmt.Errorf("%s is not a device node: %w", path, errdefs.ErrInvalidArgument)
	}
	return hd, nil
}

// checkSpec generates a container's spec at create time, with placeholders
// for what exists only at start (rootfs, etc files, joined namespaces), so
// that bad options (capabilities, devices, sysctls, security opts) fail the
// create as docker's do, leaving no container behind. Users and groups by
// name are resolved at start, against the rootfs, as docker does.
func (d *Daemon) checkSpec(c *Container, img *image.Image) error {
	o := d.specOptions(c)
	o.Mounts = nil // checked by the volume code at create
	o.User = ""
	o.GroupAdd = nil
	for _, g := range c.HostConfig.GroupAdd {
		if _, err := strconv.Atoi(g); err == nil {
			o.GroupAdd = append(o.GroupAdd, g)
		}
	}
	for _, t := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.PIDNamespace, specs.IPCNamespace, specs.UserNamespace} {
		o.NSPaths[t] = "/proc/self/ns/placeholder"
	}
	_, err := spec.Generate(img.Config.Config, o)
	return err
}

// generateSpec turns a container record into its OCI runtime spec.
func (d *Daemon) generateSpec(c *Container, img *image.Image, rootfs string, nsPaths map[string]string) (*specs.Spec, error) {
	hc := c.HostConfig
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	o := d.specOptions(c)
	o.RootfsPath, o.RootFS = rootfs, root.FS()
	var err2 error
	if o.HostnamePath, o.HostsPath, o.ResolvConfPath, err2 = d.writeEtcFiles(c); err2 != nil {
		return nil, err2
	}
	if err := d.remapEtcFiles(c, o.HostnamePath, o.HostsPath, o.ResolvConfPath); err != nil { // userns.go
		return nil, err
	}
	for t, p := range nsPaths {
		o.NSPaths[specs.LinuxNamespaceType(t)] = p
	}
	o.IPv6 = d.hasIPv6(c)
	if strings.HasPrefix(string(hc.PidMode), "container:") || strings.HasPrefix(string(hc.IpcMode), "container:") {
		for _, m := range []struct {
			mode string
			typ  specs.LinuxNamespaceType
			ns   string
		}{{string(hc.PidMode), specs.PIDNamespace, "pid"}, {string(hc.IpcMode), specs.IPCNamespace, "ipc"}} {
			if ref, ok := strings.CutPrefix(m.mode, "container:"); ok {
				other, err := d.ctrs.get(ref)
				if err != nil {
					return nil, err
				}
				if !other.State.running() {
					return nil, errMsg(errConflict, "container %s is not running", other.ID)
				}
				o.NSPaths[m.typ] = fmt.Sprintf("/proc/%d/ns/%s", other.State.Pid, m.ns)
			}
		}
	}
	return spec.Generate(img.Config.Config, o)
}

// hasIPv6 reports whether one of c's networks, attached by now, gave it an
// IPv6 address.
func (d *Daemon) hasIPv6(c *Container) bool {
	if d.net == nil || !attachesToBridge(c.networkMode()) {
		return false
	}
	for _, ep := range d.net.ContainerEndpoints(context.Background(), c.ID) {
		if ep.IPv6.IsValid() {
			return true
		}
	}
	return false
}

// specOptions maps a container record to spec options, without what only
// exists at start (rootfs, etc files, namespace paths).
func (d *Daemon) specOptions(c *Container) *spec.Options {
	cfg, hc := c.Config, c.HostConfig
	o := &spec.Options{
		ID:            c.ID,
		Entrypoint:    cfg.Entrypoint,
		Cmd:           cfg.Cmd,
		Env:           append(d.linkEnv(c), cfg.Env...),
		WorkingDir:    cfg.WorkingDir,
		User:          cfg.User,
		Hostname:      cfg.Hostname,
		Domainname:    cfg.Domainname,
		Tty:           cfg.Tty,
		StopSignal:    cfg.StopSignal,
		ConsoleSize:   hc.ConsoleSize,
		Annotations:   hc.Annotations,
		Privileged:    hc.Privileged,
		CapAdd:        hc.CapAdd,
		CapDrop:       hc.CapDrop,
		SecurityOpt:   hc.SecurityOpt,
		MaskedPaths:   hc.MaskedPaths,
		ReadonlyPaths: hc.ReadonlyPaths,
		Mounts:        d.specMounts(c), // volumes.go

		ReadonlyRootfs: hc.ReadonlyRootfs,
		GroupAdd:       hc.GroupAdd,
		OomScoreAdj:    hc.OomScoreAdj,
		Sysctls:        hc.Sysctls,
		Init:           hc.Init,
		NetworkMode:    string(hc.NetworkMode),
		IpcMode:        string(hc.IpcMode),
		PidMode:        string(hc.PidMode),
		UTSMode:        string(hc.UTSMode),
		CgroupnsMode:   string(hc.CgroupnsMode),
		UsernsMode:     string(hc.UsernsMode),
		NSPaths:        map[specs.LinuxNamespaceType]string{},
		ShmSize:        hc.ShmSize,
		CgroupParent:   hc.CgroupParent,
		Host:           probeHost(),
		Daemon:         spec.Daemon{CgroupParent: "/berth", InitPath: d.initPath},
		Resources:      resourcesOf(hc.Resources),
	}
	for _, u := range hc.Ulimits {
		o.Ulimits = append(o.Ulimits, spec.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, dev := range hc.Devices {
		o.Devices = append(o.Devices, spec.DeviceMapping{PathOnHost: dev.PathOnHost, PathInContainer: dev.PathInContainer, CgroupPermissions: dev.CgroupPermissions})
	}
	o.DeviceCgroupRules = hc.DeviceCgroupRules
	if hc.Privileged {
		o.Host.Devices = hostDevices()
	}
	d.specRemap(o) // userns.go
	return o
}

func resourcesOf(r container.Resources) spec.Resources {
	out := spec.Resources{
		Memory:             r.Memory,
		MemoryReservation:  r.MemoryReservation,
		MemorySwap:         r.MemorySwap,
		MemorySwappiness:   r.MemorySwappiness,
		OomKillDisable:     r.OomKillDisable,
		NanoCPUs:           r.NanoCPUs,
		CPUShares:          r.CPUShares,
		CPUPeriod:          r.CPUPeriod,
		CPUQuota:           r.CPUQuota,
		CPURealtimePeriod:  r.CPURealtimePeriod,
		CPURealtimeRuntime: r.CPURealtimeRuntime,
		CpusetCpus:         r.CpusetCpus,
		CpusetMems:         r.CpusetMems,
		PidsLimit:          r.PidsLimit,
		BlkioWeight:        r.BlkioWeight,
	}
	for _, w := range r.BlkioWeightDevice {
		out.BlkioWeightDevice = append(out.BlkioWeightDevice, spec.WeightDevice{Path: w.Path, Weight: w.Weight})
	}
	conv := func(in []*blkiodev.ThrottleDevice) []spec.ThrottleDevice {
		var o []spec.ThrottleDevice
		for _, t := range in {
			o = append(o, spec.ThrottleDevice{Path: t.Path, Rate: t.Rate})
		}
		return o
	}
	out.BlkioDeviceReadBps = conv(r.BlkioDeviceReadBps)
	out.BlkioDeviceWriteBps = conv(r.BlkioDeviceWriteBps)
	out.BlkioDeviceReadIOps = conv(r.BlkioDeviceReadIOps)
	out.BlkioDeviceWriteIOps = conv(r.BlkioDeviceWriteIOps)
	return out
}
