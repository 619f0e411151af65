// Package daemon is berth's orchestration layer: container records and their
// state machine, the per-container monitors, restart policies, events, and
// the glue between the image store, snapshots, spec generation and the OCI
// runtime. It implements the interfaces of internal/api/backend.
//
// Data flow of `docker run --rm busybox echo hi`: create (record + writable
// snapshot), attach (registered before start, connected to the monitor
// before the process runs), start (mount rootfs, network namespace, spec,
// monitor → runtime create, runtime start), exit (the monitor records it;
// the daemon cleans up and, with AutoRemove, removes the container).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/snapshot"
)

// Daemon is the running daemon. Methods are safe for concurrent use.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	db      *bbolt.DB
	images  *image.Store
	snaps   snapshot.Snapshotter
	ctrs    containers
	net     *network.Manager
	remap   *remapping // userns.go: nil without userns-remap
	vols    *volumeManager
	events  *eventBus
	started time.Time

	monitorPath string
	initPath    string
	selfDirs    []string // where helper binaries are looked up first

	// imageRefs orders image removal after the creates in flight: a
	// create holds it for reading from its image lookup until its record
	// is listed, removal for writing, so that removal's in-use check sees
	// every container that got the image.
	imageRefs sync.RWMutex

	initMu    sync.Mutex // making an init layer (initlayer.go)
	execTmpfs bool       // New mounted the exec root's tmpfs (execroot.go)

	execsMu sync.Mutex
	execs   map[string]*execProc

	wg       sync.WaitGroup // exit watchers
	closeCtx context.Context
	cancel   context.CancelFunc
}

