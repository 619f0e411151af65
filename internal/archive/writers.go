package archive

import (
	"archive/tar"
	"fmt"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Parallel file writing. One goroutine reads the tar and does every
// namespace operation (mkdir, create, link, unlink, whiteout) in entry
// order, so the tree's shape, replacements and hard links come out exactly
// as a sequential unpack makes them, and every path is still resolved
// beneath the root by the one goroutine that owns the parent cache. A
// regular file is created (O_CREAT|O_EXCL) by that goroutine, its body read
// into a pooled buffer, and the open fd handed to a small pool that writes
// the data and sets owner, mode, xattrs and times through the fd. A worker
// never resolves a name, so it cannot be turned outside the root by a later
// entry; a later entry that replaces or removes the file only orphans the
// inode the worker is writing, as it would the finished file. Directory
// times are stamped after the pool is drained.
//
//	tar goroutine:  Next → resolve parent → openat(O_EXCL) → read body → submit(fd, body)
//	workers (N):    write → fchown → fchmod → fsetxattr → utimensat(fd) → close
//
// Bytes queued are bounded (writerBudget), files larger than maxQueuedFile
// are written inline, and Apply waits for the pool before it returns, on
// success or failure, so nothing is written after Apply returns.

// parallelWriters is the pool size per Apply; 0 writes every file inline
// (tests compare both).
var parallelWriters = 2

const (
	maxQueuedFile = 1 << 20 // bigger files stream inline
	writerBudget  = 8 << 20 // body bytes queued or being written
	writerQueue   = 32      // open fds waiting for a worker
)

type fileJob struct {
	fd   int
	body *[]byte // nil for an empty file
	n    int
	hdr  *tar.Header
}

type writers struct {
	a    *applier
	jobs chan fileJob
	wg   sync.WaitGroup

	mu       sync.Mutex
	cond     sync.Cond
	inflight int
	err      error // the first worker failure
}

func newWriters(a *applier, n int) *writers {
	w := &writers{a: a, jobs: make(chan fileJob, writerQueue)}
	w.cond.L = &w.mu
	w.wg.Add(n)
	for i := 0; i < n; i++ {
		go w.work()
	}
	return w
}

// Buffers in power-of-two classes from 4 KiB to maxQueuedFile.
var bodyPools [9]sync.Pool

func bodyClass(n int) int {
	c := 0
	for 4096<<c < n {
		c++
	}
	return c
}

// get returns a buffer of at least n bytes once the budget allows (always
// when nothing is queued, so one file never waits for itself).
func (w *writers) get(n int) *[]byte {
	w.mu.Lock()
	for w.inflight > 0 && w.inflight+n > writerBudget && w.err == nil {
		w.cond.Wait()
	}
	w.inflight += n
	w.mu.Unlock()
	c := bodyClass(n)
	if b, ok := bodyPools[c].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 4096<<c)
	return &b
}

func (w *writers) put(b *[]byte, n int) {
	if b != nil {
		bodyPools[bodyClass(len(*b))].Put(b)
	}
	w.mu.Lock()
	w.inflight -= n
	w.cond.Broadcast()
	w.mu.Unlock()
}

// failed reports a worker's error, if any, so the tar goroutine stops early.
func (w *writers) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *writers) submit(j fileJob) {
	w.jobs <- j
}

func (w *writers) work() {
	defer w.wg.Done()
	for j := range w.jobs {
		w.mu.Lock()
		failed := w.err != nil
		w.mu.Unlock()
		var err error
		if !failed {
			err = w.write(j)
		}
		unix.Close(j.fd)
		w.put(j.body, j.n)
		if err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = fmt.Errorf("apply layer: entry %q: %w", j.hdr.Name, err)
			}
			w.cond.Broadcast()
			w.mu.Unlock()
		}
	}
}

func (w *writers) write(j fileJob) error {
	if j.n > 0 {
		if err := writeAll(j.fd, (*j.body)[:j.n]); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return w.a.fileMeta(j.fd, j.hdr, func(t []unix.Timespec) error {
		// The name may be gone or replaced by now: the inode is reached
		// through the fd.
		return unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(j.fd), t, 0)
	})
}

// wait closes the queue and waits for the workers; it returns the first
// worker error.
func (w *writers) wait() error {
	close(w.jobs)
	w.wg.Wait()
	return w.err
}
