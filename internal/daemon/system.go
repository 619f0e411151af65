package daemon

import (
	"context"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/api/backend"
	bimage "github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/version"
)

func osRelease() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

func kernelArch() (string, string) {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:])
}

// SystemInfo implements backend.SystemBackend.
func (d *Daemon) SystemInfo(ctx context.Context) (system.Info, error) {
	kernel, arch := kernelArch()
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	host, _ := os.Hostname()
	info := system.Info{
		ID:                 d.daemonID(),
		Driver:             "overlay2",
		DriverStatus:       [][2]string{{"Backing Filesystem", "extfs"}, {"Supports d_type", "true"}},
		MemoryLimit:        true,
		SwapLimit:          true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		OomKillDisable:     true,
		Debug:              d.cfg.Debug,
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      d.cfg.LogDriver,
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      "1",
		KernelVersion:      kernel,
		OperatingSystem:    osRelease(),
		OSType:             "linux",
		Architecture:       arch,
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig: &registry.ServiceConfig{
			InsecureRegistryCIDRs: nil,
			IndexConfigs:          map[string]*registry.IndexInfo{},
			Mirrors:               d.cfg.RegistryMirrors,
		},
		NCPU:            runtime.NumCPU(),
		MemTotal:        int64(si.Totalram) * int64(si.Unit),
		DockerRootDir:   d.cfg.DataRoot,
		Name:            host,
		Labels:          []string{},
		ServerVersion:   version.Version,
		Runtimes:        map[string]system.RuntimeWithStatus{},
		DefaultRuntime:  d.cfg.DefaultRuntime,
		Isolation:       container.IsolationDefault,
		SecurityOptions: []string{"name=seccomp,profile=builtin"},
		Warnings:        []string{},
	}
	if d.remap != nil { // userns.go
		info.SecurityOptions = append(info.SecurityOptions, "name=userns")
	}
	if probeHost().CgroupV2 {
		info.CgroupVersion = "2"
		info.SecurityOptions = append(info.SecurityOptions, "name=cgroupns")
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil {
		info.IPv4Forwarding = strings.TrimSpace(string(b)) == "1"
	}
	info.Plugins.Log = []string{"json-file", "local", "none"}
	info.Plugins.Network = []string{"bridge", "host", "null"}
	info.Warnings = append(info.Warnings, d.networkWarnings()...)
	for _, n := range []string{"berth", "runc", "crun"} {
		if p, _, err := d.runtimeFor(n); err == nil {
			info.Runtimes[n] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: p}}
		}
	}
	for n, r := range d.cfg.Runtimes {
		info.Runtimes[n] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: r.Path, Args: r.Args}}
	}
	for _, c := range d.ctrs.list() {
		c.mu.Lock()
		info.Containers++
		switch c.State.Status {
		case container.StateRunning:
			info.ContainersRunning++
		case container.StatePaused:
			info.ContainersPaused++
		default:
			info.ContainersStopped++
		}
		c.mu.Unlock()
	}
	if imgs, err := d.images.List(ctx, bimage.ListOptions{}); err == nil {
		info.Images = len(imgs)
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		info.NFd = len(fds)
	}
	return info, nil
}

// daemonID is a stable identifier of this data root.
func (d *Daemon) daemonID() string {
	p := d.cfg.DataRoot + "/engine-id"
	if b, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(b))
	}
	id := newID()
	_ = os.WriteFile(p, []byte(id+"\n"), 0o600)
	return id
}

// SystemVersion implements backend.SystemBackend.
func (d *Daemon) SystemVersion(ctx context.Context) (system.VersionResponse, error) {
	kernel, _ := kernelArch()
	return system.VersionResponse{
		Platform:      struct{ Name string }{Name: "berth"},
		Version:       version.Version,
		APIVersion:    version.APIVersion,
		MinAPIVersion: version.MinAPIVersion,
		Os:            "linux",
		Arch:          runtime.GOARCH,
		KernelVersion: kernel,
		GoVersion:     runtime.Version(),
		GitCommit:     version.GitCommit,
		BuildTime:     version.BuildTime,
		Components: []system.ComponentVersion{
			{Name: "Engine", Version: version.Version, Details: map[string]string{"ApiVersion": version.APIVersion, "MinAPIVersion": version.MinAPIVersion, "Os": "linux", "Arch": runtime.GOARCH, "GoVersion": runtime.Version(), "KernelVersion": kernel,
				"GitCommit": version.GitCommit, "BuildTime": version.BuildTime, "Experimental": "false"}},
		},
	}, nil
}

// SystemDiskUsage implements backend.SystemBackend.
func (d *Daemon) SystemDiskUsage(ctx context.Context, opts backend.DiskUsageOptions) (backend.DiskUsage, error) {
	var du backend.DiskUsage
	imgs, err := d.ImageList(ctx, backend.ImageListOptions{})
	if err != nil {
		return du, err
	}
	du.Images = imgs
	for _, img := range imgs {
		du.LayersSize += img.Size
	}
	du.Containers, err = d.ContainerList(ctx, backend.ListOptions{All: true, Size: true})
	du.Volumes = d.volumeUsage(ctx) // volumes.go
	return du, err
}
