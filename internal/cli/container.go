package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cli/client"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
)

func (c *CLI) newContainerCommand() *cobra.Command {
	ls := c.newPsCommand()
	ls.Use = "ls [OPTIONS]"
	ls.Aliases = []string{"list", "ps"}
	return c.groupCommand("container", "Manage containers",
		c.newAttachCommand(), c.newCommitCommand(), c.newCpCommand(), c.newCreateCommand(), c.newDiffCommand(),
		c.newExecCommand(), c.newExportCommand(), c.newTypedInspectCommand("container"), c.newKillCommand(),
		c.newLogsCommand(), ls, c.newPauseCommand(), c.newPortCommand(), c.newContainerPruneCommand(),
		c.newRenameCommand(), c.newRestartCommand(), c.newRmCommand(), c.newRunCommand(), c.newStartCommand(),
		c.newStatsCommand(), c.newStopCommand(), c.newTopCommand(), c.newUnpauseCommand(), c.newUpdateCommand(),
		c.newWaitCommand())
}

// psRow is one line of `ps`; its methods are the --format fields.
type psRow struct {
	c     psContainer
	trunc bool
	now   time.Time
}

// psContainer is what psRow's fields read of a container.Summary (same JSON
// names): endpoint settings and the rest are skipped while decoding, about
// a fifth of the allocations of `ps -a` with 1000 containers.
type psContainer struct {
	ID         string `json:"Id"`
	Names      []string
	Image      string
	ImageID    string
	Command    string
	Created    int64
	Ports      []container.PortSummary
	SizeRw     int64
	SizeRootFs int64
	Labels     map[string]string
	State      container.ContainerState
	Status     string
	Mounts     []struct {
		Name, Source, Driver string
	}
	NetworkSettings *struct {
		Networks map[string]struct{}
	}
}

func (r psRow) ID() string {
	if r.trunc {
		return shortID(r.c.ID)
	}
	return r.c.ID
}