// New opens the data root (refusing one another daemon holds), restores
// the containers recorded there and reattaches to those still running.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Daemon, error) {
	started := false
	cfg.SetDefaults()
	if log == nil {
		log = slog.Default()
	}
	remap, err := setupRemap(&cfg) // userns.go: moves the data root to <data-root>/<uid>.<gid>
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{cfg.DataRoot, cfg.ExecRoot, filepath.Join(cfg.DataRoot, "containers"), filepath.Join(cfg.ExecRoot, "containers")} {
		if err := os.MkdirAll(dir, 0o710); err != nil {
			return nil, err
		}
	}
	db, err := bbolt.Open(filepath.Join(cfg.DataRoot, "berth.db"), 0o600, &bbolt.Options{Timeout: 200 * time.Millisecond, NoFreelistSync: true})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("another berth daemon is using data root %s", cfg.DataRoot)
		}
		return nil, fmt.Errorf("open metadata: %w", err)
	}
	// With the data root's lock held: no other daemon is using this exec root.
	execTmpfs, err := memoryExecRoot(cfg.ExecRoot) // execroot.go
	if err != nil {
		log.Warn("exec root stays on disk", "dir", cfg.ExecRoot, "err", err)
	} else if execTmpfs {
		log.Info("mounted a tmpfs on the exec root", "dir", cfg.ExecRoot)
		defer func() {
			if !started {
				_ = unix.Unmount(cfg.ExecRoot, unix.MNT_DETACH)
			}
		}()
		if err := os.MkdirAll(filepath.Join(cfg.ExecRoot, "containers"), 0o710); err != nil {
			db.Close()
			return nil, err
		}
	}
	d := &Daemon{
		execTmpfs: execTmpfs,
		cfg:       cfg,
		log:       log,
		db:        db,
		ctrs:      containers{byID: map[string]*Container{}, byName: map[string]string{}},
		events:    newEventBus(),
		started:   time.Now(),
		execs:     map[string]*execProc{},
		remap:     remap,
	}
	d.closeCtx, d.cancel = context.WithCancel(context.Background())
	// Beside the path the daemon was started as (`berth daemon` execs
	// berthd by a path that may be a symlink), then beside the resolved
	// executable.
	if strings.Contains(os.Args[0], "/") {
		d.selfDirs = append(d.selfDirs, filepath.Dir(os.Args[0]))
	}
	if exe, err := os.Executable(); err == nil {
		d.selfDirs = append(d.selfDirs, filepath.Dir(exe))
	}
	d.monitorPath = d.findBinary(cfg.MonitorPath, "berth-monitor")
	d.initPath = d.findBinary(cfg.InitPath, "berth-init")

	snapRoot := filepath.Join(cfg.DataRoot, "snapshots")
	switch cfg.StorageDriver {
	case "", "overlay", "overlay2", "overlayfs":
		d.snaps, err = snapshot.NewOverlay(filepath.Join(snapRoot, "overlay"), db)
	case "native", "vfs":
		d.snaps, err = snapshot.NewNative(filepath.Join(snapRoot, "native"), db)
	default:
		err = fmt.Errorf("unknown storage driver %q (use overlay or native)", cfg.StorageDriver)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	sweepMountDirs(snapRoot) // initlayer.go: a crash's mounts, before the layers' sweep
	d.images, err = image.New(ctx, image.Options{
		Root:               filepath.Join(cfg.DataRoot, "content"),
		DB:                 db,
		Layers:             imageLayers{&image.SnapshotLayers{Snapshotter: d.snaps, Root: filepath.Join(cfg.DataRoot, "tmp")}}, // initlayer.go
		InsecureRegistries: cfg.InsecureRegistries,
		RegistryMirrors:    cfg.RegistryMirrors,
		Mirrors:            cfg.Mirrors,
		AuthConfigPath:     filepath.Join(cfg.DataRoot, "auth.json"),
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	// Networks before restore: restore releases the endpoints of containers
	// that exited while the daemon was down.
	d.net, err = d.newNetworkManager(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("networks: %w", err)
	}
	// Volumes before restore: restore's teardown of exited containers
	// drops their volume mounts.
	if err := d.openVolumes(ctx); err != nil {
		d.net.Close()
		db.Close()
		return nil, fmt.Errorf("volumes: %w", err)
	}
	if err := d.restore(ctx); err != nil {
		d.net.Close()
		db.Close()
		return nil, err
	}
	d.sweepVolumes(ctx)
	started = true
	return d, nil
}

// findBinary resolves one of berth's helper binaries: the configured path,
// else beside the running executable, else PATH.
func (d *Daemon) findBinary(configured, name string) string {
	if configured != "" {
		return configured
	}
	for _, dir := range d.selfDirs {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}

// runtimeFor resolves a container's OCI runtime name to a binary.
func (d *Daemon) runtimeFor(name string) (string, []string, error) {
	if name == "" {
		name = d.cfg.DefaultRuntime
	}
	if r, ok := d.cfg.Runtimes[name]; ok {
		return r.Path, r.Args, nil
	}
	switch name {
	case "berth", "berth-runtime":
		return d.findBinary("", "berth-runtime"), nil, nil
	case "runc", "crun":
		p, err := exec.LookPath(name)
		if err != nil {
			return "", nil, errMsg(errInvalid, "unknown or invalid runtime name: %s", name)
		}
		return p, nil, nil
	}
	return "", nil, errMsg(errInvalid, "unknown or invalid runtime name: %s", name)
}

// Close stops watching containers and closes the metadata. Containers and
// their monitors keep running.
func (d *Daemon) Close() error {
	d.cancel()
	d.wg.Wait()
	d.events.close()
	d.closeNetworks(context.Background())
	d.releaseExecRoot() // execroot.go
	return d.db.Close()
}

func (d *Daemon) containerDir(id string) string {
	return filepath.Join(d.cfg.DataRoot, "containers", id)
}

func (d *Daemon) stateDir(id string) string {
	return filepath.Join(d.cfg.ExecRoot, "containers", id)
}

func (d *Daemon) bundleDir(id string) string { return d.stateDir(id) }

func (d *Daemon) rootfsDir(id string) string { return filepath.Join(d.stateDir(id), "rootfs") }

func (d *Daemon) netnsPath(id string) string {
	return filepath.Join(d.cfg.ExecRoot, "netns", id)
}

func (d *Daemon) runtimeRoot() string { return filepath.Join(d.cfg.ExecRoot, "runtime") }

// sortedContainers lists containers newest first, as docker does.
func (d *Daemon) sortedContainers() []*Container {
	cs := d.ctrs.list()
	sort.Slice(cs, func(i, j int) bool { return cs[i].Created.After(cs[j].Created) })
	return cs
}
