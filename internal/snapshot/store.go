package snapshot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Metadata lives in the daemon's bbolt file, under a top-level bucket this
// package owns:
//
//	snapshots/                       top-level bucket (bucketRoot)
//	└── <driver>/                    "overlay" or "native"
//	    └── snapshots/               sequence = highest directory id handed out
//	        └── <key or name>/       one bucket per snapshot
//	            ├── id       uint64 big-endian: the directory <root>/snapshots/<id>
//	            ├── kind     1 byte (View, Active, Committed)
//	            ├── parent   name of the committed parent (absent for a base)
//	            ├── created  int64 unix nanoseconds, big-endian
//	            ├── updated  int64 unix nanoseconds, big-endian
//	            ├── size     int64: Usage.Size of a committed snapshot (on first Usage)
//	            ├── inodes   int64: Usage.Inodes, likewise (absent: not measured yet)
//	            ├── labels/  label → value
//	            └── children/  child key → empty (only committed snapshots have any)
//
// On disk, each snapshot is a directory named by its id (short, so that
// overlay's lowerdir lists stay short):
//
//	<root>/snapshots/<id>/fs     the snapshot's tree (overlay: its upper layer)
//	<root>/snapshots/<id>/work   overlay workdir (overlay, Active only)
//	<root>/snapshots/new-<id>    being created
//	<root>/snapshots/rm-<id>     being removed
//
// Ordering, so that a crash leaves garbage but never a record pointing at
// nothing: create builds new-<id>, renames it to <id>, and only then records
// it; Remove deletes the record, then renames <id> to rm-<id> and deletes
// it. Cleanup removes every directory without a record. Filesystem work
// (copying a parent, measuring usage, deleting trees) is never done inside a
// bbolt write transaction, which would block every other writer.
var (
	bucketRoot     = []byte("snapshots")
	bucketSnaps    = []byte("snapshots")
	bucketLabels   = []byte("labels")
	bucketChildren = []byte("children")
	keyID          = []byte("id")
	keyKind        = []byte("kind")
	keyParent      = []byte("parent")
	keyCreated     = []byte("created")
	keyUpdated     = []byte("updated")
	keySize        = []byte("size")
	keyInodes      = []byte("inodes")
)

// driver is what differs between overlay and native: how a new snapshot's
// directory is populated and which mounts assemble it.
type driver interface {
	name() string
	// create populates dir (a fresh directory) for a snapshot whose parent
	// chain has the fs directories parents (top first).
	create(ctx context.Context, dir string, kind Kind, parents []string) error
	mounts(dir string, kind Kind, parents []string) []Mount
}

type snapshotter struct {
	root   string // holds snapshots/
	db     *bolt.DB
	drv    driver
	nextID atomic.Uint64

	mu       sync.Mutex
	inflight map[uint64]bool // ids being created: Cleanup keeps their dirs
}

