package apitest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	pathpkg "path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

type execRec struct {
	id, ctr string
	cfg     container.ExecCreateRequest
	started bool
	running bool
	exit    *int
}

// ExecCreate implements backend.ExecBackend.
func (f *Fake) ExecCreate(_ context.Context, id string, cfg container.ExecCreateRequest) (container.ExecCreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(id)
	if err != nil {
		return container.ExecCreateResponse{}, err
	}
	if c.state != container.StateRunning {
		return container.ExecCreateResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", c.id))
	}
	f.seq++
	e := &execRec{id: fmt.Sprintf("%064x", f.seq+1<<40), ctr: c.id, cfg: cfg}
	f.execs[e.id] = e
	return container.ExecCreateResponse{ID: e.id}, nil
}

func (f *Fake) findExecLocked(id string) (*execRec, error) {
	if e, ok := f.execs[id]; ok {
		return e, nil
	}
	return nil, errdefs.ErrNotFound.WithMessage("No such exec instance: " + id)
}

// ExecStart implements backend.ExecBackend.
func (f *Fake) ExecStart(_ context.Context, execID string, opts backend.ExecStartOptions) error {
	f.mu.Lock()
	e, err := f.findExecLocked(execID)
	if err == nil && e.started {
		err = errdefs.ErrConflict.WithMessage(fmt.Sprintf("Error: Exec command %s is already running", execID))
	}
	if err != nil {
		f.mu.Unlock()
		return err
	}
	e.started, e.running = true, true
	c := f.containers[e.ctr]
	f.mu.Unlock()
	var stop chan struct{}
	if c != nil {
		stop = c.stop
	}
	finish := func(code int) {
		f.mu.Lock()
		e.running, e.exit = false, &code
		f.mu.Unlock()
	}
	if opts.Detach {
		go func() { finish(runProgram(e.cfg.Cmd, noStdin, func(string, string) {}, stop)) }()
		return nil
	}
	streams, err := opts.Streams(e.cfg.Tty)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	out := func(stream, s string) {
		mu.Lock()
		defer mu.Unlock()
		w := streams.Stdout
		if stream == "stderr" {
			w = streams.Stderr
		}
		if e.cfg.Tty {
			s = strings.ReplaceAll(s, "\n", "\r\n")
		}
		if w != nil && (stream == "stdout" && e.cfg.AttachStdout || stream == "stderr" && e.cfg.AttachStderr) {
			_, _ = io.WriteString(w, s)
		}
	}
	stdin := noStdin
	if e.cfg.AttachStdin && streams.Stdin != nil {
		stdin = func() (io.Reader, bool) { return streams.Stdin, true }
	}
	finish(runProgram(e.cfg.Cmd, stdin, out, stop))
	return nil
}

func noStdin() (io.Reader, bool) { return strings.NewReader(""), true }

// ExecInspect implements backend.ExecBackend.
func (f *Fake) ExecInspect(_ context.Context, execID string) (container.ExecInspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := f.findExecLocked(execID)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	r := container.ExecInspectResponse{ID: e.id, ContainerID: e.ctr, Running: e.running, ExitCode: e.exit,
		OpenStdin: e.cfg.AttachStdin, OpenStdout: e.cfg.AttachStdout, OpenStderr: e.cfg.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: e.cfg.Tty}}
	if len(e.cfg.Cmd) > 0 {
		r.ProcessConfig.Entrypoint, r.ProcessConfig.Arguments = e.cfg.Cmd[0], e.cfg.Cmd[1:]
	}
	return r, nil
}

// ExecResize implements backend.ExecBackend.
func (f *Fake) ExecResize(_ context.Context, execID string, _, _ uint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.findExecLocked(execID)
	return err
}

// The fake root filesystem: /etc/hostname (a file) and /tmp (a directory
// that collects what is copied in).
var fakeMtime = time.Unix(1700000000, 0).UTC()

func (f *Fake) statLocked(id, path string) (container.PathStat, error) {
	c, err := f.findLocked(id)
	if err != nil {
		return container.PathStat{}, err
	}
	switch pathpkg.Clean(path) {
	case "/etc/hostname":
		return container.PathStat{Name: "hostname", Size: int64(len(c.id[:12]) + 1), Mode: 0o644, Mtime: fakeMtime}, nil
	case "/tmp":
		return container.PathStat{Name: "tmp", Mode: os.ModeDir | 0o1777, Mtime: fakeMtime}, nil
	}
	return container.PathStat{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("Could not find the file %s in container %s", path, id))
}

// ContainerStatPath implements backend.ArchiveBackend.
func (f *Fake) ContainerStatPath(_ context.Context, id, path string) (container.PathStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statLocked(id, path)
}

// ContainerArchivePath implements backend.ArchiveBackend.
func (f *Fake) ContainerArchivePath(_ context.Context, id, path string) (io.ReadCloser, container.PathStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := f.statLocked(id, path)
	if err != nil {
		return nil, st, err
	}
	c, _ := f.findLocked(id)
	files := map[string]string{}
	if st.Mode.IsDir() {
		// Entries are named after the requested base ("tmp", or "." for
		// "/tmp/."), as docker's archive endpoint does.
		base := pathpkg.Base(path)
		files[base+"/"] = ""
		for name, data := range c.files() {
			files[base+"/"+name] = data
		}
	} else {
		files["hostname"] = c.id[:12] + "\n"
	}
	return io.NopCloser(tarOf(files)), st, nil
}

func (c *ctr) files() map[string]string {
	if c.copied == nil {
		c.copied = map[string]string{}
	}
	return c.copied
}

func tarOf(files map[string]string) *bytes.Buffer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: fakeMtime, Typeflag: tar.TypeReg}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o1777, 0
		}
		_ = tw.WriteHeader(h)
		_, _ = io.WriteString(tw, files[n])
	}
	_ = tw.Close()
	return &buf
}

// ContainerExtractToDir implements backend.ArchiveBackend: only /tmp is
// writable; regular files are recorded by base name.
func (f *Fake) ContainerExtractToDir(_ context.Context, id, path string, _ backend.ExtractOptions, content io.Reader) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := f.statLocked(id, path)
	if err != nil {
		return err
	}
	if !st.Mode.IsDir() {
		return errdefs.ErrInvalidArgument.WithMessage("extraction point is not a directory")
	}
	c, _ := f.findLocked(id)
	tr := tar.NewReader(content)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage("invalid tar: " + err.Error())
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			c.files()[h.Name] = string(b)
		}
	}
}

// ContainerExport implements backend.ArchiveBackend.
func (f *Fake) ContainerExport(_ context.Context, id string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(id)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(tarOf(map[string]string{"etc/": "", "etc/hostname": c.id[:12] + "\n"})), nil
}
