package client

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/plugin"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/volume"
)

// Networks, volumes, secrets, configs and plugins: the same list / inspect /
// create / remove shapes over different paths, so they share these helpers.

// getList decodes GET p?filters=… into a list.
func getList[T any](ctx context.Context, cli *Client, p string, f Filters) (ListResult[T], error) {
	query := url.Values{}
	f.updateURLValues(query)
	items, err := decode[[]T](cli.get(ctx, p, query, nil))
	return ListResult[T]{Items: items}, err
}

// inspect decodes GET prefix+ID (+suffix) and keeps the raw JSON.
func inspect[T any](ctx context.Context, cli *Client, kind, prefix, id, suffix string, query url.Values) (T, json.RawMessage, error) {
	var out T
	id, err := trimID(kind, id)
	if err != nil {
		return out, nil, err
	}
	resp, err := cli.get(ctx, prefix+id+suffix, query, nil)
	if err != nil {
		return out, nil, err
	}
	raw, err := decodeWithRaw(resp, &out)
	return out, raw, err
}

// remove is DELETE prefix+ID.
func (cli *Client) remove(ctx context.Context, kind, prefix, id string, query url.Values) error {
	id, err := trimID(kind, id)
	if err != nil {
		return err
	}
	resp, err := cli.delete(ctx, prefix+id, query, nil)
	ensureReaderClosed(resp)
	return err
}

func forceQuery(force bool) url.Values {
	query := url.Values{}
	if force {
		query.Set("force", "1")
	}
	return query
}

// createID POSTs body to p and returns the "Id" of the answer.
func (cli *Client) createID(ctx context.Context, p string, body any) (IDResult, error) {
	out, err := decode[swarm.ConfigCreateResponse](cli.post(ctx, p, nil, nil, body))
	return IDResult{ID: out.ID}, err
}

// NetworkCreateOptions is POST /networks/create.
type NetworkCreateOptions struct {
	Driver     string
	Scope      string
	EnableIPv4 *bool
	EnableIPv6 *bool
	IPAM       *network.IPAM
	Internal   bool
	Attachable bool
	Ingress    bool
	ConfigOnly bool
	ConfigFrom string
	Options    map[string]string
	Labels     map[string]string
}

// NetworkCreateResult is the new network's ID and warnings.
type NetworkCreateResult struct {
	ID      string
	Warning []string
}

// NetworkCreate creates a network.
func (cli *Client) NetworkCreate(ctx context.Context, name string, options NetworkCreateOptions) (NetworkCreateResult, error) {
	req := network.CreateRequest{
		Name:       name,
		Driver:     options.Driver,
		Scope:      options.Scope,
		EnableIPv4: options.EnableIPv4,
		EnableIPv6: options.EnableIPv6,
		IPAM:       options.IPAM,
		Internal:   options.Internal,
		Attachable: options.Attachable,
		Ingress:    options.Ingress,
		ConfigOnly: options.ConfigOnly,
		Options:    options.Options,
		Labels:     options.Labels,
	}
	if options.ConfigFrom != "" {
		req.ConfigFrom = &network.ConfigReference{Network: options.ConfigFrom}
	}
	r, err := decode[network.CreateResponse](cli.post(ctx, "/networks/create", nil, nil, req))
	var warnings []string
	if r.Warning != "" {
		warnings = []string{r.Warning}
	}
	return NetworkCreateResult{ID: r.ID, Warning: warnings}, err
}

// NetworkInspectOptions is GET /networks/ID.
type NetworkInspectOptions struct {
	Scope   string
	Verbose bool
}

// NetworkInspectResult holds the decoded and the raw network JSON.
type NetworkInspectResult struct {
	Network network.Inspect
	Raw     json.RawMessage
}

// NetworkInspect inspects a network.
func (cli *Client) NetworkInspect(ctx context.Context, networkID string, options NetworkInspectOptions) (NetworkInspectResult, error) {
	query := url.Values{}
	if options.Verbose {
		query.Set("verbose", "true")
	}
	if options.Scope != "" {
		query.Set("scope", options.Scope)
	}
	n, raw, err := inspect[network.Inspect](ctx, cli, "network", "/networks/", networkID, "", query)
	return NetworkInspectResult{Network: n, Raw: raw}, err
}

// NetworkListOptions is GET /networks.
type NetworkListOptions = FilterOptions

// NetworkListResult is the list of networks.
type NetworkListResult = ListResult[network.Summary]