func newSnapshotter(ctx context.Context, root string, db *bolt.DB, drv driver) (*snapshotter, error) {
	if strings.ContainsAny(root, ":,") {
		return nil, fmt.Errorf("snapshot root %q: ':' and ',' cannot appear in overlay mount options: %w", root, errdefs.ErrInvalidArgument)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(root, "snapshots"), 0o700); err != nil {
		return nil, fmt.Errorf("snapshot root: %w", err)
	}
	s := &snapshotter{root: root, db: db, drv: drv, inflight: map[uint64]bool{}}
	var seq uint64
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err != nil {
			return err
		}
		if b, err = b.CreateBucketIfNotExists([]byte(drv.name())); err != nil {
			return err
		}
		b, err = b.CreateBucketIfNotExists(bucketSnaps)
		seq = b.Sequence()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot metadata: %w", err)
	}
	// Directories may carry ids past the recorded sequence (created, not
	// yet recorded when the daemon died): never hand those out again.
	entries, _ := os.ReadDir(filepath.Join(root, "snapshots"))
	for _, e := range entries {
		if id, ok := dirID(e.Name()); ok && id > seq {
			seq = id
		}
	}
	s.nextID.Store(seq)
	if err := s.Cleanup(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// dirID parses "<id>", "new-<id>" and "rm-<id>".
func dirID(name string) (uint64, bool) {
	name = strings.TrimPrefix(strings.TrimPrefix(name, "new-"), "rm-")
	id, err := strconv.ParseUint(name, 10, 64)
	return id, err == nil
}

func (s *snapshotter) dir(id uint64) string {
	return filepath.Join(s.root, "snapshots", strconv.FormatUint(id, 10))
}

func (s *snapshotter) fsDir(id uint64) string { return filepath.Join(s.dir(id), "fs") }

func (s *snapshotter) bucket(tx *bolt.Tx) *bolt.Bucket {
	return tx.Bucket(bucketRoot).Bucket([]byte(s.drv.name())).Bucket(bucketSnaps)
}

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func be(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func notFound(key string) error {
	return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
}

type record struct {
	id      uint64
	info    Info
	usage   Usage
	parents []uint64 // ancestor ids, nearest first
}

func readInfo(b *bolt.Bucket, name string) Info {
	info := Info{
		Name:    name,
		Kind:    Kind(b.Get(keyKind)[0]),
		Parent:  string(b.Get(keyParent)),
		Created: time.Unix(0, int64(u64(b.Get(keyCreated)))),
		Updated: time.Unix(0, int64(u64(b.Get(keyUpdated)))),
	}
	if lb := b.Bucket(bucketLabels); lb != nil {
		lb.ForEach(func(k, v []byte) error {
			if info.Labels == nil {
				info.Labels = map[string]string{}
			}
			info.Labels[string(k)] = string(v)
			return nil
		})
	}
	return info
}

// get reads a snapshot and its ancestor chain.
func (s *snapshotter) get(tx *bolt.Tx, key string) (record, error) {
	snaps := s.bucket(tx)
	b := snaps.Bucket([]byte(key))
	if b == nil {
		return record{}, notFound(key)
	}
	r := record{id: u64(b.Get(keyID)), info: readInfo(b, key)}
	r.usage = Usage{Size: int64(u64(b.Get(keySize))), Inodes: int64(u64(b.Get(keyInodes)))}
	for p := b.Get(keyParent); p != nil; {
		pb := snaps.Bucket(p)
		if pb == nil {
			return record{}, fmt.Errorf("snapshot %q: parent %q missing: %w", key, p, errdefs.ErrDataLoss)
		}
		r.parents = append(r.parents, u64(pb.Get(keyID)))
		p = pb.Get(keyParent)
	}
	return r, nil
}

func (s *snapshotter) view(key string) (r record, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		r, err = s.get(tx, key)
		return err
	})
	return r, err
}

func (s *snapshotter) parentDirs(ids []uint64) []string {
	dirs := make([]string, len(ids))
	for i, id := range ids {
		dirs[i] = s.fsDir(id)
	}
	return dirs
}

func (s *snapshotter) Stat(ctx context.Context, key string) (Info, error) {
	r, err := s.view(key)
	return r.info, err
}

// Usage of a committed snapshot is measured once, on first request, and
// recorded: measuring at commit time would put a walk of every layer on
// the pull path.
func (s *snapshotter) Usage(ctx context.Context, key string) (Usage, error) {
	r, err := s.view(key)
	if err != nil {
		return Usage{}, err
	}
	if r.info.Kind == Committed && r.usage.Inodes > 0 {
		return r.usage, nil
	}
	u, err := diskUsage(ctx, s.fsDir(r.id))
	if err != nil || r.info.Kind != Committed {
		return u, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := s.bucket(tx).Bucket([]byte(key))
		if b == nil || u64(b.Get(keyID)) != r.id {
			return nil // removed or replaced meanwhile: just report
		}
		if err := b.Put(keySize, be(uint64(u.Size))); err != nil {
			return err
		}
		return b.Put(keyInodes, be(uint64(u.Inodes)))
	})
	return u, err
}

