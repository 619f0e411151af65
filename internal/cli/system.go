package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/berth-dev/berth/internal/cli/client"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/term"
	"github.com/spf13/cobra"
)

func (c *CLI) newSystemCommand() *cobra.Command {
	return c.groupCommand("system", "Manage berth",
		c.newDfCommand(), c.newEventsCommand(), c.newInfoCommand(), c.newSystemPruneCommand())
}

// versionInfo is the data behind `berth version` and its --format.
type versionInfo struct {
	Client clientVersion
	Server *client.ServerVersionResult
}

type clientVersion struct {
	Platform          struct{ Name string }
	Version           string
	APIVersion        string `json:"ApiVersion"`
	DefaultAPIVersion string `json:"DefaultAPIVersion,omitempty"`
	GitCommit         string
	GoVersion         string
	Os                string
	Arch              string
	BuildTime         string `json:",omitempty"`
	Context           string
}

const versionTemplate = `Client:{{if ne .Client.Platform.Name ""}} {{.Client.Platform.Name}}{{end}}
 Version:           {{.Client.Version}}
 API version:       {{.Client.APIVersion}}{{if ne .Client.APIVersion .Client.DefaultAPIVersion}} (downgraded from {{.Client.DefaultAPIVersion}}){{end}}
 Go version:        {{.Client.GoVersion}}
 Git commit:        {{.Client.GitCommit}}
 Built:             {{.Client.BuildTime}}
 OS/Arch:           {{.Client.Os}}/{{.Client.Arch}}
 Context:           {{.Client.Context}}
{{- if .Server}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
{{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:          {{.Version}}
  API version:      {{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:       {{index .Details "GoVersion"}}
  Git commit:       {{index .Details "GitCommit"}}
  Built:            {{index .Details "BuildTime"}}
  OS/Arch:          {{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:     {{index .Details "Experimental"}}
  {{- else }}
  Version:          {{$component.Version}}
  {{- $detailsOrder := getDetailsOrder $component}}
  {{- range $key := $detailsOrder}}
  {{$key}}:{{printf "%*s" (minus 18 (len $key)) ""}}{{index $component.Details $key}}
   {{- end}}
  {{- end}}
{{- end}}
{{- end}}{{- end}}
`

