// Package volume is berth's "local" volume driver: named directories kept
// under the daemon's data root, optionally backed by a filesystem that is
// mounted on first use (docker's -o type=… device=… o=…).
//
// On-disk layout (owned by this package; docker's, minus its bbolt file):
//
//	<root>/                      (<data-root>/volumes)
//	└── <name>/
//	    ├── volume.json          {"Labels":{…},"Options":{…},"CreatedAt":"…"}
//	    └── _data/               the content, or the mountpoint of Options' device
//
// volume.json is written (atomically, by rename) before _data exists, so a
// directory without volume.json is a crash leftover that Open removes.
//
// Two counts per volume, both keyed by a caller reference (a container ID):
// users are the containers that refer to it (created or running; a volume
// with users cannot be removed), mounts are the running ones (a device-backed
// volume is mounted while there is at least one). The daemon rebuilds both
// from its container records after a restart.
package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// DriverLocal is the only driver berth has.
const DriverLocal = "local"

// LabelAnonymous marks volumes created without a name (docker 23+): prune
// removes only these unless asked for all.
const LabelAnonymous = "com.docker.volume.anonymous"

// Volume describes one volume.
type Volume struct {
	Name       string
	Driver     string
	Mountpoint string // <root>/<name>/_data
	Labels     map[string]string
	Options    map[string]string
	CreatedAt  time.Time
}

// Anonymous says whether the volume was created without a name.
func (v Volume) Anonymous() bool {
	_, ok := v.Labels[LabelAnonymous]
	return ok
}

type meta struct {
	Labels    map[string]string `json:"Labels,omitempty"`
	Options   map[string]string `json:"Options,omitempty"`
	CreatedAt time.Time         `json:"CreatedAt"`
}

type entry struct {
	Volume
	users   map[string]struct{} // references that keep it from removal
	mounts  map[string]struct{} // references that have it mounted
	mounted bool                // the device is mounted on _data
}

// Store is the set of local volumes. Methods are safe for concurrent use;
// one mutex covers the map and the per-volume counts (volume operations are
// rare and short, except the device mount, which is a single syscall).
type Store struct {
	root string
	mu   sync.Mutex
	vols map[string]*entry
}

// nameRE is docker's RestrictedNamePattern; names have at least two chars.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

const restrictedNameChars = `[a-zA-Z0-9][a-zA-Z0-9_.-]`

// ValidateName returns docker's errors for a bad local volume name.
func ValidateName(name string) error {
	if len(name) == 1 {
		return errdefs.ErrInvalidArgument.WithMessage("volume name is too short, names should be at least two alphanumeric characters")
	}
	if !nameRE.MatchString(name) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path", name, restrictedNameChars))
	}
	return nil
}

// validOptions are the keys docker's local driver accepts on Linux
// (size needs project quotas, which berth does not manage).
var validOptions = map[string]bool{"type": true, "device": true, "o": true}

func validateOptions(opts map[string]string) error {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "size" {
			return errdefs.ErrInvalidArgument.WithMessage("quota size requested but no quota support")
		}
		if !validOptions[k] {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid option: %q", k))
		}
	}
	if opts["type"] != "" && opts["device"] == "" && opts["type"] != "tmpfs" {
		return errdefs.ErrInvalidArgument.WithMessage("missing required option: \"device\"")
	}
	if strings.Contains(","+opts["o"]+",", ",bind,") || strings.Contains(","+opts["o"]+",", ",rbind,") {
		if opts["device"] == "" {
			return errdefs.ErrInvalidArgument.WithMessage("missing required option: \"device\"")
		}
	}
	return nil
}

// Open loads the volumes under root, creating it if needed.
func Open(ctx context.Context, root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("volumes root: %w", err)
	}
	s := &Store{root: root, vols: map[string]*entry{}}
	des, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("volumes root: %w", err)
	}
	for _, de := range des {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !de.IsDir() {
			continue
		}
		dir := filepath.Join(root, de.Name())
		b, err := os.ReadFile(filepath.Join(dir, "volume.json"))
		if errors.Is(err, os.ErrNotExist) {
			_ = unix.Unmount(filepath.Join(dir, "_data"), unix.MNT_DETACH)
			_ = os.RemoveAll(dir) // creation interrupted
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", de.Name(), err)
		}
		var m meta
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("volume %s: %w", de.Name(), err)
		}
		e := s.newEntry(de.Name(), m)
		e.mounted = isMountpoint(e.Mountpoint)
		s.vols[e.Name] = e
	}
	return s, nil
}

