// Package cli is berth's docker-compatible command line. It talks to the
// daemon only through the Docker Engine API (its own small client in
// ./client), so it works against dockerd too, and the real docker CLI works
// against berth.
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

	"github.com/berth-dev/berth/internal/cli/client"
	"github.com/berth-dev/berth/internal/version"
	"github.com/moby/term"
	"github.com/spf13/cobra"
)

// Version, GitCommit and BuildTime are printed by `berth --version` and
// `berth version`; the Makefile sets them in internal/version.
var (
	Version   = version.Version
	GitCommit = orUnknown(version.GitCommit)
	BuildTime = version.BuildTime
)

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

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

	host      listOpt
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
	root := c.newRootCommand(args)
	root.SetArgs(args)
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errw)
	// SIGTERM cancels the command's context, so that streams end and the
	// terminal is restored, as docker does. A detached run or exec holds no
	// stream: it keeps SIGTERM's default action and skips os/signal, which
	// starts two threads in a process that lives a few milliseconds.
	stop := func() {}
	defer func() { stop() }()
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		if f := cmd.Flags().Lookup("detach"); f != nil && f.Value.String() == "true" {
			return
		}
		var sctx context.Context
		sctx, stop = signal.NotifyContext(cmd.Context(), syscall.SIGTERM)
		cmd.SetContext(sctx)
	}
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
	if h := c.host.values; len(h) > 0 && h[len(h)-1] != "" {
		return h[len(h)-1]
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

func (c *CLI) newRootCommand(args []string) *cobra.Command {
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
	fl.VarP(&c.host, "host", "H", "Daemon socket to connect to")
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
	// Only the invoked command is built (with its flags); help and
	// completion need them all. This keeps `berth ps` from constructing
	// the hundred-odd flags of run/create.
	want := c.commandName(args)
	for _, a := range args {
		if a == "--help" {
			want = "" // help shows aliases from the management groups too
		}
	}
	versionOnly := want == "" && len(args) == 1 && (args[0] == "-v" || args[0] == "--version")
	for _, e := range c.commandTable() {
		if versionOnly || want != "" && want != e.name {
			continue
		}
		cmd := e.build()
		cmd.GroupID = e.group
		root.AddCommand(cmd)
	}
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

type cmdEntry struct {
	name, group string
	build       func() *cobra.Command
}

// commandTable lists the top-level commands in docker's help order.
func (c *CLI) commandTable() []cmdEntry {
	e := func(group, name string, build func() *cobra.Command) cmdEntry { return cmdEntry{name, group, build} }
	return []cmdEntry{
		e("common", "run", c.newRunCommand), e("common", "exec", c.newExecCommand), e("common", "ps", c.newPsCommand),
		e("common", "pull", c.newPullCommand), e("common", "push", c.newPushCommand), e("common", "images", c.newImagesCommand),
		e("common", "login", c.newLoginCommand), e("common", "logout", c.newLogoutCommand), e("common", "search", c.newSearchCommand),
		e("common", "version", c.newVersionCommand), e("common", "info", c.newInfoCommand),
		e("management", "container", c.newContainerCommand), e("management", "image", c.newImageCommand),
		e("management", "network", c.newNetworkCommand), e("management", "plugin", c.newPluginCommand),
		e("management", "system", c.newSystemCommand), e("management", "volume", c.newVolumeCommand),
		e("swarm", "config", c.newConfigCommand), e("swarm", "secret", c.newSecretCommand),
		e("other", "attach", c.newAttachCommand), e("other", "commit", c.newCommitCommand), e("other", "cp", c.newCpCommand),
		e("other", "create", c.newCreateCommand), e("other", "daemon", c.newDaemonCommand), e("other", "diff", c.newDiffCommand),
		e("other", "events", c.newEventsCommand),
		e("other", "export", c.newExportCommand), e("other", "history", c.newHistoryCommand), e("other", "import", c.newImportCommand),
		e("other", "inspect", c.newInspectCommand), e("other", "kill", c.newKillCommand), e("other", "load", c.newLoadCommand),
		e("other", "logs", c.newLogsCommand), e("other", "pause", c.newPauseCommand), e("other", "port", c.newPortCommand),
		e("other", "rename", c.newRenameCommand), e("other", "restart", c.newRestartCommand), e("other", "rm", c.newRmCommand),
		e("other", "rmi", c.newRmiCommand), e("other", "save", c.newSaveCommand), e("other", "start", c.newStartCommand),
		e("other", "stats", c.newStatsCommand), e("other", "stop", c.newStopCommand), e("other", "tag", c.newTagCommand),
		e("other", "top", c.newTopCommand), e("other", "unpause", c.newUnpauseCommand), e("other", "update", c.newUpdateCommand),
		e("other", "wait", c.newWaitCommand),
	}
}

// commandName finds the command word after the global options; "" means
// build every command (help, completion, unknown words, no command).
func (c *CLI) commandName(args []string) string {
	valued := map[string]bool{"-H": true, "--host": true, "--config": true, "-l": true, "--log-level": true,
		"--tlscacert": true, "--tlscert": true, "--tlskey": true, "-c": true, "--context": true}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return ""
		}
		if strings.HasPrefix(a, "-") {
			if valued[a] {
				i++
			}
			continue
		}
		for _, e := range c.commandTable() {
			if e.name == a {
				return a
			}
		}
		return ""
	}
	return ""
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
