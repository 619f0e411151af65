// Package content is berth's blob store: immutable blobs addressed by digest,
// written only through a verifying ingest so that a blob path that exists
// always holds exactly the bytes its digest names.
//
// On disk:
//
//	<root>/
//	├── blobs/sha256/<hex>     verified blobs (read-only once renamed in)
//	└── ingest/<hex>-<rand>    blobs being written; removed by Open (crash leftovers)
//
// Lifecycle of an ingest:
//
//	Begin(desc) ──► leader writes via Write ──► Finish(nil) verifies size+digest,
//	    │            followers read a live view    fsyncs, renames into blobs/
//	    │            of the same file (NewReader)
//	    └──► Finish(err) / all parties Release ──► temp file removed, nothing visible
//
// Two callers that Begin the same digest share one ingest (and so one download):
// the second gets the live ingest and can stream from it while it is being written.
package content

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Store is a directory of blobs. Safe for concurrent use within one process;
// one process owns a root (the daemon).
type Store struct {
	root string
	// Sync makes Finish fsync each blob before renaming it in. Off, a crash can
	// leave a renamed blob with lost pages; Verify at start-up catches that.
	Sync bool

	mu     sync.Mutex
	active map[digest.Digest]*sharedIngest
}

// Open creates the directory layout and removes partial ingests left by a
// previous process.
func Open(root string) (*Store, error) {
	for _, d := range []string{filepath.Join(root, "blobs", "sha256"), filepath.Join(root, "ingest")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("content store: %w", err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(root, "ingest"))
	if err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(root, "ingest", e.Name())); err != nil {
			return nil, fmt.Errorf("content store: remove partial ingest: %w", err)
		}
	}
	return &Store{root: root, active: map[digest.Digest]*sharedIngest{}}, nil
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

// Path returns where blob d lives (whether or not it exists).
func (s *Store) Path(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}

func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w: %v", d, errdefs.ErrInvalidArgument, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %q: only sha256 is supported: %w", d, errdefs.ErrNotImplemented)
	}
	return nil
}

// Size returns the size of blob d, or ErrNotFound.
func (s *Store) Size(d digest.Digest) (int64, error) {
	if err := checkDigest(d); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.Path(d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
		}
		return 0, err
	}
	return fi.Size(), nil
}

// ModTime returns when blob d was stored.
func (s *Store) ModTime(d digest.Digest) (time.Time, error) {
	fi, err := os.Stat(s.Path(d))
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// Has reports whether blob d is present.
func (s *Store) Has(d digest.Digest) bool {
	_, err := s.Size(d)
	return err == nil
}

// Open opens blob d for reading.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
		}
		return nil, err
	}
	return f, nil
}