func (s *snapshotter) Mounts(ctx context.Context, key string) ([]Mount, error) {
	r, err := s.view(key)
	if err != nil {
		return nil, err
	}
	return s.drv.mounts(s.dir(r.id), r.info.Kind, s.parentDirs(r.parents)), nil
}

func (s *snapshotter) Prepare(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error) {
	return s.create(ctx, Active, key, parent, labels)
}

func (s *snapshotter) View(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error) {
	return s.create(ctx, View, key, parent, labels)
}

// checkNew verifies key is free and parent committed; returns the parent's
// chain (parent first).
func (s *snapshotter) checkNew(tx *bolt.Tx, key, parent string) ([]uint64, error) {
	if key == "" {
		return nil, fmt.Errorf("empty snapshot key: %w", errdefs.ErrInvalidArgument)
	}
	if s.bucket(tx).Bucket([]byte(key)) != nil {
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
	}
	if parent == "" {
		return nil, nil
	}
	p, err := s.get(tx, parent)
	if err != nil {
		return nil, fmt.Errorf("parent: %w", err)
	}
	if p.info.Kind != Committed {
		return nil, fmt.Errorf("parent %q is %s, not committed: %w", parent, p.info.Kind, errdefs.ErrInvalidArgument)
	}
	return append([]uint64{p.id}, p.parents...), nil
}

