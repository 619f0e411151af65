package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cli/client"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/term"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

func (c *CLI) newImageCommand() *cobra.Command {
	ls := c.newImagesCommand()
	ls.Use = "ls [OPTIONS] [REPOSITORY[:TAG]]"
	ls.Aliases = []string{"list"}
	rm := c.newRmiCommand()
	rm.Use = "rm [OPTIONS] IMAGE [IMAGE...]"
	rm.Aliases = []string{"remove"}
	inspect := c.newTypedInspectCommand("image")
	return c.groupCommand("image", "Manage images",
		c.newHistoryCommand(), c.newImportCommand(), inspect, c.newLoadCommand(), ls,
		c.newImagePruneCommand(), c.newPullCommand(), c.newPushCommand(), rm, c.newSaveCommand(), c.newTagCommand())
}

// pullImage pulls ref, rendering docker's JSON progress stream on out
// (per-layer bars with cursor movement on a terminal, plain lines otherwise).
func (c *CLI) pullImage(ctx context.Context, ref, platform string, all bool, out, errOut io.Writer) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	opts := client.ImagePullOptions{All: all, RegistryAuth: c.registryAuthHeader(ref)}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		opts.Platforms = []ocispec.Platform{p}
	}
	resp, err := api.ImagePull(ctx, ref, opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	fd, isTerm := term.GetFdInfo(out)
	return displayJSONMessages(resp, out, fd, isTerm)
}

// fullyQualified renders "docker.io/library/busybox:latest" as docker pull prints it.
func fullyQualified(ref string) string {
	ref = normalizeRef(ref)
	if registryHost(ref) != "docker.io" || strings.HasPrefix(ref, "docker.io/") {
		return ref
	}
	if !strings.Contains(ref, "/") {
		return "docker.io/library/" + ref
	}
	return "docker.io/" + ref
}

