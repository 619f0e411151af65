package cli

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cli/client"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/spf13/cobra"
)

type networkRow struct {
	n     network.Summary
	trunc bool
}

func (r networkRow) ID() string {
	if r.trunc {
		return shortID(r.n.ID)
	}
	return r.n.ID
}
func (r networkRow) Name() string      { return r.n.Name }
func (r networkRow) Driver() string    { return r.n.Driver }
func (r networkRow) Scope() string     { return r.n.Scope }
func (r networkRow) IPv4() string      { return fmt.Sprint(r.n.EnableIPv4) }
func (r networkRow) IPv6() string      { return fmt.Sprint(r.n.EnableIPv6) }
func (r networkRow) Internal() string  { return fmt.Sprint(r.n.Internal) }
func (r networkRow) CreatedAt() string { return r.n.Created.Format("2006-01-02 15:04:05 -0700 MST") }
func (r networkRow) Labels() string    { return joinLabels(r.n.Labels) }

var networkHeaders = map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
	"IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "CreatedAt": "CREATED AT", "Labels": "LABELS"}

func joinLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func (c *CLI) newNetworkCommand() *cobra.Command {
	return c.groupCommand("network", "Manage networks",
		c.newNetworkConnectCommand(), c.newNetworkCreateCommand(), c.newNetworkDisconnectCommand(),
		c.newTypedInspectCommand("network"), c.newNetworkLsCommand(), c.newNetworkPruneCommand(), c.newNetworkRmCommand())
}

func (c *CLI) newNetworkLsCommand() *cobra.Command {
	var quiet, noTrunc bool
	var format string
	filters := listOpt{typ: "filter"}
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filters.values)
			if err != nil {
				return err
			}
			res, err := api.NetworkList(cmd.Context(), client.NetworkListOptions{Filters: f})
			if err != nil {
				return err
			}
			sort.Slice(res.Items, func(i, j int) bool { return res.Items[i].Name < res.Items[j].Name })
			rows := make([]any, len(res.Items))
			for i, n := range res.Items {
				rows[i] = networkRow{n: n, trunc: !noTrunc}
			}
			return listFormat{format: format, table: "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", quiet: "{{.ID}}",
				isQuiet: quiet, headers: networkHeaders}.render(c.out, rows)
		},
	}
	fl := cmd.Flags()
	fl.VarP(&filters, "filter", "f", `Provide filter values (e.g. "driver=bridge")`)
	fl.StringVar(&format, "format", "", formatHelp)
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	return cmd
}

