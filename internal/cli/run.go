package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cli/client"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type createOpts struct {
	platform string
	pull     string
	quiet    bool
	name     string
}

type runOpts struct {
	createOpts
	detach     bool
	detachKeys string
	sigProxy   bool
}

func (c *CLI) newRunCommand() *cobra.Command {
	var o containerOptions
	var ro runOpts
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.image, o.args = args[0], args[1:]
			return c.runRun(cmd.Context(), cmd.Flags(), &o, &ro)
		},
	}
	fl := cmd.Flags()
	addContainerFlags(fl, &o)
	fl.BoolVarP(&ro.detach, "detach", "d", false, "Run container in background and print container ID")
	fl.StringVar(&ro.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fl.BoolVar(&ro.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	addCreateFlags(fl, &ro.createOpts)
	cmd.Aliases = nil
	return cmd
}

func addCreateFlags(fl *pflag.FlagSet, o *createOpts) {
	fl.StringVar(&o.platform, "platform", os.Getenv("BERTH_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	fl.StringVar(&o.pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
	fl.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the pull output")
	fl.Bool("disable-content-trust", true, "Skip image verification (default true)")
}

func (c *CLI) newCreateCommand() *cobra.Command {
	var o containerOptions
	var co createOpts
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.image, o.args = args[0], args[1:]
			cfg, err := parseContainer(cmd.Flags(), &o)
			if err == nil {
				err = c.applyAPISocket(cfg, &o)
			}
			if err != nil {
				return runError(cmd, err)
			}
			co.name = o.name
			id, err := c.createContainer(cmd.Context(), cfg, &co)
			if err != nil {
				// docker create prints daemon errors plainly, exit status 1.
				return err
			}
			fmt.Fprintln(c.out, id)
			return nil
		},
	}
	addContainerFlags(cmd.Flags(), &o)
	addCreateFlags(cmd.Flags(), &co)
	return cmd
}

// runError formats a run/create failure as docker does ("docker: …" plus a
// hint) with exit status 125, or 126/127 when the command cannot be run.
func runError(cmd *cobra.Command, err error) error {
	var se StatusError
	if errors.As(err, &se) {
		return err
	}
	msg := err.Error()
	code := 125
	switch {
	case client.IsErrConnectionFailed(err):
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"),
		strings.Contains(msg, "system cannot find the file specified"):
		code = 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "cannot execute"),
		strings.Contains(msg, "exec format error"):
		code = 126
	}
	return runStatusErr{err: err, code: code, cmd: cmd.CommandPath()}
}

// runStatusErr is printed by Main with the connection-error rewrite applied.
type runStatusErr struct {
	err  error
	code int
	cmd  string
}

func (e runStatusErr) Error() string { return e.err.Error() }

func (e runStatusErr) Unwrap() error { return e.err }

