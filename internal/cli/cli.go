// Package cli is berth's docker-compatible command line. It talks to the
// daemon only through the Docker Engine API (github.com/moby/moby/client), so
// it works against dockerd too, and the real docker CLI works against berth.
//
// Startup is kept cheap: nothing touches the network or the config file
// until a command actually needs it (see (*CLI).Client and (*CLI).config).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/moby/client"
	"github.com/moby/term"
	"github.com/spf13/cobra"
)

// Version is the berth version printed by `berth --version` and `berth version`.
// The linker may override it (-X github.com/berth-dev/berth/internal/cli.Version=…).
var (
	Version   = "0.1.0-dev"
	GitCommit = "unknown"
	BuildTime = ""
)

// DefaultHost is where the daemon listens unless -H or BERTH_HOST say otherwise.
const DefaultHost = "unix:///run/berth/berth.sock"

// StatusError makes Main exit with StatusCode after printing Status (when
// non-empty). Commands return it to pass a container's exit code through.
type StatusError struct {
	Status     string
	StatusCode int
}

func (e StatusError) Error() string {
	if e.Status == "" {
		return fmt.Sprintf("exit status %d", e.StatusCode)
	}
	return e.Status
}

// CLI carries the streams, global options and the lazily created API client.
type CLI struct {
	in       io.Reader
	out, err io.Writer

	host      []string
	configDir string
	debug     bool
	logLevel  string
	tls       bool
	tlsVerify bool
	tlsCACert string
	tlsCert   string
	tlsKey    string

	api *client.Client
}

// Main runs the berth command line with args (without the program name) and
// returns the process exit status.
func Main(args []string) int {
	return Run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr)
}

// Run is Main with explicit streams, for tests.
func Run(ctx context.Context, args []string, in io.Reader, out, errw io.Writer) int {
	cobra.EnableCommandSorting = false
	c := &CLI{in: in, out: out, err: errw}
	defer func() {
		if c.api != nil {
			_ = c.api.Close()
		}
	}()
	root := c.newRootCommand()
	root.SetArgs(args)
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errw)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	return c.handleError(cmd, err)
}

// handleError prints err as docker does and maps it to an exit status.
func (c *CLI) handleError(cmd *cobra.Command, err error) int {
	var se StatusError
	if errors.As(err, &se) {
		if se.Status != "" {
			fmt.Fprintln(c.err, se.Status)
		}
		if se.StatusCode == 0 {
			return 1
		}
		return se.StatusCode
	}
	var re runStatusErr
	if errors.As(err, &re) {
		fmt.Fprintf(c.err, "berth: %s\n\nRun '%s --help' for more information\n", c.errMessage(re.err), re.cmd)
		return re.code
	}
	var fe flagError
	if errors.As(err, &fe) {
		c.printFlagError(cmd, fe.error)
		return 125
	}
	var ae argError
	if errors.As(err, &ae) {
		fmt.Fprintf(c.err, "berth: %s\n\nUsage:  %s\n\nRun '%s --help' for more information\n", ae.msg, usageLine(cmd), cmd.CommandPath())
		return 1
	}
	msg := c.errMessage(err)
	fmt.Fprintln(c.err, msg)
	return 1
}

// errMessage rewrites the client's docker-branded connection error.
func (c *CLI) errMessage(err error) string {
	if client.IsErrConnectionFailed(err) {
		return fmt.Sprintf("Cannot connect to the berth daemon at %s. Is the daemon running?", c.daemonHost())
	}
	return err.Error()
}

// argError is a wrong number of arguments: docker exits 1 for those.
type argError struct{ msg string }

func (e argError) Error() string { return e.msg }

// flagError marks bad usage: docker prints it with a hint and exits 125.
type flagError struct{ error }

func (c *CLI) printFlagError(cmd *cobra.Command, err error) {
	if cmd == nil {
		fmt.Fprintln(c.err, err)
		return
	}
	fmt.Fprintf(c.err, "%s\n\nUsage:  %s\n\nRun '%s --help' for more information\n", err, usageLine(cmd), cmd.CommandPath())
}

