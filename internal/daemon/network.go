package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/nftables"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	apinet "github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/api/backend"
	"github.com/berth-dev/berth/internal/network"
)

// The daemon's side of networking: the network.Manager owns bridges, IPAM,
// ports and DNS; this file maps containers and Engine API requests onto it.
//
// Per container, beside its record, <data-root>/containers/<id>/networks.json
// holds the endpoint settings asked at create time and by `network connect`
// on a stopped container (aliases, --ip), keyed by network name as given:
//
//	{"mynet": {"Aliases": ["db"], "IPAMConfig": {"IPv4Address": "10.1.0.5"}}}
//
// It is written before the record is used, so a crash leaves at worst an
// unused file that container removal deletes with the directory.

// userNetworks are the network modes that attach to a bridge network.
func attachesToBridge(mode string) bool {
	switch {
	case mode == "none" || mode == "host" || strings.HasPrefix(mode, "container:"):
		return false
	}
	return true
}

func (d *Daemon) networksFile(id string) string {
	return filepath.Join(d.containerDir(id), "networks.json")
}

func (d *Daemon) loadNetworking(id string) map[string]*apinet.EndpointSettings {
	m := map[string]*apinet.EndpointSettings{}
	if b := readNetFile(d.networksFile(id)); b != nil { // netcache.go
		_ = json.Unmarshal(b, &m)
	}
	// The CLI names the default network "default".
	if s, ok := m["default"]; ok {
		delete(m, "default")
		if _, ok := m["bridge"]; !ok {
			m["bridge"] = s
		}
	}
	return m
}

func (d *Daemon) saveNetworking(id string, m map[string]*apinet.EndpointSettings) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeNetFile(d.networksFile(id), b) // netcache.go
}

// netErr turns the network package's wrapped errors ("...: conflict") into
// docker's message with the same class.
func netErr(err error) error {
	if err == nil {
		return nil
	}
	for _, class := range []interface {
		error
		WithMessage(string) error
	}{errdefs.ErrNotFound, errdefs.ErrConflict, errdefs.ErrInvalidArgument, errdefs.ErrPermissionDenied, errdefs.ErrNotImplemented, errdefs.ErrAlreadyExists} {
		if errors.Is(err, class) {
			return class.WithMessage(strings.TrimSuffix(err.Error(), ": "+class.Error()))
		}
	}
	return err
}

// newNetworkManager opens the network manager. A fresh data root finding
// the default bridge left by an earlier daemon (bridges outlive daemons so
// that containers keep their network) would refuse it; a default bridge
// with no interface attached serves no container, so it is deleted and the
// manager retried. One still in use belongs to another running daemon:
// that is an error (give it --bridge), as with dockerd.
func (d *Daemon) newNetworkManager(ctx context.Context) (*network.Manager, error) {
	cfg := network.Config{DB: d.db, ExecRoot: d.cfg.ExecRoot, DefaultBridge: d.cfg.Bridge, BIP: d.cfg.BIP, MTU: d.cfg.MTU, Log: d.log}
	if d.ephemeralNet() {
		cfg.DefaultBridge, cfg.Table = d.netScope(), d.netScope()
	}
	m, err := network.New(ctx, cfg)
	if err == nil || !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "already in use on the host") {
		return m, err
	}
	name := cfg.DefaultBridge
	if name == "" {
		name = "berth0"
	}
	br, lerr := netlink.LinkByName(name)
	if lerr != nil || br.Type() != "bridge" {
		return nil, err
	}
	// Veths of removed containers vanish shortly after their namespaces.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		links, _ := netlink.LinkList()
		busy := false
		for _, l := range links {
			if l.Attrs().MasterIndex == br.Attrs().Index {
				busy = true
			}
		}
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (it has interfaces attached: another berth daemon uses it; give this one --bridge)", err)
		}
	}
	d.log.Info("deleting stale default bridge", "bridge", name)
	if err := netlink.LinkDel(br); err != nil {
		return nil, fmt.Errorf("delete stale bridge %s: %w", name, err)
	}
	return network.New(ctx, cfg)
}

