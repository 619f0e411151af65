package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Parallel file writing. One goroutine reads the tar and does every
// namespace operation (mkdir, create, link, unlink, whiteout) in entry
// order, so the tree's shape, replacements and hard links come out exactly
// as a sequential unpack makes them, and every path is still resolved
// beneath the root by the one goroutine that owns the parent cache. A
// regular file is created (O_CREAT|O_EXCL) by that goroutine, its body read
// into pooled chunk buffers, and the open fd with the chunks handed to a
// small pool that writes them (pwrite at their offsets) and, once the last
// chunk of the file is written, sets owner, mode, xattrs and times through
// the fd and closes it. A worker never resolves a name, so it cannot be
// turned outside the root by a later entry; a later entry that replaces or
// removes the file only orphans the inode the worker is writing, as it
// would the finished file. Directory times are stamped after the pool is
// drained.
//
//	tar goroutine:  Next → resolve parent → openat(O_EXCL) → read body into the batch → (batch full) send
//	workers (N):    pwrite → (last chunk of the file) fchown → fchmod → fsetxattr → utimensat(fd) → close
//
// Why: writing the data is the biggest part of an unpack (on this project's
// VMs, the first touch of each new page-cache page), and one goroutine did
// it all. Bytes and fds queued are bounded (writerBatches × writerChunk,
// batchFiles), and Apply waits for the pool before it returns, on success
// or failure, so nothing is written after Apply returns.

// parallelWriters is the pool size per Apply; 0 writes every file inline
// (tests compare both).
var parallelWriters = 2

// SetWriters sets the writer pool size of later Applies (0: write every
// file on the tar goroutine); for benchmarks. Not safe during an Apply.
func SetWriters(n int) { parallelWriters = max(n, 0) }

const (
	writerChunk   = 128 << 10 // one batch buffer: a big file is queued in chunks of this size
	writerBatches = 4         // batch buffers queued or being written, per Apply
	batchFiles    = 16        // small files per batch at most (each holds an fd or a directory reference)
)

// Small files travel in batches that share one buffer, so a worker is woken
// once per 128 KiB or 16 files, not once per file.
type batch struct {
	buf  *[]byte
	used int
	jobs []fileJob
}

// pendingFile is a file whose chunks are being written. refs counts the
// chunks not yet written; whoever drops it to zero finishes the file.
type pendingFile struct {
	fd     int
	hdr    *tar.Header
	refs   atomic.Int32
	failed atomic.Bool // the tar goroutine gave up on it: close only
}

// fileJob is one chunk of a file: n bytes at buf[start:] go to offset off.
// With dir set, the job first creates the file base in dir (its only chunk).
type fileJob struct {
	f        *pendingFile
	off      int64
	start, n int
	dir      *dirRef
	base     string
}

// madeBy says who created a name (applier.made).
type madeBy uint8

const (
	madeHere   madeBy = iota + 1 // the tar goroutine
	madeByPool                   // a worker, maybe not yet
)

type writers struct {
	a     *applier
	jobs  chan *batch
	slots chan struct{} // one per batch buffer in use
	cur   *batch        // being filled by the tar goroutine
	wg    sync.WaitGroup
	busy  sync.WaitGroup // batches sent and not yet done

	bad atomic.Bool // err is set: checked per job without the lock
	mu  sync.Mutex
	err error // the first worker failure
}

var batchBufs = sync.Pool{New: func() any { b := make([]byte, writerChunk); return &b }}

func newWriters(a *applier, n int) *writers {
	w := &writers{a: a, jobs: make(chan *batch, writerBatches), slots: make(chan struct{}, writerBatches)}
	w.wg.Add(n)
	for i := 0; i < n; i++ {
		go w.work()
	}
	return w
}

// room returns the current batch, flushed first and replaced if it cannot
// take n more bytes or another file. Waiting for a free buffer is safe:
// every other buffer is with the workers.
func (w *writers) room(n int) *batch {
	if b := w.cur; b != nil && (b.used+n > len(*b.buf) || len(b.jobs) >= batchFiles) {
		w.flush()
	}
	if w.cur == nil {
		w.slots <- struct{}{}
		w.cur = &batch{buf: batchBufs.Get().(*[]byte), jobs: make([]fileJob, 0, batchFiles)}
	}
	return w.cur
}

func (w *writers) flush() {
	if w.cur != nil {
		w.busy.Add(1)
		w.jobs <- w.cur
		w.cur = nil
	}
}

// settle waits until everything queued so far is done: the barrier before
// an entry that depends on a name the pool creates. Only needed (and only
// done) when the pool creates files.
func (a *applier) settle() {
	if a.w != nil && a.made != nil {
		a.w.flush()
		a.w.busy.Wait()
	}
}