// daemonHost resolves -H, then BERTH_HOST, then the default socket.
func (c *CLI) daemonHost() string {
	if len(c.host) > 0 && c.host[len(c.host)-1] != "" {
		return c.host[len(c.host)-1]
	}
	if h := os.Getenv("BERTH_HOST"); h != "" {
		return h
	}
	return DefaultHost
}

// Client returns the API client, creating it on first use.
func (c *CLI) Client() (*client.Client, error) {
	if c.api != nil {
		return c.api, nil
	}
	opts := []client.Opt{
		client.WithHost(c.daemonHost()),
		client.WithUserAgent("berth-cli/" + Version),
	}
	// Without a pinned version the client negotiates with the daemon's _ping.
	if v := os.Getenv("BERTH_API_VERSION"); v != "" {
		opts = append(opts, client.WithAPIVersion(v))
	}
	if c.tls || c.tlsVerify {
		opts = append(opts, client.WithTLSClientConfig(c.tlsPath(c.tlsCACert, "ca.pem"), c.tlsPath(c.tlsCert, "cert.pem"), c.tlsPath(c.tlsKey, "key.pem")))
	}
	api, err := client.New(opts...)
	if err != nil {
		return nil, err
	}
	c.api = api
	return api, nil
}

func (c *CLI) tlsPath(p, def string) string {
	if p != "" {
		return p
	}
	f := filepath.Join(c.configPath(), def)
	if _, err := os.Stat(f); err == nil {
		return f
	}
	return ""
}

// configPath is the directory holding config.json (docker's format).
func (c *CLI) configPath() string {
	if c.configDir != "" {
		return c.configDir
	}
	if d := os.Getenv("BERTH_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".berth")
}

// Terminal helpers: stdin/stdout are terminals only when they are *os.File on a tty.
func (c *CLI) inFd() (uintptr, bool) { return term.GetFdInfo(c.in) }

func (c *CLI) outFd() (uintptr, bool) { return term.GetFdInfo(c.out) }

func (c *CLI) outIsTerminal() bool { _, t := c.outFd(); return t }

// Out returns stdout.
func (c *CLI) Out() io.Writer { return c.out }

// Err returns stderr.
func (c *CLI) Err() io.Writer { return c.err }

func (c *CLI) newRootCommand() *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:              "berth [OPTIONS] COMMAND [ARG...]",
		Short:            "A fast, light container engine, compatible with Docker",
		SilenceUsage:     true,
		SilenceErrors:    true,
		TraverseChildren: true,
		Args:             noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if showVersion {
				fmt.Fprintf(c.out, "berth version %s, build %s\n", Version, GitCommit)
				return nil
			}
			cmd.SetOut(c.out)
			return cmd.Help()
		},
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return flagError{err} })
	// Global options live on the root only (as in docker): they go before
	// the command, so "-l" can still mean --label for run and --latest for ps.
	fl := root.Flags()
	fl.StringVar(&c.configDir, "config", "", `Location of client config files (default "~/.berth")`)
	fl.BoolVarP(&c.debug, "debug", "D", false, "Enable debug mode")
	fl.StringSliceVarP(&c.host, "host", "H", nil, "Daemon socket to connect to")
	fl.StringVarP(&c.logLevel, "log-level", "l", "info", `Set the logging level ("debug", "info", "warn", "error", "fatal")`)
	fl.BoolVar(&c.tls, "tls", false, "Use TLS; implied by --tlsverify")
	fl.StringVar(&c.tlsCACert, "tlscacert", "", "Trust certs signed only by this CA")
	fl.StringVar(&c.tlsCert, "tlscert", "", "Path to TLS certificate file")
	fl.StringVar(&c.tlsKey, "tlskey", "", "Path to TLS key file")
	fl.BoolVar(&c.tlsVerify, "tlsverify", os.Getenv("BERTH_TLS_VERIFY") != "", "Use TLS and verify the remote")
	fl.BoolVarP(&showVersion, "version", "v", false, "Print version information and quit")

	root.AddGroup(
		&cobra.Group{ID: "common", Title: "Common Commands:"},
		&cobra.Group{ID: "management", Title: "Management Commands:"},
		&cobra.Group{ID: "swarm", Title: "Swarm Commands:"},
		&cobra.Group{ID: "other", Title: "Commands:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, cmd := range cmds {
			cmd.GroupID = group
			root.AddCommand(cmd)
		}
	}
	add("common",
		c.newRunCommand(), c.newExecCommand(), c.newPsCommand(), c.newPullCommand(), c.newPushCommand(),
		c.newImagesCommand(), c.newLoginCommand(), c.newLogoutCommand(), c.newSearchCommand(),
		c.newVersionCommand(), c.newInfoCommand())
	add("management",
		c.newContainerCommand(), c.newImageCommand(), c.newNetworkCommand(), c.newPluginCommand(),
		c.newSystemCommand(), c.newVolumeCommand())
	add("swarm", c.newConfigCommand(), c.newSecretCommand())
	add("other",
		c.newAttachCommand(), c.newCommitCommand(), c.newCpCommand(), c.newCreateCommand(),
		c.newDiffCommand(), c.newEventsCommand(), c.newExportCommand(), c.newHistoryCommand(),
		c.newImportCommand(), c.newInspectCommand(), c.newKillCommand(), c.newLoadCommand(),
		c.newLogsCommand(), c.newPauseCommand(), c.newPortCommand(), c.newRenameCommand(),
		c.newRestartCommand(), c.newRmCommand(), c.newRmiCommand(), c.newSaveCommand(),
		c.newStartCommand(), c.newStatsCommand(), c.newStopCommand(), c.newTagCommand(),
		c.newTopCommand(), c.newUnpauseCommand(), c.newUpdateCommand(), c.newWaitCommand())
	root.SetCompletionCommandGroupID("other")
	root.InitDefaultHelpCmd()
	// cobra adds "completion" itself when it is invoked (kept lazy).
	for _, sub := range root.Commands() {
		if sub.Name() == "help" {
			sub.Hidden = true
		}
	}
	addHelpFlags(root)
	setHelpTemplates(root)
	return root
}