// NetworkList lists networks.
func (cli *Client) NetworkList(ctx context.Context, options NetworkListOptions) (NetworkListResult, error) {
	return getList[network.Summary](ctx, cli, "/networks", options.Filters)
}

// NetworkRemoveOptions is DELETE /networks/ID.
type NetworkRemoveOptions struct{}

// NetworkRemoveResult is empty.
type NetworkRemoveResult struct{}

// NetworkRemove removes a network.
func (cli *Client) NetworkRemove(ctx context.Context, networkID string, _ NetworkRemoveOptions) (NetworkRemoveResult, error) {
	return NetworkRemoveResult{}, cli.remove(ctx, "network", "/networks/", networkID, nil)
}

// NetworkConnectOptions is POST /networks/ID/connect.
type NetworkConnectOptions struct {
	Container      string
	EndpointConfig *network.EndpointSettings
}

// NetworkConnectResult is empty.
type NetworkConnectResult struct{}

// NetworkConnect connects a container to a network.
func (cli *Client) NetworkConnect(ctx context.Context, networkID string, options NetworkConnectOptions) (NetworkConnectResult, error) {
	return NetworkConnectResult{}, cli.networkMember(ctx, networkID, options.Container, "/connect", func(id string) any {
		return network.ConnectRequest{Container: id, EndpointConfig: options.EndpointConfig}
	})
}

// networkMember POSTs a connect/disconnect request for containerID.
func (cli *Client) networkMember(ctx context.Context, networkID, containerID, action string, body func(string) any) error {
	networkID, err := trimID("network", networkID)
	if err != nil {
		return err
	}
	containerID, err = trimID("container", containerID)
	if err != nil {
		return err
	}
	resp, err := cli.post(ctx, "/networks/"+networkID+action, nil, nil, body(containerID))
	ensureReaderClosed(resp)
	return err
}

// NetworkDisconnectOptions is POST /networks/ID/disconnect.
type NetworkDisconnectOptions struct {
	Container string
	Force     bool
}

// NetworkDisconnectResult is empty.
type NetworkDisconnectResult struct{}

// NetworkDisconnect disconnects a container from a network.
func (cli *Client) NetworkDisconnect(ctx context.Context, networkID string, options NetworkDisconnectOptions) (NetworkDisconnectResult, error) {
	return NetworkDisconnectResult{}, cli.networkMember(ctx, networkID, options.Container, "/disconnect", func(id string) any {
		return network.DisconnectRequest{Container: id, Force: options.Force}
	})
}

// NetworkPruneOptions is POST /networks/prune.
type NetworkPruneOptions = FilterOptions

// NetworkPruneResult is the prune report.
type NetworkPruneResult = PruneResult[network.PruneReport]

// NetworkPrune removes unused networks.
func (cli *Client) NetworkPrune(ctx context.Context, opts NetworkPruneOptions) (NetworkPruneResult, error) {
	return prune[network.PruneReport](ctx, cli, "/networks/prune", opts.Filters, "Error retrieving network prune report: %v")
}

// VolumeCreateOptions is POST /volumes/create.
type VolumeCreateOptions struct {
	Name              string
	Driver            string
	DriverOpts        map[string]string
	Labels            map[string]string
	ClusterVolumeSpec *volume.ClusterVolumeSpec
}

// VolumeCreateResult is the new volume.
type VolumeCreateResult struct{ Volume volume.Volume }

// VolumeCreate creates a volume.
func (cli *Client) VolumeCreate(ctx context.Context, options VolumeCreateOptions) (VolumeCreateResult, error) {
	v, err := decode[volume.Volume](cli.post(ctx, "/volumes/create", nil, nil, volume.CreateRequest{
		Name:              options.Name,
		Driver:            options.Driver,
		DriverOpts:        options.DriverOpts,
		Labels:            options.Labels,
		ClusterVolumeSpec: options.ClusterVolumeSpec,
	}))
	return VolumeCreateResult{Volume: v}, err
}

// VolumeInspectOptions is GET /volumes/NAME.
type VolumeInspectOptions struct{}

// VolumeInspectResult holds the decoded and the raw volume JSON.
type VolumeInspectResult struct {
	Volume volume.Volume
	Raw    json.RawMessage
}

// VolumeInspect inspects a volume.
func (cli *Client) VolumeInspect(ctx context.Context, volumeID string, _ VolumeInspectOptions) (VolumeInspectResult, error) {
	v, raw, err := inspect[volume.Volume](ctx, cli, "volume", "/volumes/", volumeID, "", nil)
	return VolumeInspectResult{Volume: v, Raw: raw}, err
}