func (s *snapshotter) create(ctx context.Context, kind Kind, key, parent string, labels map[string]string) (_ []Mount, retErr error) {
	var chain []uint64
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		chain, err = s.checkNew(tx, key, parent)
		return err
	})
	if err != nil {
		return nil, err
	}
	id := s.nextID.Add(1)
	s.mu.Lock()
	s.inflight[id] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.inflight, id)
		s.mu.Unlock()
	}()

	// 1. Build the directory under a temporary name, outside any lock.
	tmp := filepath.Join(s.root, "snapshots", "new-"+strconv.FormatUint(id, 10))
	final := s.dir(id)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create snapshot %q: %w", key, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(tmp)
			os.RemoveAll(final)
		}
	}()
	if err := s.drv.create(ctx, tmp, kind, s.parentDirs(chain)); err != nil {
		return nil, fmt.Errorf("create snapshot %q: %w", key, err)
	}
	// 2. Give it its final name: from now on a crash leaves an unrecorded
	// directory, which Cleanup sweeps.
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("create snapshot %q: %w", key, err)
	}
	// 3. Record it (checks again: another caller may have raced us).
	now := time.Now()
	err = s.db.Update(func(tx *bolt.Tx) error {
		if _, err := s.checkNew(tx, key, parent); err != nil {
			return err
		}
		snaps := s.bucket(tx)
		if id > snaps.Sequence() {
			if err := snaps.SetSequence(id); err != nil {
				return err
			}
		}
		b, err := snaps.CreateBucket([]byte(key))
		if err != nil {
			return err
		}
		if err := putRecord(b, id, kind, parent, now, now, labels); err != nil {
			return err
		}
		if parent != "" {
			cb, err := snaps.Bucket([]byte(parent)).CreateBucketIfNotExists(bucketChildren)
			if err != nil {
				return err
			}
			return cb.Put([]byte(key), nil)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.drv.mounts(final, kind, s.parentDirs(chain)), nil
}

func putRecord(b *bolt.Bucket, id uint64, kind Kind, parent string, created, updated time.Time, labels map[string]string) error {
	puts := [][2][]byte{
		{keyID, be(id)},
		{keyKind, {byte(kind)}},
		{keyCreated, be(uint64(created.UnixNano()))},
		{keyUpdated, be(uint64(updated.UnixNano()))},
	}
	if parent != "" {
		puts = append(puts, [2][]byte{keyParent, []byte(parent)})
	}
	for _, p := range puts {
		if err := b.Put(p[0], p[1]); err != nil {
			return err
		}
	}
	if len(labels) > 0 {
		lb, err := b.CreateBucket(bucketLabels)
		if err != nil {
			return err
		}
		for k, v := range labels {
			if err := lb.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *snapshotter) Commit(ctx context.Context, name, key string, labels map[string]string) error {
	return s.commit(ctx, name, key, labels, false, "")
}

// commit turns Active key into Committed name. With rebase, a base key
// (no parent) gets parent as its parent on the way (overlay only).
func (s *snapshotter) commit(ctx context.Context, name, key string, labels map[string]string, rebase bool, parent string) error {
	r, err := s.view(key)
	if err != nil {
		return err
	}
	if r.info.Kind != Active {
		return fmt.Errorf("commit %q: a %s snapshot cannot be committed: %w", key, r.info.Kind, errdefs.ErrInvalidArgument)
	}
	if !rebase {
		parent = r.info.Parent
	} else if r.info.Parent != "" {
		return fmt.Errorf("commit %q onto %q: it already has parent %q: %w", key, parent, r.info.Parent, errdefs.ErrInvalidArgument)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		snaps := s.bucket(tx)
		old := snaps.Bucket([]byte(key))
		if old == nil || u64(old.Get(keyID)) != r.id || Kind(old.Get(keyKind)[0]) != Active {
			return fmt.Errorf("commit %q: changed meanwhile: %w", key, errdefs.ErrConflict)
		}
		if snaps.Bucket([]byte(name)) != nil {
			return fmt.Errorf("commit %q as %q: %w", key, name, errdefs.ErrAlreadyExists)
		}
		if rebase && parent != "" {
			pb := snaps.Bucket([]byte(parent))
			if pb == nil {
				return fmt.Errorf("commit %q onto %q: %w", key, parent, errdefs.ErrNotFound)
			}
			if Kind(pb.Get(keyKind)[0]) != Committed {
				return fmt.Errorf("commit %q onto %q: parent not committed: %w", key, parent, errdefs.ErrInvalidArgument)
			}
		}
		b, err := snaps.CreateBucket([]byte(name))
		if err != nil {
			return fmt.Errorf("commit %q as %q: %w", key, name, err)
		}
		if err := putRecord(b, r.id, Committed, parent, r.info.Created, time.Now(), labels); err != nil {
			return err
		}
		if err := snaps.DeleteBucket([]byte(key)); err != nil {
			return err
		}
		if parent != "" {
			cb, err := snaps.Bucket([]byte(parent)).CreateBucketIfNotExists(bucketChildren)
			if err != nil {
				return err
			}
			if err := cb.Delete([]byte(key)); err != nil {
				return err
			}
			return cb.Put([]byte(name), nil)
		}
		return nil
	})
}

// rebase records committed parent as the parent of the parentless Active
// snapshot key (directory id): overlay only, see Rebaser.
func (s *snapshotter) rebase(ctx context.Context, key string, id uint64, parent string) error {
	if parent == "" {
		return fmt.Errorf("rebase %q: empty parent: %w", key, errdefs.ErrInvalidArgument)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		snaps := s.bucket(tx)
		b := snaps.Bucket([]byte(key))
		if b == nil || u64(b.Get(keyID)) != id {
			return fmt.Errorf("rebase %q: changed meanwhile: %w", key, errdefs.ErrConflict)
		}
		if Kind(b.Get(keyKind)[0]) != Active {
			return fmt.Errorf("rebase %q: a %s snapshot cannot be rebased: %w", key, Kind(b.Get(keyKind)[0]), errdefs.ErrInvalidArgument)
		}
		if p := b.Get(keyParent); p != nil {
			return fmt.Errorf("rebase %q onto %q: it already has parent %q: %w", key, parent, p, errdefs.ErrInvalidArgument)
		}
		pb := snaps.Bucket([]byte(parent))
		if pb == nil {
			return fmt.Errorf("rebase %q onto %q: %w", key, parent, errdefs.ErrNotFound)
		}
		if Kind(pb.Get(keyKind)[0]) != Committed {
			return fmt.Errorf("rebase %q onto %q: parent not committed: %w", key, parent, errdefs.ErrInvalidArgument)
		}
		if err := b.Put(keyParent, []byte(parent)); err != nil {
			return err
		}
		if err := b.Put(keyUpdated, be(uint64(time.Now().UnixNano()))); err != nil {
			return err
		}
		cb, err := pb.CreateBucketIfNotExists(bucketChildren)
		if err != nil {
			return err
		}
		return cb.Put([]byte(key), nil)
	})
}

func (s *snapshotter) Remove(ctx context.Context, key string) error {
	var id uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		snaps := s.bucket(tx)
		b := snaps.Bucket([]byte(key))
		if b == nil {
			return notFound(key)
		}
		if cb := b.Bucket(bucketChildren); cb != nil {
			if k, _ := cb.Cursor().First(); k != nil {
				return fmt.Errorf("remove snapshot %q: it is the parent of %q: %w", key, k, errdefs.ErrFailedPrecondition)
			}
		}
		id = u64(b.Get(keyID))
		if p := b.Get(keyParent); p != nil {
			if pb := snaps.Bucket(p); pb != nil && pb.Bucket(bucketChildren) != nil {
				if err := pb.Bucket(bucketChildren).Delete([]byte(key)); err != nil {
					return err
				}
			}
		}
		return snaps.DeleteBucket([]byte(key))
	})
	if err != nil {
		return err
	}
	// The record is gone; the directory is garbage from here on, so a
	// failure below only leaves work for Cleanup.
	dead := filepath.Join(s.root, "snapshots", "rm-"+strconv.FormatUint(id, 10))
	if err := os.Rename(s.dir(id), dead); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove snapshot %q: %w", key, err)
	}
	if err := removeTree(dead); err != nil {
		return fmt.Errorf("remove snapshot %q: %w", key, err)
	}
	return nil
}

