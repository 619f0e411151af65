package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// RunDaemon runs `berth daemon ARGS` and returns its exit status; cmd/berth
// sets it (it replaces the process with berthd, so it returns only on
// failure). Nil in test binaries, where the command reports it is absent.
var RunDaemon func(args []string) int

// newDaemonCommand lists `daemon` among the commands and serves the forms
// cmd/berth's fast check does not see: options before it (`berth -D
// daemon`) and `berth help daemon`. Its flags are berthd's, so parsing and
// help are berthd's too.
func (c *CLI) newDaemonCommand() *cobra.Command {
	run := func(args []string) error {
		if RunDaemon == nil {
			return errors.New("berth daemon: this binary cannot start the daemon")
		}
		if c.debug {
			args = append([]string{"--debug"}, args...)
		}
		if code := RunDaemon(args); code != 0 {
			return StatusError{StatusCode: code}
		}
		return nil
	}
	cmd := &cobra.Command{
		Use:                "daemon [OPTIONS]",
		Short:              "Run the berth daemon (berthd)",
		DisableFlagParsing: true,
		RunE:               func(_ *cobra.Command, args []string) error { return run(args) },
	}
	cmd.SetHelpFunc(func(*cobra.Command, []string) { _ = run([]string{"--help"}) })
	return cmd
}
