package daemon

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/berth-dev/berth/internal/monitor"
)

// attachTarget tells an attach made before start that the monitor is up;
// the attach connects and then closes ready, so start only lets the process
// run once every early attach is connected.
type attachTarget struct {
	stateDir string
	ready    chan struct{}
}

// connectPendingAttaches hands the new monitor to attaches waiting for
// start and waits (briefly) until each has connected. c.mu is held.
func (d *Daemon) connectPendingAttaches(ctx context.Context, c *Container) {
	waiters := c.attachWait
	c.attachWait = nil
	for _, w := range waiters {
		t := attachTarget{stateDir: d.stateDir(c.ID), ready: make(chan struct{})}
		select {
		case w <- t:
			select {
			case <-t.ready:
			case <-time.After(5 * time.Second):
			case <-ctx.Done():
			}
		default: // the attach went away
		}
	}
}

// closeAttachWaiters ends the attaches waiting for a start that will not
// come (a failed start, a removal). c.mu is held.
func closeAttachWaiters(c *Container) {
	for _, w := range c.attachWait {
		close(w)
	}
	c.attachWait = nil
}

// ContainerAttach implements backend.StreamBackend.
func (d *Daemon) ContainerAttach(ctx context.Context, id string, opts backend.AttachOptions) error {
	c, err := d.ctrs.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	tty := c.Config.Tty
	status := c.State.Status
	var wait chan attachTarget
	if opts.Stream && !c.State.running() {
		wait = make(chan attachTarget, 1)
		c.attachWait = append(c.attachWait, wait)
	}
	c.mu.Unlock()
	if opts.Stdin && !c.Config.OpenStdin {
		opts.Stdin = false
	}
	streams, err := opts.Streams(tty)
	if err != nil {
		return err
	}
	if opts.Logs {
		if err := d.replayLogs(ctx, c, opts, streams); err != nil {
			return err
		}
	}
	if !opts.Stream {
		return nil
	}
	stateDir := d.stateDir(c.ID)
	var ready chan struct{}
	if wait != nil {
		// Not ctx: net/http cancels a hijacked request's context when the
		// client half-closes (the docker CLI does so at once when it sends
		// no stdin), and the output must still flow. As moby does, the
		// attach ends with the container: start hands over the monitor,
		// a failed start or a removal closes the channel.
		t, ok := <-wait
		if !ok {
			return nil
		}
		stateDir, ready = t.stateDir, t.ready
	} else if status == container.StateExited || status == container.StateCreated {
		return nil
	}
	var flags byte
	if opts.Stdin {
		flags |= monitor.AttachStdin
	}
	if opts.Stdout {
		flags |= monitor.AttachStdout
	}
	if opts.Stderr {
		flags |= monitor.AttachStderr
	}
	// Without ctx's cancel, for the reason above (the dial is local and
	// the ack read has its own deadline).
	conn, err := monitor.Attach(context.WithoutCancel(ctx), stateDir, flags)
	if ready != nil {
		close(ready)
	}
	if err != nil {
		return nil // the container exited meanwhile: nothing more to stream
	}
	defer conn.Close()

	detached := make(chan struct{})
	if opts.Stdin && streams.Stdin != nil {
		keys := opts.DetachKeys
		if len(keys) == 0 {
			keys = []byte{16, 17} // ctrl-p, ctrl-q
		}
		go func() {
			err := copyStdin(conn, streams.Stdin, keys)
			if err == errDetached {
				close(detached)
				conn.Close()
				return
			}
			_ = conn.CloseWrite()
		}()
	}
	// The request context is no end signal either (see above): output
	// flows until the container ends; a client that went away is seen by
	// the failing writes, and server shutdown closes hijacked connections.
	if tty {
		_, err = io.Copy(streams.Stdout, conn)
	} else {
		err = demuxTo(conn, streams.Stdout, streams.Stderr)
	}
	select {
	case <-detached:
		return nil
	default:
	}
	if err != nil && ctx.Err() == nil && !isClosedErr(err) {
		return err
	}
	return nil
}