// ephemeralNet: a daemon on a non-default exec root with no --bridge (tests,
// benchmarks, several daemons on one host) gets its own default bridge and
// nftables table, both named netScope(), so that daemons never take over
// each other's bridge, veths or rules; and it deletes them when it stops
// with nothing attached (closeNetworks), so such daemons leave nothing behind.
func (d *Daemon) ephemeralNet() bool {
	return d.cfg.Bridge == "" && filepath.Clean(d.cfg.ExecRoot) != "/run/berth"
}

// netScope is "berth-" and 6 hex digits of the exec root's hash (a device
// name has at most 15 bytes).
func (d *Daemon) netScope() string {
	h := sha256.Sum256([]byte(filepath.Clean(d.cfg.ExecRoot)))
	return "berth-" + hex.EncodeToString(h[:3])
}

// closeNetworks closes the manager; an ephemeral daemon with no endpoint
// left also deletes its bridges and its tables (the next daemon on the same
// roots recreates them from the store).
func (d *Daemon) closeNetworks(ctx context.Context) {
	nets := d.net.List(ctx)
	idle := true
	for _, n := range nets {
		if eps, _ := d.net.Endpoints(ctx, n.ID); len(eps) > 0 {
			idle = false
		}
	}
	d.net.Close()
	if !d.ephemeralNet() || !idle {
		return
	}
	for _, n := range nets {
		if l, err := netlink.LinkByName(n.Bridge); err == nil && l.Type() == "bridge" {
			_ = netlink.LinkDel(l)
		}
	}
	if c, err := nftables.New(); err == nil {
		for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
			c.DelTable(&nftables.Table{Name: d.netScope(), Family: fam})
			_ = c.Flush() // a missing table is not an error here
		}
	}
}

// validateNetworking checks a create request's network settings.
func (d *Daemon) validateNetworking(ctx context.Context, hc *container.HostConfig) error {
	nm := string(hc.NetworkMode)
	if attachesToBridge(nm) && nm != "" && nm != "default" {
		if _, err := d.net.Get(ctx, nm); err != nil {
			return errMsg(errdefs.ErrNotFound, "network %s not found", nm)
		}
	}
	if len(hc.PortBindings) > 0 || hc.PublishAllPorts {
		if _, err := network.BindingsFromAPI(hostBindings(hc.PortBindings), false, nil); err != nil {
			return netErr(err)
		}
	}
	if err := d.normalizeLinks(hc); err != nil {
		return err
	}
	if _, err := network.ParseExtraHosts(hc.ExtraHosts, netip.IPv4Unspecified()); err != nil {
		return netErr(err)
	}
	return nil
}

func hostBindings(pm apinet.PortMap) map[string][]network.HostBinding {
	out := map[string][]network.HostBinding{}
	for p, bs := range pm {
		k := p.String()
		out[k] = []network.HostBinding{}
		for _, b := range bs {
			hb := network.HostBinding{HostPort: b.HostPort}
			if b.HostIP.IsValid() {
				hb.HostIP = b.HostIP.String()
			}
			out[k] = append(out[k], hb)
		}
	}
	return out
}