func (c *CLI) newNetworkCreateCommand() *cobra.Command {
	var driver, ipamDriver, scope, configFrom string
	var internal, attachable, ingress, configOnly, ipv4, ipv6 bool
	var subnets, ipRanges, gateways, labels, opts, ipamOpts, auxAddrs listOpt
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			ipam, err := buildIPAM(ipamDriver, subnets.values, ipRanges.values, gateways.values, auxAddrs.values, kvToMap(ipamOpts.values))
			if err != nil {
				return err
			}
			o := client.NetworkCreateOptions{Driver: driver, Scope: scope, IPAM: ipam, Internal: internal,
				Attachable: attachable, Ingress: ingress, ConfigOnly: configOnly, Options: kvToMap(opts.values),
				Labels: kvToMap(labels.values)}
			if configFrom != "" {
				o.ConfigFrom = configFrom
			}
			if cmd.Flags().Changed("ipv4") {
				o.EnableIPv4 = &ipv4
			}
			if cmd.Flags().Changed("ipv6") {
				o.EnableIPv6 = &ipv6
			}
			res, err := api.NetworkCreate(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			for _, w := range res.Warning {
				fmt.Fprintln(c.err, w)
			}
			fmt.Fprintln(c.out, res.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&driver, "driver", "d", "bridge", "Driver to manage the Network")
	fl.VarP(&opts, "opt", "o", "Set driver specific options")
	fl.Var(&labels, "label", "Set metadata on a network")
	fl.BoolVar(&internal, "internal", false, "Restrict external access to the network")
	fl.BoolVar(&attachable, "attachable", false, "Enable manual container attachment")
	fl.BoolVar(&ingress, "ingress", false, "Create swarm routing-mesh network")
	fl.StringVar(&scope, "scope", "", "Control the network's scope")
	fl.BoolVar(&configOnly, "config-only", false, "Create a configuration only network")
	fl.StringVar(&configFrom, "config-from", "", "The network from which to copy the configuration")
	fl.BoolVar(&ipv4, "ipv4", true, "Enable or disable IPv4 address assignment")
	fl.BoolVar(&ipv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	fl.StringVar(&ipamDriver, "ipam-driver", "default", "IP Address Management Driver")
	fl.Var(&subnets, "subnet", "Subnet in CIDR format that represents a network segment")
	fl.Var(&ipRanges, "ip-range", "Allocate container ip from a sub-range")
	fl.Var(&gateways, "gateway", "IPv4 or IPv6 Gateway for the master subnet")
	fl.Var(&auxAddrs, "aux-address", "Auxiliary IPv4 or IPv6 addresses used by Network driver")
	fl.Var(&ipamOpts, "ipam-opt", "Set IPAM driver specific options")
	return cmd
}

// buildIPAM pairs each --ip-range and --gateway with the --subnet that
// contains it, as docker does.
func buildIPAM(driver string, subnets, ranges, gateways, aux []string, opts map[string]string) (*network.IPAM, error) {
	ipam := &network.IPAM{Driver: driver, Options: opts}
	if len(opts) == 0 {
		ipam.Options = nil
	}
	if len(subnets) == 0 && (len(ranges) > 0 || len(gateways) > 0 || len(aux) > 0) {
		return nil, fmt.Errorf("every ip-range or gateway must have a corresponding subnet")
	}
	cfgs := make([]network.IPAMConfig, 0, len(subnets))
	for _, s := range subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid subnet %s: %w", s, err)
		}
		cfgs = append(cfgs, network.IPAMConfig{Subnet: p})
	}
	find := func(a netip.Addr, what, v string) (int, error) {
		for i := range cfgs {
			if cfgs[i].Subnet.Contains(a) {
				return i, nil
			}
		}
		return 0, fmt.Errorf("no matching subnet for %s %s", what, v)
	}
	for _, r := range ranges {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return nil, fmt.Errorf("invalid ip-range %s: %w", r, err)
		}
		i, err := find(p.Addr(), "range", r)
		if err != nil {
			return nil, err
		}
		if cfgs[i].IPRange.IsValid() {
			return nil, fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", r, cfgs[i].IPRange, cfgs[i].Subnet)
		}
		cfgs[i].IPRange = p
	}
	for _, g := range gateways {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return nil, fmt.Errorf("invalid gateway %s", g)
		}
		i, err := find(a, "gateway", g)
		if err != nil {
			return nil, err
		}
		if cfgs[i].Gateway.IsValid() {
			return nil, fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", g, cfgs[i].Gateway, cfgs[i].Subnet)
		}
		cfgs[i].Gateway = a
	}
	for _, ax := range aux {
		k, v, _ := strings.Cut(ax, "=")
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("invalid aux-address %s", ax)
		}
		i, err := find(a, "aux-address", ax)
		if err != nil {
			return nil, err
		}
		if cfgs[i].AuxAddress == nil {
			cfgs[i].AuxAddress = map[string]netip.Addr{}
		}
		cfgs[i].AuxAddress[k] = a
	}
	ipam.Config = cfgs
	return ipam, nil
}

func (c *CLI) newNetworkRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			var errs multiErr
			for _, n := range args {
				if _, err := api.NetworkRemove(cmd.Context(), n, client.NetworkRemoveOptions{}); err != nil {
					if force && isNotFound(err) {
						continue
					}
					errs = append(errs, c.errMessage(err))
					continue
				}
				fmt.Fprintln(c.out, n)
			}
			return errs.err()
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func (c *CLI) newNetworkPruneCommand() *cobra.Command {
	var force bool
	filters := listOpt{typ: "filter"}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !c.confirm("WARNING! This will remove all custom networks not used by at least one container.") {
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
			res, err := api.NetworkPrune(cmd.Context(), client.NetworkPruneOptions{Filters: f})
			if err != nil {
				return err
			}
			if len(res.Report.NetworksDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Networks:")
				for _, n := range res.Report.NetworksDeleted {
					fmt.Fprintln(c.out, n)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

func (c *CLI) newNetworkConnectCommand() *cobra.Command {
	var ip, ip6 string
	var aliases, links, linkLocal, driverOpts listOpt
	var gwPriority int
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			ep, err := endpointFor(networkTarget{Target: args[0], Aliases: aliases.values, Links: links.values,
				IPv4: ip, IPv6: ip6, LinkLocalIPs: linkLocal.values, GwPriority: gwPriority})
			if err != nil {
				return err
			}
			if len(driverOpts.values) > 0 {
				ep.DriverOpts = kvToMap(driverOpts.values)
			}
			_, err = api.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: ep})
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&ip, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	fl.StringVar(&ip6, "ip6", "", "IPv6 address (e.g., \"2001:db8::33\")")
	fl.Var(&links, "link", "Add link to another container")
	fl.Var(&aliases, "alias", "Add network-scoped alias for the container")
	fl.Var(&linkLocal, "link-local-ip", "Add a link-local address for the container")
	fl.Var(&driverOpts, "driver-opt", "driver options for the network")
	fl.IntVar(&gwPriority, "gw-priority", 0, "Highest gw-priority provides the default gateway. Accepts positive and negative values.")
	return cmd
}

func (c *CLI) newNetworkDisconnectCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			_, err = api.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}

// Volumes.

type volumeRow struct{ v volume.Volume }

func (r volumeRow) Name() string       { return r.v.Name }
func (r volumeRow) Driver() string     { return r.v.Driver }
func (r volumeRow) Scope() string      { return r.v.Scope }
func (r volumeRow) Mountpoint() string { return r.v.Mountpoint }
func (r volumeRow) Labels() string     { return joinLabels(r.v.Labels) }
func (r volumeRow) Links() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return fmt.Sprint(r.v.UsageData.RefCount)
}
func (r volumeRow) Size() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return humanSize(r.v.UsageData.Size)
}
func (r volumeRow) CreatedAt() string {
	t, err := time.Parse(time.RFC3339Nano, r.v.CreatedAt)
	if err != nil {
		return r.v.CreatedAt
	}
	return t.Format("2006-01-02 15:04:05 -0700 MST")
}

