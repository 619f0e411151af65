package daemon

// userns.go: the daemon-wide user namespace remapping (docker's
// --userns-remap / daemon.json "userns-remap").
//
// With remapping on, every container (unless --userns host) gets a user
// namespace in which its uid 0 is the first id of the remap user's
// subordinate range on the host. Storage, as laid out on disk:
//
//	<data-root>/                      0711: traversable, as docker makes it
//	  <uid>.<gid>/                    root:<gid> 0710, the daemon's data root
//	    berth.db, content/, ...        as without remapping
//	    snapshots/<driver>/...         image layers (unshifted, as pulled) and
//	                                   "userns-<uid>.<gid>-<chainID>": a flattened
//	                                   copy of an image's rootfs with every owner
//	                                   shifted into the range, made on first use
//	                                   and kept (the cache); remapped containers'
//	                                   writable layers sit on top of it
//
// docker unpacks layers into the remapped root with shifted owners; berth
// pulls unchanged and shifts a copy once per image (chain ID) and range,
// so a second container reuses it ("reusing shifted layers" in the log).
// The exec root's container directories are group-owned by the remap gid
// (0710) so the runtime, already inside the user namespace, can reach the
// rootfs and the etc files.

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/spec"
)

// defaultRemapUser is what "userns-remap": "default" means (docker's
// dockremap).
const defaultRemapUser = "berth"

// subRangeSize is the range "default" allocates, as docker's.
const subRangeSize = 65536

// remapping is the daemon's userns-remap setting, resolved.
type remapping struct {
	user, group string
	uids, gids  []specs.LinuxIDMapping
	mu          sync.Mutex // serializes making shifted layers
}

// rootUID / rootGID are the host ids of the containers' root.
func (r *remapping) rootUID() uint32 { return r.uids[0].HostID }
func (r *remapping) rootGID() uint32 { return r.gids[0].HostID }

// key names the range: "<uid>.<gid>", docker's directory name.
func (r *remapping) key() string { return fmt.Sprintf("%d.%d", r.rootUID(), r.rootGID()) }

// setupRemap resolves cfg.UsernsRemap ("", "default", "user", "user:group",
// "uid", "uid:gid"), creating the default user and its subordinate ranges
// when absent, and moves cfg.DataRoot to <data-root>/<uid>.<gid>. nil
// without remapping.
func setupRemap(cfg *Config) (*remapping, error) {
	spec := cfg.UsernsRemap
	if spec == "" {
		return nil, nil
	}
	name, group, _ := strings.Cut(spec, ":")
	if name == "default" {
		if group != "" {
			return nil, fmt.Errorf("userns-remap: \"default\" takes no group: %w", errdefs.ErrInvalidArgument)
		}
		name, group = defaultRemapUser, defaultRemapUser
		if err := ensureRemapUser(name); err != nil {
			return nil, err
		}
	}
	u, err := lookupUser(name)
	if err != nil {
		return nil, fmt.Errorf("userns-remap: user %q: %v: %w", name, err, errdefs.ErrInvalidArgument)
	}
	if group == "" {
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			return nil, fmt.Errorf("userns-remap: primary group of %q: %v: %w", name, err, errdefs.ErrInvalidArgument)
		}
		group = g.Name
	}
	g, err := lookupGroup(group)
	if err != nil {
		return nil, fmt.Errorf("userns-remap: group %q: %v: %w", group, err, errdefs.ErrInvalidArgument)
	}
	r := &remapping{user: u.Username, group: g.Name}
	if spec == "default" || strings.HasPrefix(spec, "default:") {
		if err := ensureSubRange("/etc/subuid", u.Username); err != nil {
			return nil, err
		}
		if err := ensureSubRange("/etc/subgid", g.Name); err != nil {
			return nil, err
		}
	}
	if r.uids, err = subRanges("/etc/subuid", u.Username, u.Uid); err != nil {
		return nil, err
	}
	if r.gids, err = subRanges("/etc/subgid", g.Name, g.Gid); err != nil {
		return nil, err
	}
	// docker: the data root stays traversable, the remapped root inside it
	// belongs to the remap group.
	if err := os.MkdirAll(cfg.DataRoot, 0o711); err != nil {
		return nil, err
	}
	if err := os.Chmod(cfg.DataRoot, 0o711); err != nil {
		return nil, err
	}
	cfg.DataRoot = filepath.Join(cfg.DataRoot, r.key())
	if err := os.MkdirAll(cfg.DataRoot, 0o710); err != nil {
		return nil, err
	}
	if err := os.Chown(cfg.DataRoot, 0, int(r.rootGID())); err != nil {
		return nil, err
	}
	return r, nil
}

