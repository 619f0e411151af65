package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/berth-dev/berth/internal/cli/client"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/spf13/cobra"
)

// secret, config and plugin only call the API: on an engine without swarm
// the daemon's own error ("This node is not a swarm manager…") is printed,
// exactly as docker shows it.

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

func readSecretData(c *CLI, file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(c.in)
	}
	return os.ReadFile(file)
}

func (c *CLI) newSecretCommand() *cobra.Command {
	var labels listOpt
	create := &cobra.Command{
		Use:   "create [OPTIONS] SECRET [file|-]",
		Short: "Create a secret from a file or STDIN as content",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			spec := swarm.SecretSpec{Annotations: swarm.Annotations{Name: args[0], Labels: kvToMap(labels.values)}}
			if len(args) == 2 {
				if spec.Data, err = readSecretData(c, args[1]); err != nil {
					return err
				}
			}
			res, err := api.SecretCreate(cmd.Context(), client.SecretCreateOptions{Spec: spec})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.ID)
			return nil
		},
	}
	create.Flags().VarP(&labels, "label", "l", "Secret labels")
	ls := &cobra.Command{
		Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "List secrets", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.SecretList(cmd.Context(), client.SecretListOptions{})
			if err != nil {
				return err
			}
			tw := newTableWriter(c.out)
			fmt.Fprintln(tw, "ID\tNAME\tDRIVER\tCREATED\tUPDATED")
			for _, s := range res.Items {
				fmt.Fprintf(tw, "%s\t%s\t\t%s\t%s\n", s.ID, s.Spec.Name, s.CreatedAt, s.UpdatedAt)
			}
			return tw.Flush()
		},
	}
	rm := &cobra.Command{
		Use: "rm SECRET [SECRET...]", Aliases: []string{"remove"}, Short: "Remove one or more secrets", Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			var errs multiErr
			for _, a := range args {
				if _, err := api.SecretRemove(cmd.Context(), a, client.SecretRemoveOptions{}); err != nil {
					errs = append(errs, c.errMessage(err))
					continue
				}
				fmt.Fprintln(c.out, a)
			}
			return errs.err()
		},
	}
	return c.groupCommand("secret", "Manage Swarm secrets", create, c.newTypedInspectCommand("secret"), ls, rm)
}

func (c *CLI) newConfigCommand() *cobra.Command {
	var labels listOpt
	create := &cobra.Command{
		Use:   "create [OPTIONS] CONFIG file|-",
		Short: "Create a config from a file or STDIN",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			data, err := readSecretData(c, args[1])
			if err != nil {
				return err
			}
			spec := swarm.ConfigSpec{Annotations: swarm.Annotations{Name: args[0], Labels: kvToMap(labels.values)}, Data: data}
			res, err := api.ConfigCreate(cmd.Context(), client.ConfigCreateOptions{Spec: spec})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.ID)
			return nil
		},
	}
	create.Flags().VarP(&labels, "label", "l", "Config labels")
	ls := &cobra.Command{
		Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "List configs", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.ConfigList(cmd.Context(), client.ConfigListOptions{})
			if err != nil {
				return err
			}
			tw := newTableWriter(c.out)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED\tUPDATED")
			for _, s := range res.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.Spec.Name, s.CreatedAt, s.UpdatedAt)
			}
			return tw.Flush()
		},
	}
	rm := &cobra.Command{
		Use: "rm CONFIG [CONFIG...]", Aliases: []string{"remove"}, Short: "Remove one or more configs", Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			var errs multiErr
			for _, a := range args {
				if _, err := api.ConfigRemove(cmd.Context(), a, client.ConfigRemoveOptions{}); err != nil {
					errs = append(errs, c.errMessage(err))
					continue
				}
				fmt.Fprintln(c.out, a)
			}
			return errs.err()
		},
	}
	return c.groupCommand("config", "Manage Swarm configs", create, c.newTypedInspectCommand("config"), ls, rm)
}

func (c *CLI) newPluginCommand() *cobra.Command {
	var quiet, noTrunc bool
	ls := &cobra.Command{
		Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "List plugins", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.PluginList(cmd.Context(), client.PluginListOptions{})
			if err != nil {
				return err
			}
			tw := newTableWriter(c.out)
			if !quiet {
				fmt.Fprintln(tw, "ID\tNAME\tDESCRIPTION\tENABLED")
			}
			for _, p := range res.Items {
				id := p.ID
				if !noTrunc {
					id = shortID(id)
				}
				if quiet {
					fmt.Fprintln(tw, id)
					continue
				}
				desc := p.Config.Description
				if !noTrunc {
					desc = ellipsis(desc, 45)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", id, p.Name, desc, p.Enabled)
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display plugin IDs")
	ls.Flags().BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	simple := func(use, short string, fn func(cmd *cobra.Command, api *client.Client, name string) error) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: minArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				api, err := c.Client()
				if err != nil {
					return err
				}
				var errs multiErr
				for _, a := range args {
					if err := fn(cmd, api, a); err != nil {
						errs = append(errs, c.errMessage(err))
						continue
					}
					fmt.Fprintln(c.out, a)
				}
				return errs.err()
			},
		}
	}
	enable := simple("enable PLUGIN", "Enable a plugin", func(cmd *cobra.Command, api *client.Client, n string) error {
		_, err := api.PluginEnable(cmd.Context(), n, client.PluginEnableOptions{})
		return err
	})
	disable := simple("disable PLUGIN", "Disable a plugin", func(cmd *cobra.Command, api *client.Client, n string) error {
		_, err := api.PluginDisable(cmd.Context(), n, client.PluginDisableOptions{})
		return err
	})
	rm := simple("rm PLUGIN [PLUGIN...]", "Remove one or more plugins", func(cmd *cobra.Command, api *client.Client, n string) error {
		_, err := api.PluginRemove(cmd.Context(), n, client.PluginRemoveOptions{})
		return err
	})
	rm.Aliases = []string{"remove"}
	return c.groupCommand("plugin", "Manage plugins", disable, enable, c.newTypedInspectCommand("plugin"), ls, rm)
}