func (c *CLI) newPullCommand() *cobra.Command {
	var all, quiet bool
	var platform string
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			if all && strings.ContainsAny(lastComponent(ref), ":@") {
				return errors.New("tag can't be used with --all-tags/-a")
			}
			if !all {
				if n := normalizeRef(ref); n != ref {
					if !quiet && !strings.Contains(ref, "@") {
						fmt.Fprintln(c.out, "Using default tag: latest")
					}
					ref = n
				}
			}
			var out io.Writer = c.out
			if quiet {
				out = io.Discard
			}
			if err := c.pullImage(cmd.Context(), ref, platform, all, out, c.err); err != nil {
				return err
			}
			if !all {
				fmt.Fprintln(c.out, fullyQualified(ref))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all-tags", "a", false, "Download all tagged images in the repository")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	fl.StringVar(&platform, "platform", os.Getenv("BERTH_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	fl.Bool("disable-content-trust", true, "Skip image verification (default true)")
	return cmd
}

func lastComponent(ref string) string {
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

func (c *CLI) newPushCommand() *cobra.Command {
	var all, quiet bool
	var platform string
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			ref := args[0]
			if !all {
				ref = normalizeRef(ref)
			}
			opts := client.ImagePushOptions{All: all, RegistryAuth: c.registryAuthHeader(ref)}
			if opts.RegistryAuth == "" {
				// The daemon insists on the header, even if empty credentials.
				opts.RegistryAuth = "e30="
			}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = &p
			}
			resp, err := api.ImagePush(cmd.Context(), ref, opts)
			if err != nil {
				return err
			}
			defer resp.Close()
			var out io.Writer = c.out
			if quiet {
				out = io.Discard
			}
			fd, isTerm := term.GetFdInfo(out)
			if err := displayJSONMessages(resp, out, fd, isTerm); err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(c.out, ref)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all-tags", "a", false, "Push all tags of an image to the repository")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	fl.StringVar(&platform, "platform", "", "Push a platform-specific manifest as a single-platform image to the registry")
	fl.Bool("disable-content-trust", true, "Skip image signing (default true)")
	return cmd
}

// imageRow is one line of `images`; its methods are the --format fields.
type imageRow struct {
	repo, tag, digest string
	img               image.Summary
	trunc             bool
	now               time.Time
}

func (r imageRow) Repository() string { return r.repo }
func (r imageRow) Tag() string        { return r.tag }
func (r imageRow) Digest() string     { return r.digest }
func (r imageRow) ID() string {
	if r.trunc {
		return shortID(r.img.ID)
	}
	return r.img.ID
}
func (r imageRow) CreatedSince() string {
	return humanSince(time.Unix(r.img.Created, 0), r.now)
}
func (r imageRow) CreatedAt() string {
	return time.Unix(r.img.Created, 0).UTC().Format("2006-01-02 15:04:05 -0700 MST")
}
func (r imageRow) Size() string        { return humanSize(r.img.Size) }
func (r imageRow) VirtualSize() string { return humanSizeP(r.img.Size, 4) }
func (r imageRow) SharedSize() string {
	if r.img.SharedSize == -1 {
		return "N/A"
	}
	return humanSize(r.img.SharedSize)
}
func (r imageRow) UniqueSize() string {
	if r.img.SharedSize == -1 {
		return "N/A"
	}
	return humanSize(r.img.Size - r.img.SharedSize)
}
func (r imageRow) Containers() string {
	if r.img.Containers == -1 {
		return "N/A"
	}
	return fmt.Sprint(r.img.Containers)
}

var imageHeaders = map[string]string{
	"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID", "CreatedSince": "CREATED",
	"CreatedAt": "CREATED AT", "Size": "SIZE", "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE",
	"UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS",
}

// imageRows expands summaries into docker's rows: one per repo:tag (times
// each of the repo's digests with --digests), digest-only repos as
// "<none>" tags, and "<none>:<none>" for dangling images.
func imageRows(images []image.Summary, trunc bool, now time.Time, showDigests ...bool) []any {
	withDigests := len(showDigests) > 0 && showDigests[0]
	var rows []any
	for _, img := range images {
		row := func(repo, tag, digest string) {
			rows = append(rows, imageRow{repo: repo, tag: tag, digest: digest, img: img, trunc: trunc, now: now})
		}
		tags := map[string][]string{}
		digests := map[string][]string{}
		for _, rt := range img.RepoTags {
			i := strings.LastIndex(rt, ":")
			if rt == "<none>:<none>" || i < 0 {
				continue
			}
			tags[rt[:i]] = append(tags[rt[:i]], rt[i+1:])
		}
		for _, rd := range img.RepoDigests {
			repo, dg, ok := strings.Cut(rd, "@")
			if rd == "<none>@<none>" || !ok {
				continue
			}
			digests[repo] = append(digests[repo], dg)
		}
		if len(tags) == 0 && len(digests) == 0 {
			row("<none>", "<none>", "<none>")
			continue
		}
		for _, repo := range sortedKeys(tags) {
			ds := digests[repo]
			delete(digests, repo)
			ts := tags[repo]
			sort.Strings(ts)
			for _, t := range ts {
				if !withDigests || len(ds) == 0 {
					row(repo, t, "<none>")
					continue
				}
				for _, d := range ds {
					row(repo, t, d)
				}
			}
		}
		for _, repo := range sortedKeys(digests) {
			if !withDigests {
				row(repo, "<none>", "<none>")
				continue
			}
			for _, d := range digests[repo] {
				row(repo, "<none>", d)
			}
		}
	}
	return rows
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *CLI) newImagesCommand() *cobra.Command {
	var all, quiet, digests, noTrunc bool
	var format string
	filters := listOpt{typ: "filter"}
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filters.values)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				f.Add("reference", args[0])
			}
			res, err := api.ImageList(cmd.Context(), client.ImageListOptions{All: all, Filters: f})
			if err != nil {
				return err
			}
			// Rows keep the daemon's order (newest first), as docker does.
			if format == "" {
				if cf, err := c.config(); err == nil && cf.ImgFormat != "" && !quiet {
					format = cf.ImgFormat
				}
			}
			table := "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			if digests {
				table = "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			}
			rows := imageRows(res.Items, !noTrunc, time.Now(), digests)
			// -q prints one ID per row, repeats included, like docker.
			return listFormat{format: format, table: table, quiet: "{{.ID}}", isQuiet: quiet, headers: imageHeaders}.render(c.out, rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	fl.BoolVar(&digests, "digests", false, "Show digests")
	fl.VarP(&filters, "filter", "f", "Filter output based on conditions provided")
	fl.StringVar(&format, "format", "", formatHelp)
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fl.Bool("tree", false, "List multi-platform images as a tree (EXPERIMENTAL)")
	_ = fl.MarkHidden("tree")
	return cmd
}

const formatHelp = `Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates`

// parseFilters reads repeated --filter key=value flags.
func parseFilters(values []string) (client.Filters, error) {
	f := client.Filters{}
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value)")
		}
		f.Add(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(val))
	}
	return f, nil
}