func isClosedErr(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "use of closed network connection") || strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "connection reset"))
}

// demuxTo splits the monitor's multiplexed frames onto the client's
// stdout and stderr writers (which re-frame them for the client).
func demuxTo(r io.Reader, stdout, stderr io.Writer) error {
	br := bufio.NewReaderSize(r, 32*1024)
	hdr := make([]byte, 8)
	buf := make([]byte, 32*1024)
	for {
		if _, err := io.ReadFull(br, hdr); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil
			}
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[4:]))
		if n > len(buf) {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return err
		}
		w := stdout
		if hdr[0] == 2 {
			w = stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
	}
}

var errDetached = fmt.Errorf("detached")

// copyStdin copies client input to the container, watching for the detach
// key sequence (bytes that start the sequence are held back until it is
// complete or broken, as docker does).
func copyStdin(dst io.Writer, src io.Reader, keys []byte) error {
	buf := make([]byte, 32*1024)
	matched := 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			out := make([]byte, 0, n+matched)
			for _, b := range buf[:n] {
				if len(keys) > 0 && b == keys[matched] {
					matched++
					if matched == len(keys) {
						return errDetached
					}
					continue
				}
				if matched > 0 {
					out = append(out, keys[:matched]...)
					matched = 0
				}
				out = append(out, b)
			}
			if len(out) > 0 {
				if _, werr := dst.Write(out); werr != nil {
					return werr
				}
			}
		}
		if err != nil {
			return err
		}
	}
}

// ContainerResize implements backend.StreamBackend.
func (d *Daemon) ContainerResize(ctx context.Context, id string, height, width uint) error {
	c, err := d.ctrs.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.State.running() {
		return errMsg(errConflict, "Container %s is not running", c.ID)
	}
	if !c.Config.Tty {
		return nil
	}
	return monitor.Resize(d.stateDir(c.ID), height, width)
}

// jsonLogLine is one line of docker's json-file format.
type jsonLogLine struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// ContainerLogs implements backend.StreamBackend.
func (d *Daemon) ContainerLogs(ctx context.Context, id string, opts backend.LogsOptions) (backend.LogStream, error) {
	c, err := d.ctrs.get(id)
	if err != nil {
		return backend.LogStream{}, err
	}
	c.mu.Lock()
	logPath, tty := c.LogPath, c.Config.Tty
	exitCh := c.exitCh
	running := c.State.running() || c.State.Status == container.StateRestarting
	c.mu.Unlock()
	if logPath == "" {
		return backend.LogStream{}, errMsg(errdefs.ErrInvalidArgument, `configured logging driver does not support reading`)
	}
	tail := -1
	if opts.Tail != "" && opts.Tail != "all" {
		// As dockerd: a value that is not a number means all lines.
		if n, err := strconv.Atoi(opts.Tail); err == nil {
			tail = n
		}
	}
	ch := make(chan backend.LogMessage, 64)
	go func() {
		defer close(ch)
		send := func(l jsonLogLine) bool {
			if (l.Stream == "stdout" && !opts.Stdout) || (l.Stream == "stderr" && !opts.Stderr) {
				return true
			}
			if !opts.Since.IsZero() && l.Time.Before(opts.Since) {
				return true
			}
			if !opts.Until.IsZero() && l.Time.After(opts.Until) {
				return true
			}
			select {
			case ch <- backend.LogMessage{Stream: l.Stream, Line: []byte(l.Log), Timestamp: l.Time}:
				return true
			case <-ctx.Done():
				return false
			}
		}
		// Read the whole history (tail keeps the last N lines).
		var hist []jsonLogLine
		var seen logCursor // logfollow.go: what following has passed
		files := logFiles(logPath)
		var cur *os.File
		for i, f := range files {
			fh, err := openLogFile(f) // logfiles.go: rotated files may be .gz
			if err != nil {
				continue
			}
			r := bufio.NewReaderSize(logReader(fh), 64*1024)
			for {
				line, err := r.ReadBytes('\n')
				if len(line) > 0 && line[len(line)-1] == '\n' {
					var l jsonLogLine
					if json.Unmarshal(line, &l) == nil && seen.pass(l.Time) {
						if tail != 0 {
							hist = append(hist, l)
						}
						if tail > 0 && len(hist) > tail*2+1024 {
							hist = append(hist[:0], hist[len(hist)-tail:]...)
						}
					}
				} else if len(line) > 0 && i == len(files)-1 {
					// A partial last line: re-read it when following.
					_, _ = fh.Seek(-int64(len(line)), io.SeekCurrent)
				}
				if err != nil {
					break
				}
			}
			if i == len(files)-1 {
				cur = fh
			} else {
				fh.Close()
			}
		}
		if tail >= 0 && len(hist) > tail {
			hist = hist[len(hist)-tail:]
		}
		for _, l := range hist {
			if !send(l) {
				if cur != nil {
					cur.Close()
				}
				return
			}
		}
		if !opts.Follow || !running || cur == nil {
			if cur != nil {
				cur.Close()
			}
			return
		}
		d.followLog(ctx, cur, logPath, exitCh, send, &seen)
	}()
	return backend.LogStream{TTY: tty, Messages: ch}, nil
}

