package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/berth-dev/berth/internal/cli/client"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/term"
)

const defaultDetachKeys = "ctrl-p,ctrl-q"

// streamer pumps a hijacked attach/exec connection:
//
//	stdin  ──(escape proxy: detach keys)──▶ conn   (CloseWrite on EOF)
//	conn   ──raw (tty) | stdcopy demux────▶ stdout / stderr
//
// It returns when output ends (nil), the user typed the detach keys
// (term.EscapeError), or ctx is cancelled. With a tty on stdin the terminal
// is put in raw mode for the duration and restored on return.
type streamer struct {
	in         io.Reader // nil: no stdin attached
	out, err   io.Writer
	tty        bool
	detachKeys string
	resp       client.HijackedResponse
}

func (s *streamer) run(ctx context.Context) error {
	restore := func() {}
	if s.tty && s.in != nil {
		if fd, isTerm := term.GetFdInfo(s.in); isTerm {
			state, err := term.SetRawTerminal(fd)
			if err != nil {
				return err
			}
			var once sync.Once
			restore = func() { once.Do(func() { _ = term.RestoreTerminal(fd, state) }) }
		}
	}
	defer restore()

	outDone := make(chan error, 1)
	go func() {
		var err error
		if s.tty {
			_, err = io.Copy(s.out, s.resp.Reader)
			// Restore before more output so the shell prompt lands on a clean line.
			restore()
		} else {
			_, err = stdcopy.StdCopy(s.out, s.err, s.resp.Reader)
		}
		outDone <- err
	}()

	inDone := make(chan error, 1)
	if s.in != nil {
		go func() {
			in := s.in
			if s.detachKeys != "" {
				keys, err := term.ToBytes(s.detachKeys)
				if err == nil {
					in = term.NewEscapeProxy(in, keys)
				}
			}
			_, err := io.Copy(s.resp.Conn, in)
			var esc term.EscapeError
			if errors.As(err, &esc) {
				inDone <- err
				return
			}
			_ = s.resp.CloseWrite()
			inDone <- nil
		}()
	}

	for {
		select {
		case err := <-outDone:
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			return nil
		case err := <-inDone:
			if err != nil {
				return err
			}
			// stdin closed: keep reading output until the container ends.
			inDone = nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func isEscape(err error) bool {
	var esc term.EscapeError
	return errors.As(err, &esc)
}

// validateDetachKeys checks a --detach-keys value.
func validateDetachKeys(keys string) error {
	if keys == "" {
		return nil
	}
	if _, err := term.ToBytes(keys); err != nil {
		return fmt.Errorf("invalid detach keys (%s) provided", keys)
	}
	return nil
}

// monitorTTYSize sends the terminal size now and on every SIGWINCH.
func (c *CLI) monitorTTYSize(ctx context.Context, resize func(h, w uint) error) {
	fd, isTerm := c.outFd()
	if !isTerm {
		return
	}
	send := func() {
		ws, err := term.GetWinsize(fd)
		if err != nil || ws.Height == 0 && ws.Width == 0 {
			return
		}
		_ = resize(uint(ws.Height), uint(ws.Width))
	}
	send()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ch:
				send()
			case <-ctx.Done():
				return
			}
		}
	}()
}

// ttySize returns the terminal size of stdout for ConsoleSize, or zeros.
func (c *CLI) ttySize() (uint, uint) {
	fd, isTerm := c.outFd()
	if !isTerm {
		return 0, 0
	}
	ws, err := term.GetWinsize(fd)
	if err != nil {
		return 0, 0
	}
	return uint(ws.Height), uint(ws.Width)
}

// forwardSignals proxies the client's signals to the container (--sig-proxy).
func forwardSignals(ctx context.Context, api *client.Client, id string) func() {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				sig, ok := s.(syscall.Signal)
				if !ok {
					continue
				}
				_, _ = api.ContainerKill(context.WithoutCancel(ctx), id, client.ContainerKillOptions{Signal: fmt.Sprint(int(sig))})
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
