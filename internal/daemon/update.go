package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/spec"
)

// Resource limits: docker's checks at create and update, docker's merge of
// an update into the stored HostConfig, and the live cgroup change.
//
// `docker update` flow (as moby's daemon/update.go):
//
//	request ─► verifyResources(update=true)        400 on bad values
//	        ─► mergeResources(stored, request)      409 on conflicts ("Cannot update container …")
//	        ─► running/paused: runtime update with  500 on failure; stored HostConfig rolled back
//	           updateResources(request, merged)
//	        ─► saveRecord, "update" event
//
// A created, exited or restarting container only gets the new HostConfig:
// the next start generates its spec from it.

// createResources checks a create request's resources as docker's
// verifyPlatformContainerResources does, then fills docker's defaults
// (adaptContainerSettings: memory+swap is twice the memory limit), so that
// inspect shows what the container runs with and a later update is checked
// against it. It runs before anything of the container exists.
func (d *Daemon) createResources(hc *container.HostConfig) error {
	if err := verifyResources(&hc.Resources, false, hostCPUs()); err != nil {
		return err
	}
	if hc.Memory > 0 && hc.MemorySwap == 0 {
		hc.MemorySwap = 2 * hc.Memory
	}
	return nil
}

// hostCPUs is what the resource checks need to know about the host: the
// online CPUs and the root cpuset (v1 cpuset hierarchy or the v2 root),
// falling back to every online CPU and node 0.
func hostCPUs() spec.Host {
	h := spec.Host{NCPU: runtime.NumCPU()}
	read := func(files ...string) string {
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) != "" {
				return strings.TrimSpace(string(b))
			}
		}
		return ""
	}
	h.Cpus = read("/sys/fs/cgroup/cpuset/cpuset.effective_cpus", "/sys/fs/cgroup/cpuset/cpuset.cpus",
		"/sys/fs/cgroup/cpuset.cpus.effective", "/sys/devices/system/cpu/online")
	h.Mems = read("/sys/fs/cgroup/cpuset/cpuset.effective_mems", "/sys/fs/cgroup/cpuset/cpuset.mems",
		"/sys/fs/cgroup/cpuset.mems.effective", "/sys/devices/system/node/online")
	if h.Cpus == "" {
		h.Cpus = fmt.Sprintf("0-%d", h.NCPU-1)
	}
	if h.Mems == "" {
		h.Mems = "0"
	}
	return h
}

// verifyResources is docker's verifyPlatformContainerResources: the
// checks spec generation runs (spec.CheckResources, one copy for create
// and update), plus the Windows-only IO limits the spec has no field for.
func verifyResources(r *container.Resources, update bool, h spec.Host) error {
	if r.IOMaximumBandwidth != 0 || r.IOMaximumIOps != 0 {
		return errMsg(errInvalid, "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps")
	}
	return spec.CheckResources(resourcesOf(*r), h, update)
}