func (c *CLI) newVersionCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			vi := versionInfo{Client: clientVersion{
				Version: Version, APIVersion: client.MaxAPIVersion, DefaultAPIVersion: client.MaxAPIVersion,
				GitCommit: GitCommit, GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH,
				BuildTime: BuildTime, Context: "default",
			}}
			vi.Client.Platform.Name = "berth"
			var serverErr error
			api, err := c.Client()
			if err == nil {
				var sv client.ServerVersionResult
				sv, serverErr = api.ServerVersion(cmd.Context(), client.ServerVersionOptions{})
				if serverErr == nil {
					vi.Server = &sv
				}
				vi.Client.APIVersion = api.ClientVersion()
			} else {
				serverErr = err
			}
			var tmpl *template.Template
			f := format
			if f == "" {
				f = versionTemplate
			} else if f == "json" {
				f = "{{json .}}"
			}
			tmpl, err = template.New("").Funcs(templateFuncs).Funcs(template.FuncMap{
				"minus": func(a, b int) int { return a - b },
				"getDetailsOrder": func(v system.ComponentVersion) []string {
					keys := make([]string, 0, len(v.Details))
					for k := range v.Details {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					return keys
				},
			}).Parse(unescapeTabs(f))
			if err != nil {
				return fmt.Errorf("template parsing error: %w", err)
			}
			var sb strings.Builder
			if err := tmpl.Execute(&sb, vi); err != nil {
				return fmt.Errorf("template: %w", err)
			}
			out := sb.String()
			if !strings.HasSuffix(out, "\n") {
				out += "\n"
			}
			fmt.Fprint(c.out, out)
			if serverErr != nil {
				return serverErr
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", formatHelp)
	return cmd
}

func (c *CLI) newInfoCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, infoErr := api.Info(cmd.Context(), client.InfoOptions{})
			if format != "" {
				if infoErr != nil {
					return infoErr
				}
				f := format
				if f == "json" {
					f = "{{json .}}"
				}
				tmpl, err := parseTemplate(unescapeTabs(f) + "\n")
				if err != nil {
					return err
				}
				return tmpl.Execute(c.out, res.Info)
			}
			fmt.Fprintf(c.out, "Client:\n Version:    %s\n Context:    default\n Debug Mode: %v\n\n", Version, c.debug)
			fmt.Fprintln(c.out, "Server:")
			if infoErr != nil {
				fmt.Fprintf(c.out, "ERROR: %s\n", c.errMessage(infoErr))
				return StatusError{StatusCode: 1}
			}
			printInfo(c.out, &res.Info)
			for _, w := range res.Info.Warnings {
				fmt.Fprintln(c.err, w)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", formatHelp)
	return cmd
}

func printInfo(w io.Writer, i *system.Info) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p(" Containers: %d", i.Containers)
	p("  Running: %d", i.ContainersRunning)
	p("  Paused: %d", i.ContainersPaused)
	p("  Stopped: %d", i.ContainersStopped)
	p(" Images: %d", i.Images)
	p(" Server Version: %s", i.ServerVersion)
	p(" Storage Driver: %s", i.Driver)
	for _, kv := range i.DriverStatus {
		p("  %s: %s", kv[0], kv[1])
	}
	p(" Logging Driver: %s", i.LoggingDriver)
	p(" Cgroup Driver: %s", i.CgroupDriver)
	p(" Cgroup Version: %s", i.CgroupVersion)
	p(" Plugins:")
	p("  Volume: %s", strings.Join(i.Plugins.Volume, " "))
	p("  Network: %s", strings.Join(i.Plugins.Network, " "))
	if len(i.Plugins.Authorization) > 0 {
		p("  Authorization: %s", strings.Join(i.Plugins.Authorization, " "))
	}
	p("  Log: %s", strings.Join(i.Plugins.Log, " "))
	swarm := string(i.Swarm.LocalNodeState)
	if swarm == "" {
		swarm = "inactive"
	}
	p(" Swarm: %s", swarm)
	if len(i.Runtimes) > 0 {
		names := make([]string, 0, len(i.Runtimes))
		for n := range i.Runtimes {
			names = append(names, n)
		}
		sort.Strings(names)
		p(" Runtimes: %s", strings.Join(names, " "))
		p(" Default Runtime: %s", i.DefaultRuntime)
	}
	if i.InitBinary != "" {
		p(" Init Binary: %s", i.InitBinary)
	}
	if i.ContainerdCommit.ID != "" || i.RuncCommit.ID != "" {
		p(" containerd version: %s", i.ContainerdCommit.ID)
		p(" runc version: %s", i.RuncCommit.ID)
		p(" init version: %s", i.InitCommit.ID)
	}
	if len(i.SecurityOptions) > 0 {
		p(" Security Options:")
		for _, o := range i.SecurityOptions {
			// "name=seccomp,profile=default" → "seccomp\n  Profile: default"
			var name string
			var extra []string
			for _, kv := range strings.Split(o, ",") {
				k, v, _ := strings.Cut(kv, "=")
				if k == "name" {
					name = v
				} else {
					extra = append(extra, fmt.Sprintf("   %s: %s", strings.ToUpper(k[:1])+k[1:], v))
				}
			}
			if name == "" {
				name = o
			}
			p("  %s", name)
			for _, e := range extra {
				p("%s", e)
			}
		}
	}
	p(" Kernel Version: %s", i.KernelVersion)
	p(" Operating System: %s", i.OperatingSystem)
	p(" OSType: %s", i.OSType)
	p(" Architecture: %s", i.Architecture)
	p(" CPUs: %d", i.NCPU)
	p(" Total Memory: %s", bytesSize(float64(i.MemTotal)))
	p(" Name: %s", i.Name)
	p(" ID: %s", i.ID)
	p(" Berth Root Dir: %s", i.DockerRootDir)
	p(" Debug Mode: %v", i.Debug)
	if len(i.Labels) > 0 {
		p(" Labels:")
		for _, l := range i.Labels {
			p("  %s", l)
		}
	}
	p(" Experimental: %v", i.ExperimentalBuild)
	if i.RegistryConfig != nil {
		var insecure []string
		for name, ic := range i.RegistryConfig.IndexConfigs {
			if ic != nil && !ic.Secure {
				insecure = append(insecure, name)
			}
		}
		sort.Strings(insecure)
		for _, cidr := range i.RegistryConfig.InsecureRegistryCIDRs {
			insecure = append(insecure, cidr.String())
		}
		if len(insecure) > 0 {
			p(" Insecure Registries:")
			for _, r := range insecure {
				p("  %s", r)
			}
		}
		if len(i.RegistryConfig.Mirrors) > 0 {
			p(" Registry Mirrors:")
			for _, m := range i.RegistryConfig.Mirrors {
				p("  %s", m)
			}
		}
	}
	p(" Live Restore Enabled: %v", i.LiveRestoreEnabled)
	fmt.Fprintln(w)
}