func (r psRow) Names() string {
	var names []string
	for _, n := range r.c.Names {
		n = strings.TrimPrefix(n, "/")
		// Truncated output hides legacy link names ("/other/alias").
		if r.trunc && strings.Contains(n, "/") {
			continue
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

func (r psRow) Image() string {
	img := r.c.Image
	if img == "" {
		return "<no image>"
	}
	if r.trunc {
		if strings.HasPrefix(img, "sha256:") || shortID(r.c.ImageID) == shortID(img) {
			return shortID(img)
		}
		// name:tag@digest → name:tag
		if at := strings.Index(img, "@"); at > 0 && strings.Contains(lastComponent(img[:at]), ":") {
			img = img[:at]
		}
	}
	return img
}

func (r psRow) Command() string {
	cmd := r.c.Command
	if r.trunc {
		cmd = ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

func (r psRow) CreatedAt() string {
	return time.Unix(r.c.Created, 0).UTC().Format("2006-01-02 15:04:05 -0700 MST")
}

func (r psRow) RunningFor() string { return humanSince(time.Unix(r.c.Created, 0), r.now) }

func (r psRow) Ports() string { return displayablePorts(r.c.Ports) }

func (r psRow) State() string { return string(r.c.State) }

// Platform is null in --format json, as docker prints it for API < 1.46.
func (r psRow) Platform() any { return nil }

func (r psRow) Status() string { return r.c.Status }

func (r psRow) Size() string {
	s := humanSize(r.c.SizeRw)
	if r.c.SizeRootFs > 0 {
		s += fmt.Sprintf(" (virtual %s)", humanSize(r.c.SizeRootFs))
	}
	return s
}

func (r psRow) Labels() string {
	keys := make([]string, 0, len(r.c.Labels))
	for k := range r.c.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + r.c.Labels[k]
	}
	return strings.Join(parts, ",")
}

// Label returns one label's value ({{.Label "com.example"}}).
func (r psRow) Label(name string) string { return r.c.Labels[name] }

func (r psRow) Mounts() string {
	var names []string
	for _, m := range r.c.Mounts {
		n := m.Name
		if n == "" {
			n = m.Source
		}
		if r.trunc {
			n = ellipsis(n, 15)
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

func (r psRow) LocalVolumes() string {
	n := 0
	for _, m := range r.c.Mounts {
		if m.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

func (r psRow) Networks() string {
	if r.c.NetworkSettings == nil {
		return ""
	}
	var names []string
	for n := range r.c.NetworkSettings.Networks {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
	"Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
}

// displayablePorts renders PORTS like docker: unpublished ports (and ports
// published on the same number) folded into ranges per protocol, then the
// "ip:public->private/proto" mappings, e.g. "443/tcp, 0.0.0.0:8080->80/tcp".
func displayablePorts(ports []container.PortSummary) string {
	sorted := append([]container.PortSummary(nil), ports...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.PrivatePort != b.PrivatePort {
			return a.PrivatePort < b.PrivatePort
		}
		if a.IP != b.IP {
			return a.IP.String() < b.IP.String()
		}
		if a.PublicPort != b.PublicPort {
			return a.PublicPort < b.PublicPort
		}
		return a.Type < b.Type
	})
	type span struct{ first, last uint16 }
	spans := map[string]*span{}
	var order, result, mappings []string
	form := func(key string, s *span) string {
		ip, typ, hasIP := strings.Cut(key, "/")
		if !hasIP {
			ip, typ = "", key
		}
		g := strconv.Itoa(int(s.first))
		if s.first != s.last {
			g = fmt.Sprintf("%s-%d", g, s.last)
		}
		if ip != "" {
			g = net.JoinHostPort(ip, g) + "->" + g
		}
		return g + "/" + typ
	}
	for _, p := range sorted {
		key := string(p.Type)
		if p.IP.IsValid() {
			if p.PublicPort != p.PrivatePort {
				mappings = append(mappings, fmt.Sprintf("%s->%d/%s", net.JoinHostPort(p.IP.String(), strconv.Itoa(int(p.PublicPort))), p.PrivatePort, p.Type))
				continue
			}
			key = p.IP.String() + "/" + key
		}
		s := spans[key]
		switch {
		case s == nil:
			spans[key] = &span{p.PrivatePort, p.PrivatePort}
			order = append(order, key)
		case p.PrivatePort == s.last+1:
			s.last = p.PrivatePort
		default:
			result = append(result, form(key, s))
			spans[key] = &span{p.PrivatePort, p.PrivatePort}
		}
	}
	for _, k := range order {
		result = append(result, form(k, spans[k]))
	}
	return strings.Join(append(result, mappings...), ", ")
}

func (c *CLI) newPsCommand() *cobra.Command {
	var all, quiet, latest, noTrunc, size bool
	var last int
	var format string
	filters := listOpt{typ: "filter"}
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filters.values)
			if err != nil {
				return err
			}
			if last == -1 && latest {
				last = 1
			}
			if format == "" && !quiet {
				if cf, err := c.config(); err == nil && cf.PsFormat != "" {
					format = cf.PsFormat
				}
			}
			wantSize := size || strings.Contains(format, ".Size")
			opts := client.ContainerListOptions{All: all || last > 0, Limit: last, Size: wantSize, Filters: f}
			items, err := client.ListContainers[psContainer](cmd.Context(), api, opts)
			if err != nil {
				return err
			}
			now := time.Now()
			rows := make([]any, len(items))
			for i, ct := range items {
				rows[i] = psRow{c: ct, trunc: !noTrunc, now: now}
			}
			table := "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
			if size {
				table += "\t{{.Size}}"
			}
			return listFormat{format: format, table: table, quiet: "{{.ID}}", isQuiet: quiet, headers: psHeaders}.render(c.out, rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.VarP(&filters, "filter", "f", "Filter output based on conditions provided")
	fl.StringVar(&format, "format", "", formatHelp)
	fl.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	fl.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fl.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	return cmd
}

func (c *CLI) newLogsCommand() *cobra.Command {
	var o client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			info, err := api.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			o.ShowStdout, o.ShowStderr = true, true
			rc, err := api.ContainerLogs(ctx, info.Container.ID, o)
			if err != nil {
				return err
			}
			defer rc.Close()
			if info.Container.Config != nil && info.Container.Config.Tty {
				_, err = io.Copy(c.out, rc)
			} else {
				_, err = stdcopy.StdCopy(c.out, c.err, rc)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.Details, "details", false, "Show extra details provided to logs")
	fl.BoolVarP(&o.Follow, "follow", "f", false, "Follow log output")
	fl.StringVar(&o.Since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	fl.StringVarP(&o.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	fl.BoolVarP(&o.Timestamps, "timestamps", "t", false, "Show timestamps")
	fl.StringVar(&o.Until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	return cmd
}

// forEach applies fn to each argument, printing the argument on success and
// collecting failures, as docker's stop/kill/rm/pause do.
func (c *CLI) forEach(ctx context.Context, args []string, fn func(ctx context.Context, api *client.Client, id string) error) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	var errs multiErr
	for _, id := range args {
		if err := fn(ctx, api, id); err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			errs = append(errs, c.errMessage(err))
			continue
		}
		fmt.Fprintln(c.out, id)
	}
	return errs.err()
}

func (c *CLI) newStartCommand() *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !attach && !interactive {
				return c.forEach(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
					_, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{})
					return err
				})
			}
			if len(args) > 1 {
				return errors.New("you cannot start and attach multiple containers at once")
			}
			return c.startAttached(cmd.Context(), args[0], interactive, detachKeys)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	fl.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fl.BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	return cmd
}

func (c *CLI) startAttached(ctx context.Context, id string, interactive bool, detachKeys string) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	info, err := api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	ct := info.Container
	tty := ct.Config != nil && ct.Config.Tty
	if detachKeys == "" {
		detachKeys = defaultDetachKeys
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stdin := interactive && ct.Config != nil && ct.Config.OpenStdin
	resp, err := api.ContainerAttach(sctx, ct.ID, client.ContainerAttachOptions{Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: detachKeys})
	if err != nil {
		return err
	}
	defer resp.Close()
	s := &streamer{out: c.out, err: c.err, tty: tty, resp: resp.HijackedResponse, detachKeys: detachKeys}
	if stdin {
		s.in = c.in
	}
	errCh := make(chan error, 1)
	go func() { errCh <- s.run(sctx) }()
	statusCh := c.waitExitOrRemoved(sctx, api, ct.ID, ct.HostConfig != nil && ct.HostConfig.AutoRemove)
	if _, err := api.ContainerStart(ctx, ct.ID, client.ContainerStartOptions{}); err != nil {
		cancel()
		<-errCh
		return err
	}
	if tty {
		c.monitorTTYSize(sctx, func(h, w uint) error {
			_, err := api.ContainerResize(sctx, ct.ID, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if err := <-errCh; err != nil {
		if isEscape(err) {
			return nil
		}
		return err
	}
	if status := <-statusCh; status != 0 {
		return StatusError{StatusCode: status}
	}
	return nil
}

func (c *CLI) newStopCommand() *cobra.Command {
	return c.stopLike("stop", "Stop one or more running containers")
}
func (c *CLI) newRestartCommand() *cobra.Command {
	return c.stopLike("restart", "Restart one or more containers")
}

func (c *CLI) stopLike(name, short string) *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use:   name + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *int
			if cmd.Flags().Changed("timeout") || cmd.Flags().Changed("time") {
				t = &timeout
			}
			return c.forEach(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
				if name == "stop" {
					_, err := api.ContainerStop(ctx, id, client.ContainerStopOptions{Signal: signal, Timeout: t})
					return err
				}
				_, err := api.ContainerRestart(ctx, id, client.ContainerRestartOptions{Signal: signal, Timeout: t})
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	fl.IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	fl.IntVar(&timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	_ = fl.MarkHidden("time")
	return cmd
}

func (c *CLI) newKillCommand() *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.forEach(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
				_, err := api.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: signal})
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func (c *CLI) newPauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.forEach(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
				_, err := api.ContainerPause(ctx, id, client.ContainerPauseOptions{})
				return err
			})
		},
	}
}

func (c *CLI) newUnpauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.forEach(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
				_, err := api.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
				return err
			})
		},
	}
}

func (c *CLI) newRmCommand() *cobra.Command {
	var o client.ContainerRemoveOptions
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more containers",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.forEach(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
				id = strings.Trim(id, "/")
				if id == "" {
					return errors.New("container name cannot be empty")
				}
				_, err := api.ContainerRemove(ctx, id, o)
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	fl.BoolVarP(&o.RemoveLinks, "link", "l", false, "Remove the specified link")
	fl.BoolVarP(&o.RemoveVolumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}

func (c *CLI) newWaitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			var errs multiErr
			for _, id := range args {
				res := api.ContainerWait(cmd.Context(), id, client.ContainerWaitOptions{})
				select {
				case r := <-res.Result:
					fmt.Fprintf(c.out, "%d\n", r.StatusCode)
				case err := <-res.Error:
					if client.IsErrConnectionFailed(err) {
						return err
					}
					errs = append(errs, c.errMessage(err))
				}
			}
			return errs.err()
		},
	}
}

func (c *CLI) newRenameCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			name := strings.TrimSpace(args[1])
			if name == "" {
				return errors.New("Error: Neither old nor new names may be empty")
			}
			if _, err = api.ContainerRename(cmd.Context(), args[0], client.ContainerRenameOptions{NewName: name}); err != nil {
				return fmt.Errorf("%s\nError: failed to rename container named %s", c.errMessage(err), args[0])
			}
			return nil
		},
	}
}