func (s *snapshotter) Walk(ctx context.Context, fn func(context.Context, Info) error) error {
	var infos []Info
	err := s.db.View(func(tx *bolt.Tx) error {
		return s.bucket(tx).ForEachBucket(func(k []byte) error {
			infos = append(infos, readInfo(s.bucket(tx).Bucket(k), string(k)))
			return nil
		})
	})
	if err != nil {
		return err
	}
	// fn runs outside the transaction so it may call back into s.
	for _, info := range infos {
		if err := fn(ctx, info); err != nil {
			return err
		}
	}
	return nil
}

func (s *snapshotter) Cleanup(ctx context.Context) error {
	live := map[uint64]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		snaps := s.bucket(tx)
		return snaps.ForEachBucket(func(k []byte) error {
			live[u64(snaps.Bucket(k).Get(keyID))] = true
			return nil
		})
	})
	if err != nil {
		return err
	}
	dir := filepath.Join(s.root, "snapshots")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("snapshot cleanup: %w", err)
	}
	s.mu.Lock()
	busy := make(map[uint64]bool, len(s.inflight))
	for id := range s.inflight {
		busy[id] = true
	}
	s.mu.Unlock()
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		id, ok := dirID(e.Name())
		if ok && (busy[id] || (live[id] && !strings.Contains(e.Name(), "-"))) {
			continue
		}
		if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *snapshotter) Close() error { return nil }

// removeTree deletes a snapshot directory. RemoveAll works with *at calls
// and never follows symlinks inside the tree.
func removeTree(p string) error {
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// diskUsage counts allocated bytes and inodes under dir, hard links once.
func diskUsage(ctx context.Context, dir string) (Usage, error) {
	var u Usage
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Nlink > 1 && !d.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		u.Inodes++
		u.Size += st.Blocks * 512
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	return u, nil
}