func lookupUser(name string) (*user.User, error) {
	if _, err := strconv.Atoi(name); err == nil {
		return user.LookupId(name)
	}
	return user.Lookup(name)
}

func lookupGroup(name string) (*user.Group, error) {
	if _, err := strconv.Atoi(name); err == nil {
		return user.LookupGroupId(name)
	}
	return user.LookupGroup(name)
}

// ensureRemapUser creates the system user (and its group) docker would
// create for "default".
func ensureRemapUser(name string) error {
	if _, err := user.Lookup(name); err == nil {
		return nil
	}
	out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--shell", "/bin/false", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("userns-remap: create user %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// subLine is one "name:start:count" line of /etc/subuid or /etc/subgid.
type subLine struct {
	owner        string
	start, count uint64
}

func readSubFile(path string) ([]subLine, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []subLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		p := strings.Split(l, ":")
		if len(p) != 3 {
			continue
		}
		s, err1 := strconv.ParseUint(p[1], 10, 32)
		c, err2 := strconv.ParseUint(p[2], 10, 32)
		if err1 != nil || err2 != nil || c == 0 {
			continue
		}
		out = append(out, subLine{p[0], s, c})
	}
	return out, sc.Err()
}

// ensureSubRange appends a range of subRangeSize ids for owner to path
// when it has none, after every range already allocated (from 100000).
func ensureSubRange(path, owner string) error {
	lines, err := readSubFile(path)
	if err != nil {
		return err
	}
	next := uint64(100000)
	for _, l := range lines {
		if l.owner == owner {
			return nil
		}
		if e := l.start + l.count; e > next {
			next = e
		}
	}
	if next+subRangeSize > 1<<32-1 {
		return fmt.Errorf("userns-remap: no free subordinate id range left in %s", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	// Keep the file line-terminated if someone left the last line open.
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 && b[len(b)-1] != '\n' {
		_, _ = f.WriteString("\n")
	}
	_, err = fmt.Fprintf(f, "%s:%d:%d\n", owner, next, subRangeSize)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// subRanges turns owner's ranges (by name or numeric id) into id
// mappings: container ids 0.. over the ranges in file order, as docker.
func subRanges(path, name, id string) ([]specs.LinuxIDMapping, error) {
	lines, err := readSubFile(path)
	if err != nil {
		return nil, err
	}
	var out []specs.LinuxIDMapping
	next := uint32(0)
	for _, l := range lines {
		if l.owner != name && l.owner != id {
			continue
		}
		out = append(out, specs.LinuxIDMapping{ContainerID: next, HostID: uint32(l.start), Size: uint32(l.count)})
		next += uint32(l.count)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("userns-remap: no subordinate ranges for %q in %s: %w", name, path, errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// remapped reports whether a container runs in the remapped user namespace.
func (d *Daemon) remapped(hc *container.HostConfig) bool {
	return d.remap != nil && hc != nil && hc.UsernsMode != "host"
}

// prepareRootfs makes a container's writable snapshot: over the image's
// top layer, or under userns-remap over the image's shifted copy, with the
// root of the writable layer owned by the container's root.
func (d *Daemon) prepareRootfs(ctx context.Context, c *Container, img *image.Image) error {
	labels := map[string]string{"berth.container": c.ID}
	if !d.remapped(c.HostConfig) {
		parent := string(img.TopLayer())
		if _, ok := d.snaps.(snapshot.Rebaser); ok && parent != "" {
			// overlay: a child holds only its own changes (initlayer.go)
			var err error
			if parent, err = d.initLayer(ctx, parent); err != nil {
				return err
			}
		}
		_, err := d.snaps.Prepare(ctx, c.ID, parent, labels)
		return err
	}
	parent, err := d.shiftedLayer(ctx, string(img.TopLayer()))
	if err != nil {
		return err
	}
	m, err := d.snaps.Prepare(ctx, c.ID, parent, labels)
	if err != nil {
		return err
	}
	// overlay shows the upper directory's owner for /: make it the
	// container's root, as the shifted lower has it.
	if dir, _, _, ok := snapshot.ApplyTarget(m); ok {
		if err := os.Lchown(dir, int(d.remap.rootUID()), int(d.remap.rootGID())); err != nil {
			_ = d.snaps.Remove(ctx, c.ID)
			return err
		}
	}
	return nil
}

// rootfsParent names the committed snapshot a container's writable layer
// sits on: the image's top layer, or its shifted copy under remapping (for
// diffs against it on the native driver).
func (d *Daemon) rootfsParent(c *Container, img *image.Image) string {
	if d.remapped(c.HostConfig) {
		return "userns-" + d.remap.key() + "-" + string(img.TopLayer())
	}
	return string(img.TopLayer())
}

// shiftedLayer returns the committed snapshot holding the image (whose top
// layer has chain ID chain) shifted into the remap range, making it on
// first use.
func (d *Daemon) shiftedLayer(ctx context.Context, chain string) (string, error) {
	r := d.remap
	name := "userns-" + r.key() + "-" + chain
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := d.snaps.Stat(ctx, name); err == nil {
		d.log.Debug("userns: reusing shifted layers", "chain", chain, "range", r.key())
		return name, nil
	}
	work := "userns-work-" + r.key() + "-" + chain
	view := "userns-view-" + r.key() + "-" + chain
	_ = d.snaps.Remove(ctx, work) // left by a crash
	_ = d.snaps.Remove(ctx, view)
	vm, err := d.snaps.View(ctx, view, chain, nil)
	if err != nil {
		return "", fmt.Errorf("userns: view of %s: %w", chain, err)
	}
	defer func() { _ = d.snaps.Remove(context.WithoutCancel(ctx), view) }()
	src, err := os.MkdirTemp(filepath.Join(d.cfg.DataRoot, "snapshots"), mountDirPrefixes[1]) // swept by sweepMountDirs
	if err != nil {
		return "", err
	}
	defer os.Remove(src)
	if err := snapshot.MountAll(vm, src); err != nil {
		return "", fmt.Errorf("userns: mount view: %w", err)
	}
	defer func() { _ = snapshot.UnmountAll(src) }()
	wm, err := d.snaps.Prepare(ctx, work, "", nil)
	if err != nil {
		return "", err
	}
	dst, _, _, ok := snapshot.ApplyTarget(wm)
	if !ok {
		_ = d.snaps.Remove(ctx, work)
		return "", fmt.Errorf("userns: snapshot %s has no directory to copy into", work)
	}
	if err := snapshot.ShiftCopy(ctx, src, dst, idMaps(r.uids), idMaps(r.gids)); err != nil {
		_ = d.snaps.Remove(context.WithoutCancel(ctx), work)
		return "", fmt.Errorf("userns: shift image layers: %w", err)
	}
	if err := d.snaps.Commit(ctx, name, work, map[string]string{"berth.userns.chain": chain}); err != nil {
		_ = d.snaps.Remove(context.WithoutCancel(ctx), work)
		return "", err
	}
	d.log.Info("userns: shifted image layers", "chain", chain, "range", r.key())
	d.sweepShifted(ctx)
	return name, nil
}

// sweepShifted removes shifted copies whose image layers are gone (the
// image was removed) and that no container uses (Remove refuses a parent).
// It runs when a new copy is made, so the cache never outgrows the images
// by more than the removed ones since the last shift.
func (d *Daemon) sweepShifted(ctx context.Context) {
	shifted := map[string]string{} // name → chain; checked after the walk, outside its transaction
	_ = d.snaps.Walk(ctx, func(ctx context.Context, info snapshot.Info) error {
		if chain := info.Labels["berth.userns.chain"]; info.Kind == snapshot.Committed && strings.HasPrefix(info.Name, "userns-") && chain != "" {
			shifted[info.Name] = chain
		}
		return nil
	})
	for n, chain := range shifted {
		if _, err := d.snaps.Stat(ctx, chain); !errdefs.IsNotFound(err) {
			continue
		}
		if err := d.snaps.Remove(ctx, n); err == nil {
			d.log.Debug("userns: removed shifted layers of a removed image", "name", n)
		}
	}
}

func idMaps(in []specs.LinuxIDMapping) []snapshot.IDMap {
	out := make([]snapshot.IDMap, len(in))
	for i, m := range in {
		out[i] = snapshot.IDMap{Container: m.ContainerID, Host: m.HostID, Size: m.Size}
	}
	return out
}

// remapStateDir lets the remapped root reach a container's state directory
// (bundle, rootfs mount point) and its etc files: group-owned by the remap
// gid, 0710. A no-op without remapping.
func (d *Daemon) remapStateDir(c *Container) error {
	if !d.remapped(c.HostConfig) {
		return nil
	}
	gid := int(d.remap.rootGID())
	for _, dir := range []string{d.cfg.ExecRoot, filepath.Join(d.cfg.ExecRoot, "containers"), d.stateDir(c.ID),
		filepath.Join(d.cfg.DataRoot, "containers"), d.containerDir(c.ID)} {
		if err := os.Chown(dir, 0, gid); err != nil {
			return err
		}
		if err := os.Chmod(dir, 0o710); err != nil {
			return err
		}
	}
	return nil
}

// remapEtcFiles gives a remapped container's own hostname, hosts and
// resolv.conf to its root, as docker does, so that it can edit them.
// Another container's files (--network container:x) are left alone.
func (d *Daemon) remapEtcFiles(c *Container, paths ...string) error {
	if !d.remapped(c.HostConfig) {
		return nil
	}
	dir := d.stateDir(c.ID) + string(filepath.Separator)
	for _, p := range paths {
		if p == "" || !strings.HasPrefix(p, dir) {
			continue
		}
		if err := os.Lchown(p, int(d.remap.rootUID()), int(d.remap.rootGID())); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// specRemap sets the spec options' id mappings.
func (d *Daemon) specRemap(o *spec.Options) {
	if d.remap == nil {
		return
	}
	o.Daemon.UIDMappings = d.remap.uids
	o.Daemon.GIDMappings = d.remap.gids
}

// archiveIDMap is what archive.Apply shifts owners with when copying into
// a container (docker cp): nil (identity) unless it is remapped.
func (d *Daemon) archiveIDMap(c *Container) *archive.IDMap {
	if !d.remapped(c.HostConfig) {
		return nil
	}
	conv := func(in []specs.LinuxIDMapping) []archive.IDMapping {
		out := make([]archive.IDMapping, len(in))
		for i, m := range in {
			out[i] = archive.IDMapping{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size}
		}
		return out
	}
	return &archive.IDMap{UIDs: conv(d.remap.uids), GIDs: conv(d.remap.gids)}
}

// unshiftTar maps the owners in a tar of a remapped container's files
// (docker commit) from host ids back to container ids, as docker's
// idtools does when it archives a remapped root; otherwise rc itself. A
// host id outside the range is one the container saw as the overflow id
// 65534, and is written so; synthetic whiteout entries keep 0.
func (d *Daemon) unshiftTar(c *Container, rc io.ReadCloser) io.ReadCloser {
	if !d.remapped(c.HostConfig) {
		return rc
	}
	back := func(maps []specs.LinuxIDMapping, id int) int {
		for _, m := range maps {
			if id >= int(m.HostID) && id-int(m.HostID) < int(m.Size) {
				return int(m.ContainerID) + id - int(m.HostID)
			}
		}
		return 65534
	}
	pr, pw := io.Pipe()
	go func() {
		defer rc.Close()
		tr, tw := tar.NewReader(rc), tar.NewWriter(pw)
		err := func() error {
			for {
				hdr, err := tr.Next()
				if err == io.EOF {
					return tw.Close()
				}
				if err != nil {
					return err
				}
				if !strings.HasPrefix(filepath.Base(hdr.Name), ".wh.") {
					hdr.Uid, hdr.Gid = back(d.remap.uids, hdr.Uid), back(d.remap.gids, hdr.Gid)
				}
				hdr.Uname, hdr.Gname = "", ""
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				if _, err := io.Copy(tw, tr); err != nil {
					return err
				}
			}
		}()
		pw.CloseWithError(err)
	}()
	return pr
}
