package daemon

// docker commit and docker diff: both read the container's writable layer,
// the overlay upperdir of its snapshot (whiteouts are 0/0 character devices,
// opaque directories carry trusted.overlay.opaque=y).

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/berth-dev/berth/internal/archive"
	bimage "github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/snapshot"
)

// upperOf returns the writable directory of c's snapshot and its lower
// directories (top first); ok is false for a native (full copy) snapshot.
func (d *Daemon) upperOf(ctx context.Context, id string) (upper string, lowers []string, ok bool, err error) {
	mounts, err := d.snaps.Mounts(ctx, id)
	if err != nil {
		return "", nil, false, fmt.Errorf("writable layer of %s: %w", id[:12], err)
	}
	dir, wf, parents, ok := snapshot.ApplyTarget(mounts)
	if !ok || wf != archive.Overlay {
		return "", nil, false, nil
	}
	return dir, parents, true, nil
}

// ContainerChanges implements backend.ContainerInfoBackend: an upperdir
// walk. A whiteout is Deleted; a name absent from every lower layer is
// Added, else Modified; an opaque directory that hid a lower one is
// Modified and its entries Added; each changed path's directories are
// Modified.
func (d *Daemon) ContainerChanges(ctx context.Context, id string) ([]container.FilesystemChange, error) {
	c, err := d.ctrs.get(id)
	if err != nil {
		return nil, err
	}
	upper, lowers, ok, err := d.upperOf(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	kinds := map[string]container.ChangeType{}
	if !ok {
		if err := d.nativeChanges(ctx, c, kinds); err != nil {
			return nil, fmt.Errorf("diff %s: %w", c.ID[:12], err)
		}
		return changeList(kinds), nil
	}
	inLower := func(rel string) bool {
		for _, l := range lowers {
			if _, err := os.Lstat(filepath.Join(l, rel)); err == nil {
				return true
			}
		}
		return false
	}
	var opaque []string // opaque directories seen: their entries are new
	underOpaque := func(rel string) bool {
		for _, o := range opaque {
			if strings.HasPrefix(rel, o+"/") {
				return true
			}
		}
		return false
	}
	err = filepath.WalkDir(upper, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil // gone meanwhile
		}
		abs := "/" + filepath.ToSlash(rel)
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0:
			kinds[abs] = container.ChangeDelete
		case !underOpaque(rel) && inLower(rel):
			kinds[abs] = container.ChangeModify
		default:
			kinds[abs] = container.ChangeAdd
		}
		if de.IsDir() {
			v := make([]byte, 1)
			if n, err := unix.Lgetxattr(p, "trusted.overlay.opaque", v); err == nil && n == 1 && v[0] == 'y' {
				opaque = append(opaque, rel)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", c.ID[:12], err)
	}
	return changeList(kinds), nil
}

// changeList sorts the changes, without the etc files' mount points and
// with every changed path's directories.
func changeList(kinds map[string]container.ChangeType) []container.FilesystemChange {
	// The mount points of the bind-mounted etc files are created in the
	// writable layer; docker keeps them in a hidden init layer instead.
	for p := range etcMounts {
		if kinds["/"+p] == container.ChangeAdd {
			delete(kinds, "/"+p)
		}
	}
	for p := range kinds {
		for dir := filepath.Dir(p); dir != "/"; dir = filepath.Dir(dir) {
			if _, ok := kinds[dir]; !ok {
				kinds[dir] = container.ChangeModify
			}
		}
	}
	out := make([]container.FilesystemChange, 0, len(kinds))
	for p, k := range kinds {
		out = append(out, container.FilesystemChange{Path: p, Kind: k})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// etcMounts are the files the daemon bind-mounts into every container.
var etcMounts = map[string]bool{"etc/hostname": true, "etc/hosts": true, "etc/resolv.conf": true}

// ContainerCommit implements backend.ContainerAdminBackend. The new layer
// is the upperdir as a tar (whiteouts as .wh. entries); the config is the
// image's overlaid with the container's, then opts.Config, then
// opts.Changes. A running container is paused meanwhile unless
// opts.Pause is false.
func (d *Daemon) ContainerCommit(ctx context.Context, opts backend.CommitOptions) (container.CommitResponse, error) {
	c, err := d.ctrs.get(opts.Container)
	if err != nil {
		return container.CommitResponse{}, err
	}
	var ref string
	if opts.Repo != "" {
		ref = opts.Repo
		if opts.Tag != "" {
			ref += ":" + opts.Tag
		}
	} else if opts.Tag != "" {
		return container.CommitResponse{}, errMsg(errdefs.ErrInvalidArgument, "invalid reference format: repository name must be given with a tag")
	}
	c.mu.Lock()
	imgID, ctrCfg := c.Image, c.Config
	status := c.State.Status
	c.mu.Unlock()
	img, err := d.images.Get(ctx, imgID)
	if err != nil {
		return container.CommitResponse{}, fmt.Errorf("image of container %s: %w", c.ID[:12], err)
	}
	cfg := img.Config.Config
	// Copies: the merge below must not write into the image's own.
	cfg.Env = append([]string(nil), cfg.Env...)
	cfg.ExposedPorts = maps.Clone(cfg.ExposedPorts)
	cfg.Volumes = maps.Clone(cfg.Volumes)
	cfg.Labels = maps.Clone(cfg.Labels)
	mergeConfig(&cfg, ctrCfg)
	mergeConfig(&cfg, opts.Config)
	changeHealth, changes, err := healthChanges(opts.Changes)
	if err != nil {
		return container.CommitResponse{}, err
	}
	if err := bimage.ApplyChanges(&cfg, changes); err != nil {
		return container.CommitResponse{}, err
	}
	// docker: the request's (or --change's) healthcheck, its unset fields
	// from the container's, which already holds the image's.
	var health *container.HealthConfig
	if opts.Config != nil {
		health = opts.Config.Healthcheck
	}
	if changeHealth != nil {
		health = changeHealth
	}
	if ctrCfg != nil {
		health = mergeHealth(health, ctrCfg.Healthcheck)
	}

	if opts.Pause && status == container.StateRunning {
		if err := d.ContainerPause(ctx, c.ID); err == nil {
			defer func() { _ = d.ContainerUnpause(context.WithoutCancel(ctx), c.ID) }()
		}
	}

	upper, _, ok, err := d.upperOf(ctx, c.ID)
	if err != nil {
		return container.CommitResponse{}, err
	}
	var layer io.ReadCloser
	if ok {
		// The fd walker, not archive.WriteTar: with --pause=false the
		// container may swap a directory of its upperdir for a symlink
		// while it is read.
		fd, err := unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return container.CommitResponse{}, fmt.Errorf("open writable layer: %w", err)
		}
		layer = streamTar(ctx, true, func(t *fdTar) error { return t.children(fd, "") }, func() { unix.Close(fd) })
	} else {
		// Native snapshot: diff the full copy against a view of the image.
		layer, _, err = d.nativeDiff(ctx, c.ID, d.rootfsParent(c, img)) // userns.go
		if err != nil {
			return container.CommitResponse{}, err
		}
	}
	layer = d.unshiftTar(c, layer) // userns.go: container ids under userns-remap
	defer layer.Close()
	createdBy := ""
	if ctrCfg != nil {
		p, args := commandOf(ctrCfg, img.Config.Config)
		createdBy = strings.TrimSpace(p + " " + strings.Join(args, " "))
	}
	newImg, err := d.images.Commit(ctx, layer, bimage.CommitOptions{
		Parent: imgID, Ref: ref, Config: cfg, Author: opts.Author, Comment: opts.Comment, CreatedBy: createdBy,
		Healthcheck: health,
	})
	if err != nil {
		return container.CommitResponse{}, err
	}
	c.mu.Lock()
	d.containerEvent(c, events.ActionCommit, map[string]string{"comment": opts.Comment})
	c.mu.Unlock()
	return container.CommitResponse{ID: newImg.ID.String()}, nil
}

// nativeDiff tars the difference between a native snapshot and a
// read-only view of its parent (parentDir, valid until the reader is
// closed). It walks by path names: unlike the overlay case it is not safe
// against a running container swapping in symlinks, so commit pauses by
// default.
func (d *Daemon) nativeDiff(ctx context.Context, id, parent string) (rc io.ReadCloser, parentDir string, err error) {
	mounts, err := d.snaps.Mounts(ctx, id)
	if err != nil {
		return nil, "", err
	}
	dir, _, _, ok := snapshot.ApplyTarget(mounts)
	if !ok {
		return nil, "", errMsg(errdefs.ErrNotImplemented, "unsupported snapshot mounts")
	}
	var cleanup func()
	if parent != "" {
		key := "diff-view-" + newID()[:16] + "-" + id
		vm, err := d.snaps.View(ctx, key, parent, nil)
		if err != nil {
			return nil, "", err
		}
		cleanup = func() { _ = d.snaps.Remove(context.WithoutCancel(ctx), key) }
		if len(vm) != 1 || vm[0].Type != "bind" {
			cleanup()
			return nil, "", errMsg(errdefs.ErrNotImplemented, "unsupported view mounts")
		}
		parentDir = vm[0].Source
	} else {
		if err := os.MkdirAll(filepath.Join(d.cfg.DataRoot, "tmp"), 0o700); err != nil {
			return nil, "", err
		}
		empty, err := os.MkdirTemp(filepath.Join(d.cfg.DataRoot, "tmp"), "empty-")
		if err != nil {
			return nil, "", err
		}
		parentDir = empty
		cleanup = func() { os.Remove(empty) }
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(archive.WriteTar(ctx, dir, pw, archive.TarOptions{Parent: parentDir}))
	}()
	return &doneCloser{PipeReader: pr, done: done, cleanup: cleanup}, parentDir, nil
}

// doneCloser closes the pipe, waits for its writer, then cleans up.
type doneCloser struct {
	*io.PipeReader
	done    chan struct{}
	cleanup func()
}

func (c *doneCloser) Close() error {
	err := c.PipeReader.Close()
	<-c.done
	c.cleanup()
	return err
}

// nativeChanges reads a native snapshot's diff tar as docker's changes.
func (d *Daemon) nativeChanges(ctx context.Context, c *Container, kinds map[string]container.ChangeType) error {
	c.mu.Lock()
	imgID := c.Image
	c.mu.Unlock()
	img, err := d.images.Get(ctx, imgID)
	if err != nil {
		return err
	}
	rc, parentDir, err := d.nativeDiff(ctx, c.ID, d.rootfsParent(c, img)) // userns.go
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		dir, base := path.Split(name)
		switch {
		case strings.HasPrefix(base, ".wh."):
			kinds["/"+dir+strings.TrimPrefix(base, ".wh.")] = container.ChangeDelete
		default:
			if _, err := os.Lstat(filepath.Join(parentDir, name)); err == nil {
				kinds["/"+name] = container.ChangeModify
			} else {
				kinds["/"+name] = container.ChangeAdd
			}
		}
	}
}

// mergeConfig overlays the set fields of c on an image config, as docker
// merges a container's config with its image's.
func mergeConfig(dst *ocispec.ImageConfig, c *container.Config) {
	if c == nil {
		return
	}
	if c.User != "" {
		dst.User = c.User
	}
	if c.WorkingDir != "" {
		dst.WorkingDir = c.WorkingDir
	}
	if c.StopSignal != "" {
		dst.StopSignal = c.StopSignal
	}
	switch {
	case len(c.Entrypoint) == 1 && c.Entrypoint[0] == "":
		dst.Entrypoint, dst.Cmd = nil, c.Cmd
	case len(c.Entrypoint) > 0:
		dst.Entrypoint, dst.Cmd = c.Entrypoint, c.Cmd
	case len(c.Cmd) > 0:
		dst.Cmd = c.Cmd
	}
	for _, kv := range c.Env {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, e := range dst.Env {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				dst.Env[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			dst.Env = append(dst.Env, kv)
		}
	}
	for p := range c.ExposedPorts {
		if dst.ExposedPorts == nil {
			dst.ExposedPorts = map[string]struct{}{}
		}
		dst.ExposedPorts[p.String()] = struct{}{}
	}
	for v := range c.Volumes {
		if dst.Volumes == nil {
			dst.Volumes = map[string]struct{}{}
		}
		dst.Volumes[v] = struct{}{}
	}
	for k, v := range c.Labels {
		if dst.Labels == nil {
			dst.Labels = map[string]string{}
		}
		dst.Labels[k] = v
	}
}

// mergeHealth is docker's commit merge: over's unset fields (no Test, zero
// durations and retries) from base; a nil over takes base whole. Neither
// argument is modified.
func mergeHealth(over, base *container.HealthConfig) *container.HealthConfig {
	if base == nil {
		return over
	}
	if over == nil {
		cp := *base
		return &cp
	}
	h := *over
	if len(h.Test) == 0 {
		h.Test = base.Test
	}
	if h.Interval == 0 {
		h.Interval = base.Interval
	}
	if h.Timeout == 0 {
		h.Timeout = base.Timeout
	}
	if h.StartPeriod == 0 {
		h.StartPeriod = base.StartPeriod
	}
	if h.StartInterval == 0 {
		h.StartInterval = base.StartInterval
	}
	if h.Retries == 0 {
		h.Retries = base.Retries
	}
	return &h
}

// healthChanges takes the HEALTHCHECK instructions out of changes (the
// image package applies the rest); the last one wins, as in a Dockerfile.
func healthChanges(changes []string) (*container.HealthConfig, []string, error) {
	var (
		health *container.HealthConfig
		rest   []string
	)
	for _, ch := range changes {
		instr, args, _ := strings.Cut(strings.TrimSpace(ch), " ")
		if !strings.EqualFold(instr, "HEALTHCHECK") {
			rest = append(rest, ch)
			continue
		}
		h, err := parseHealthcheck(args)
		if err != nil {
			return nil, nil, err // docker's message alone, as its commit prints it
		}
		health = h
	}
	return health, rest, nil
}

// parseHealthcheck parses the arguments of a Dockerfile HEALTHCHECK with
// moby's rules: leading --name=value flags (interval, timeout,
// start-period, start-interval, retries), then NONE, or CMD with a JSON
// array (exec form: Test ["CMD", args...]) or a command line (shell form:
// ["CMD-SHELL", line]). Durations must be 0 or at least 1ms; unset values
// stay 0 (inherit).
func parseHealthcheck(args string) (*container.HealthConfig, error) {
	bad := func(format string, a ...any) error { return errMsg(errdefs.ErrInvalidArgument, format, a...) }
	flags := map[string]string{}
	args = strings.TrimSpace(args)
	for strings.HasPrefix(args, "--") {
		word, after, _ := strings.Cut(args, " ")
		args = strings.TrimSpace(after)
		if word == "--" {
			break
		}
		name, value, ok := strings.Cut(word[2:], "=")
		switch name {
		case "interval", "timeout", "start-period", "start-interval", "retries":
		default:
			return nil, bad("Unknown flag: %s", name)
		}
		if !ok {
			return nil, bad("Missing a value on flag: %s", name)
		}
		if _, dup := flags[name]; dup {
			return nil, bad("Duplicate flag specified: %s", name)
		}
		flags[name] = value
	}
	if args == "" {
		return nil, bad("HEALTHCHECK requires at least one argument")
	}
	typ, cmd, _ := strings.Cut(args, " ")
	cmd = strings.TrimSpace(cmd)
	switch strings.ToUpper(typ) {
	case "NONE":
		// moby registers no flags for NONE and does not check them.
		if cmd != "" {
			return nil, bad("HEALTHCHECK NONE takes no arguments")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	case "CMD":
	default:
		return nil, bad("Unknown type %q in HEALTHCHECK (try CMD)", strings.ToUpper(typ))
	}
	h := &container.HealthConfig{}
	var argv []string
	if strings.HasPrefix(cmd, "[") && json.Unmarshal([]byte(cmd), &argv) == nil {
		h.Test = append([]string{"CMD"}, argv...)
	} else if cmd != "" {
		h.Test = []string{"CMD-SHELL", cmd}
	}
	if len(h.Test) < 2 {
		return nil, bad("Missing command after HEALTHCHECK CMD")
	}
	for name, dst := range map[string]*time.Duration{
		"interval": &h.Interval, "timeout": &h.Timeout, "start-period": &h.StartPeriod, "start-interval": &h.StartInterval,
	} {
		v := flags[name]
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, bad("%v", err)
		}
		if d != 0 && d < minHealthDuration {
			return nil, bad("Interval %q cannot be less than %s", name, minHealthDuration)
		}
		*dst = d
	}
	if v := flags["retries"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return nil, bad("%v", err)
		}
		if n < 0 {
			return nil, bad("--retries cannot be negative (%d)", n)
		}
		h.Retries = int(n)
	}
	return h, nil
}