// runRun is `berth run`, the same sequence of API calls docker makes:
//
//	POST /containers/create ─404 "No such image"→ POST /images/create (progress on stderr) → create again
//	POST /containers/{id}/attach?stream=1…  hijacked before start, so no output is lost   (not with -d)
//	POST /containers/{id}/wait?condition=next-exit|removed  the daemon must flush headers at once;
//	                                        sent together with the attach
//	POST /containers/{id}/start                             -d: print the ID and return
//	POST /containers/{id}/resize?h=&w=                      with -t: now and on every SIGWINCH
//	…stream until EOF (exit with the wait status) or the detach keys (exit 0, container left running)
func (c *CLI) runRun(ctx context.Context, fl *pflag.FlagSet, o *containerOptions, ro *runOpts) error {
	cmdPath := "berth run"
	fail := func(err error) error {
		return runStatusErr{err: err, code: 125, cmd: cmdPath}
	}
	cfg, err := parseContainer(fl, o)
	if err == nil {
		err = c.applyAPISocket(cfg, o)
	}
	if err != nil {
		return fail(err)
	}
	config := cfg.Config
	if ro.detach {
		if o.attach.Len() != 0 {
			return fail(errors.New("conflicting options: cannot specify both --attach and --detach"))
		}
		config.AttachStdin, config.AttachStdout, config.AttachStderr, config.StdinOnce = false, false, false, false
	} else if config.AttachStdin && config.Tty {
		if _, isTerm := c.inFd(); !isTerm {
			return fail(errors.New("the input device is not a TTY"))
		}
	}
	detachKeys := ro.detachKeys
	if detachKeys == "" && !ro.detach {
		if cf, err := c.config(); err == nil && cf.DetachKeys != "" {
			detachKeys = cf.DetachKeys
		} else {
			detachKeys = defaultDetachKeys
		}
	}
	if err := validateDetachKeys(detachKeys); err != nil {
		return fail(err)
	}
	ro.name = o.name
	id, err := c.createContainer(ctx, cfg, &ro.createOpts)
	if err != nil {
		return runErrorPath(cmdPath, err)
	}
	api, err := c.Client()
	if err != nil {
		return fail(err)
	}
	// Detached, the CLI exits once the container started: nothing to proxy.
	if ro.sigProxy && !config.Tty && !ro.detach {
		stop := forwardSignals(ctx, api, id)
		defer stop()
	}

	attach := config.AttachStdin || config.AttachStdout || config.AttachStderr
	// The stream must survive the caller's cancellation: the container's
	// output is what the user is waiting for.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()

	// Attach and wait are both needed before start and independent of each
	// other: send them at once, saving a round trip (docker sends the same
	// requests one after the other).
	type attachResult struct {
		resp client.ContainerAttachResult
		err  error
	}
	var attachCh chan attachResult
	if attach {
		attachCh = make(chan attachResult, 1)
		go func() {
			resp, err := api.ContainerAttach(sctx, id, client.ContainerAttachOptions{
				Stream: true, Stdin: config.AttachStdin, Stdout: config.AttachStdout, Stderr: config.AttachStderr,
				DetachKeys: detachKeys,
			})
			attachCh <- attachResult{resp, err}
		}()
	}

	// Waiting has its own context: cancelling the attach must not cancel it.
	// Detached, nothing waits for the exit: no wait request (docker sends
	// one it never reads).
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer wcancel()
	var statusCh <-chan int
	if attach {
		statusCh = c.waitExitOrRemoved(wctx, api, id, o.rm)
	}

	var errCh chan error
	if attach {
		r := <-attachCh
		if r.err != nil {
			return fail(r.err)
		}
		resp := r.resp
		defer resp.Close()
		s := &streamer{out: c.out, err: c.err, tty: config.Tty, resp: resp.HijackedResponse, detachKeys: detachKeys}
		if config.AttachStdin {
			s.in = c.in
		}
		if !config.AttachStdout {
			s.out = io.Discard
		}
		if !config.AttachStderr {
			s.err = io.Discard
		}
		errCh = make(chan error, 1)
		go func() { errCh <- s.run(sctx) }()
	}

	if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if attach {
			cancel()
			<-errCh
		}
		if o.rm {
			// The daemon removes the container; do not hang if it never does.
			if statusCh == nil {
				// Detached: wait now; "No such container" means it is gone already.
				res := api.ContainerWait(wctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
				statusCh = waitQuietly(res)
			}
			select {
			case <-statusCh:
			case <-time.After(10 * time.Second):
			}
		}
		return runErrorPath(cmdPath, err)
	}
	if !attach {
		fmt.Fprintln(c.out, id)
		return nil
	}
	if config.Tty {
		c.monitorTTYSize(sctx, func(h, w uint) error {
			_, err := api.ContainerResize(sctx, id, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}
	select {
	case err := <-errCh:
		if err != nil {
			if isEscape(err) {
				return nil
			}
			return err
		}
		if status := <-statusCh; status != 0 {
			return StatusError{StatusCode: status}
		}
	case status := <-statusCh:
		if !config.AttachStdout && !config.AttachStderr {
			cancel()
		}
		<-errCh
		if status != 0 {
			return StatusError{StatusCode: status}
		}
	}
	return nil
}

func runErrorPath(cmdPath string, err error) error {
	var se StatusError
	if errors.As(err, &se) {
		return err
	}
	cmd := &cobra.Command{Use: strings.TrimPrefix(cmdPath, "berth ")}
	e := runError(cmd, err).(runStatusErr)
	e.cmd = cmdPath
	return e
}

// waitExitOrRemoved reports the container's exit status. With --rm the
// daemon removes the container, so wait for "removed" to be sure the
// removal is done before the CLI exits (docker does the same).
func (c *CLI) waitExitOrRemoved(ctx context.Context, api *client.Client, id string, autoRemove bool) <-chan int {
	cond := container.WaitConditionNextExit
	if autoRemove {
		cond = container.WaitConditionRemoved
	}
	res := api.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	ch := make(chan int, 1)
	go func() {
		select {
		case r := <-res.Result:
			if r.Error != nil && r.Error.Message != "" {
				fmt.Fprintf(c.err, "Error waiting for container: %v\n", r.Error.Message)
				ch <- 125
				return
			}
			ch <- int(r.StatusCode)
		case err := <-res.Error:
			if ctx.Err() == nil {
				fmt.Fprintf(c.err, "Error waiting for container: %v\n", c.errMessage(err))
			}
			ch <- 125
		}
	}()
	return ch
}

// waitQuietly turns a wait result into a channel that fires when the wait
// ends, however it ends.
func waitQuietly(res client.ContainerWaitResult) <-chan int {
	ch := make(chan int, 1)
	go func() {
		select {
		case r := <-res.Result:
			ch <- int(r.StatusCode)
		case <-res.Error:
			ch <- 125
		}
	}()
	return ch
}

// createContainer creates, pulling the image first when the daemon does
// not have it (--pull=missing), or always/never as asked.
func (c *CLI) createContainer(ctx context.Context, cfg *containerConfig, o *createOpts) (string, error) {
	api, err := c.Client()
	if err != nil {
		return "", err
	}
	var platform *ocispec.Platform
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return "", err
		}
		platform = &p
	}
	switch o.pull {
	case "always":
		if err := c.pullForRun(ctx, cfg.Config.Image, o); err != nil {
			return "", err
		}
	case "missing", "never", "":
	default:
		return "", fmt.Errorf("invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\"", o.pull)
	}
	var cidFile *os.File
	if p := cfg.HostConfig.ContainerIDFile; p != "" {
		if _, err := os.Stat(p); err == nil {
			return "", fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", p)
		}
		if cidFile, err = os.Create(p); err != nil {
			return "", fmt.Errorf("failed to create the container ID file: %w", err)
		}
		defer cidFile.Close()
	}
	h, w := c.ttySize()
	cfg.HostConfig.ConsoleSize = [2]uint{h, w}
	create := func() (client.ContainerCreateResult, error) {
		return api.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name: o.name, Platform: platform, Config: cfg.Config, HostConfig: cfg.HostConfig, NetworkingConfig: cfg.NetworkingConfig,
		})
	}
	res, err := create()
	if err != nil && cerrdefs.IsNotFound(err) && o.pull != "never" && isNoSuchImage(err) {
		fmt.Fprintf(c.err, "Unable to find image '%s' locally\n", normalizeRef(cfg.Config.Image))
		if perr := c.pullForRun(ctx, cfg.Config.Image, o); perr != nil {
			return "", perr
		}
		res, err = create()
	}
	if err != nil {
		if cidFile != nil {
			_ = os.Remove(cidFile.Name())
		}
		return "", err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.err, "WARNING: %s\n", w)
	}
	if cidFile != nil {
		if _, err := cidFile.WriteString(res.ID); err != nil {
			return "", fmt.Errorf("failed to write the container ID to the file: %w", err)
		}
	}
	return res.ID, nil
}

