package daemon

// Volumes and mounts: the volume API over internal/volume, and the
// conversion of a create request's -v, --mount, --tmpfs, --volumes-from and
// anonymous volumes (Config.Volumes and the image's VOLUMEs) into mount
// points, as docker's registerMountPoints does.
//
// Life of a container's mounts:
//
//	create   parse + validate everything first (nothing is made on error),
//	         then create the named and anonymous volumes it needs, take a
//	         user reference on each, write mounts.json
//	start    mount device-backed volumes (first user), copy the image's
//	         content into empty volumes (unless nocopy), create a missing
//	         -v host directory, hand the spec its mounts
//	stop     (teardown) drop the container's mount references; the last
//	         one unmounts a device-backed volume
//	rm       drop the user references; with -v (and --rm) remove the
//	         anonymous volumes nobody else uses
//
// Per-container schema (owned by this file), beside the container's logs:
//
//	<data-root>/containers/<id>/mounts.json  →  JSON array of mountPoint
//
// The daemon rebuilds the volumes' user and mount references from these
// files when it starts, so volume data and in-use checks survive restarts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/berth-dev/berth/internal/spec"
	bvolume "github.com/berth-dev/berth/internal/volume"
)

var _ backend.VolumeBackend = (*Daemon)(nil)

// volumeManager holds the volume store and each container's mount points.
type volumeManager struct {
	store *bvolume.Store
	mu    sync.Mutex
	byCtr map[string][]mountPoint // container ID → its mount points
}

// mountPoint is one container mount as berth records it: docker's
// MountPoint plus what start needs.
type mountPoint struct {
	Type         mount.Type
	Name         string `json:",omitempty"` // volume name
	Source       string `json:",omitempty"` // host path (a volume's _data)
	Destination  string
	Mode         string `json:",omitempty"` // as docker shows it ("ro", "z", "rw,rslave")
	RW           bool
	Propagation  mount.Propagation `json:",omitempty"`
	NonRecursive bool              `json:",omitempty"`
	CopyData     bool              `json:",omitempty"` // fill an empty volume from the image
	Subpath      string            `json:",omitempty"`
	Anonymous    bool              `json:",omitempty"` // created for this container: rm -v removes it
	// CreateSource: a missing bind source is created at start (-v), not
	// refused (--mount).
	CreateSource bool        `json:",omitempty"`
	TmpfsSize    int64       `json:",omitempty"`
	TmpfsMode    os.FileMode `json:",omitempty"`
	TmpfsOptions string      `json:",omitempty"`
	// Hidden: HostConfig.Tmpfs entries, which docker does not list in Mounts.
	Hidden bool `json:",omitempty"`
}

// openVolumes opens the volume store and rebuilds the references from the
// container records: every recorded container uses its volumes, a running
// one has them mounted. Called before restore, which may tear exited ones
// down; sweepVolumes after it unmounts what no container holds.
func (d *Daemon) openVolumes(ctx context.Context) error {
	st, err := bvolume.Open(ctx, filepath.Join(d.cfg.DataRoot, "volumes"))
	if err != nil {
		return err
	}
	d.vols = &volumeManager{store: st, byCtr: map[string][]mountPoint{}}
	recs, err := d.loadRecords()
	if err != nil {
		return err
	}
	for _, c := range recs {
		mps, err := d.readMountPoints(c.ID)
		if err != nil {
			d.log.Warn("container mounts", "id", c.ID, "err", err)
			continue
		}
		d.vols.byCtr[c.ID] = mps
		for _, mp := range mps {
			if mp.Type != mount.TypeVolume {
				continue
			}
			if err := st.Acquire(ctx, mp.Name, c.ID); err != nil {
				d.log.Warn("volume of container", "id", c.ID, "volume", mp.Name, "err", err)
				continue
			}
			if c.State.running() {
				_, _ = st.Mount(ctx, mp.Name, c.ID)
			}
		}
	}
	return nil
}

// sweepVolumes unmounts device-backed volumes that no running container
// holds (their containers exited while the daemon was down).
func (d *Daemon) sweepVolumes(ctx context.Context) {
	d.vols.store.Sweep(ctx)
}

func (d *Daemon) mountsFile(id string) string {
	return filepath.Join(d.containerDir(id), "mounts.json")
}