// ReadAll returns the content of a (small) blob.
func (s *Store) ReadAll(d digest.Digest) ([]byte, error) {
	f, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Delete removes blob d. Missing blobs are not an error.
func (s *Store) Delete(d digest.Digest) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	if err := os.Remove(s.Path(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Walk calls fn for each stored blob.
func (s *Store) Walk(fn func(d digest.Digest, size int64) error) error {
	dir := filepath.Join(s.root, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if err := fn(d, info.Size()); err != nil {
			return err
		}
	}
	return nil
}

// Write stores r as blob desc, verifying size and digest. If the blob is
// already present r is not read.
func (s *Store) Write(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	ing, err := s.Begin(desc)
	if err != nil {
		return err
	}
	if ing == nil {
		return nil
	}
	defer ing.Release()
	if !ing.Leader() {
		return ing.Wait(ctx)
	}
	_, err = io.Copy(ing, &ctxReader{ctx: ctx, r: r})
	return ing.Finish(err)
}

// WriteBytes stores b under its own sha256 digest and returns its descriptor.
func (s *Store) WriteBytes(ctx context.Context, mediaType string, b []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	return desc, s.Write(ctx, desc, strings.NewReader(string(b)))
}

// WriteUnknown stores r under the sha256 of its content, which is computed
// while it streams (docker-archive entries and imported tarballs come
// without a digest). It returns the digest and size.
func (s *Store) WriteUnknown(ctx context.Context, r io.Reader) (digest.Digest, int64, error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(s.root, "ingest", "unknown-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", 0, fmt.Errorf("content store: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), &ctxReader{ctx: ctx, r: r})
	if err == nil && s.Sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", 0, err
	}
	d := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
	if s.Has(d) {
		os.Remove(tmp)
		return d, n, nil
	}
	if err := os.Chmod(tmp, 0o444); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp, s.Path(d)); err != nil {
		os.Remove(tmp)
		return "", 0, err
	}
	return d, n, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Begin starts or joins the ingest of desc. It returns nil when the blob is
// already stored. The caller must Release the ingest; the leader (the first
// caller) must also write the content and call Finish.
func (s *Store) Begin(desc ocispec.Descriptor) (*Ingest, error) {
	if err := checkDigest(desc.Digest); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Join a live ingest; one whose parties all gave up is finishing with
	// an error, so a new caller starts afresh instead of inheriting that.
	if ing := s.active[desc.Digest]; ing != nil && ing.ctx.Err() == nil {
		ing.mu.Lock()
		ing.refs++
		ing.mu.Unlock()
		return &Ingest{shared: ing}, nil
	}
	if sz, err := s.Size(desc.Digest); err == nil {
		if desc.Size <= 0 || sz == desc.Size {
			return nil, nil
		}
		// A blob of the wrong size under a verified name cannot come from
		// Finish; treat it as corruption and fetch again.
		_ = os.Remove(s.Path(desc.Digest))
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(s.root, "ingest", desc.Digest.Encoded()+"-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sh := &sharedIngest{
		store: s, desc: desc, tmp: tmp, f: f, h: sha256.New(),
		refs: 1, done: make(chan struct{}), ctx: ctx, cancel: cancel,
	}
	sh.cond = sync.NewCond(&sh.mu)
	s.active[desc.Digest] = sh
	return &Ingest{shared: sh, leader: true}, nil
}

type sharedIngest struct {
	store *Store
	desc  ocispec.Descriptor
	tmp   string
	f     *os.File
	h     hash.Hash

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	cond     *sync.Cond
	written  int64
	finished bool
	err      error
	refs     int
	done     chan struct{}
}

// Ingest is one caller's handle on a blob being written.
type Ingest struct {
	shared   *sharedIngest
	leader   bool
	released bool
}

// Leader reports whether this caller must produce the content.
func (i *Ingest) Leader() bool { return i.leader }

// Context is canceled when every party has released the ingest before it
// finished; the leader runs its download under it, so one caller giving up
// does not break the others.
func (i *Ingest) Context() context.Context { return i.shared.ctx }

// Offset returns how many bytes have been written (for resuming a download).
func (i *Ingest) Offset() int64 {
	i.shared.mu.Lock()
	defer i.shared.mu.Unlock()
	return i.shared.written
}

// Write appends to the blob (leader only).
func (i *Ingest) Write(p []byte) (int, error) {
	sh := i.shared
	n, err := sh.f.Write(p)
	sh.h.Write(p[:n])
	sh.mu.Lock()
	sh.written += int64(n)
	if sh.desc.Size > 0 && sh.written > sh.desc.Size {
		err = fmt.Errorf("blob %s: more than the expected %d bytes: %w", sh.desc.Digest, sh.desc.Size, errdefs.ErrDataLoss)
	}
	sh.mu.Unlock()
	sh.cond.Broadcast()
	return n, err
}

// Finish ends the leader's writing. With err == nil the content is verified
// and, if it matches, made visible atomically; otherwise it is discarded.
// The returned error is what every party's Wait sees.
func (i *Ingest) Finish(err error) error {
	sh := i.shared
	if err == nil {
		err = sh.commit()
	}
	if err != nil {
		sh.f.Close()
		os.Remove(sh.tmp)
	}
	sh.store.mu.Lock()
	if sh.store.active[sh.desc.Digest] == sh {
		delete(sh.store.active, sh.desc.Digest)
	}
	sh.store.mu.Unlock()
	sh.mu.Lock()
	sh.finished = true
	sh.err = err
	sh.mu.Unlock()
	sh.cond.Broadcast()
	close(sh.done)
	sh.cancel()
	return err
}

func (sh *sharedIngest) commit() error {
	if sh.desc.Size > 0 && sh.written != sh.desc.Size {
		return fmt.Errorf("blob %s: got %d bytes, expected %d (truncated): %w", sh.desc.Digest, sh.written, sh.desc.Size, errdefs.ErrDataLoss)
	}
	got := digest.NewDigestFromBytes(digest.SHA256, sh.h.Sum(nil))
	if got != sh.desc.Digest {
		return fmt.Errorf("blob %s: content has digest %s: %w", sh.desc.Digest, got, ErrDigestMismatch)
	}
	if sh.store.Sync {
		if err := sh.f.Sync(); err != nil {
			return fmt.Errorf("blob %s: %w", sh.desc.Digest, err)
		}
	}
	if err := sh.f.Close(); err != nil {
		return fmt.Errorf("blob %s: %w", sh.desc.Digest, err)
	}
	if err := os.Chmod(sh.tmp, 0o444); err != nil {
		return err
	}
	if err := os.Rename(sh.tmp, sh.store.Path(sh.desc.Digest)); err != nil {
		return fmt.Errorf("blob %s: %w", sh.desc.Digest, err)
	}
	return nil
}

// ErrDigestMismatch marks content that does not hash to its digest.
var ErrDigestMismatch = fmt.Errorf("digest mismatch: %w", errdefs.ErrDataLoss)

// Wait blocks until the ingest finished and returns its outcome.
func (i *Ingest) Wait(ctx context.Context) error {
	select {
	case <-i.shared.done:
		return i.shared.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the ingest finished.
func (i *Ingest) Done() <-chan struct{} { return i.shared.done }

// Release drops this caller's interest. When the last party releases an
// unfinished ingest its context is canceled so the leader stops.
func (i *Ingest) Release() {
	if i.released {
		return
	}
	i.released = true
	sh := i.shared
	sh.mu.Lock()
	sh.refs--
	last := sh.refs == 0 && !sh.finished
	sh.mu.Unlock()
	if last {
		sh.cancel()
	}
}

// NewReader returns a reader over the blob that follows the ingest as it is
// written: it blocks at the current end until more arrives or the ingest
// finishes. A failed ingest makes the reader fail with its error; the bytes
// read before that are not verified, so callers must Wait before trusting
// what they derived from them.
func (i *Ingest) NewReader(ctx context.Context) (io.ReadCloser, error) {
	f, err := os.Open(i.shared.tmp)
	if err != nil {
		// Renamed (or removed) by Finish between Begin and here.
		select {
		case <-i.shared.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if i.shared.err != nil {
			return nil, i.shared.err
		}
		return i.shared.store.Open(i.shared.desc.Digest)
	}
	r := &followReader{sh: i.shared, f: f, ctx: ctx}
	r.stop = context.AfterFunc(ctx, func() {
		i.shared.mu.Lock()
		i.shared.cond.Broadcast()
		i.shared.mu.Unlock()
	})
	return r, nil
}

type followReader struct {
	// closed is guarded by sh.mu; Close wakes a Read blocked at the end.
	closed bool
	sh     *sharedIngest
	f      *os.File
	ctx    context.Context
	off    int64
	stop   func() bool
}

func (r *followReader) Read(p []byte) (int, error) {
	sh := r.sh
	sh.mu.Lock()
	for r.off >= sh.written && !sh.finished && r.ctx.Err() == nil && !r.closed {
		sh.cond.Wait()
	}
	if r.closed {
		sh.mu.Unlock()
		return 0, os.ErrClosed
	}
	avail, finished, ferr := sh.written-r.off, sh.finished, sh.err
	sh.mu.Unlock()
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if avail <= 0 {
		if finished && ferr != nil {
			return 0, ferr
		}
		return 0, io.EOF
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	n, err := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *followReader) Close() error {
	r.stop()
	r.sh.mu.Lock()
	if r.closed {
		r.sh.mu.Unlock()
		return nil
	}
	r.closed = true
	r.sh.mu.Unlock()
	r.sh.cond.Broadcast()
	return r.f.Close()
}