func (c *CLI) newRmiCommand() *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			var errs multiErr
			for _, ref := range args {
				res, err := api.ImageRemove(cmd.Context(), ref, client.ImageRemoveOptions{Force: force, PruneChildren: !noPrune})
				if err != nil {
					errs = append(errs, c.errMessage(err))
					continue
				}
				for _, d := range res.Items {
					if d.Untagged != "" {
						fmt.Fprintf(c.out, "Untagged: %s\n", d.Untagged)
					}
					if d.Deleted != "" {
						fmt.Fprintf(c.out, "Deleted: %s\n", d.Deleted)
					}
				}
			}
			return errs.err()
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}

func (c *CLI) newTagCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			_, err = api.ImageTag(cmd.Context(), client.ImageTagOptions{Source: args[0], Target: args[1]})
			return err
		},
	}
}

type historyRow struct {
	h     image.HistoryResponseItem
	trunc bool
	human bool
	now   time.Time
}

func (r historyRow) ID() string {
	if r.h.ID == "<missing>" || r.h.ID == "" {
		return "<missing>"
	}
	if r.trunc {
		return shortID(r.h.ID)
	}
	return r.h.ID
}
func (r historyRow) CreatedSince() string {
	if !r.human {
		return time.Unix(r.h.Created, 0).Format(time.RFC3339)
	}
	return humanSince(time.Unix(r.h.Created, 0), r.now)
}
func (r historyRow) CreatedAt() string { return time.Unix(r.h.Created, 0).Format(time.RFC3339) }
func (r historyRow) CreatedBy() string {
	by := strings.ReplaceAll(r.h.CreatedBy, "\t", " ")
	if r.trunc {
		return ellipsis(by, 45)
	}
	return by
}
func (r historyRow) Size() string {
	if r.human {
		return humanSizeP(r.h.Size, 3)
	}
	return fmt.Sprint(r.h.Size)
}
func (r historyRow) Comment() string { return r.h.Comment }

var historyHeaders = map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
	"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}

func (c *CLI) newHistoryCommand() *cobra.Command {
	var human, quiet, noTrunc bool
	var format, platform string
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			var opts []client.ImageHistoryOption
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts = append(opts, client.ImageHistoryWithPlatform(p))
			}
			res, err := api.ImageHistory(cmd.Context(), args[0], opts...)
			if err != nil {
				return err
			}
			now := time.Now()
			rows := make([]any, len(res.Items))
			for i, h := range res.Items {
				rows[i] = historyRow{h: h, trunc: !noTrunc, human: human, now: now}
			}
			headers := historyHeaders
			if !human {
				headers = map[string]string{}
				for k, v := range historyHeaders {
					headers[k] = v
				}
				headers["CreatedSince"] = "CREATED AT"
			}
			return listFormat{format: format, table: "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
				quiet: "{{.ID}}", isQuiet: quiet, headers: headers}.render(c.out, rows)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&format, "format", "", formatHelp)
	fl.BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fl.StringVar(&platform, "platform", "", "Show history for the given platform")
	return cmd
}

func (c *CLI) newImagePruneCommand() *cobra.Command {
	var all, force bool
	filters := listOpt{typ: "filter"}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			warning := "WARNING! This will remove all dangling images."
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them."
			}
			if !force && !c.confirm(warning) {
				return StatusError{Status: "", StatusCode: 0}
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filters.values)
			if err != nil {
				return err
			}
			if all {
				f.Add("dangling", "false")
			} else {
				f.Add("dangling", "true")
			}
			res, err := api.ImagePrune(cmd.Context(), client.ImagePruneOptions{Filters: f})
			if err != nil {
				return err
			}
			if len(res.Report.ImagesDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Images:")
				for _, d := range res.Report.ImagesDeleted {
					if d.Untagged != "" {
						fmt.Fprintf(c.out, "untagged: %s\n", d.Untagged)
					}
					if d.Deleted != "" {
						fmt.Fprintf(c.out, "deleted: %s\n", d.Deleted)
					}
				}
				fmt.Fprintln(c.out)
			}
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", humanSize(int64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

// confirm asks docker's "Are you sure you want to continue? [y/N]".
func (c *CLI) confirm(warning string) bool {
	fmt.Fprintf(c.out, "%s\nAre you sure you want to continue? [y/N] ", warning)
	var answer string
	_, _ = fmt.Fscanln(c.in, &answer)
	answer = strings.ToLower(strings.TrimSpace(answer))
	if answer == "y" || answer == "yes" {
		return true
	}
	fmt.Fprintln(c.out)
	return false
}