// VolumeListOptions is GET /volumes.
type VolumeListOptions = FilterOptions

// VolumeListResult is the list of volumes and the daemon's warnings.
type VolumeListResult struct {
	Items    []volume.Volume
	Warnings []string
}

// VolumeList lists volumes.
func (cli *Client) VolumeList(ctx context.Context, options VolumeListOptions) (VolumeListResult, error) {
	query := url.Values{}
	options.Filters.updateURLValues(query)
	r, err := decode[volume.ListResponse](cli.get(ctx, "/volumes", query, nil))
	if err != nil {
		return VolumeListResult{}, err
	}
	return VolumeListResult{Items: r.Volumes, Warnings: r.Warnings}, nil
}

// VolumeRemoveOptions is DELETE /volumes/NAME.
type VolumeRemoveOptions struct{ Force bool }

// VolumeRemoveResult is empty.
type VolumeRemoveResult struct{}

// VolumeRemove removes a volume.
func (cli *Client) VolumeRemove(ctx context.Context, volumeID string, options VolumeRemoveOptions) (VolumeRemoveResult, error) {
	return VolumeRemoveResult{}, cli.remove(ctx, "volume", "/volumes/", volumeID, forceQuery(options.Force))
}

// VolumePruneOptions is POST /volumes/prune.
type VolumePruneOptions struct {
	All     bool
	Filters Filters
}

// VolumePruneResult is the prune report.
type VolumePruneResult = PruneResult[volume.PruneReport]

// VolumePrune removes unused volumes (anonymous ones unless All).
func (cli *Client) VolumePrune(ctx context.Context, options VolumePruneOptions) (VolumePruneResult, error) {
	f := options.Filters
	if options.All {
		if _, ok := f["all"]; ok {
			return VolumePruneResult{}, cerrdefs.ErrInvalidArgument.WithMessage(`conflicting options: cannot specify both "all" and "all" filter`)
		}
		if f == nil {
			f = Filters{}
		}
		f.Add("all", "true")
	}
	return prune[volume.PruneReport](ctx, cli, "/volumes/prune", f, "error retrieving volume prune report: %v")
}

// SecretCreateOptions is POST /secrets/create.
type SecretCreateOptions struct{ Spec swarm.SecretSpec }

// SecretCreateResult is the new secret's ID.
type SecretCreateResult = IDResult

// SecretCreate creates a secret.
func (cli *Client) SecretCreate(ctx context.Context, options SecretCreateOptions) (SecretCreateResult, error) {
	return cli.createID(ctx, "/secrets/create", options.Spec)
}

// SecretInspectOptions is GET /secrets/ID.
type SecretInspectOptions struct{}

// SecretInspectResult holds the decoded and the raw secret JSON.
type SecretInspectResult struct {
	Secret swarm.Secret
	Raw    json.RawMessage
}

// SecretInspect inspects a secret.
func (cli *Client) SecretInspect(ctx context.Context, id string, _ SecretInspectOptions) (SecretInspectResult, error) {
	s, raw, err := inspect[swarm.Secret](ctx, cli, "secret", "/secrets/", id, "", nil)
	return SecretInspectResult{Secret: s, Raw: raw}, err
}

// SecretListOptions is GET /secrets.
type SecretListOptions = FilterOptions

// SecretListResult is the list of secrets.
type SecretListResult = ListResult[swarm.Secret]

// SecretList lists secrets.
func (cli *Client) SecretList(ctx context.Context, options SecretListOptions) (SecretListResult, error) {
	return getList[swarm.Secret](ctx, cli, "/secrets", options.Filters)
}

// SecretRemoveOptions is DELETE /secrets/ID.
type SecretRemoveOptions struct{}

// SecretRemoveResult is empty.
type SecretRemoveResult struct{}

// SecretRemove removes a secret.
func (cli *Client) SecretRemove(ctx context.Context, id string, _ SecretRemoveOptions) (SecretRemoveResult, error) {
	return SecretRemoveResult{}, cli.remove(ctx, "secret", "/secrets/", id, nil)
}

// ConfigCreateOptions is POST /configs/create.
type ConfigCreateOptions struct{ Spec swarm.ConfigSpec }

// ConfigCreateResult is the new config's ID.
type ConfigCreateResult = IDResult

