package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/archive"
)

// Gzip is most layers' compression and inflating it is the largest CPU cost
// of a pull after creating files. ISA-L's igzip (Debian package isal)
// inflates about 2.5x faster than Go's flate and runs as its own process, so
// it overlaps with untarring on another core; containerd makes the same
// choice. Without igzip on PATH, archive.Decompress does the work in Go.

// findIgzip resolves Options.Igzip: "" looks igzip up on PATH, "off" disables.
func findIgzip(opt string) string {
	switch opt {
	case "off":
		return ""
	case "":
		p, err := exec.LookPath("igzip")
		if err != nil {
			return ""
		}
		return p
	}
	return opt
}

// decompressLayer returns the uncompressed stream of a layer blob.
func (s *Store) decompressLayer(ctx context.Context, r io.Reader) (io.ReadCloser, error) {
	if s.igzip == "" {
		return archive.Decompress(r)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && err != io.EOF {
		return nil, err
	}
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return archive.Decompress(br)
	}
	return startIgzip(ctx, s.igzip, br)
}

type igzipReader struct {
	cmd *exec.Cmd
	out *os.File
	// buf turns tar's 512-byte header reads into large pipe reads: without
	// it a layer costs one read(2) per header.
	buf    *bufio.Reader
	stderr *bytes.Buffer
	in     *os.File
	// feedErr is the error reading the compressed input, if any.
	feedErr atomic.Pointer[error]
	once    sync.Once
	err     error
}

func startIgzip(ctx context.Context, path string, in io.Reader) (io.ReadCloser, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// A 1 MiB pipe lets igzip run ahead of the untar instead of lock-stepping.
	_, _ = unix.FcntlInt(pr.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	// Feed stdin from our own goroutine, not exec's: Wait must not block on
	// a reader that follows a download still in flight.
	inR, inW, err := os.Pipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, "-d", "-c")
	cmd.Stdin = inR
	cmd.Stdout = pw
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	pw.Close()
	inR.Close()
	r := &igzipReader{cmd: cmd, out: pr, buf: bufio.NewReaderSize(pr, 512<<10), stderr: &stderr, in: inW}
	go func() {
		_, err := io.CopyBuffer(inW, in, make([]byte, 256<<10))
		r.feedErr.Store(&err)
		inW.Close()
	}()
	return r, nil
}

func (r *igzipReader) wait() error {
	r.once.Do(func() {
		err := r.cmd.Wait()
		if fe := r.feedErr.Load(); fe != nil && *fe != nil && !errors.Is(*fe, unix.EPIPE) {
			// The input failed (download error): that is the real cause.
			r.err = *fe
			return
		}
		if err != nil {
			r.err = fmt.Errorf("igzip: %v: %s", err, strings.TrimSpace(r.stderr.String()))
		}
	})
	return r.err
}

func (r *igzipReader) Read(p []byte) (int, error) {
	n, err := r.buf.Read(p)
	if errors.Is(err, io.EOF) {
		// The stream is only complete if igzip says so.
		if werr := r.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (r *igzipReader) Close() error {
	r.out.Close() // igzip gets EPIPE if it is still writing
	r.in.Close()  // and the feeder, if it is
	if r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Kill()
	}
	_ = r.wait()
	return nil
}
