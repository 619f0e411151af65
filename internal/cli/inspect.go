package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/cli/client"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/spf13/cobra"
)

// inspectors fetch one object's raw JSON by kind; the generic `inspect`
// tries them in docker's order.
var inspectOrder = []string{"container", "image", "volume", "network", "plugin", "secret", "config"}

func (c *CLI) inspectRaw(ctx context.Context, api *client.Client, kind, ref string, size bool) (json.RawMessage, error) {
	switch kind {
	case "container":
		r, err := api.ContainerInspect(ctx, ref, client.ContainerInspectOptions{Size: size})
		return r.Raw, err
	case "image":
		var buf bytes.Buffer
		_, err := api.ImageInspect(ctx, ref, client.ImageInspectWithRawResponse(&buf))
		return buf.Bytes(), err
	case "volume":
		r, err := api.VolumeInspect(ctx, ref, client.VolumeInspectOptions{})
		return r.Raw, err
	case "network":
		r, err := api.NetworkInspect(ctx, ref, client.NetworkInspectOptions{})
		return r.Raw, err
	case "plugin":
		r, err := api.PluginInspect(ctx, ref, client.PluginInspectOptions{})
		return r.Raw, err
	case "secret":
		r, err := api.SecretInspect(ctx, ref, client.SecretInspectOptions{})
		return r.Raw, err
	case "config":
		r, err := api.ConfigInspect(ctx, ref, client.ConfigInspectOptions{})
		return r.Raw, err
	}
	return nil, fmt.Errorf("%q is not a valid value for --type", kind)
}

// runInspect prints objects as a JSON array or through a template.
// Missing objects are reported after the found ones, exit status 1.
func (c *CLI) runInspect(ctx context.Context, kinds []string, refs []string, format string, size bool) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	var raws []json.RawMessage
	var errs multiErr
	for _, ref := range refs {
		var raw json.RawMessage
		var lastErr error
		for _, k := range kinds {
			raw, lastErr = c.inspectRaw(ctx, api, k, ref, size)
			if lastErr == nil {
				break
			}
			if client.IsErrConnectionFailed(lastErr) {
				return lastErr
			}
			if !cerrdefs.IsNotFound(lastErr) && !cerrdefs.IsNotImplemented(lastErr) && len(kinds) > 1 {
				// e.g. swarm endpoints on a non-swarm engine: try the next kind.
				continue
			}
		}
		if lastErr != nil {
			if len(kinds) > 1 {
				errs = append(errs, "Error: No such object: "+ref)
			} else if cerrdefs.IsNotFound(lastErr) {
				errs = append(errs, notFoundMessage(kinds[0], ref, lastErr))
			} else {
				errs = append(errs, c.errMessage(lastErr))
			}
			continue
		}
		raws = append(raws, raw)
	}
	if format == "" || format == "json" || len(raws) > 0 {
		if err := executeInspect(c.out, format, nil, raws); err != nil {
			return err
		}
	}
	return errs.err()
}

func notFoundMessage(kind, ref string, err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "Error response from daemon: ") {
		return msg
	}
	return fmt.Sprintf("Error: No such %s: %s", kind, ref)
}

func (c *CLI) newInspectCommand() *cobra.Command {
	var format, typ string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on berth objects",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds := inspectOrder
			if typ != "" {
				valid := false
				for _, k := range inspectOrder {
					if k == typ {
						valid = true
					}
				}
				if !valid {
					return fmt.Errorf("%q is not a valid value for --type", typ)
				}
				kinds = []string{typ}
			}
			return c.runInspect(cmd.Context(), kinds, args, format, size)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&format, "format", "f", "", formatHelp)
	fl.BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	fl.StringVar(&typ, "type", "", "Only inspect objects of the given type")
	return cmd
}

// newTypedInspectCommand is `container inspect`, `image inspect`, ….
func (c *CLI) newTypedInspectCommand(kind string) *cobra.Command {
	var format string
	var size bool
	upper := strings.ToUpper(kind)
	cmd := &cobra.Command{
		Use:   fmt.Sprintf("inspect [OPTIONS] %s [%s...]", upper, upper),
		Short: fmt.Sprintf("Display detailed information on one or more %ss", kind),
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runInspect(cmd.Context(), []string{kind}, args, format, size)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", formatHelp)
	if kind == "container" {
		cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes")
	}
	return cmd
}