func (s *Store) newEntry(name string, m meta) *entry {
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	if m.Options == nil {
		m.Options = map[string]string{}
	}
	return &entry{
		Volume: Volume{Name: name, Driver: DriverLocal, Mountpoint: filepath.Join(s.root, name, "_data"),
			Labels: m.Labels, Options: m.Options, CreatedAt: m.CreatedAt},
		users:  map[string]struct{}{},
		mounts: map[string]struct{}{},
	}
}

// Create makes a volume. An empty name makes an anonymous one with a random
// 64-hex name. An existing name returns that volume unchanged (created
// false), as docker does.
func (s *Store) Create(ctx context.Context, name string, opts, labels map[string]string) (Volume, bool, error) {
	return s.create(ctx, name, opts, labels, "")
}

// CreateAndAcquire is Create followed by Acquire(ref) under one lock, so
// that a concurrent Remove or prune cannot take the volume in between.
func (s *Store) CreateAndAcquire(ctx context.Context, name string, opts, labels map[string]string, ref string) (Volume, bool, error) {
	return s.create(ctx, name, opts, labels, ref)
}

func (s *Store) create(ctx context.Context, name string, opts, labels map[string]string, ref string) (Volume, bool, error) {
	if err := ctx.Err(); err != nil {
		return Volume{}, false, err
	}
	if name == "" {
		var b [32]byte
		_, _ = rand.Read(b[:])
		name = hex.EncodeToString(b[:])
		labels = cloneMap(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelAnonymous] = ""
	}
	if err := ValidateName(name); err != nil {
		return Volume{}, false, wrapMsg(err, "create "+name)
	}
	if err := validateOptions(opts); err != nil {
		return Volume{}, false, wrapMsg(err, "create "+name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.vols[name]; ok {
		if ref != "" {
			e.users[ref] = struct{}{}
		}
		return e.copy(), false, nil
	}
	m := meta{Labels: cloneMap(labels), Options: cloneMap(opts), CreatedAt: time.Now().UTC().Truncate(time.Second)}
	dir := filepath.Join(s.root, name)
	if err := os.Mkdir(dir, 0o701); err != nil && !errors.Is(err, os.ErrExist) {
		return Volume{}, false, fmt.Errorf("create %s: %w", name, err)
	}
	b, _ := json.Marshal(m)
	if err := writeFileAtomic(filepath.Join(dir, "volume.json"), b); err != nil {
		_ = os.RemoveAll(dir)
		return Volume{}, false, fmt.Errorf("create %s: %w", name, err)
	}
	if err := os.Mkdir(filepath.Join(dir, "_data"), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		_ = os.RemoveAll(dir)
		return Volume{}, false, fmt.Errorf("create %s: %w", name, err)
	}
	e := s.newEntry(name, m)
	if ref != "" {
		e.users[ref] = struct{}{}
	}
	s.vols[name] = e
	return e.copy(), true, nil
}

func writeFileAtomic(p string, b []byte) error {
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

func (e *entry) copy() Volume {
	v := e.Volume
	v.Labels = cloneMap(v.Labels)
	v.Options = cloneMap(v.Options)
	return v
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// wrapMsg prefixes an errdefs-classified error's message, keeping its class.
func wrapMsg(err error, prefix string) error {
	switch {
	case errdefs.IsInvalidArgument(err):
		return errdefs.ErrInvalidArgument.WithMessage(prefix + ": " + err.Error())
	case errdefs.IsNotFound(err):
		return errdefs.ErrNotFound.WithMessage(prefix + ": " + err.Error())
	case errdefs.IsConflict(err):
		return errdefs.ErrConflict.WithMessage(prefix + ": " + err.Error())
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

func errNoSuch(op, name string) error {
	return errdefs.ErrNotFound.WithMessage(op + " " + name + ": no such volume")
}

// Get returns one volume; docker's "get NAME: no such volume" if missing.
func (s *Store) Get(ctx context.Context, name string) (Volume, error) {
	if err := ctx.Err(); err != nil {
		return Volume{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return Volume{}, errNoSuch("get", name)
	}
	return e.copy(), nil
}

// List returns all volumes sorted by name.
func (s *Store) List(ctx context.Context) ([]Volume, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Volume, 0, len(s.vols))
	for _, e := range s.vols {
		out = append(out, e.copy())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Users returns the references that use the volume, sorted.
func (s *Store) Users(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(e.users))
	for u := range e.users {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// Acquire records that ref uses the volume (idempotent).
func (s *Store) Acquire(ctx context.Context, name, ref string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return errNoSuch("get", name)
	}
	e.users[ref] = struct{}{}
	return nil
}

// Release drops ref's use of the volume (idempotent; unknown names are
// ignored, the volume may be gone already).
func (s *Store) Release(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.vols[name]; ok {
		delete(e.users, ref)
	}
}

// Remove deletes a volume and its data. A volume with users is a conflict
// (docker's "remove NAME: volume is in use - [ids]"), force or not; force
// only makes a missing volume no error.
func (s *Store) Remove(ctx context.Context, name string, force bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		if force {
			return nil
		}
		return errNoSuch("get", name)
	}
	if len(e.users) > 0 {
		users := make([]string, 0, len(e.users))
		for u := range e.users {
			users = append(users, u)
		}
		slices.Sort(users)
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("remove %s: volume is in use - [%s]", name, strings.Join(users, ", ")))
	}
	if e.mounted {
		if err := unix.Unmount(e.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("remove %s: unmount: %w", name, err)
		}
		e.mounted = false
	}
	dir := filepath.Join(s.root, name)
	// volume.json first: a crash midway leaves a directory Open sweeps.
	if err := os.Remove(filepath.Join(dir, "volume.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	delete(s.vols, name)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// Mount makes the volume's content available for ref and returns its host
// path. A device-backed volume is mounted by the first ref and stays
// mounted until the last one calls Unmount.
func (s *Store) Mount(ctx context.Context, name, ref string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return "", errNoSuch("get", name)
	}
	if e.needsMount() && !e.mounted {
		if err := mountDevice(e.Options, e.Mountpoint); err != nil {
			return "", fmt.Errorf("error while mounting volume '%s': %w", e.Mountpoint, err)
		}
		e.mounted = true
	}
	e.mounts[ref] = struct{}{}
	return e.Mountpoint, nil
}

// Unmount releases ref's mount; the last one unmounts the device.
// Idempotent: had says whether ref had it mounted.
func (s *Store) Unmount(ctx context.Context, name, ref string) (had bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return false, nil
	}
	_, had = e.mounts[ref]
	delete(e.mounts, ref)
	if len(e.mounts) == 0 && e.mounted {
		if err := unix.Unmount(e.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return had, fmt.Errorf("unmount volume %s: %w", name, err)
		}
		e.mounted = false
	}
	return had, nil
}

// Sweep unmounts device-backed volumes that nobody has mounted: after a
// daemon restart, the mounts of containers that exited meanwhile.
func (s *Store) Sweep(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.vols {
		if e.mounted && len(e.mounts) == 0 {
			if unix.Unmount(e.Mountpoint, unix.MNT_DETACH) == nil {
				e.mounted = false
			}
		}
	}
}

// Mounted reports whether the volume's device is mounted (for tests).
func (s *Store) Mounted(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	return ok && e.mounted
}

func (e *entry) needsMount() bool {
	return e.Options["type"] != "" || e.Options["device"] != ""
}

// mountFlags are the mount(8) options that are flags, not filesystem data.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "diratime": {true, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME},
	"bind":        {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"defaults": {false, 0},
}

// parseMountOptions splits "o" into mount flags and filesystem data.
func parseMountOptions(o string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, opt := range strings.Split(o, ",") {
		if opt == "" {
			continue
		}
		if f, ok := mountFlags[opt]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, opt)
	}
	return flags, strings.Join(data, ",")
}

// mountDevice mounts the volume's device as docker's local driver does:
// mount(device, _data, type, o). A bind's read-only needs a remount.
func mountDevice(opts map[string]string, target string) error {
	flags, data := parseMountOptions(opts["o"])
	typ, dev := opts["type"], opts["device"]
	if dev == "" {
		dev = typ
	}
	if flags&unix.MS_BIND != 0 {
		typ = "none"
		data = ""
	}
	if err := unix.Mount(dev, target, typ, flags, data); err != nil {
		return err
	}
	if flags&unix.MS_BIND != 0 && flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return err
		}
	}
	return nil
}

// isMountpoint reports whether p is the root of a mount (its device
// differs from its parent's, or it is a bind of a directory of the same
// filesystem, which only mountinfo tells).
func isMountpoint(p string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && unescapeMountinfo(f[4]) == p {
			return true
		}
	}
	return false
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Size is the disk usage of the volume's content in bytes (blocks, as du);
// -1 when it cannot be measured.
func (s *Store) Size(ctx context.Context, name string) int64 {
	s.mu.Lock()
	e, ok := s.vols[name]
	var mp string
	if ok {
		mp = e.Mountpoint
	}
	s.mu.Unlock()
	if !ok {
		return -1
	}
	var total int64
	err := filepath.WalkDir(mp, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*unix.Stat_t); ok && p != mp {
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return total
}