// addHelpFlags gives every command docker's "--help" without the "-h"
// shorthand, which run and create use for --hostname.
func addHelpFlags(cmd *cobra.Command) {
	if cmd.Flags().Lookup("help") == nil {
		cmd.Flags().Bool("help", false, "Print usage")
		// docker lists --help only where -h means something else (run, create).
		if cmd.Flags().ShorthandLookup("h") == nil {
			_ = cmd.Flags().MarkHidden("help")
		}
	}
	for _, sub := range cmd.Commands() {
		addHelpFlags(sub)
	}
}

// usageLine renders "berth ps [OPTIONS]" like docker's "Usage:" line.
func usageLine(cmd *cobra.Command) string {
	if cmd.HasParent() {
		return cmd.Parent().CommandPath() + " " + cmd.Use
	}
	return cmd.Use
}

// noArgs rejects positional arguments with docker's wording.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		if !cmd.HasParent() {
			return StatusError{Status: fmt.Sprintf("berth: unknown command: berth %s\n\nRun 'berth --help' for more information", args[0]), StatusCode: 1}
		}
		return StatusError{Status: fmt.Sprintf("berth: unknown command: %s %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			cmd.CommandPath(), args[0], cmd.CommandPath(), cmd.CommandPath()), StatusCode: 1}
	}
	return argError{fmt.Sprintf("'%s' accepts no arguments", cmd.CommandPath())}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return argError{fmt.Sprintf("'%s' requires exactly %d %s", cmd.CommandPath(), n, plural(n, "argument"))}
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return argError{fmt.Sprintf("'%s' requires at least %d %s", cmd.CommandPath(), n, plural(n, "argument"))}
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && len(args) <= hi {
			return nil
		}
		return argError{fmt.Sprintf("'%s' requires at least %d and at most %d %s", cmd.CommandPath(), lo, hi, plural(hi, "argument"))}
	}
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// groupCommand builds a management command ("container", "image", …) that
// prints its help when run without a subcommand, as docker does.
func (c *CLI) groupCommand(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use + " COMMAND",
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(c.err)
			return cmd.Help()
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// multiErr collects per-object failures the way docker's rm/stop/kill do:
// print successes as they happen, the errors at the end, exit 1.
type multiErr []string

func (m multiErr) err() error {
	if len(m) == 0 {
		return nil
	}
	return StatusError{Status: strings.Join(m, "\n"), StatusCode: 1}
}