func (d *Daemon) readMountPoints(id string) ([]mountPoint, error) {
	b, err := os.ReadFile(d.mountsFile(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var mps []mountPoint
	if err := json.Unmarshal(b, &mps); err != nil {
		return nil, fmt.Errorf("%s: %w", d.mountsFile(id), err)
	}
	return mps, nil
}

func (d *Daemon) mountPointsOf(id string) []mountPoint {
	d.vols.mu.Lock()
	defer d.vols.mu.Unlock()
	return slices.Clone(d.vols.byCtr[id])
}

// ---- create ----------------------------------------------------------------

// createMounts resolves c's mounts, creates the volumes they need and
// records them. On error it leaves nothing behind (volumes it created are
// removed); the caller removes the container's directory.
func (d *Daemon) createMounts(ctx context.Context, c *Container, img ocispec.ImageConfig) (err error) {
	cfg, hc := c.Config, c.HostConfig
	mps, err := d.parseMounts(cfg, hc, img)
	if err != nil {
		return err
	}
	var created []string
	var acquired []string
	defer func() {
		if err != nil {
			for _, n := range acquired {
				d.vols.store.Release(n, c.ID)
			}
			for _, n := range created {
				_ = d.vols.store.Remove(context.WithoutCancel(ctx), n, true)
			}
		}
	}()
	for i := range mps {
		mp := &mps[i]
		if mp.Type != mount.TypeVolume {
			continue
		}
		// A named volume that does not exist yet is created, as docker does.
		var opts, labels map[string]string
		if sp := mp.spec; sp != nil && sp.VolumeOptions != nil {
			labels = sp.VolumeOptions.Labels
			if dc := sp.VolumeOptions.DriverConfig; dc != nil {
				if dc.Name != "" && dc.Name != bvolume.DriverLocal {
					return errMsg(errdefs.ErrNotFound, "error looking up volume plugin %s: plugin %q not found", dc.Name, dc.Name)
				}
				opts = dc.Options
			}
		}
		v, isNew, err := d.vols.store.CreateAndAcquire(ctx, mp.Name, opts, labels, c.ID)
		if err != nil {
			return err
		}
		acquired = append(acquired, v.Name)
		if isNew {
			created = append(created, v.Name)
			d.publish(events.VolumeEventType, events.ActionCreate, v.Name, map[string]string{"driver": v.Driver})
			if d.remapped(hc) {
				// Owned by the container's root, as docker's local driver
				// creates it under userns-remap.
				if err := os.Lchown(v.Mountpoint, int(d.remap.rootUID()), int(d.remap.rootGID())); err != nil {
					return err
				}
			}
		}
		mp.Anonymous = mp.Name == ""
		mp.Name, mp.Source = v.Name, v.Mountpoint
	}
	out := make([]mountPoint, len(mps))
	for i := range mps {
		out[i] = mps[i].mountPoint
	}
	// No mounts, no file (readMountPoints reads its absence as none): one
	// inode less to create and delete per container.
	if len(out) > 0 {
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		if err := os.WriteFile(d.mountsFile(c.ID), b, 0o600); err != nil {
			return err
		}
	}
	d.vols.mu.Lock()
	d.vols.byCtr[c.ID] = out
	d.vols.mu.Unlock()
	return nil
}

// parsedMount is a mountPoint before its volume exists.
type parsedMount struct {
	mountPoint
	spec *mount.Mount // the --mount it came from
}

// parseMounts validates and converts, in docker's order: --volumes-from,
// then -v, then --mount (a destination may be given once across -v and
// --mount), then anonymous volumes for Config.Volumes and the image's
// VOLUMEs that nothing else covers. Pure apart from lookups.
func (d *Daemon) parseMounts(cfg *container.Config, hc *container.HostConfig, img ocispec.ImageConfig) ([]parsedMount, error) {
	if hc.VolumeDriver != "" && hc.VolumeDriver != bvolume.DriverLocal {
		return nil, errMsg(errdefs.ErrNotFound, "error looking up volume plugin %s: plugin %q not found", hc.VolumeDriver, hc.VolumeDriver)
	}
	var out []parsedMount
	byDst := map[string]int{}
	add := func(pm parsedMount, replace bool) error {
		if i, ok := byDst[pm.Destination]; ok {
			if !replace {
				return errMsg(errInvalid, "Duplicate mount point: %s", pm.Destination)
			}
			out[i] = pm
			return nil
		}
		byDst[pm.Destination] = len(out)
		out = append(out, pm)
		return nil
	}
	for _, vf := range hc.VolumesFrom {
		ref, mode, _ := strings.Cut(vf, ":")
		rw := true
		switch mode {
		case "", "rw":
		case "ro":
			rw = false
		default:
			return nil, errMsg(errInvalid, "invalid mode: %s", mode)
		}
		other, err := d.ctrs.get(ref)
		if err != nil {
			return nil, err
		}
		for _, mp := range d.mountPointsOf(other.ID) {
			if mp.Type == mount.TypeTmpfs {
				continue
			}
			mp.RW = mp.RW && rw
			mp.Anonymous, mp.CopyData, mp.Hidden, mp.Mode = false, false, false, ""
			// Volumes-from shares the volume as it is: by name.
			_ = add(parsedMount{mountPoint: mp}, true)
		}
	}
	// -v replaces what --volumes-from gave at the same destination.
	fromBinds := map[string]bool{}
	for _, b := range hc.Binds {
		pm, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		if fromBinds[pm.Destination] {
			return nil, errMsg(errInvalid, "Duplicate mount point: %s", pm.Destination)
		}
		fromBinds[pm.Destination] = true
		_ = add(pm, true)
	}
	for i := range hc.Mounts {
		m := hc.Mounts[i]
		pm, err := parseMountSpec(&m)
		if err != nil {
			return nil, err
		}
		if fromBinds[pm.Destination] {
			return nil, errMsg(errInvalid, "Duplicate mount point: %s", pm.Destination)
		}
		fromBinds[pm.Destination] = true
		if err := add(pm, true); err != nil {
			return nil, err
		}
	}
	tmpfsDst := map[string]bool{}
	for dst := range hc.Tmpfs {
		if !path.IsAbs(dst) {
			return nil, errMsg(errInvalid, "invalid mount config for type \"tmpfs\": invalid mount path: '%s' mount path must be absolute", dst)
		}
		tmpfsDst[path.Clean(dst)] = true
	}
	anon := map[string]bool{}
	for v := range img.Volumes {
		anon[path.Clean("/"+v)] = true
	}
	for v := range cfg.Volumes {
		anon[path.Clean("/"+v)] = true
	}
	for _, dst := range slices.Sorted(mapKeys(anon)) {
		if _, ok := byDst[dst]; ok || tmpfsDst[dst] || dst == "/" {
			continue
		}
		byDst[dst] = len(out)
		out = append(out, parsedMount{mountPoint: mountPoint{Type: mount.TypeVolume, Destination: dst, RW: true, CopyData: true, Anonymous: true}})
	}
	for _, dst := range slices.Sorted(mapKeys(hc.Tmpfs)) {
		if _, ok := byDst[path.Clean(dst)]; ok {
			return nil, errMsg(errInvalid, "Duplicate mount point: %s", path.Clean(dst))
		}
		opts := hc.Tmpfs[dst]
		out = append(out, parsedMount{mountPoint: mountPoint{Type: mount.TypeTmpfs, Destination: path.Clean(dst), RW: !hasOpt(opts, "ro"), TmpfsOptions: opts, Hidden: true}})
	}
	return out, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func hasOpt(opts, o string) bool {
	return slices.Contains(strings.Split(opts, ","), o)
}

// parseBind reads one -v "src:dst[:mode]" (Linux rules: src absolute for a
// bind, else a volume name).
func parseBind(raw string) (parsedMount, error) {
	bad := func(format string, a ...any) error {
		return errMsg(errInvalid, "invalid volume specification: '%s'%s", raw, fmt.Sprintf(format, a...))
	}
	parts := strings.Split(raw, ":")
	var src, dst, mode string
	switch len(parts) {
	case 2:
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return parsedMount{}, bad("")
	}
	if src == "" || dst == "" {
		return parsedMount{}, bad("")
	}
	if !path.IsAbs(dst) {
		return parsedMount{}, bad(": invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", dst)
	}
	pm := parsedMount{mountPoint: mountPoint{Destination: path.Clean(dst), RW: true, Mode: mode}}
	if pm.Destination == "/" {
		return parsedMount{}, bad(": invalid mount config for type \"bind\": invalid specification: destination can't be '/'")
	}
	nocopy := false
	for _, o := range strings.Split(mode, ",") {
		switch o {
		case "":
		case "ro":
			pm.RW = false
		case "rw":
		case "z", "Z":
		case "nocopy":
			nocopy = true
		case "private", "rprivate", "shared", "rshared", "slave", "rslave":
			pm.Propagation = mount.Propagation(o)
		default:
			return parsedMount{}, errMsg(errInvalid, "invalid mode: %s", mode)
		}
	}
	if path.IsAbs(src) {
		pm.Type = mount.TypeBind
		pm.Source = path.Clean(src)
		pm.CreateSource = true
		if nocopy {
			return parsedMount{}, errMsg(errInvalid, "invalid mode: %s", mode)
		}
		if pm.Propagation == "" {
			pm.Propagation = mount.PropagationRPrivate
		}
		return pm, nil
	}
	if err := bvolume.ValidateName(src); err != nil {
		return parsedMount{}, bad(": %s", err.Error())
	}
	if pm.Propagation != "" {
		return parsedMount{}, errMsg(errInvalid, "invalid mode: %s", mode)
	}
	pm.Type = mount.TypeVolume
	pm.Name = src
	pm.CopyData = !nocopy
	if pm.Mode == "" {
		pm.Mode = "z"
	}
	return pm, nil
}

// parseMountSpec converts one --mount with docker's validation messages.
func parseMountSpec(m *mount.Mount) (parsedMount, error) {
	bad := func(format string, a ...any) error {
		return errMsg(errInvalid, "invalid mount config for type %q: %s", string(m.Type), fmt.Sprintf(format, a...))
	}
	if m.Target == "" {
		return parsedMount{}, bad("field Target must not be empty")
	}
	if !path.IsAbs(m.Target) {
		return parsedMount{}, bad("invalid mount path: '%s' mount path must be absolute", m.Target)
	}
	pm := parsedMount{spec: m, mountPoint: mountPoint{Type: m.Type, Destination: path.Clean(m.Target), RW: !m.ReadOnly}}
	if pm.Destination == "/" {
		return parsedMount{}, bad("invalid specification: destination can't be '/'")
	}
	switch m.Type {
	case mount.TypeBind:
		if m.VolumeOptions != nil {
			return parsedMount{}, bad("field VolumeOptions must not be specified")
		}
		if m.TmpfsOptions != nil {
			return parsedMount{}, bad("field TmpfsOptions must not be specified")
		}
		if m.Source == "" {
			return parsedMount{}, bad("field Source must not be empty")
		}
		if !path.IsAbs(m.Source) {
			return parsedMount{}, bad("invalid mount path: '%s' mount path must be absolute", m.Source)
		}
		pm.Source = path.Clean(m.Source)
		createMP := false
		pm.Propagation = mount.PropagationRPrivate
		if bo := m.BindOptions; bo != nil {
			if bo.Propagation != "" {
				if !slices.Contains(mount.Propagations, bo.Propagation) {
					return parsedMount{}, errMsg(errInvalid, "invalid propagation mode: %s", bo.Propagation)
				}
				pm.Propagation = bo.Propagation
			}
			pm.NonRecursive = bo.NonRecursive
			createMP = bo.CreateMountpoint
		}
		if _, err := os.Stat(pm.Source); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return parsedMount{}, bad("%v", err)
			}
			if !createMP {
				return parsedMount{}, bad("bind source path does not exist: %s", pm.Source)
			}
			pm.CreateSource = true
		}
	case mount.TypeVolume:
		if m.BindOptions != nil {
			return parsedMount{}, bad("field BindOptions must not be specified")
		}
		if m.TmpfsOptions != nil {
			return parsedMount{}, bad("field TmpfsOptions must not be specified")
		}
		if m.Source != "" {
			if err := bvolume.ValidateName(m.Source); err != nil {
				return parsedMount{}, bad("%s", err.Error())
			}
		}
		pm.Name = m.Source
		pm.Anonymous = m.Source == ""
		pm.Mode = "z"
		pm.CopyData = true
		if vo := m.VolumeOptions; vo != nil {
			pm.CopyData = !vo.NoCopy
			if vo.Subpath != "" {
				sp := path.Clean(vo.Subpath)
				if path.IsAbs(sp) || sp == ".." || strings.HasPrefix(sp, "../") {
					return parsedMount{}, bad("subpath must be a relative path within the volume")
				}
				pm.Subpath = sp
			}
		}
	case mount.TypeTmpfs:
		if m.Source != "" {
			return parsedMount{}, bad("field Source must not be specified")
		}
		if m.BindOptions != nil {
			return parsedMount{}, bad("field BindOptions must not be specified")
		}
		if m.VolumeOptions != nil {
			return parsedMount{}, bad("field VolumeOptions must not be specified")
		}
		if to := m.TmpfsOptions; to != nil {
			if to.SizeBytes < 0 {
				return parsedMount{}, bad("invalid tmpfs size %d", to.SizeBytes)
			}
			pm.TmpfsSize, pm.TmpfsMode = to.SizeBytes, to.Mode
			var extra []string
			for _, kv := range to.Options {
				extra = append(extra, strings.Join(kv, "="))
			}
			pm.TmpfsOptions = strings.Join(extra, ",")
		}
	default:
		return parsedMount{}, errMsg(errInvalid, "invalid mount config for type %q: mount type unknown", string(m.Type))
	}
	return pm, nil
}

// ---- start, stop, remove ---------------------------------------------------

// mountVolumes prepares c's mounts for a start: volumes mounted (device
// ones on first use) and filled from the image at rootfs, missing -v host
// directories created. teardown undoes it (unmountVolumes).
func (d *Daemon) mountVolumes(ctx context.Context, c *Container, rootfs string) error {
	for _, mp := range d.mountPointsOf(c.ID) {
		switch mp.Type {
		case mount.TypeVolume:
			p, err := d.vols.store.Mount(ctx, mp.Name, c.ID)
			if err != nil {
				return err
			}
			d.publish(events.VolumeEventType, events.ActionMount, mp.Name, map[string]string{"driver": bvolume.DriverLocal,
				"container": c.ID, "destination": mp.Destination, "read/write": strconv.FormatBool(mp.RW), "propagation": string(mp.Propagation)})
			if mp.CopyData && mp.Subpath == "" {
				if _, err := bvolume.CopyUp(ctx, rootfs, mp.Destination, p); err != nil {
					return fmt.Errorf("volume %s: %w", mp.Name, err)
				}
			}
			if mp.Subpath != "" {
				if _, err := volumeSubpath(p, mp.Subpath); err != nil {
					return err
				}
			}
		case mount.TypeBind:
			if _, err := os.Stat(mp.Source); errors.Is(err, os.ErrNotExist) {
				if !mp.CreateSource {
					return errMsg(errInvalid, "invalid mount config for type \"bind\": bind source path does not exist: %s", mp.Source)
				}
				if err := os.MkdirAll(mp.Source, 0o755); err != nil {
					return fmt.Errorf("error while creating mount source path '%s': %w", mp.Source, err)
				}
				if d.remapped(c.HostConfig) {
					_ = os.Lchown(mp.Source, int(d.remap.rootUID()), int(d.remap.rootGID()))
				}
			}
			if err := checkSourcePropagation(mp); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkSourcePropagation refuses a shared or slave bind whose source sits
// on a private mount, with docker's errors: the propagation asked for
// could not happen.
func checkSourcePropagation(mp mountPoint) error {
	var wantShared bool
	switch mp.Propagation {
	case mount.PropagationShared, mount.PropagationRShared:
		wantShared = true
	case mount.PropagationSlave, mount.PropagationRSlave:
	default:
		return nil
	}
	src, err := filepath.EvalSymlinks(mp.Source)
	if err != nil {
		return err
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mpoint string
	var optional []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 7 {
			continue
		}
		m := f[4]
		if (src == m || m == "/" || strings.HasPrefix(src, m+"/")) && len(m) >= len(mpoint) {
			mpoint = m
			optional = optional[:0]
			for _, o := range f[6:] {
				if o == "-" {
					break
				}
				optional = append(optional, o)
			}
		}
	}
	shared, slave := false, false
	for _, o := range optional {
		shared = shared || strings.HasPrefix(o, "shared:")
		slave = slave || strings.HasPrefix(o, "master:")
	}
	if wantShared && !shared {
		return errMsg(errInvalid, "path %s is mounted on %s but it is not a shared mount", mp.Source, mpoint)
	}
	if !wantShared && !shared && !slave {
		return errMsg(errInvalid, "path %s is mounted on %s but it is not a shared or slave mount", mp.Source, mpoint)
	}
	return nil
}

// volumeSubpath resolves sub beneath a volume's directory, refusing
// symlinks (a container sharing the volume could plant one pointing out).
func volumeSubpath(volDir, sub string) (string, error) {
	dfd, err := unix.Open(volDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat2(dfd, sub, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV})
	if err != nil {
		return "", errMsg(errInvalid, "cannot access path %s: %v", filepath.Join(volDir, sub), err)
	}
	unix.Close(fd)
	return filepath.Join(volDir, sub), nil
}

// unmountVolumes drops c's mount references (idempotent); c.mu is held.
func (d *Daemon) unmountVolumes(ctx context.Context, c *Container) {
	if d.vols == nil {
		return
	}
	for _, mp := range d.mountPointsOf(c.ID) {
		if mp.Type == mount.TypeVolume {
			wasMounted, err := d.vols.store.Unmount(ctx, mp.Name, c.ID)
			if err != nil {
				d.log.Warn("unmount volume", "volume", mp.Name, "err", err)
			}
			if wasMounted {
				d.publish(events.VolumeEventType, events.ActionUnmount, mp.Name, map[string]string{"driver": bvolume.DriverLocal, "container": c.ID})
			}
		}
	}
}

// removeMounts forgets a removed container's mounts: its user references
// go, and with removeAnonymous (rm -v, --rm) its anonymous volumes too
// unless another container (--volumes-from) still uses them.
func (d *Daemon) removeMounts(ctx context.Context, c *Container, removeAnonymous bool) {
	d.vols.mu.Lock()
	mps := d.vols.byCtr[c.ID]
	delete(d.vols.byCtr, c.ID)
	d.vols.mu.Unlock()
	for _, mp := range mps {
		if mp.Type != mount.TypeVolume {
			continue
		}
		d.vols.store.Release(mp.Name, c.ID)
		if removeAnonymous && mp.Anonymous {
			err := d.vols.store.Remove(ctx, mp.Name, true)
			switch {
			case err == nil:
				d.publish(events.VolumeEventType, events.ActionDestroy, mp.Name, map[string]string{"driver": bvolume.DriverLocal})
			case errdefs.IsConflict(err):
			default:
				d.log.Warn("remove anonymous volume", "volume", mp.Name, "err", err)
			}
		}
	}
}

// specMounts are c's mounts for spec generation.
func (d *Daemon) specMounts(c *Container) []spec.Mount {
	mps := d.mountPointsOf(c.ID)
	out := make([]spec.Mount, 0, len(mps))
	for _, mp := range mps {
		m := spec.Mount{Type: string(mp.Type), Source: mp.Source, Destination: mp.Destination, ReadOnly: !mp.RW,
			Propagation: string(mp.Propagation), NonRecursive: mp.NonRecursive,
			TmpfsSize: mp.TmpfsSize, TmpfsMode: mp.TmpfsMode, TmpfsOptions: mp.TmpfsOptions}
		if mp.Subpath != "" {
			m.Source = filepath.Join(mp.Source, mp.Subpath)
		}
		if mp.Type == mount.TypeTmpfs {
			m.Source = ""
			m.TmpfsMode = goFileMode(mp.TmpfsMode)
		}
		out = append(out, m)
	}
	return out
}

// goFileMode maps the raw set-id and sticky bits the docker CLI sends in
// TmpfsOptions.Mode (it parses "1770" as octal into a FileMode) to Go's
// flags, so "tmpfs-mode=1770" mounts with mode=1770 as docker's daemon does.
func goFileMode(m os.FileMode) os.FileMode {
	for raw, flag := range map[os.FileMode]os.FileMode{0o4000: os.ModeSetuid, 0o2000: os.ModeSetgid, 0o1000: os.ModeSticky} {
		if m&raw != 0 {
			m = m&^raw | flag
		}
	}
	return m
}

// inspectMounts is docker's "Mounts" of inspect and ps.
func (d *Daemon) inspectMounts(c *Container) []container.MountPoint {
	out := []container.MountPoint{}
	if d.vols == nil {
		return out
	}
	for _, mp := range d.mountPointsOf(c.ID) {
		if mp.Hidden {
			continue
		}
		m := container.MountPoint{Type: mp.Type, Name: mp.Name, Source: mp.Source, Destination: mp.Destination,
			Mode: mp.Mode, RW: mp.RW, Propagation: mp.Propagation}
		if mp.Type == mount.TypeVolume {
			m.Driver = bvolume.DriverLocal
		}
		if mp.Type == mount.TypeTmpfs {
			m.Source = ""
		}
		out = append(out, m)
	}
	return out
}

// usesVolume is ps's volume filter: a volume name or a mount destination.
func (d *Daemon) usesVolume(c *Container, vals []string) bool {
	for _, mp := range d.mountPointsOf(c.ID) {
		if mp.Hidden {
			continue
		}
		for _, v := range vals {
			if (mp.Type == mount.TypeVolume && mp.Name == v) || mp.Destination == v {
				return true
			}
		}
	}
	return false
}

// ---- volume API ------------------------------------------------------------

func (d *Daemon) apiVolume(v bvolume.Volume) volume.Volume {
	return volume.Volume{
		Name:       v.Name,
		Driver:     v.Driver,
		Mountpoint: v.Mountpoint,
		Labels:     v.Labels,
		Options:    v.Options,
		Scope:      "local",
		CreatedAt:  v.CreatedAt.Local().Format(time.RFC3339),
	}
}

// VolumeCreate implements backend.VolumeBackend.
func (d *Daemon) VolumeCreate(ctx context.Context, req volume.CreateRequest) (volume.Volume, error) {
	if req.Driver != "" && req.Driver != bvolume.DriverLocal {
		return volume.Volume{}, errMsg(errdefs.ErrNotFound, "create %s: error looking up volume plugin %s: plugin %q not found", req.Name, req.Driver, req.Driver)
	}
	v, isNew, err := d.vols.store.Create(ctx, req.Name, req.DriverOpts, req.Labels)
	if err != nil {
		return volume.Volume{}, err
	}
	if isNew {
		d.publish(events.VolumeEventType, events.ActionCreate, v.Name, map[string]string{"driver": v.Driver})
	}
	return d.apiVolume(v), nil
}

// VolumeInspect implements backend.VolumeBackend.
func (d *Daemon) VolumeInspect(ctx context.Context, name string) (volume.Volume, error) {
	v, err := d.vols.store.Get(ctx, name)
	if err != nil {
		return volume.Volume{}, err
	}
	return d.apiVolume(v), nil
}

// VolumeList implements backend.VolumeBackend: filters dangling, name
// (substring or glob), label (key or key=value, all must match), driver.
func (d *Daemon) VolumeList(ctx context.Context, f backend.Filters) (volume.ListResponse, error) {
	vs, err := d.vols.store.List(ctx)
	if err != nil {
		return volume.ListResponse{}, err
	}
	var dangling *bool
	if f.Has("dangling") {
		for _, v := range f.Get("dangling") {
			var b bool
			switch strings.ToLower(v) {
			case "true", "1":
				b = true
			case "false", "0":
			default:
				return volume.ListResponse{}, errMsg(errInvalid, "invalid filter 'dangling=%s'", v)
			}
			dangling = &b
		}
	}
	resp := volume.ListResponse{Volumes: []volume.Volume{}, Warnings: []string{}}
	for _, v := range vs {
		if !f.Match("name", v.Name) || !f.MatchKVList("label", v.Labels) || !f.ExactMatch("driver", v.Driver) {
			continue
		}
		if dangling != nil && (len(d.vols.store.Users(v.Name)) == 0) != *dangling {
			continue
		}
		resp.Volumes = append(resp.Volumes, d.apiVolume(v))
	}
	return resp, nil
}

// VolumeRemove implements backend.VolumeBackend.
func (d *Daemon) VolumeRemove(ctx context.Context, name string, force bool) error {
	if _, err := d.vols.store.Get(ctx, name); err != nil {
		if force && errdefs.IsNotFound(err) {
			return nil
		}
		return errMsg(errdefs.ErrNotFound, "get %s: no such volume", name)
	}
	if err := d.vols.store.Remove(ctx, name, force); err != nil {
		return err
	}
	d.publish(events.VolumeEventType, events.ActionDestroy, name, map[string]string{"driver": bvolume.DriverLocal})
	return nil
}

// VolumePrune implements backend.VolumeBackend: unused volumes, only the
// anonymous ones unless all=true, with label/label! filters. The API adds
// all=true for clients older than 1.42, which pruned named volumes too.
func (d *Daemon) VolumePrune(ctx context.Context, f backend.Filters) (volume.PruneReport, error) {
	if bad := f.Validate("label", "label!", "all"); bad != "" {
		return volume.PruneReport{}, errMsg(errInvalid, "invalid filter '%s'", bad)
	}
	all := false
	for _, v := range f.Get("all") {
		if b, err := strconv.ParseBool(v); err == nil && b {
			all = true
		}
	}
	vs, err := d.vols.store.List(ctx)
	if err != nil {
		return volume.PruneReport{}, err
	}
	rep := volume.PruneReport{VolumesDeleted: []string{}}
	for _, v := range vs {
		if !all && !v.Anonymous() {
			continue
		}
		if !f.MatchKVList("label", v.Labels) {
			continue
		}
		if f.Has("label!") && matchAnyLabel(f.Get("label!"), v.Labels) {
			continue
		}
		if len(d.vols.store.Users(v.Name)) > 0 {
			continue
		}
		size := d.vols.store.Size(ctx, v.Name)
		if err := d.vols.store.Remove(ctx, v.Name, false); err != nil {
			if errdefs.IsConflict(err) || errdefs.IsNotFound(err) {
				continue // taken or removed meanwhile
			}
			return rep, err
		}
		d.publish(events.VolumeEventType, events.ActionDestroy, v.Name, map[string]string{"driver": bvolume.DriverLocal})
		rep.VolumesDeleted = append(rep.VolumesDeleted, v.Name)
		if size > 0 {
			rep.SpaceReclaimed += uint64(size)
		}
	}
	d.publish(events.VolumeEventType, events.ActionPrune, "", map[string]string{"reclaimed": fmt.Sprint(rep.SpaceReclaimed)})
	return rep, nil
}

func matchAnyLabel(filters []string, labels map[string]string) bool {
	for _, fv := range filters {
		k, want, hasValue := strings.Cut(fv, "=")
		if got, ok := labels[k]; ok && (!hasValue || got == want) {
			return true
		}
	}
	return false
}

// volumeUsage is system df's volume list with sizes and reference counts.
func (d *Daemon) volumeUsage(ctx context.Context) []volume.Volume {
	vs, err := d.vols.store.List(ctx)
	if err != nil {
		return nil
	}
	out := make([]volume.Volume, 0, len(vs))
	for _, v := range vs {
		av := d.apiVolume(v)
		av.UsageData = &volume.UsageData{RefCount: int64(len(d.vols.store.Users(v.Name))), Size: d.vols.store.Size(ctx, v.Name)}
		out = append(out, av)
	}
	return out
}

// ---- docker cp into and out of mounts --------------------------------------

// The archive code resolves container paths against the rootfs fd, but a
// container's volumes and binds live only in its own mount namespace (and
// not at all while it is stopped). So a path at or below a mount
// destination is resolved against the mount's host directory instead, with
// the same RESOLVE_IN_ROOT confinement: a symlink in a volume stays in the
// volume. Limits: a copy of a directory that contains mount points does not
// descend into them, and a symlink on the rootfs leading into a mount is not
// redirected.
// pathMount is the mount that holds a container path.
type pathMount struct {
	src, dst, rel string // host directory or file, destination, path below it
	readOnly      bool
}

// containerPathMount finds the mount that holds container path p: the
// deepest destination that is p or a parent of it. ok is false when p is on
// the rootfs.
func (d *Daemon) containerPathMount(c *Container, p string) (pathMount, bool) {
	p = path.Clean("/" + p)
	best := -1
	var found mountPoint
	for _, mp := range d.mountPointsOf(c.ID) {
		if mp.Type == mount.TypeTmpfs {
			continue // in the container's namespace only, as in docker
		}
		if p == mp.Destination || strings.HasPrefix(p, mp.Destination+"/") {
			if n := len(mp.Destination); n > best {
				best, found = n, mp
			}
		}
	}
	if best < 0 {
		return pathMount{}, false
	}
	src := found.Source
	if found.Subpath != "" {
		src = filepath.Join(src, found.Subpath)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(p, found.Destination), "/")
	return pathMount{src: src, dst: found.Destination, rel: rel, readOnly: !found.RW}, true
}

// openMount opens the directory to resolve pm.rel against (a bind of a
// single file resolves its name in the file's directory) and the path.
func openMount(pm pathMount, p string) (int, string, error) {
	dir, rel := pm.src, pm.rel
	if fi, err := os.Stat(pm.src); err == nil && !fi.IsDir() {
		dir, rel = filepath.Dir(pm.src), filepath.Base(pm.src)
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", err
	}
	if strings.HasSuffix(p, "/.") {
		rel += "/."
	} else if strings.HasSuffix(p, "/") {
		rel += "/"
	}
	return fd, rel, nil
}

// resolveContainerPath is resolveIn(rootfd, p, follow) that sees c's mounts.
func (d *Daemon) resolveContainerPath(c *Container, rootfd int, p string, follow bool) (int, error) {
	pm, ok := d.containerPathMount(c, p)
	if !ok {
		return resolveIn(rootfd, p, follow)
	}
	mfd, rel, err := openMount(pm, p)
	if err != nil {
		return -1, err
	}
	defer unix.Close(mfd)
	return resolveIn(mfd, rel, follow)
}

// statContainerPath is statPath that sees c's mounts.
func (d *Daemon) statContainerPath(c *Container, rootfd int, p, ref string) (container.PathStat, error) {
	pm, ok := d.containerPathMount(c, p)
	if !ok {
		return statPath(rootfd, p, ref)
	}
	mfd, rel, err := openMount(pm, p)
	if err != nil {
		return container.PathStat{}, fileNotFound(p, ref)
	}
	defer unix.Close(mfd)
	st, err := statPath(mfd, rel, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return st, fileNotFound(p, ref)
		}
		return st, err
	}
	st.Name = path.Base(path.Clean("/" + p))
	if st.LinkTarget != "" {
		st.LinkTarget = path.Join(pm.dst, st.LinkTarget) // as the container sees it
	}
	return st, nil
}

// extractTargetReadOnly refuses docker cp into p with docker's errors: a
// read-only mount, or the read-only rootfs outside any writable mount.
func (d *Daemon) extractTargetReadOnly(c *Container, p string) error {
	pm, inMount := d.containerPathMount(c, p)
	switch {
	case inMount && pm.readOnly:
		return errMsg(errdefs.ErrInvalidArgument, "mounted volume is marked read-only")
	case inMount:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.HostConfig != nil && c.HostConfig.ReadonlyRootfs {
		return errMsg(errdefs.ErrInvalidArgument, "container rootfs is marked read-only")
	}
	return nil
}