func (c *CLI) newTopCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			w := newTopWriter(c.out)
			fmt.Fprintln(w, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(w, strings.Join(p, "\t"))
			}
			return w.Flush()
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func (c *CLI) newPortCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			info, err := api.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			var ports network.PortMap
			if info.Container.NetworkSettings != nil {
				ports = info.Container.NetworkSettings.Ports
			}
			lines := portLines(ports)
			if len(args) == 2 {
				want := args[1]
				if !strings.Contains(want, "/") {
					want += "/tcp"
				}
				p, err := network.ParsePort(want)
				if err != nil {
					return fmt.Errorf("invalid port (%s): %w", args[1], err)
				}
				bs, ok := ports[p]
				if !ok || len(bs) == 0 {
					return fmt.Errorf("Error: No public port '%s' published for %s", args[1], args[0])
				}
				for _, b := range bs {
					fmt.Fprintln(c.out, hostPortString(b))
				}
				return nil
			}
			for _, l := range lines {
				fmt.Fprintln(c.out, l)
			}
			return nil
		},
	}
}

func hostPortString(b network.PortBinding) string {
	ip := "0.0.0.0"
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + b.HostPort
	}
	return ip + ":" + b.HostPort
}

func portLines(ports network.PortMap) []string {
	keys := make([]network.Port, 0, len(ports))
	for p := range ports {
		keys = append(keys, p)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Num() != keys[j].Num() {
			return keys[i].Num() < keys[j].Num()
		}
		return keys[i].Proto() < keys[j].Proto()
	})
	var out []string
	for _, p := range keys {
		for _, b := range ports[p] {
			out = append(out, fmt.Sprintf("%s -> %s", p, hostPortString(b)))
		}
	}
	return out
}