// exposedPorts are the container's and its image's EXPOSE ports ("80/tcp").
func exposedPorts(c *Container, img ocispec.ImageConfig) []string {
	set := map[string]bool{}
	for p := range c.Config.ExposedPorts {
		set[p.String()] = true
	}
	for p := range img.ExposedPorts {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		set[p] = true
	}
	for p := range c.HostConfig.PortBindings {
		set[p.String()] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// dnsLinks are the --link aliases the embedded DNS server of a user network
// answers for this container: the endpoint's (as the CLI sends them), and
// HostConfig.Links for the network of its NetworkMode (an API client may
// send only those).
func dnsLinks(hc *container.HostConfig, network string, s *apinet.EndpointSettings) []network.Link {
	var raw []string
	if s != nil {
		raw = append(raw, s.Links...)
	}
	if !legacyLinks(hc) && network == string(hc.NetworkMode) {
		raw = append(raw, hc.Links...)
	}
	return toLinks(raw)
}

func toLinks(raw []string) []network.Link {
	var out []network.Link
	seen := map[network.Link]bool{}
	for _, l := range raw {
		name, alias, err := parseLink(l)
		if err != nil {
			continue
		}
		if k := (network.Link{Name: name, Alias: alias}); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// connectNetworks attaches a started container's namespace to its networks
// (the primary one from --network first, then the others of the create
// request), before its spec is generated. On error, teardown releases what
// was attached. c.mu is held.
func (d *Daemon) connectNetworks(ctx context.Context, c *Container, img ocispec.ImageConfig, nsPath string) error {
	mode := c.networkMode()
	if !attachesToBridge(mode) {
		return nil
	}
	start := time.Now()
	defer func() { d.log.Debug("networks attached", "container", c.ID[:12], "took", time.Since(start)) }()
	ports, err := network.BindingsFromAPI(hostBindings(c.HostConfig.PortBindings), c.HostConfig.PublishAllPorts, exposedPorts(c, img))
	if err != nil {
		return netErr(err)
	}
	if err := d.checkLinks(ctx, c); err != nil {
		return err
	}
	settings := d.loadNetworking(c.ID)
	var names, others []string
	if !disconnected(settings[mode]) {
		names = append(names, mode)
	}
	for n, s := range settings {
		if n != mode && !disconnected(s) {
			others = append(others, n)
		}
	}
	sort.Strings(others)
	names = append(names, others...)
	dns := d.dnsServers(c)
	for i, n := range names {
		e := network.Endpoint{
			ContainerID: c.ID,
			Name:        strings.TrimPrefix(c.Name, "/"),
			Hostname:    c.hostname(),
			NetnsPath:   nsPath,
			Links:       dnsLinks(c.HostConfig, n, settings[n]),
			DNS:         dns,
		}
		if i == 0 {
			e.Ports = ports
		}
		if s := settings[n]; s != nil {
			e.Aliases = s.Aliases
			if s.IPAMConfig != nil {
				if s.IPAMConfig.IPv4Address.IsValid() {
					e.IPv4 = s.IPAMConfig.IPv4Address.String()
				}
				if s.IPAMConfig.IPv6Address.IsValid() {
					e.IPv6 = s.IPAMConfig.IPv6Address.String()
				}
			}
		}
		ep, err := d.net.Connect(ctx, n, e)
		if err != nil {
			return netErr(err)
		}
		d.publish(events.NetworkEventType, events.ActionConnect, ep.NetworkID, map[string]string{"name": d.networkName(ctx, ep.NetworkID), "type": "bridge", "container": c.ID})
	}
	d.refreshLinkParents(ctx, c)
	return nil
}

// dnsServers are the container's --dns, else the daemon's default dns.
func (d *Daemon) dnsServers(c *Container) []string {
	var dns []string
	for _, a := range c.HostConfig.DNS {
		dns = append(dns, a.String())
	}
	if len(dns) == 0 {
		dns = append(dns, d.cfg.DNS...)
	}
	return dns
}

// hostname is the container's hostname: --hostname or the short ID.
func (c *Container) hostname() string {
	if c.Config.Hostname != "" {
		return c.Config.Hostname
	}
	return c.ID[:12]
}

// releaseNetworks frees a stopped container's addresses, ports and DNS
// records; the namespace removal that follows deletes its veths.
func (d *Daemon) releaseNetworks(ctx context.Context, c *Container) {
	if d.net != nil && attachesToBridge(c.networkMode()) {
		start := time.Now()
		eps := d.net.ContainerEndpoints(ctx, c.ID)
		_ = d.net.Release(ctx, c.ID)
		for _, ep := range eps {
			d.publish(events.NetworkEventType, events.ActionDisconnect, ep.NetworkID, map[string]string{"name": d.networkName(ctx, ep.NetworkID), "type": "bridge", "container": c.ID})
		}
		d.log.Debug("networks released", "container", c.ID[:12], "took", time.Since(start))
	}
}

// networkName maps a network ID to its name (for inspect's Networks map).
func (d *Daemon) networkName(ctx context.Context, id string) string {
	if n, err := d.net.Get(ctx, id); err == nil {
		return n.Name
	}
	return id
}

// endpointSettings is inspect's view of one attachment.
func endpointSettings(ep network.EndpointInfo, aliases []string) *apinet.EndpointSettings {
	es := &apinet.EndpointSettings{
		Aliases:    aliases,
		NetworkID:  ep.NetworkID,
		EndpointID: ep.ID,
		Gateway:    ep.Gateway,
		DNSNames:   append([]string{ep.Name}, ep.Aliases...),
	}
	if ep.IPv4.IsValid() {
		es.IPAddress = ep.IPv4.Addr()
		es.IPPrefixLen = ep.IPv4.Bits()
	}
	if ep.IPv6.IsValid() {
		es.GlobalIPv6Address = ep.IPv6.Addr()
		es.GlobalIPv6PrefixLen = ep.IPv6.Bits()
		es.IPv6Gateway = ep.Gateway6
	}
	if mac, err := net.ParseMAC(ep.MAC); err == nil {
		es.MacAddress = apinet.HardwareAddr(mac)
	}
	for _, l := range ep.Links {
		es.Links = append(es.Links, l.Name+":"+l.Alias)
	}
	return es
}

// networkSettings fills inspect's and ps's network fields; c.mu is held.
func (d *Daemon) networkSettings(ctx context.Context, c *Container) (apinet.PortMap, map[string]*apinet.EndpointSettings, []container.PortSummary) {
	nets := map[string]*apinet.EndpointSettings{}
	ports := apinet.PortMap{}
	summary := []container.PortSummary{}
	var eps []network.EndpointInfo
	if d.net != nil && attachesToBridge(c.networkMode()) && c.State.running() {
		eps = d.net.ContainerEndpoints(ctx, c.ID)
	}
	settings := d.loadNetworking(c.ID)
	for _, ep := range eps {
		name := d.networkName(ctx, ep.NetworkID)
		var aliases []string
		if s := settings[name]; s != nil {
			aliases = s.Aliases
		}
		nets[name] = endpointSettings(ep, aliases)
	}
	if len(eps) == 0 {
		if !disconnected(settings[c.networkMode()]) {
			nets[c.networkMode()] = &apinet.EndpointSettings{}
		}
		for n, s := range settings {
			if _, ok := nets[n]; !ok && s != nil && !disconnected(s) && attachesToBridge(c.networkMode()) {
				nets[n] = &apinet.EndpointSettings{Aliases: s.Aliases}
			}
		}
		return ports, nets, summary
	}
	var exposed []string
	for p := range c.Config.ExposedPorts {
		exposed = append(exposed, p.String())
	}
	for p := range c.HostConfig.PortBindings {
		exposed = append(exposed, p.String())
	}
	for k, bs := range network.PortMap(eps, exposed) {
		p, err := apinet.ParsePort(k)
		if err != nil {
			continue
		}
		if bs == nil {
			ports[p] = nil
			summary = append(summary, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
			continue
		}
		for _, b := range bs {
			ip, _ := netip.ParseAddr(b.HostIP)
			ports[p] = append(ports[p], apinet.PortBinding{HostIP: ip, HostPort: b.HostPort})
			hp, _ := strconv.ParseUint(b.HostPort, 10, 16)
			summary = append(summary, container.PortSummary{IP: ip, PrivatePort: p.Num(), PublicPort: uint16(hp), Type: string(p.Proto())})
		}
	}
	sort.Slice(summary, func(i, j int) bool {
		if summary[i].PrivatePort != summary[j].PrivatePort {
			return summary[i].PrivatePort < summary[j].PrivatePort
		}
		return summary[i].Type < summary[j].Type
	})
	return ports, nets, summary
}

// matchNetworkFilters applies ps's network (name or ID of any of the
// container's networks), publish and expose filters ("80", "80/tcp",
// "8000-8080/udp"); c.mu is held.
func (d *Daemon) matchNetworkFilters(c *Container, f backend.Filters) bool {
	if !f.Has("network") && !f.Has("publish") && !f.Has("expose") {
		return true
	}
	ctx := context.Background()
	if f.Has("network") {
		names := []string{c.networkMode()}
		for n := range d.loadNetworking(c.ID) {
			names = append(names, n)
		}
		ok := false
		for _, v := range f.Get("network") {
			for _, n := range names {
				if v == n {
					ok = true
				} else if nw, err := d.net.Get(ctx, n); err == nil && (v == nw.Name || strings.HasPrefix(nw.ID, v)) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	_, _, ports := d.networkSettings(ctx, c)
	inRange := func(spec string, port uint16, proto string) bool {
		r, p, hasProto := strings.Cut(spec, "/")
		if hasProto && p != proto {
			return false
		}
		lo, hi, isRange := strings.Cut(r, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.ParseUint(lo, 10, 16)
		h, err2 := strconv.ParseUint(hi, 10, 16)
		return err1 == nil && err2 == nil && uint64(port) >= l && uint64(port) <= h
	}
	for term, public := range map[string]bool{"publish": true, "expose": false} {
		if !f.Has(term) {
			continue
		}
		ok := false
		for _, v := range f.Get(term) {
			for _, p := range ports {
				port := p.PrivatePort
				if public {
					port = p.PublicPort
				}
				if port != 0 && inRange(v, port, p.Type) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Pseudo-networks docker lists beside the bridges; they have no endpoints
// the manager tracks. Their IDs are stable hashes of their names.
var pseudoNetworks = []string{"host", "none"}

func pseudoID(name string) string {
	h := sha256.Sum256([]byte("berth-network-" + name))
	return hex.EncodeToString(h[:])
}

func pseudoNetwork(ref string) (apinet.Network, bool) {
	for _, n := range pseudoNetworks {
		id := pseudoID(n)
		if ref == n || (len(ref) >= 1 && strings.HasPrefix(id, ref) && len(ref) >= 3) {
			driver := n
			if n == "none" {
				driver = "null"
			}
			return apinet.Network{Name: n, ID: id, Scope: "local", Driver: driver, EnableIPv4: true,
				IPAM: apinet.IPAM{Driver: "default", Config: []apinet.IPAMConfig{}}, Options: map[string]string{}, Labels: map[string]string{}}, true
		}
	}
	return apinet.Network{}, false
}

func toAPINetwork(n network.Network) apinet.Network {
	out := apinet.Network{
		Name: n.Name, ID: n.ID, Scope: "local", Driver: "bridge", EnableIPv4: true, EnableIPv6: n.EnableIPv6,
		Internal: n.Internal, Options: n.Options, Labels: n.Labels,
		IPAM: apinet.IPAM{Driver: "default", Options: map[string]string{}, Config: []apinet.IPAMConfig{}},
	}
	out.Created = n.Created
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.Default {
		out.Options["com.docker.network.bridge.default_bridge"] = "true"
		out.Options["com.docker.network.bridge.name"] = n.Bridge
	}
	for _, s := range n.Subnets {
		out.IPAM.Config = append(out.IPAM.Config, apinet.IPAMConfig{Subnet: s.Subnet, Gateway: s.Gateway, IPRange: s.IPRange})
	}
	return out
}

// NetworkList implements backend.NetworkBackend.
func (d *Daemon) NetworkList(ctx context.Context, f backend.Filters) ([]apinet.Summary, error) {
	if bad := f.Validate("name", "id", "driver", "label", "type", "scope", "dangling"); bad != "" {
		return nil, errMsg(errInvalid, "invalid filter '%s'", bad)
	}
	var all []apinet.Network
	for _, n := range d.net.List(ctx) {
		all = append(all, toAPINetwork(n))
	}
	for _, n := range pseudoNetworks {
		p, _ := pseudoNetwork(n)
		all = append(all, p)
	}
	out := []apinet.Summary{}
	for _, n := range all {
		if f.Has("name") && !anyMatch(f.Get("name"), func(v string) bool { return strings.Contains(n.Name, v) }) {
			continue
		}
		if f.Has("id") && !anyMatch(f.Get("id"), func(v string) bool { return strings.HasPrefix(n.ID, v) }) {
			continue
		}
		if f.Has("driver") && !anyMatch(f.Get("driver"), func(v string) bool { return v == n.Driver }) {
			continue
		}
		if f.Has("scope") && !anyMatch(f.Get("scope"), func(v string) bool { return v == "local" }) {
			continue
		}
		builtin := n.Name == "bridge" || n.Name == "host" || n.Name == "none"
		if f.Has("type") && !anyMatch(f.Get("type"), func(v string) bool { return (v == "builtin") == builtin }) {
			continue
		}
		if f.Has("label") && !anyMatch(f.Get("label"), func(v string) bool { return labelMatch(n.Labels, v) }) {
			continue
		}
		out = append(out, apinet.Summary{Network: n})
	}
	return out, nil
}

func anyMatch(vals []string, fn func(string) bool) bool {
	for _, v := range vals {
		if fn(v) {
			return true
		}
	}
	return false
}

func labelMatch(labels map[string]string, f string) bool {
	k, v, hasV := strings.Cut(f, "=")
	lv, ok := labels[k]
	return ok && (!hasV || lv == v)
}

// NetworkInspect implements backend.NetworkBackend.
// With verbose (docker's --verbose) it adds Status.IPAM: the address usage
// of each subnet. Every berth network has the local scope.
func (d *Daemon) NetworkInspect(ctx context.Context, id string, opts backend.NetworkInspectOptions) (apinet.Inspect, error) {
	if opts.Scope != "" && opts.Scope != "local" {
		return apinet.Inspect{}, errMsg(errdefs.ErrNotFound, "network %s not found", id)
	}
	n, err := d.net.Get(ctx, id)
	if err != nil {
		if p, ok := pseudoNetwork(id); ok {
			return apinet.Inspect{Network: p, Containers: map[string]apinet.EndpointResource{}}, nil
		}
		return apinet.Inspect{}, errMsg(errdefs.ErrNotFound, "network %s not found", id)
	}
	r := apinet.Inspect{Network: toAPINetwork(n), Containers: map[string]apinet.EndpointResource{}}
	eps, _ := d.net.Endpoints(ctx, n.ID)
	for _, ep := range eps {
		er := apinet.EndpointResource{Name: ep.Name, EndpointID: ep.ID, IPv4Address: ep.IPv4, IPv6Address: ep.IPv6}
		if mac, err := net.ParseMAC(ep.MAC); err == nil {
			er.MacAddress = apinet.HardwareAddr(mac)
		}
		r.Containers[ep.ContainerID] = er
	}
	if opts.Verbose {
		usage, err := d.net.Usage(ctx, n.ID)
		if err != nil {
			return apinet.Inspect{}, netErr(err)
		}
		st := &apinet.Status{IPAM: apinet.IPAMStatus{Subnets: apinet.SubnetStatuses{}}}
		for _, u := range usage {
			st.IPAM.Subnets[u.Subnet] = apinet.SubnetStatus{IPsInUse: u.InUse, DynamicIPsAvailable: u.Available}
		}
		r.Status = st
	}
	return r, nil
}

// NetworkCreate implements backend.NetworkBackend.
func (d *Daemon) NetworkCreate(ctx context.Context, req apinet.CreateRequest) (apinet.CreateResponse, error) {
	if _, ok := pseudoNetwork(req.Name); ok && (req.Name == "host" || req.Name == "none") {
		return apinet.CreateResponse{}, errMsg(errdefs.ErrPermissionDenied, "%s is a pre-defined network and cannot be created", req.Name)
	}
	o := network.CreateOptions{Name: req.Name, Driver: req.Driver, Internal: req.Internal, Labels: req.Labels, Options: req.Options}
	if req.EnableIPv6 != nil {
		o.IPv6 = *req.EnableIPv6
	}
	if req.IPAM != nil {
		for _, c := range req.IPAM.Config {
			var s network.SubnetRequest
			if c.Subnet.IsValid() {
				s.Subnet = c.Subnet.String()
			}
			if c.Gateway.IsValid() {
				s.Gateway = c.Gateway.String()
			}
			if c.IPRange.IsValid() {
				s.IPRange = c.IPRange.String()
			}
			o.Subnets = append(o.Subnets, s)
		}
	}
	n, err := d.net.CreateNetwork(ctx, o)
	if err != nil {
		return apinet.CreateResponse{}, netErr(err)
	}
	d.publish(events.NetworkEventType, events.ActionCreate, n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return apinet.CreateResponse{ID: n.ID}, nil
}

// NetworkRemove implements backend.NetworkBackend.
func (d *Daemon) NetworkRemove(ctx context.Context, id string) error {
	if _, err := d.net.Get(ctx, id); err != nil {
		if p, ok := pseudoNetwork(id); ok {
			return errMsg(errdefs.ErrPermissionDenied, "%s is a pre-defined network and cannot be removed", p.Name)
		}
		return errMsg(errdefs.ErrNotFound, "network %s not found", id)
	}
	n, _ := d.net.Get(ctx, id)
	if err := d.net.RemoveNetwork(ctx, id); err != nil {
		return netErr(err)
	}
	d.publish(events.NetworkEventType, events.ActionDestroy, n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return nil
}

// NetworkPrune implements backend.NetworkBackend: user networks without
// containers, also those stopped containers still name.
func (d *Daemon) NetworkPrune(ctx context.Context, f backend.Filters) (apinet.PruneReport, error) {
	used := map[string]bool{}
	for _, c := range d.ctrs.list() {
		c.mu.Lock()
		used[c.networkMode()] = true
		for n := range d.loadNetworking(c.ID) {
			used[n] = true
		}
		c.mu.Unlock()
	}
	names, err := d.net.Prune(ctx, func(n network.Network) bool {
		if used[n.Name] || used[n.ID] {
			return true
		}
		if f.Has("label") && !anyMatch(f.Get("label"), func(v string) bool { return labelMatch(n.Labels, v) }) {
			return true
		}
		return false
	})
	if err != nil {
		return apinet.PruneReport{}, netErr(err)
	}
	if names == nil {
		names = []string{}
	}
	return apinet.PruneReport{NetworksDeleted: names}, nil
}

// NetworkConnect implements backend.NetworkBackend: a running container is
// attached now; a stopped one when it next starts.
func (d *Daemon) NetworkConnect(ctx context.Context, id string, req apinet.ConnectRequest) error {
	n, err := d.net.Get(ctx, id)
	if err != nil {
		if _, ok := pseudoNetwork(id); ok {
			return errMsg(errdefs.ErrPermissionDenied, "container cannot be disconnected from host network or connected to host network")
		}
		return errMsg(errdefs.ErrNotFound, "network %s not found", id)
	}
	c, err := d.ctrs.get(req.Container)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !attachesToBridge(c.networkMode()) {
		return errMsg(errdefs.ErrPermissionDenied, "container sharing network namespace with another container or host cannot be connected to any other network")
	}
	settings := d.loadNetworking(c.ID)
	exists := c.networkMode() == n.Name
	if s, ok := settings[n.Name]; ok {
		exists = !disconnected(s)
	}
	if exists {
		return errMsg(errdefs.ErrPermissionDenied, "endpoint with name %s already exists in network %s", strings.TrimPrefix(c.Name, "/"), n.Name)
	}
	es := req.EndpointConfig
	if es == nil {
		es = &apinet.EndpointSettings{}
	}
	for _, l := range es.Links {
		if _, _, err := parseLink(l); err != nil {
			return err
		}
	}
	if len(es.Links) > 0 && n.Name == "bridge" {
		return errMsg(errInvalid, "links are only supported for user-defined networks")
	}
	if c.State.running() {
		e := network.Endpoint{ContainerID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), Hostname: c.hostname(),
			Aliases: es.Aliases, NetnsPath: d.netnsPath(c.ID), Links: toLinks(es.Links)}
		if es.IPAMConfig != nil && es.IPAMConfig.IPv4Address.IsValid() {
			e.IPv4 = es.IPAMConfig.IPv4Address.String()
		}
		if es.IPAMConfig != nil && es.IPAMConfig.IPv6Address.IsValid() {
			e.IPv6 = es.IPAMConfig.IPv6Address.String()
		}
		e.DNS = d.dnsServers(c)
		if _, err := d.net.Connect(ctx, n.ID, e); err != nil {
			return netErr(err)
		}
		d.refreshEtcHosts(ctx, c)
		d.publish(events.NetworkEventType, events.ActionConnect, n.ID, map[string]string{"name": n.Name, "type": "bridge", "container": c.ID})
	}
	settings[n.Name] = &apinet.EndpointSettings{Aliases: es.Aliases, IPAMConfig: es.IPAMConfig, Links: es.Links}
	return d.saveNetworking(c.ID, settings)
}

// NetworkDisconnect implements backend.NetworkBackend.
func (d *Daemon) NetworkDisconnect(ctx context.Context, id string, req apinet.DisconnectRequest) error {
	n, err := d.net.Get(ctx, id)
	if err != nil {
		if _, ok := pseudoNetwork(id); ok {
			return errMsg(errdefs.ErrPermissionDenied, "container cannot be disconnected from host network or connected to host network")
		}
		return errMsg(errdefs.ErrNotFound, "network %s not found", id)
	}
	c, err := d.ctrs.get(req.Container)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	settings := d.loadNetworking(c.ID)
	s, recorded := settings[n.Name]
	primary := c.networkMode() == n.Name
	recorded = (recorded || primary) && !disconnected(s)
	attached := false
	if c.State.running() {
		for _, ep := range d.net.ContainerEndpoints(ctx, c.ID) {
			if ep.NetworkID == n.ID {
				attached = true
			}
		}
	}
	if !recorded && !attached {
		return errMsg(errdefs.ErrPermissionDenied, "container %s is not connected to network %s", c.ID, n.Name)
	}
	if attached {
		if err := d.net.Disconnect(ctx, n.ID, c.ID); err != nil {
			return netErr(err)
		}
		d.refreshEtcHosts(ctx, c)
		d.publish(events.NetworkEventType, events.ActionDisconnect, n.ID, map[string]string{"name": n.Name, "type": "bridge", "container": c.ID})
	}
	delete(settings, n.Name)
	if primary {
		// The network of its NetworkMode stays named in HostConfig: mark it
		// left, so that start skips it and connect may bring it back.
		settings[n.Name] = &apinet.EndpointSettings{DriverOpts: map[string]string{disconnectedOpt: "1"}}
	}
	return d.saveNetworking(c.ID, settings)
}

// disconnectedOpt marks, in networks.json, the NetworkMode network a
// container was disconnected from.
const disconnectedOpt = "berth.disconnected"

func disconnected(s *apinet.EndpointSettings) bool {
	return s != nil && s.DriverOpts[disconnectedOpt] == "1"
}

// networkWarnings are the network manager's conditions for `info`.
func (d *Daemon) networkWarnings() []string {
	if d.net == nil {
		return nil
	}
	return d.net.Warnings()
}