func (c *CLI) newEventsCommand() *cobra.Command {
	var since, until, format string
	filters := listOpt{typ: "filter"}
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
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
			var tmpl *template.Template
			if format != "" {
				ff := format
				if ff == "json" {
					ff = "{{json .}}"
				}
				if tmpl, err = parseTemplate(unescapeTabs(ff) + "\n"); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			res := api.Events(ctx, client.EventsListOptions{Since: since, Until: until, Filters: f})
			for {
				select {
				case m, ok := <-res.Messages:
					if !ok {
						return nil
					}
					if tmpl != nil {
						if err := tmpl.Execute(c.out, m); err != nil {
							return err
						}
						continue
					}
					printEvent(c.out, m)
				case err := <-res.Err:
					if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
						return nil
					}
					return err
				}
			}
		},
	}
	fl := cmd.Flags()
	fl.VarP(&filters, "filter", "f", "Filter output based on conditions provided")
	fl.StringVar(&format, "format", "", formatHelp)
	fl.StringVar(&since, "since", "", "Show all events created since timestamp")
	fl.StringVar(&until, "until", "", "Stream events until this timestamp")
	return cmd
}

// printEvent renders docker's default event line:
// "2024-01-02T15:04:05.000000000Z container start <id> (image=busybox, name=x)".
func printEvent(w io.Writer, m events.Message) {
	ts := time.Unix(0, m.TimeNano)
	if m.TimeNano == 0 {
		ts = time.Unix(m.Time, 0)
	}
	fmt.Fprintf(w, "%s %s %s %s", ts.Format("2006-01-02T15:04:05.000000000Z07:00"), m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + m.Actor.Attributes[k]
		}
		fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
}

type dfRow struct {
	Type, TotalCount, Active, Size, Reclaimable string
}

func (c *CLI) newDfCommand() *cobra.Command {
	var verbose bool
	var format string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			du, err := api.DiskUsage(cmd.Context(), client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true, Verbose: verbose})
			if err != nil {
				return err
			}
			pct := func(r, t int64) string {
				if t <= 0 {
					return humanSize(r)
				}
				return fmt.Sprintf("%s (%d%%)", humanSize(r), r*100/t)
			}
			// Images print with 4 significant digits, as docker does.
			pct4 := func(r, t int64) string {
				if t <= 0 {
					return humanSizeP(r, 4)
				}
				return fmt.Sprintf("%s (%d%%)", humanSizeP(r, 4), r*100/t)
			}
			rows := []dfRow{
				{"Images", fmt.Sprint(du.Images.TotalCount), fmt.Sprint(du.Images.ActiveCount), humanSizeP(du.Images.TotalSize, 4), pct4(du.Images.Reclaimable, du.Images.TotalSize)},
				{"Containers", fmt.Sprint(du.Containers.TotalCount), fmt.Sprint(du.Containers.ActiveCount), humanSize(du.Containers.TotalSize), pct(du.Containers.Reclaimable, du.Containers.TotalSize)},
				{"Local Volumes", fmt.Sprint(du.Volumes.TotalCount), fmt.Sprint(du.Volumes.ActiveCount), humanSize(du.Volumes.TotalSize), pct(du.Volumes.Reclaimable, du.Volumes.TotalSize)},
				{"Build Cache", fmt.Sprint(du.BuildCache.TotalCount), fmt.Sprint(du.BuildCache.ActiveCount), humanSize(du.BuildCache.TotalSize), pct(du.BuildCache.Reclaimable, du.BuildCache.TotalSize)},
			}
			if verbose && format == "" {
				return printDfVerbose(c.out, &du)
			}
			if format == "" {
				tw := newTableWriter(c.out)
				fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Type, r.TotalCount, r.Active, r.Size, r.Reclaimable)
				}
				return tw.Flush()
			}
			if format == "json" {
				for _, r := range rows {
					b, _ := json.Marshal(map[string]string{"Type": r.Type, "TotalCount": r.TotalCount, "Active": r.Active,
						"Size": r.Size, "Reclaimable": r.Reclaimable})
					fmt.Fprintln(c.out, string(b))
				}
				return nil
			}
			tmpl, err := parseTemplate(unescapeTabs(format) + "\n")
			if err != nil {
				return err
			}
			for _, r := range rows {
				if err := tmpl.Execute(c.out, r); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	cmd.Flags().StringVar(&format, "format", "", formatHelp)
	return cmd
}