// followLog tails the log file until the container exits (then drains what
// is left), following rotations. The monitor may rotate more than once
// between two looks (a fast writer, a small max-size, a loaded host): at a
// rotation the files from the one holding the last line passed are read
// again and seen drops what was passed already, so no line is lost or
// repeated.
func (d *Daemon) followLog(ctx context.Context, f *os.File, path string, exitCh <-chan struct{}, send func(jsonLogLine) bool, seen *logCursor) {
	var queue []*os.File // to read after f, oldest first
	defer func() {
		f.Close()
		for _, q := range queue {
			q.Close()
		}
	}()
	r := bufio.NewReaderSize(logReader(f), 64*1024)
	next := func(nf *os.File) {
		f.Close()
		f = nf
		r.Reset(logReader(f))
	}
	var partial []byte
	exited := false
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			partial = append(partial, line...)
			if partial[len(partial)-1] == '\n' {
				var l jsonLogLine
				if json.Unmarshal(partial, &l) == nil && seen.pass(l.Time) && !send(l) {
					return
				}
				partial = partial[:0]
			}
		}
		if err == nil {
			continue
		}
		if len(queue) > 0 {
			next(queue[0])
			queue = queue[1:]
			partial = partial[:0]
			continue
		}
		// At EOF of the live file: rotated? Then read again from the
		// rotated file that holds the last line passed.
		if st, serr := os.Stat(path); serr == nil {
			if fst, ferr := f.Stat(); ferr == nil && !os.SameFile(st, fst) {
				if files := catchUpFiles(path, seen); len(files) > 0 {
					next(files[0])
					queue = files[1:]
					partial = partial[:0]
					seen.again()
					continue
				}
			}
		}
		if exited {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-exitCh:
			exited = true // one more pass drains the tail
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// replayLogs writes the log to the attach streams (attach with logs=1).
func (d *Daemon) replayLogs(ctx context.Context, c *Container, opts backend.AttachOptions, s backend.AttachStreams) error {
	ls, err := d.ContainerLogs(ctx, c.ID, backend.LogsOptions{Stdout: opts.Stdout, Stderr: opts.Stderr})
	if err != nil {
		return nil
	}
	var mu sync.Mutex
	for m := range ls.Messages {
		mu.Lock()
		w := s.Stdout
		if m.Stream == "stderr" {
			w = s.Stderr
		}
		if w != nil {
			_, _ = w.Write(m.Line)
		}
		mu.Unlock()
	}
	return nil
}