// isNoSuchImage tells a missing image from a missing network or volume,
// which also come back as 404.
func isNoSuchImage(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "no such image") || strings.Contains(msg, "not found") && strings.Contains(msg, "image")
}

// pullForRun pulls with progress on stderr, as docker run does.
func (c *CLI) pullForRun(ctx context.Context, ref string, o *createOpts) error {
	var out io.Writer = c.err
	if o.quiet {
		out = io.Discard
	}
	return c.pullImage(ctx, ref, o.platform, false, out, c.err)
}

func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 1 || len(parts) > 3 || parts[0] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q", s)
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) == 1 {
		// "amd64" alone names an architecture on linux, as containerd's parser does.
		if parts[0] != "linux" && parts[0] != "windows" && parts[0] != "darwin" {
			p = ocispec.Platform{OS: "linux", Architecture: parts[0]}
		}
	}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

// applyAPISocket implements --use-api-socket: the daemon's unix socket is
// bind-mounted where docker clients look for it. (docker also injects
// registry credentials; berth does not copy secrets into containers.)
func (c *CLI) applyAPISocket(cfg *containerConfig, o *containerOptions) error {
	if !o.useAPISocket {
		return nil
	}
	sock, ok := strings.CutPrefix(c.daemonHost(), "unix://")
	if !ok {
		return errors.New("flag --use-api-socket needs the daemon on a unix socket")
	}
	cfg.HostConfig.Mounts = append(cfg.HostConfig.Mounts, mount.Mount{Type: mount.TypeBind, Source: sock,
		Target: "/var/run/docker.sock", BindOptions: &mount.BindOptions{}})
	return nil
}
