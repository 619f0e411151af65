package archive

import (
	"hash"
	"io"
	"sync"
)

// readahead decompresses on its own goroutine so that inflating the next
// megabytes overlaps with writing files (the two halves of unpacking are each
// about one core's worth of work), and hashes there what it read (h, if not
// nil). Chunks travel through a small channel of recycled buffers. In front
// of igzip it also turns the tar reader's 512-byte reads into large pipe
// reads: without it every tar header is a read(2) that wakes igzip.
type raReader struct {
	src    io.ReadCloser
	h      hash.Hash
	ch     chan raChunk
	free   chan []byte
	done   chan struct{}
	once   sync.Once
	cur    []byte
	curBuf []byte
	err    error
}

type raChunk struct {
	buf []byte // full backing buffer, returned to free
	n   int
	err error
}

const (
	raChunkSize = 128 << 10
	raChunks    = 4
)

func readahead(src io.ReadCloser, h hash.Hash) io.ReadCloser {
	r := &raReader{
		src:  src,
		h:    h,
		ch:   make(chan raChunk, raChunks),
		free: make(chan []byte, raChunks),
		done: make(chan struct{}),
	}
	for i := 0; i < raChunks; i++ {
		r.free <- make([]byte, raChunkSize)
	}
	go r.fill()
	return r
}

func (r *raReader) fill() {
	defer r.src.Close()
	for {
		var buf []byte
		select {
		case buf = <-r.free:
		case <-r.done:
			return
		}
		// Fill the chunk, keeping the source's own error (a truncated
		// gzip stream says io.ErrUnexpectedEOF and must go on saying it).
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = r.src.Read(buf[n:])
			n += m
		}
		if r.h != nil {
			r.h.Write(buf[:n])
		}
		select {
		case r.ch <- raChunk{buf: buf, n: n, err: err}:
		case <-r.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (r *raReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.curBuf != nil {
			r.free <- r.curBuf
			r.curBuf = nil
		}
		c, ok := <-r.ch
		if !ok {
			return 0, io.ErrClosedPipe
		}
		r.curBuf, r.cur, r.err = c.buf, c.buf[:c.n], c.err
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// WriteTo hands out whole chunks, saving a copy for io.Copy callers.
func (r *raReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.cur) > 0 {
			n, err := w.Write(r.cur)
			total += int64(n)
			r.cur = r.cur[n:]
			if err != nil {
				return total, err
			}
		}
		if r.err != nil {
			if r.err == io.EOF {
				return total, nil
			}
			return total, r.err
		}
		if r.curBuf != nil {
			r.free <- r.curBuf
			r.curBuf = nil
		}
		c, ok := <-r.ch
		if !ok {
			return total, io.ErrClosedPipe
		}
		r.curBuf, r.cur, r.err = c.buf, c.buf[:c.n], c.err
	}
}

func (r *raReader) Close() error {
	r.once.Do(func() { close(r.done) })
	return nil
}