func (c *CLI) newSystemPruneCommand() *cobra.Command {
	var all, force, volumes bool
	filters := listOpt{typ: "filter"}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			warning := "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n"
			if volumes {
				warning += "  - all anonymous volumes not used by at least one container\n"
			}
			if all {
				warning += "  - all images without at least one container associated to them\n"
			} else {
				warning += "  - all dangling images\n"
			}
			warning += "  - unused build cache\n"
			if !force && !c.confirm(warning) {
				return nil
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			f, err := parseFilters(filters.values)
			if err != nil {
				return err
			}
			var total uint64
			cr, err := api.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: f})
			if err != nil {
				return err
			}
			total += cr.Report.SpaceReclaimed
			if len(cr.Report.ContainersDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Containers:")
				for _, id := range cr.Report.ContainersDeleted {
					fmt.Fprintln(c.out, id)
				}
				fmt.Fprintln(c.out)
			}
			nr, err := api.NetworkPrune(ctx, client.NetworkPruneOptions{Filters: f})
			if err != nil {
				return err
			}
			if len(nr.Report.NetworksDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Networks:")
				for _, n := range nr.Report.NetworksDeleted {
					fmt.Fprintln(c.out, n)
				}
				fmt.Fprintln(c.out)
			}
			if volumes {
				vr, err := api.VolumePrune(ctx, client.VolumePruneOptions{Filters: f})
				if err != nil {
					return err
				}
				total += vr.Report.SpaceReclaimed
				if len(vr.Report.VolumesDeleted) > 0 {
					fmt.Fprintln(c.out, "Deleted Volumes:")
					for _, n := range vr.Report.VolumesDeleted {
						fmt.Fprintln(c.out, n)
					}
					fmt.Fprintln(c.out)
				}
			}
			imf := f.Clone()
			if imf == nil {
				imf = client.Filters{}
			}
			imf.Add("dangling", fmt.Sprint(!all))
			ir, err := api.ImagePrune(ctx, client.ImagePruneOptions{Filters: imf})
			if err != nil {
				return err
			}
			total += ir.Report.SpaceReclaimed
			if len(ir.Report.ImagesDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Images:")
				for _, d := range ir.Report.ImagesDeleted {
					if d.Untagged != "" {
						fmt.Fprintf(c.out, "untagged: %s\n", d.Untagged)
					}
					if d.Deleted != "" {
						fmt.Fprintf(c.out, "deleted: %s\n", d.Deleted)
					}
				}
				fmt.Fprintln(c.out)
			}
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", humanSize(int64(total)))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Remove all unused images not just dangling ones")
	fl.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fl.BoolVar(&volumes, "volumes", false, "Prune anonymous volumes")
	fl.Var(&filters, "filter", `Provide filter values (e.g. "label=<key>=<value>")`)
	return cmd
}