// settlePath settles if the pool creates a file at dir or above it: the
// path must then resolve to that file (and fail) as it would in order.
func (a *applier) settlePath(dir string) {
	for i := 0; i <= len(dir); i++ {
		if (i == len(dir) || dir[i] == '/') && a.made[dir[:i]] == madeByPool {
			a.settle()
			return
		}
	}
}

// mark records a directory the tar goroutine made implicitly.
func (a *applier) mark(rel string) {
	if a.made != nil && a.made[rel] == 0 {
		a.made[rel] = madeHere
	}
}

// failed reports a worker's error, if any, so the tar goroutine stops early.
func (w *writers) failed() error {
	if !w.bad.Load() {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *writers) fail(f *pendingFile, err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = fmt.Errorf("apply layer: entry %q: %w", f.hdr.Name, err)
		w.bad.Store(true)
	}
	w.mu.Unlock()
}

// done drops n references to f; the last one sets its metadata (unless
// something failed) and closes it.
func (w *writers) done(f *pendingFile, n int32) {
	if f.refs.Add(-n) != 0 {
		return
	}
	if f.fd < 0 {
		return
	}
	if !f.failed.Load() && w.failed() == nil {
		if err := w.a.fileMeta(f.fd, f.hdr, func(t []unix.Timespec) error {
			// The name may be gone or replaced by now: the inode is
			// reached through the fd.
			return unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(f.fd), t, 0)
		}); err != nil {
			w.fail(f, err)
		}
	}
	unix.Close(f.fd)
}

func (w *writers) work() {
	defer w.wg.Done()
	for b := range w.jobs {
		for _, j := range b.jobs {
			ok := w.failed() == nil
			if j.dir != nil {
				if ok {
					// As the tar goroutine would: beneath a verified
					// parent fd, a single new name, never following.
					fd, err := unix.Openat(j.dir.fd, j.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
					if err != nil {
						ok = false
						w.fail(j.f, fmt.Errorf("create: %w", err))
					} else {
						j.f.fd = fd
					}
				}
				j.dir.release()
			}
			if ok && j.n > 0 {
				if err := pwriteAll(j.f.fd, (*b.buf)[j.start:j.start+j.n], j.off); err != nil {
					j.f.failed.Store(true)
					w.fail(j.f, fmt.Errorf("write: %w", err))
				}
			}
			w.done(j.f, 1)
		}
		batchBufs.Put(b.buf)
		<-w.slots
		w.busy.Done()
	}
}

func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// queueFile reads hdr's body from tr in chunks and queues them for fd,
// which it owns from then on, failure or not.
func (a *applier) queueFile(tr io.Reader, fd int, hdr *tar.Header) error {
	w := a.w
	chunks := int32((hdr.Size + writerChunk - 1) / writerChunk)
	f := &pendingFile{fd: fd, hdr: hdr}
	if chunks == 0 {
		f.refs.Store(1)
		b := w.room(0)
		b.jobs = append(b.jobs, fileJob{f: f})
		return nil
	}
	f.refs.Store(chunks)
	for off := int64(0); off < hdr.Size; off += writerChunk {
		n := int(min(hdr.Size-off, writerChunk))
		b := w.room(n)
		if m, err := io.ReadFull(tr, (*b.buf)[b.used:b.used+n]); err != nil {
			f.failed.Store(true)
			w.done(f, chunks-int32(off/writerChunk))
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("truncated layer: %d of %d bytes: %w", off+int64(m), hdr.Size, err)
		}
		b.jobs = append(b.jobs, fileJob{f: f, off: off, start: b.used, n: n})
		b.used += n
		a.size += int64(n)
	}
	return nil
}

// queueCreate reads a small file's body and queues its creation, in the
// directory parent last resolved, with its write.
func (a *applier) queueCreate(tr io.Reader, base string, hdr *tar.Header) error {
	w := a.w
	n := int(hdr.Size)
	b := w.room(n)
	if m, err := io.ReadFull(tr, (*b.buf)[b.used:b.used+n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("truncated layer: %d of %d bytes: %w", m, hdr.Size, err)
	}
	f := &pendingFile{fd: -1, hdr: hdr}
	f.refs.Store(1)
	b.jobs = append(b.jobs, fileJob{f: f, start: b.used, n: n, dir: a.lastParent.hold(), base: base})
	b.used += n
	a.size += int64(n)
	return nil
}

// wait sends the last batch, closes the queue and waits for the workers;
// it returns the first worker error.
func (w *writers) wait() error {
	w.flush()
	close(w.jobs)
	w.wg.Wait()
	return w.err
}
