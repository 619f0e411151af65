package cgroups

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setDevicesV2 enforces the device rules on v2, where there is no devices
// file: a BPF_PROG_TYPE_CGROUP_DEVICE program is attached to the cgroup.
// The program generator comes from containerd/cgroups (the rules are walked
// last to first so that the last matching rule wins, as in v1). Programs
// attached earlier (a previous Set) are detached after the new one is in
// place, so the cgroup is never unprotected; with BPF_F_ALLOW_MULTI all
// attached programs must allow an access.
func setDevicesV2(dir string, devs []specs.LinuxDeviceCgroup) error {
	norm := make([]specs.LinuxDeviceCgroup, len(devs))
	wild := int64(-1)
	for i, d := range devs {
		if _, err := deviceRule(d); err != nil {
			return err
		}
		if d.Type == "" {
			d.Type = "a"
		}
		if d.Access == "" {
			d.Access = "rwm"
		}
		if d.Major == nil {
			d.Major = &wild
		}
		if d.Minor == nil {
			d.Minor = &wild
		}
		norm[i] = d
	}
	insts, license, err := cgroup2.DeviceFilter(norm)
	if err != nil {
		return fmt.Errorf("cgroup: device rules: %v: %w", err, errInvalidArgument)
	}
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroup: open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	var old []link.AttachedProgram
	if q, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice}); err == nil {
		old = q.Programs
	}
	if _, err := cgroup2.LoadAttachCgroupDeviceFilter(insts, license, fd); err != nil {
		if allDeny(devs) {
			// Nothing is allowed anyway; without eBPF (old kernel, no
			// CAP_BPF) there is nothing better to do, as in runc.
			return nil
		}
		return fmt.Errorf("cgroup: attach device filter to %s: %w", dir, err)
	}
	var errs []error
	for _, p := range old {
		prog, err := ebpf.NewProgramFromID(p.ID)
		if err != nil {
			continue // already gone
		}
		err = link.RawDetachProgram(link.RawDetachProgramOptions{Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice})
		prog.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("detach old device filter %d: %w", p.ID, err))
		}
	}
	return errors.Join(errs...)
}

func allDeny(devs []specs.LinuxDeviceCgroup) bool {
	for _, d := range devs {
		if d.Allow {
			return false
		}
	}
	return true
}