func (c *CLI) newDiffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.ContainerDiff(cmd.Context(), args[0], client.ContainerDiffOptions{})
			if err != nil {
				return err
			}
			for _, ch := range res.Changes {
				kind := "?"
				switch ch.Kind {
				case container.ChangeModify:
					kind = "C"
				case container.ChangeAdd:
					kind = "A"
				case container.ChangeDelete:
					kind = "D"
				}
				fmt.Fprintf(c.out, "%s %s\n", kind, ch.Path)
			}
			return nil
		},
	}
}

func (c *CLI) newExportCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && c.outIsTerminal() {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			rc, err := api.ContainerExport(cmd.Context(), args[0], client.ContainerExportOptions{})
			if err != nil {
				return err
			}
			defer rc.Close()
			if output == "" {
				_, err = io.Copy(c.out, rc)
				return err
			}
			return writeFileAtomic(output, rc)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func (c *CLI) newUpdateCommand() *cobra.Command {
	var o containerOptions
	var restart string
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if fl.NFlag() == 0 {
				return errors.New("you must provide one or more flags when using this command")
			}
			r := &container.Resources{
				BlkioWeight: o.blkioWeight, CpusetCpus: o.cpusetCpus, CpusetMems: o.cpusetMems,
				CPUShares: o.cpuShares, Memory: int64(o.memory), MemoryReservation: int64(o.memoryReservation),
				MemorySwap: int64(o.memorySwap), CPUPeriod: o.cpuPeriod, CPUQuota: o.cpuQuota,
				CPURealtimePeriod: o.cpuRtPeriod, CPURealtimeRuntime: o.cpuRtRuntime, NanoCPUs: int64(o.cpus),
			}
			if fl.Changed("pids-limit") {
				pl := o.pidsLimit
				r.PidsLimit = &pl
			}
			opts := client.ContainerUpdateOptions{Resources: r}
			if fl.Changed("restart") {
				rp, err := parseRestartPolicy(restart)
				if err != nil {
					return err
				}
				opts.RestartPolicy = &rp
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			var errs multiErr
			for _, id := range args {
				res, err := api.ContainerUpdate(cmd.Context(), id, opts)
				if err != nil {
					errs = append(errs, c.errMessage(err))
					continue
				}
				for _, w := range res.Warnings {
					fmt.Fprintln(c.err, w)
				}
				fmt.Fprintln(c.out, id)
			}
			return errs.err()
		},
	}
	fl := cmd.Flags()
	fl.Uint16Var(&o.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fl.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fl.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fl.Int64Var(&o.cpuRtPeriod, "cpu-rt-period", 0, "Limit the CPU real-time period in microseconds")
	fl.Int64Var(&o.cpuRtRuntime, "cpu-rt-runtime", 0, "Limit the CPU real-time runtime in microseconds")
	fl.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Var(&o.cpus, "cpus", "Number of CPUs")
	fl.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fl.VarP(&o.memory, "memory", "m", "Memory limit")
	fl.Var(&o.memoryReservation, "memory-reservation", "Memory soft limit")
	fl.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fl.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fl.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	return cmd
}

func (c *CLI) newCommitCommand() *cobra.Command {
	var o client.ContainerCommitOptions
	var pause bool
	var changes listOpt
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			if len(args) == 2 {
				o.Reference = args[1]
			}
			o.NoPause = !pause
			o.Changes = changes.values
			res, err := api.ContainerCommit(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.StringVarP(&o.Author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	fl.VarP(&changes, "change", "c", "Apply Dockerfile instruction to the created image")
	fl.StringVarP(&o.Comment, "message", "m", "", "Commit message")
	fl.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	return cmd
}

func (c *CLI) newAttachCommand() *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			info, err := api.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			ct := info.Container
			if ct.State == nil || !ct.State.Running {
				return errors.New("You cannot attach to a stopped container, start it first") //lint:ignore ST1005 docker's wording
			}
			if ct.State.Paused {
				return errors.New("You cannot attach to a paused container, unpause it first") //lint:ignore ST1005 docker's wording
			}
			if ct.State.Restarting {
				return errors.New("You cannot attach to a restarting container, wait until it is running") //lint:ignore ST1005 docker's wording
			}
			if detachKeys == "" {
				detachKeys = defaultDetachKeys
			}
			if err := validateDetachKeys(detachKeys); err != nil {
				return err
			}
			tty := ct.Config != nil && ct.Config.Tty
			stdin := !noStdin && ct.Config != nil && ct.Config.OpenStdin
			if stdin && tty {
				if _, isTerm := c.inFd(); !isTerm {
					return errors.New("the input device is not a TTY")
				}
			}
			if sigProxy && !tty {
				stop := forwardSignals(ctx, api, ct.ID)
				defer stop()
			}
			sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			defer cancel()
			resp, err := api.ContainerAttach(sctx, ct.ID, client.ContainerAttachOptions{Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: detachKeys})
			if err != nil {
				return err
			}
			defer resp.Close()
			s := &streamer{out: c.out, err: c.err, tty: tty, resp: resp.HijackedResponse, detachKeys: detachKeys}
			if stdin {
				s.in = c.in
			}
			if tty {
				c.monitorTTYSize(sctx, func(h, w uint) error {
					_, err := api.ContainerResize(sctx, ct.ID, client.ContainerResizeOptions{Height: h, Width: w})
					return err
				})
			}
			if err := s.run(sctx); err != nil {
				if isEscape(err) {
					return nil
				}
				return err
			}
			// Report the container's exit status once it has stopped.
			after, err := api.ContainerInspect(ctx, ct.ID, client.ContainerInspectOptions{})
			if err == nil && after.Container.State != nil && !after.Container.State.Running && after.Container.State.ExitCode != 0 {
				return StatusError{StatusCode: after.Container.State.ExitCode}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fl.BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	fl.BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	return cmd
}

func (c *CLI) newExecCommand() *cobra.Command {
	var o client.ExecCreateOptions
	var detach, interactive, tty bool
	var env, envFile listOpt
	env.validate = validateEnv
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			envs, err := readKVFiles(envFile.values, env.values, true)
			if err != nil {
				return err
			}
			o.Env, o.Cmd, o.TTY = envs, args[1:], tty
			o.AttachStdin = interactive && !detach
			o.AttachStdout, o.AttachStderr = !detach, !detach
			if o.DetachKeys == "" {
				o.DetachKeys = defaultDetachKeys
				if cf, err := c.config(); err == nil && cf.DetachKeys != "" {
					o.DetachKeys = cf.DetachKeys
				}
			}
			if err := validateDetachKeys(o.DetachKeys); err != nil {
				return err
			}
			if o.AttachStdin && tty {
				if _, isTerm := c.inFd(); !isTerm {
					return errors.New("the input device is not a TTY")
				}
			}
			return c.runExec(cmd.Context(), args[0], o, detach)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&detach, "detach", "d", false, "Detached mode: run command in the background")
	fl.StringVar(&o.DetachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fl.VarP(&env, "env", "e", "Set environment variables")
	fl.Var(&envFile, "env-file", "Read in a file of environment variables")
	fl.BoolVarP(&interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.BoolVar(&o.Privileged, "privileged", false, "Give extended privileges to the command")
	fl.BoolVarP(&tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.StringVarP(&o.User, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fl.StringVarP(&o.WorkingDir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

func (c *CLI) runExec(ctx context.Context, container string, o client.ExecCreateOptions, detach bool) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	if o.TTY {
		h, w := c.ttySize()
		o.ConsoleSize = client.ConsoleSize{Height: h, Width: w}
	}
	res, err := api.ExecCreate(ctx, container, o)
	if err != nil {
		return err
	}
	if detach {
		_, err := api.ExecStart(ctx, res.ID, client.ExecStartOptions{Detach: true, TTY: o.TTY, ConsoleSize: o.ConsoleSize})
		return err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	resp, err := api.ExecAttach(sctx, res.ID, client.ExecAttachOptions{TTY: o.TTY, ConsoleSize: o.ConsoleSize})
	if err != nil {
		return err
	}
	defer resp.Close()
	s := &streamer{out: c.out, err: c.err, tty: o.TTY, resp: resp.HijackedResponse, detachKeys: o.DetachKeys}
	if o.AttachStdin {
		s.in = c.in
	}
	if o.TTY {
		c.monitorTTYSize(sctx, func(h, w uint) error {
			_, err := api.ExecResize(sctx, res.ID, client.ExecResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if err := s.run(sctx); err != nil {
		if isEscape(err) {
			return nil
		}
		return err
	}
	ins, err := api.ExecInspect(ctx, res.ID, client.ExecInspectOptions{})
	if err != nil {
		return err
	}
	if ins.ExitCode != 0 {
		return StatusError{StatusCode: ins.ExitCode}
	}
	return nil
}

func (c *CLI) newContainerPruneCommand() *cobra.Command {
	var force bool
	filters := listOpt{typ: "filter"}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !c.confirm("WARNING! This will remove all stopped containers.") {
				return nil
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filters.values)
			if err != nil {
				return err
			}
			res, err := api.ContainerPrune(cmd.Context(), client.ContainerPruneOptions{Filters: f})
			if err != nil {
				return err
			}
			printPruned(c.out, "Deleted Containers:", res.Report.ContainersDeleted, res.Report.SpaceReclaimed)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

func printPruned(out io.Writer, title string, ids []string, space uint64) {
	if len(ids) > 0 {
		fmt.Fprintln(out, title)
		for _, id := range ids {
			fmt.Fprintln(out, id)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "Total reclaimed space: %s\n", humanSize(int64(space)))
}