// ConfigCreate creates a config.
func (cli *Client) ConfigCreate(ctx context.Context, options ConfigCreateOptions) (ConfigCreateResult, error) {
	return cli.createID(ctx, "/configs/create", options.Spec)
}

// ConfigInspectOptions is GET /configs/ID.
type ConfigInspectOptions struct{}

// ConfigInspectResult holds the decoded and the raw config JSON.
type ConfigInspectResult struct {
	Config swarm.Config
	Raw    json.RawMessage
}

// ConfigInspect inspects a config.
func (cli *Client) ConfigInspect(ctx context.Context, id string, _ ConfigInspectOptions) (ConfigInspectResult, error) {
	c, raw, err := inspect[swarm.Config](ctx, cli, "config", "/configs/", id, "", nil)
	return ConfigInspectResult{Config: c, Raw: raw}, err
}

// ConfigListOptions is GET /configs.
type ConfigListOptions = FilterOptions

// ConfigListResult is the list of configs.
type ConfigListResult = ListResult[swarm.Config]

// ConfigList lists configs.
func (cli *Client) ConfigList(ctx context.Context, options ConfigListOptions) (ConfigListResult, error) {
	return getList[swarm.Config](ctx, cli, "/configs", options.Filters)
}

// ConfigRemoveOptions is DELETE /configs/ID.
type ConfigRemoveOptions struct{}

// ConfigRemoveResult is empty.
type ConfigRemoveResult struct{}

// ConfigRemove removes a config.
func (cli *Client) ConfigRemove(ctx context.Context, id string, _ ConfigRemoveOptions) (ConfigRemoveResult, error) {
	return ConfigRemoveResult{}, cli.remove(ctx, "config", "/configs/", id, nil)
}

// PluginListOptions is GET /plugins.
type PluginListOptions = FilterOptions

// PluginListResult is the list of plugins.
type PluginListResult = ListResult[plugin.Plugin]

// PluginList lists plugins.
func (cli *Client) PluginList(ctx context.Context, options PluginListOptions) (PluginListResult, error) {
	return getList[plugin.Plugin](ctx, cli, "/plugins", options.Filters)
}

// PluginInspectOptions is GET /plugins/NAME/json.
type PluginInspectOptions struct{}

// PluginInspectResult holds the decoded and the raw plugin JSON.
type PluginInspectResult struct {
	Plugin plugin.Plugin
	Raw    json.RawMessage
}

// PluginInspect inspects a plugin.
func (cli *Client) PluginInspect(ctx context.Context, name string, _ PluginInspectOptions) (PluginInspectResult, error) {
	p, raw, err := inspect[plugin.Plugin](ctx, cli, "plugin", "/plugins/", name, "/json", nil)
	return PluginInspectResult{Plugin: p, Raw: raw}, err
}

// PluginEnableOptions is POST /plugins/NAME/enable.
type PluginEnableOptions struct{ Timeout int }

// PluginEnableResult is empty.
type PluginEnableResult struct{}

// PluginEnable enables a plugin.
func (cli *Client) PluginEnable(ctx context.Context, name string, options PluginEnableOptions) (PluginEnableResult, error) {
	return PluginEnableResult{}, cli.pluginPost(ctx, name, "/enable", url.Values{"timeout": {strconv.Itoa(options.Timeout)}})
}

func (cli *Client) pluginPost(ctx context.Context, name, action string, query url.Values) error {
	name, err := trimID("plugin", name)
	if err != nil {
		return err
	}
	resp, err := cli.post(ctx, "/plugins/"+name+action, query, nil, nil)
	ensureReaderClosed(resp)
	return err
}

// PluginDisableOptions is POST /plugins/NAME/disable.
type PluginDisableOptions struct{ Force bool }

// PluginDisableResult is empty.
type PluginDisableResult struct{}

// PluginDisable disables a plugin.
func (cli *Client) PluginDisable(ctx context.Context, name string, options PluginDisableOptions) (PluginDisableResult, error) {
	return PluginDisableResult{}, cli.pluginPost(ctx, name, "/disable", forceQuery(options.Force))
}

// PluginRemoveOptions is DELETE /plugins/NAME.
type PluginRemoveOptions struct{ Force bool }

// PluginRemoveResult is empty.
type PluginRemoveResult struct{}

// PluginRemove removes a plugin.
func (cli *Client) PluginRemove(ctx context.Context, name string, options PluginRemoveOptions) (PluginRemoveResult, error) {
	return PluginRemoveResult{}, cli.remove(ctx, "plugin", "/plugins/", name, forceQuery(options.Force))
}