var volumeHeaders = map[string]string{"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
	"Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "CreatedAt": "CREATED AT"}

func (c *CLI) newVolumeCommand() *cobra.Command {
	return c.groupCommand("volume", "Manage volumes",
		c.newVolumeCreateCommand(), c.newTypedInspectCommand("volume"), c.newVolumeLsCommand(),
		c.newVolumePruneCommand(), c.newVolumeRmCommand())
}

func (c *CLI) newVolumeCreateCommand() *cobra.Command {
	var driver string
	var opts, labels listOpt
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			name, _ := cmd.Flags().GetString("name")
			if len(args) == 1 {
				if name != "" {
					return fmt.Errorf("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
				}
				name = args[0]
			}
			res, err := api.VolumeCreate(cmd.Context(), client.VolumeCreateOptions{Name: name, Driver: driver,
				DriverOpts: kvToMap(opts.values), Labels: kvToMap(labels.values)})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.Volume.Name)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	fl.Var(&labels, "label", "Set metadata for a volume")
	fl.VarP(&opts, "opt", "o", "Set driver specific options")
	fl.String("name", "", "Specify volume name")
	_ = fl.MarkHidden("name")
	return cmd
}

func (c *CLI) newVolumeLsCommand() *cobra.Command {
	var quiet bool
	var format string
	filters := listOpt{typ: "filter"}
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filters.values)
			if err != nil {
				return err
			}
			res, err := api.VolumeList(cmd.Context(), client.VolumeListOptions{Filters: f})
			if err != nil {
				return err
			}
			sort.Slice(res.Items, func(i, j int) bool { return res.Items[i].Name < res.Items[j].Name })
			rows := make([]any, len(res.Items))
			for i, v := range res.Items {
				rows[i] = volumeRow{v}
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(c.err, w)
			}
			return listFormat{format: format, table: "{{.Driver}}\t{{.Name}}", quiet: "{{.Name}}", isQuiet: quiet,
				headers: volumeHeaders}.render(c.out, rows)
		},
	}
	fl := cmd.Flags()
	fl.VarP(&filters, "filter", "f", `Provide filter values (e.g. "dangling=true")`)
	fl.StringVar(&format, "format", "", formatHelp)
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	return cmd
}

func (c *CLI) newVolumeRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			var errs multiErr
			for _, v := range args {
				if _, err := api.VolumeRemove(cmd.Context(), v, client.VolumeRemoveOptions{Force: force}); err != nil {
					errs = append(errs, c.errMessage(err))
					continue
				}
				fmt.Fprintln(c.out, v)
			}
			return errs.err()
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func (c *CLI) newVolumePruneCommand() *cobra.Command {
	var force, all bool
	filters := listOpt{typ: "filter"}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
			if all {
				warning = "WARNING! This will remove all local volumes not used by at least one container."
			}
			if !force && !c.confirm(warning) {
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
			res, err := api.VolumePrune(cmd.Context(), client.VolumePruneOptions{All: all, Filters: f})
			if err != nil {
				return err
			}
			printPruned(c.out, "Deleted Volumes:", res.Report.VolumesDeleted, res.Report.SpaceReclaimed)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filters, "filter", `Provide filter values (e.g. "label=<label>")`)
	return cmd
}
