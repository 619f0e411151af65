package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Gzip is the pull's hottest loop: inflating 95 MB of debian layers takes
// about 0.7 s of CPU with klauspost/compress, 0.2 s with ISA-L's igzip
// (Debian package isal). So, like containerd and moby do with unpigz, a gzip
// stream is piped through igzip when it is installed, and inflated in Go
// otherwise. igzip checks the CRC and length; any failure (truncated or
// corrupt input) is an error at the end of the stream.

var (
	helperOnce sync.Once
	helperPath string
	helperMu   sync.Mutex
	helperSet  bool
)

// SetGzipHelper chooses the external gzip decompressor: a path to an
// igzip-compatible binary ("-dc" reads stdin, writes stdout, exits non-zero
// on bad input), or "" to always inflate in Go. Without a call, igzip is
// looked up in PATH once.
func SetGzipHelper(path string) {
	helperMu.Lock()
	defer helperMu.Unlock()
	helperPath, helperSet = path, true
}

func gzipHelper() string {
	helperMu.Lock()
	defer helperMu.Unlock()
	if helperSet {
		return helperPath
	}
	helperOnce.Do(func() {
		helperPath, _ = exec.LookPath("igzip")
	})
	return helperPath
}

// helperReader is the stdout of a running decompressor.
type helperReader struct {
	cmd    *exec.Cmd
	out    *os.File
	stderr bytes.Buffer
	copied chan error // the stdin feeder's result
	done   bool
	err    error
	once   sync.Once
}

const pipeSize = 1 << 20

func startHelper(path string, src io.Reader) (*helperReader, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	// Bigger pipes, fewer context switches (best effort: the limit is
	// /proc/sys/fs/pipe-max-size).
	unix.FcntlInt(inW.Fd(), unix.F_SETPIPE_SZ, pipeSize)
	unix.FcntlInt(outR.Fd(), unix.F_SETPIPE_SZ, pipeSize)
	h := &helperReader{out: outR, copied: make(chan error, 1)}
	h.cmd = exec.Command(path, "-dc")
	h.cmd.Stdin, h.cmd.Stdout, h.cmd.Stderr = inR, outW, &h.stderr
	// The helper parses hostile bytes in C: it gets nothing but its pipes,
	// no privileges (nobody, when we are root), and dies with us.
	h.cmd.Env = []string{}
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		h.cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: false}
	}
	if err := h.cmd.Start(); err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	inR.Close()
	outW.Close()
	go func() {
		buf := make([]byte, 256<<10)
		// Plain Reader and Writer: no ReadFrom/WriteTo detours into 32 KiB
		// copies.
		_, err := io.CopyBuffer(struct{ io.Writer }{inW}, struct{ io.Reader }{src}, buf)
		inW.Close() // EOF for the helper, or EPIPE after it died
		h.copied <- err
	}()
	return h, nil
}

func (h *helperReader) Read(p []byte) (int, error) {
	if h.done {
		return 0, h.err
	}
	n, err := h.out.Read(p)
	if err == io.EOF {
		h.done = true
		h.err = h.finish()
		if h.err == nil {
			h.err = io.EOF
		}
		return n, h.err
	}
	return n, err
}

// finish waits for the helper and returns why the stream ended badly, if it
// did: the source's own error first (a failed download explains a
// truncated stream better than the decompressor can).
func (h *helperReader) finish() error {
	werr := h.cmd.Wait()
	cerr := <-h.copied
	h.copied <- cerr
	if cerr != nil && !errors.Is(cerr, unix.EPIPE) {
		return fmt.Errorf("gzip input: %w", cerr)
	}
	if werr != nil {
		msg := bytes.TrimSpace(h.stderr.Bytes())
		return fmt.Errorf("gzip: %s: %s: %w", werr, msg, io.ErrUnexpectedEOF)
	}
	return nil
}

// Close stops the helper if the stream was not read to its end. It does
// not wait for the feeder's read of the source in flight (see Decompress).
func (h *helperReader) Close() error {
	h.once.Do(func() {
		if !h.done {
			h.cmd.Process.Kill()
			h.cmd.Wait()
		}
		h.out.Close()
	})
	return nil
}