func (c *CLI) newSaveCommand() *cobra.Command {
	var output string
	var platforms []string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && c.outIsTerminal() {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			var opts []client.ImageSaveOption
			for _, ps := range platforms {
				p, err := parsePlatform(ps)
				if err != nil {
					return err
				}
				opts = append(opts, client.ImageSaveWithPlatforms(p))
			}
			rc, err := api.ImageSave(cmd.Context(), args, opts...)
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
	cmd.Flags().StringSliceVar(&platforms, "platform", nil, "Save only the given platform(s)")
	return cmd
}

// writeFileAtomic writes r to path via a temporary file in the same directory.
func writeFileAtomic(path string, r io.Reader) error {
	f, err := os.CreateTemp(dirOf(path), ".berth-save-")
	if err != nil {
		return fmt.Errorf("failed to save image: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("failed to save image: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	_ = os.Chmod(f.Name(), 0o644)
	return os.Rename(f.Name(), path)
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		if i == 0 {
			return "/"
		}
		return p[:i]
	}
	return "."
}

func (c *CLI) newLoadCommand() *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = c.in
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			} else if _, isTerm := c.inFd(); isTerm {
				return errors.New("requested load from stdin, but stdin is empty")
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			_, outTerm := c.outFd()
			rc, err := api.ImageLoad(cmd.Context(), in, client.ImageLoadWithQuiet(quiet || !outTerm))
			if err != nil {
				return err
			}
			defer rc.Close()
			fd, isTerm := c.outFd()
			return displayJSONMessages(rc, c.out, fd, isTerm)
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return cmd
}

func (c *CLI) newImportCommand() *cobra.Command {
	var changes listOpt
	var message, platform string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			src := client.ImageImportSource{SourceName: args[0]}
			switch {
			case args[0] == "-":
				src.Source = c.in
			case strings.HasPrefix(args[0], "http://") || strings.HasPrefix(args[0], "https://"):
			default:
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				src = client.ImageImportSource{Source: f, SourceName: "-"}
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			opts := client.ImageImportOptions{Message: message, Changes: changes.values}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = p
			}
			rc, err := api.ImageImport(cmd.Context(), src, ref, opts)
			if err != nil {
				return err
			}
			defer rc.Close()
			fd, isTerm := c.outFd()
			return displayJSONMessages(rc, c.out, fd, isTerm)
		},
	}
	cmd.Flags().VarP(&changes, "change", "c", "Apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

type searchRow struct {
	r     registry.SearchResult
	trunc bool
}

func (s searchRow) Name() string { return s.r.Name }
func (s searchRow) Description() string {
	d := strings.NewReplacer("\n", " ", "\r", " ").Replace(s.r.Description)
	if s.trunc {
		return ellipsis(d, 45)
	}
	return d
}
func (s searchRow) StarCount() string { return fmt.Sprint(s.r.StarCount) }
func (s searchRow) IsOfficial() string {
	if s.r.IsOfficial {
		return "[OK]"
	}
	return ""
}

// IsAutomated is always empty: registries no longer report it.
func (s searchRow) IsAutomated() string { return "" }

var searchHeaders = map[string]string{"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
	"IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"}

func (c *CLI) newSearchCommand() *cobra.Command {
	var limit int
	var noTrunc bool
	var format string
	filters := listOpt{typ: "filter"}
	cmd := &cobra.Command{
		Use:   "search [OPTIONS] TERM",
		Short: "Search registries for images",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filters.values)
			if err != nil {
				return err
			}
			if _, ok := f["is-automated"]; ok {
				fmt.Fprintln(c.err, `WARNING: the "is-automated" filter is deprecated, and searching for "is-automated=true" will not yield any results in future.`)
			}
			res, err := api.ImageSearch(cmd.Context(), args[0], client.ImageSearchOptions{
				Filters: f, Limit: limit, RegistryAuth: c.registryAuthHeader(args[0]),
			})
			if err != nil {
				return err
			}
			rows := make([]any, len(res.Items))
			for i, r := range res.Items {
				rows[i] = searchRow{r: r, trunc: !noTrunc}
			}
			return listFormat{format: format, table: "{{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
				headers: searchHeaders}.render(c.out, rows)
		},
	}
	fl := cmd.Flags()
	fl.VarP(&filters, "filter", "f", "Filter output based on conditions provided")
	fl.StringVar(&format, "format", "", "Pretty-print search using a Go template")
	fl.IntVar(&limit, "limit", 0, "Max number of search results")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	return cmd
}

// humanSizeP is humanSize with an explicit precision.
func humanSizeP(n int64, p int) string {
	if p == 3 {
		return humanSize(n)
	}
	return humanSizePrec(float64(n), p)
}