// validRestartPolicy is docker's validateRestartPolicy.
func validRestartPolicy(p container.RestartPolicy) error {
	switch p.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if p.MaximumRetryCount != 0 {
			return errMsg(errInvalid, "invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if p.MaximumRetryCount < 0 {
			return errMsg(errInvalid, "invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return errMsg(errInvalid, "invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", p.Name)
	}
	return nil
}

// mergeResources applies an update request to the stored resources as
// moby's Container.UpdateContainer does: zero fields keep the stored
// value; NanoCPUs and CPUPeriod/CPUQuota exclude each other across
// updates; a larger memory limit needs a new memory+swap limit when the
// stored one would fall below it. It returns the merged copy.
func mergeResources(cur, req container.Resources) (container.Resources, error) {
	conflict := func(msg string) (container.Resources, error) { return cur, errMsg(errConflict, "%s", msg) }
	switch {
	case req.NanoCPUs > 0 && cur.CPUPeriod > 0:
		return conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
	case req.NanoCPUs > 0 && cur.CPUQuota > 0:
		return conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
	case req.CPUPeriod > 0 && cur.NanoCPUs > 0:
		return conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
	case req.CPUQuota > 0 && cur.NanoCPUs > 0:
		return conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
	}
	m := cur
	if req.BlkioWeight != 0 {
		m.BlkioWeight = req.BlkioWeight
	}
	if req.CPUShares != 0 {
		m.CPUShares = req.CPUShares
	}
	if req.NanoCPUs != 0 {
		m.NanoCPUs = req.NanoCPUs
	}
	if req.CPUPeriod != 0 {
		m.CPUPeriod = req.CPUPeriod
	}
	if req.CPUQuota != 0 {
		m.CPUQuota = req.CPUQuota
	}
	if req.CPURealtimePeriod != 0 {
		m.CPURealtimePeriod = req.CPURealtimePeriod
	}
	if req.CPURealtimeRuntime != 0 {
		m.CPURealtimeRuntime = req.CPURealtimeRuntime
	}
	if req.CpusetCpus != "" {
		m.CpusetCpus = req.CpusetCpus
	}
	if req.CpusetMems != "" {
		m.CpusetMems = req.CpusetMems
	}
	if req.Memory != 0 {
		// Docker's rule, including its consequence that a container created
		// without limits (MemorySwap 0) needs --memory-swap with --memory.
		if req.Memory > cur.MemorySwap && req.MemorySwap == 0 {
			return conflict("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
		}
		m.Memory = req.Memory
	}
	if req.MemorySwap != 0 {
		m.MemorySwap = req.MemorySwap
	}
	if req.MemoryReservation != 0 {
		m.MemoryReservation = req.MemoryReservation
	}
	if req.PidsLimit != nil {
		v := *req.PidsLimit
		m.PidsLimit = &v
	}
	if m.Memory > 0 && m.MemorySwap > 0 && m.MemorySwap < m.Memory {
		return conflict("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if m.Memory > 0 && m.MemoryReservation > 0 && m.Memory < m.MemoryReservation {
		return conflict("Minimum memory limit can not be less than memory reservation limit, see usage")
	}
	return m, nil
}

// updateResources is the OCI resources an update writes to the live cgroup:
// only what the request changes (docker's toContainerdResources), except
// that a memory change carries the merged memory and memory+swap limits
// together (so memory is converted here, not by create's spec code, which
// derives swap from the memory limit instead). cgroup v1 then keeps limit ≤ memsw in the right order, and on
// v2 memory.swap.max (swap beyond the limit) follows a new memory.max.
func updateResources(req, merged container.Resources) *specs.LinuxResources {
	r := &specs.LinuxResources{}
	var mem specs.LinuxMemory
	if req.Memory != 0 || req.MemorySwap != 0 {
		if merged.Memory > 0 {
			v := merged.Memory
			mem.Limit = &v
		}
		if merged.MemorySwap != 0 {
			v := merged.MemorySwap
			mem.Swap = &v
		}
	}
	if req.MemoryReservation != 0 {
		v := req.MemoryReservation
		mem.Reservation = &v
	}
	if mem != (specs.LinuxMemory{}) {
		r.Memory = &mem
	}

	// CPU and pids as create converts them (spec), from the request only.
	r.CPU = spec.CPUResources(resourcesOf(req))
	r.Pids = spec.PidsResources(req.PidsLimit)
	if req.BlkioWeight != 0 {
		v := req.BlkioWeight
		r.BlockIO = &specs.LinuxBlockIO{Weight: &v}
	}
	return r
}

// ContainerUpdate implements backend.ContainerAdminBackend: docker update.
func (d *Daemon) ContainerUpdate(ctx context.Context, id string, cfg container.UpdateConfig) (container.UpdateResponse, error) {
	c, err := d.ctrs.get(id)
	if err != nil {
		return container.UpdateResponse{}, err
	}
	if err := verifyResources(&cfg.Resources, true, hostCPUs()); err != nil {
		return container.UpdateResponse{}, err
	}
	if err := validRestartPolicy(cfg.RestartPolicy); err != nil {
		return container.UpdateResponse{}, err
	}
	cannot := func(err error) error {
		return fmt.Errorf("%s: %w", "Cannot update container "+c.ID, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Status == container.StateRemoving || c.State.Status == container.StateDead {
		return container.UpdateResponse{}, cannot(errMsg(errConflict, "container is marked for removal and cannot be \"update\""))
	}
	merged, err := mergeResources(c.HostConfig.Resources, cfg.Resources)
	if err != nil {
		return container.UpdateResponse{}, cannot(err)
	}
	if cfg.RestartPolicy.Name != "" && c.HostConfig.AutoRemove && cfg.RestartPolicy.Name != container.RestartPolicyDisabled {
		return container.UpdateResponse{}, cannot(errMsg(errConflict, "Restart policy cannot be updated because AutoRemove is enabled for the container"))
	}
	// A running or paused container's cgroup changes now; the others get
	// the new limits from their next spec.
	if c.State.running() {
		res := updateResources(cfg.Resources, merged)
		if err := d.runtimeDo(c, func(rt ociRuntime) error { return rt.Update(ctx, c.ID, res) }); err != nil {
			return container.UpdateResponse{}, cannot(errMsg(errdefs.ErrUnknown, "%v", err))
		}
	}
	c.HostConfig.Resources = merged
	if cfg.RestartPolicy.Name != "" {
		c.HostConfig.RestartPolicy = cfg.RestartPolicy
	}
	if err := d.saveRecord(c); err != nil {
		return container.UpdateResponse{}, err
	}
	d.containerEvent(c, events.ActionUpdate, nil)
	return container.UpdateResponse{Warnings: []string{}}, nil
}

// Update applies resources through the runtime's `update -r FILE`.
func (r cliRuntime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "berth-update-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, "resources.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		return err
	}
	return r.run(ctx, "update", "-r", f, id)
}