func (c *CLI) newLoginCommand() *cobra.Command {
	var user, pass string
	var passStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Long:  "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := indexServer
			if len(args) == 1 {
				server = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(args[0], "https://"), "http://"), "/")
			}
			if passStdin {
				if pass != "" {
					return errors.New("conflicting options: cannot specify both --password and --password-stdin")
				}
				if user == "" {
					return errors.New("username is empty")
				}
				b, err := io.ReadAll(c.in)
				if err != nil {
					return err
				}
				pass = strings.TrimRight(string(b), "\r\n")
			}
			if pass != "" && !passStdin {
				fmt.Fprintln(c.err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
			}
			rd := bufio.NewReader(c.in)
			if user == "" {
				fmt.Fprint(c.out, "Username: ")
				line, _ := rd.ReadString('\n')
				user = strings.TrimSpace(line)
				if user == "" {
					return errors.New("Error: Non-null Username Required")
				}
			}
			if pass == "" {
				fmt.Fprint(c.out, "Password: ")
				if fd, isTerm := c.inFd(); isTerm {
					state, err := term.SaveState(fd)
					if err == nil {
						_ = term.DisableEcho(fd, state)
						defer func() { _ = term.RestoreTerminal(fd, state) }()
					}
				}
				line, _ := rd.ReadString('\n')
				fmt.Fprintln(c.out)
				pass = strings.TrimRight(line, "\r\n")
				if pass == "" {
					return errors.New("Error: Password Required")
				}
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.RegistryLogin(cmd.Context(), client.RegistryLoginOptions{Username: user, Password: pass, ServerAddress: server})
			if err != nil {
				return err
			}
			cf, err := c.config()
			if err != nil {
				return err
			}
			entry := authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}
			if res.Auth.IdentityToken != "" {
				entry = authEntry{IdentityToken: res.Auth.IdentityToken, Auth: base64.StdEncoding.EncodeToString([]byte(user + ":"))}
			}
			cf.Auths[server] = entry
			if err := cf.save(); err != nil {
				return fmt.Errorf("error saving credentials: %w", err)
			}
			fmt.Fprintln(c.err, "WARNING! Your credentials are stored unencrypted in '"+cf.path+"'.")
			status := res.Auth.Status
			if status == "" {
				status = "Login Succeeded"
			}
			fmt.Fprintln(c.out, status)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&user, "username", "u", "", "Username")
	fl.StringVarP(&pass, "password", "p", "", "Password or Personal Access Token (PAT)")
	fl.BoolVar(&passStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

func (c *CLI) newLogoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Long:  "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := indexServer
			if len(args) == 1 {
				server = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(args[0], "https://"), "http://"), "/")
			}
			cf, err := c.config()
			if err != nil {
				return err
			}
			if _, ok := cf.Auths[server]; !ok {
				fmt.Fprintf(c.out, "Not logged in to %s\n", server)
				return nil
			}
			fmt.Fprintf(c.out, "Removing login credentials for %s\n", server)
			delete(cf.Auths, server)
			return cf.save()
		},
	}
}

// printDfVerbose renders `system df -v` in docker's four sections.
func printDfVerbose(out io.Writer, du *client.DiskUsageResult) error {
	now := time.Now()
	fmt.Fprint(out, "Images space usage:\n\n")
	tw := newTableWriter(out)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS")
	// One row per image, named by its first tag (as docker prints it).
	seen := map[string]bool{}
	var rows []imageRow
	for _, img := range du.Images.Items {
		tags := append([]string(nil), img.RepoTags...)
		sort.Strings(tags)
		img.RepoTags = tags
		for _, r := range imageRows([]image.Summary{img}, true, now) {
			if ir := r.(imageRow); !seen[ir.img.ID] {
				seen[ir.img.ID] = true
				rows = append(rows, ir)
			}
		}
	}
	for _, ir := range rows {
		shared := ir.img.SharedSize
		if shared < 0 {
			shared = 0
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", ir.repo, ir.tag, ir.ID(), ir.CreatedSince(), humanSize(ir.img.Size),
			humanSize(shared), humanSizeP(ir.img.Size-shared, 4), max(ir.img.Containers, 0))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprint(out, "\nContainers space usage:\n\n")
	tw = newTableWriter(out)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES")
	// psRow reads psContainer, the same fields by the same JSON names.
	var cts []psContainer
	if b, err := json.Marshal(du.Containers.Items); err == nil {
		_ = json.Unmarshal(b, &cts)
	}
	for _, ct := range cts {
		r := psRow{c: ct, trunc: true, now: now}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID(), r.Image(), r.Command(), r.LocalVolumes(),
			humanSize(ct.SizeRw), r.RunningFor(), r.Status(), r.Names())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprint(out, "\nLocal Volumes space usage:\n\n")
	tw = newTableWriter(out)
	fmt.Fprintln(tw, "VOLUME NAME\tLINKS\tSIZE")
	for _, v := range du.Volumes.Items {
		r := volumeRow{v}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name(), r.Links(), r.Size())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nBuild cache usage: %s\n\n", humanSize(du.BuildCache.TotalSize))
	tw = newTableWriter(out)
	fmt.Fprintln(tw, "CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED")
	return tw.Flush()
}
