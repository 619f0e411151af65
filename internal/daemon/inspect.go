package daemon

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/storage"

	"github.com/berth-dev/berth/internal/api/backend"
)

// statusString is docker's human STATUS column.
func statusString(s State, restartCount int) string {
	now := time.Now().UTC()
	switch s.Status {
	case container.StateRunning:
		return "Up " + units.HumanDuration(now.Sub(s.StartedAt)) + healthSuffix(s.Health)
	case container.StatePaused:
		return "Up " + units.HumanDuration(now.Sub(s.StartedAt)) + " (Paused)"
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	case container.StateCreated:
		return "Created"
	}
	if s.FinishedAt.IsZero() {
		return ""
	}
	return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (c *Container) networkMode() string {
	nm := string(c.HostConfig.NetworkMode)
	if nm == "" || nm == "default" {
		return "bridge"
	}
	return nm
}

// summary is the /containers/json entry; c.mu is held.
func (d *Daemon) summary(c *Container) container.Summary {
	// As dockerd: an argument with a space is shown quoted.
	cmd := c.Path
	for _, a := range c.Args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		cmd += " " + a
	}
	s := container.Summary{
		ID:              c.ID,
		Names:           []string{c.Name},
		Image:           c.ImageName,
		ImageID:         c.Image,
		Command:         cmd,
		Created:         c.Created.Unix(),
		Ports:           []container.PortSummary{},
		Labels:          c.Config.Labels,
		State:           c.State.Status,
		Status:          statusString(c.State, c.RestartCount),
		Mounts:          d.inspectMounts(c),
		NetworkSettings: &container.NetworkSettingsSummary{},
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	_, s.NetworkSettings.Networks, s.Ports = d.networkSettings(context.Background(), c)
	s.HostConfig.NetworkMode = c.networkMode()
	return s
}

// ContainerList implements backend.ContainerInfoBackend.
func (d *Daemon) ContainerList(ctx context.Context, opts backend.ListOptions) ([]container.Summary, error) {
	if bad := opts.Filters.Validate("id", "name", "label", "exited", "status", "ancestor", "before", "since", "volume", "network", "publish", "expose", "health", "isolation", "is-task"); bad != "" {
		return nil, errMsg(errInvalid, "invalid filter '%s'", bad)
	}
	if err := validateHealthFilter(opts.Filters); err != nil {
		return nil, err
	}
	for _, st := range opts.Filters.Get("status") {
		if container.ValidateContainerState(container.ContainerState(st)) != nil {
			return nil, errMsg(errInvalid, "invalid filter 'status=%s'", st)
		}
	}
	var before, since time.Time
	for _, k := range []string{"before", "since"} {
		for _, ref := range opts.Filters.Get(k) {
			other, err := d.ctrs.get(ref)
			if err != nil {
				return nil, err
			}
			if k == "before" {
				before = other.Created
			} else {
				since = other.Created
			}
		}
	}
	var ancestors []string
	for _, a := range opts.Filters.Get("ancestor") {
		if img, err := d.images.Get(ctx, a); err == nil {
			ancestors = append(ancestors, img.ID.String())
		} else {
			ancestors = append(ancestors, a)
		}
	}
	all := opts.All || opts.Limit > 0 || opts.Filters.Has("status") || opts.Filters.Has("exited")
	out := []container.Summary{}
	for _, c := range d.sortedContainers() {
		c.mu.Lock()
		ok := d.matches(c, opts.Filters, all, before, since, ancestors)
		var s container.Summary
		if ok {
			s = d.summary(c)
		}
		c.mu.Unlock()
		if !ok {
			continue
		}
		if opts.Size {
			s.SizeRw, s.SizeRootFs = d.sizes(ctx, c)
		}
		out = append(out, s)
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
	}
	d.addLinkNames(out) // links.go
	return out, nil
}

func (d *Daemon) matches(c *Container, f backend.Filters, all bool, before, since time.Time, ancestors []string) bool {
	if !all && !c.State.running() && c.State.Status != container.StateRestarting {
		return false
	}
	if f.Has("id") {
		ok := false
		for _, v := range f.Get("id") {
			if strings.HasPrefix(c.ID, v) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if f.Has("name") {
		ok := false
		for _, v := range f.Get("name") {
			if strings.Contains(strings.TrimPrefix(c.Name, "/"), strings.TrimPrefix(v, "/")) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if !f.MatchKVList("label", c.Config.Labels) {
		return false
	}
	if !f.ExactMatch("status", string(c.State.Status)) {
		return false
	}
	if f.Has("exited") {
		if c.State.Status != container.StateExited || !f.ExactMatch("exited", strconv.Itoa(c.State.ExitCode)) {
			return false
		}
	}
	if !before.IsZero() && !c.Created.Before(before) {
		return false
	}
	if !since.IsZero() && !c.Created.After(since) {
		return false
	}
	if len(ancestors) > 0 {
		ok := false
		for _, a := range ancestors {
			if a == c.Image || a == c.ImageName || strings.TrimSuffix(c.ImageName, ":latest") == a {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if !d.matchNetworkFilters(c, f) {
		return false
	}
	if f.Has("isolation") && !f.ExactMatch("isolation", "default") {
		return false
	}
	if f.Has("is-task") && !f.ExactMatch("is-task", "false") {
		return false
	}
	if f.Has("health") && !f.ExactMatch("health", healthOf(c)) {
		return false
	}
	if f.Has("volume") && !d.usesVolume(c, f.Get("volume")) { // volumes.go
		return false
	}
	return true
}

// sizes returns the writable layer's size and the whole rootfs's size.
func (d *Daemon) sizes(ctx context.Context, c *Container) (rw, rootfs int64) {
	if u, err := d.snaps.Usage(ctx, c.ID); err == nil {
		rw = u.Size
	}
	rootfs = rw
	if img, err := d.images.Get(ctx, c.Image); err == nil {
		rootfs += img.Size
	}
	return rw, rootfs
}

// ContainerInspect implements backend.ContainerInfoBackend.
func (d *Daemon) ContainerInspect(ctx context.Context, id string, size bool) (container.InspectResponse, error) {
	c, err := d.ctrs.get(id)
	if err != nil {
		return container.InspectResponse{}, err
	}
	c.mu.Lock()
	r := container.InspectResponse{
		ID:      c.ID,
		Created: timeString(c.Created),
		Path:    c.Path,
		Args:    c.Args,
		State: &container.State{
			Status:     c.State.Status,
			Running:    c.State.running(),
			Paused:     c.State.Status == container.StatePaused,
			Restarting: c.State.Status == container.StateRestarting,
			OOMKilled:  c.State.OOMKilled,
			Dead:       c.State.Status == container.StateDead,
			Pid:        c.State.Pid,
			ExitCode:   c.State.ExitCode,
			Error:      c.State.Error,
			StartedAt:  timeString(c.State.StartedAt),
			FinishedAt: timeString(c.State.FinishedAt),
			Health:     healthView(c),
		},
		Image:        c.Image,
		LogPath:      inspectLogPath(c), // logfiles.go
		Name:         c.Name,
		RestartCount: c.RestartCount,
		Driver:       "overlay2",
		Platform:     "linux",
		HostConfig:   d.inspectHostConfig(c),
		Config:       c.Config,
		Mounts:       d.inspectMounts(c),
		GraphDriver:  d.graphDriver(ctx, c),
		NetworkSettings: &container.NetworkSettings{
			SandboxKey: d.netnsPath(c.ID),
		},
	}
	r.HostnamePath, r.HostsPath, r.ResolvConfPath = d.etcPaths(c) // etcfiles.go
	r.NetworkSettings.Ports, r.NetworkSettings.Networks, _ = d.networkSettings(ctx, c)
	if r.Args == nil {
		r.Args = []string{}
	}
	for eid, e := range c.execs {
		_ = e
		r.ExecIDs = append(r.ExecIDs, eid)
	}
	sort.Strings(r.ExecIDs)
	c.mu.Unlock()
	if size {
		rw, rootfs := d.sizes(ctx, c)
		r.SizeRw, r.SizeRootFs = &rw, &rootfs
	}
	return r, nil
}

// ContainerTop implements backend.ContainerInfoBackend: ps on the host,
// filtered to the container's processes (its cgroup's pids), as docker does.
func (d *Daemon) ContainerTop(ctx context.Context, id string, psArgs string) (container.TopResponse, error) {
	c, err := d.ctrs.get(id)
	if err != nil {
		return container.TopResponse{}, err
	}
	c.mu.Lock()
	running := c.State.running()
	c.mu.Unlock()
	if !running {
		return container.TopResponse{}, errMsg(errConflict, "Container %s is not running", c.ID)
	}
	pids, err := d.containerPids(ctx, c)
	if err != nil {
		return container.TopResponse{}, err
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	out, err := exec.CommandContext(ctx, "ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		return container.TopResponse{}, errMsg(errdefs.ErrUnknown, "Error running ps: %v", err)
	}
	return parsePS(out, pids)
}

// containerPids lists the container's processes through the runtime.
func (d *Daemon) containerPids(ctx context.Context, c *Container) (map[int]bool, error) {
	rt, rtArgs, err := d.runtimeFor(c.Runtime)
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, rtArgs...), "--root", d.runtimeRoot(), "ps", "--format", "json", c.ID)
	out, err := exec.CommandContext(ctx, rt, args...).Output()
	if err != nil {
		return nil, errMsg(errdefs.ErrUnknown, "runtime ps: %v", err)
	}
	pids := map[int]bool{}
	for _, f := range strings.FieldsFunc(string(out), func(r rune) bool { return r == '[' || r == ']' || r == ',' || r == ' ' || r == '\n' }) {
		if n, err := strconv.Atoi(f); err == nil {
			pids[n] = true
		}
	}
	return pids, nil
}

func parsePS(out []byte, pids map[int]bool) (container.TopResponse, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() {
		return container.TopResponse{}, errMsg(errdefs.ErrUnknown, "ps printed nothing")
	}
	titles := strings.Fields(sc.Text())
	pidCol := -1
	for i, t := range titles {
		if t == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return container.TopResponse{}, errMsg(errInvalid, "Couldn't find PID field in ps output")
	}
	r := container.TopResponse{Titles: titles, Processes: [][]string{}}
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) <= pidCol {
			continue
		}
		pid, err := strconv.Atoi(fields[pidCol])
		if err != nil || !pids[pid] {
			continue
		}
		if len(fields) > len(titles) {
			last := strings.Join(fields[len(titles)-1:], " ")
			fields = append(fields[:len(titles)-1], last)
		}
		r.Processes = append(r.Processes, fields)
	}
	return r, nil
}

// graphDriver is inspect's GraphDriver: on overlay the directories docker's
// overlay2 shows (the init layer first among the lower ones).
func (d *Daemon) graphDriver(ctx context.Context, c *Container) *storage.DriverData {
	data := map[string]string{"MergedDir": d.rootfsDir(c.ID)}
	if m, err := d.snaps.Mounts(ctx, c.ID); err == nil && len(m) == 1 && m[0].Type == "overlay" {
		for _, o := range m[0].Options {
			if k, v, ok := strings.Cut(o, "="); ok {
				switch k {
				case "lowerdir":
					data["LowerDir"] = v
				case "upperdir":
					data["UpperDir"] = v
				case "workdir":
					data["WorkDir"] = v
				}
			}
		}
	}
	return &storage.DriverData{Name: "overlay2", Data: data}
}
