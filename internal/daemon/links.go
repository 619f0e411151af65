package daemon

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	apinet "github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/network"
)

// Legacy --link, as docker keeps it.
//
// On the default bridge a link is a parent→child edge: the parent's
// /etc/hosts names the child ("<ip> alias <child hostname> <child name>"),
// its environment carries ALIAS_PORT_80_TCP=tcp://ip:80, ALIAS_NAME,
// ALIAS_ENV_* (docker's daemon/links), and inspect shows HostConfig.Links as
// "/child:/parent/alias". The edge is stored in the parent's own
// HostConfig.Links, rewritten at create to "<child id>:<alias>" so that it
// survives a rename of either side; the child must exist at create and run
// when the parent starts. When the child starts again (new address) the
// running parents' /etc/hosts are rewritten.
//
// On a user network a link is only a name: the alias resolves to the
// target through the embedded DNS server, for this container only. It
// lives in the endpoint settings (networks.json, EndpointSettings.Links,
// as the CLI sends it), the target need not exist, and HostConfig.Links
// shows nothing, as with docker.

// parseLink is docker's opts.ParseLink: "name", "name:alias", or the form
// inspect shows, "/name:/parent/alias".
func parseLink(s string) (name, alias string, err error) {
	if s == "" {
		return "", "", errMsg(errInvalid, "empty string specified for links")
	}
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 1:
		return strings.TrimPrefix(s, "/"), strings.TrimPrefix(s, "/"), nil
	case 2:
	default:
		return "", "", errMsg(errInvalid, "bad format for links: %s", s)
	}
	name, alias = parts[0], parts[1]
	if strings.HasPrefix(name, "/") {
		_, alias = path.Split(alias)
		name = name[1:]
	}
	if name == "" || alias == "" {
		return "", "", errMsg(errInvalid, "bad format for links: %s", s)
	}
	return name, alias, nil
}

// legacyLinks reports whether the container's HostConfig.Links are
// parent→child links (default bridge), not DNS aliases of a user network.
func legacyLinks(hc *container.HostConfig) bool {
	nm := string(hc.NetworkMode)
	return nm == "" || nm == "default" || nm == "bridge"
}

// networkOwner follows --network container:<x> to the container that owns
// the namespace (docker links to that one's address).
func (d *Daemon) networkOwner(c *Container) (*Container, error) {
	for i := 0; i < 10; i++ {
		ref, ok := strings.CutPrefix(string(c.HostConfig.NetworkMode), "container:")
		if !ok {
			return c, nil
		}
		next, err := d.ctrs.get(ref)
		if err != nil {
			return nil, err
		}
		c = next
	}
	return nil, errMsg(errInvalid, "too many nested --network container: references")
}

// normalizeLinks checks a create request's legacy links and rewrites them
// to "<child id>:<alias>" (see the comment at the top). A missing child is
// docker's invalid-parameter error (a not-found would make the CLI pull).
func (d *Daemon) normalizeLinks(hc *container.HostConfig) error {
	if len(hc.Links) == 0 {
		return nil
	}
	if string(hc.NetworkMode) == "host" {
		return errMsg(errInvalid, "conflicting options: host type networking can't be used with links. This would result in undefined behavior")
	}
	out := make([]string, 0, len(hc.Links))
	for _, l := range hc.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			return err
		}
		if !legacyLinks(hc) {
			out = append(out, l)
			continue
		}
		child, err := d.ctrs.get(name)
		if err != nil {
			return errMsg(errInvalid, "could not get container for %s: %v", name, err)
		}
		owner, err := d.networkOwner(child)
		if err != nil {
			return errMsg(errInvalid, "could not get container for %s: %v", name, err)
		}
		if owner.HostConfig.NetworkMode == "host" {
			return errMsg(errInvalid, "conflicting options: host type networking can't be used with links. This would result in undefined behavior")
		}
		out = append(out, child.ID+":"+alias)
	}
	hc.Links = out
	return nil
}

// legacyLink is one resolved parent→child link.
type legacyLink struct {
	child *Container
	alias string
}

// linkChildren resolves a container's legacy links; links to removed
// containers are skipped, as docker's link graph forgets them.
func (d *Daemon) linkChildren(c *Container) []legacyLink {
	if !legacyLinks(c.HostConfig) {
		return nil
	}
	var out []legacyLink
	for _, l := range c.HostConfig.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			continue
		}
		if child, err := d.ctrs.get(name); err == nil {
			out = append(out, legacyLink{child, alias})
		}
	}
	return out
}

// bridgeEndpoint is a running container's endpoint on the default bridge
// (through --network container:<x>). Locks no container: the network
// manager's state says whether the container runs on the bridge.
func (d *Daemon) bridgeEndpoint(ctx context.Context, c *Container) (network.EndpointInfo, bool, bool) {
	owner, err := d.networkOwner(c)
	if err != nil {
		return network.EndpointInfo{}, false, false
	}
	eps := d.net.ContainerEndpoints(ctx, owner.ID)
	for _, ep := range eps {
		if n, err := d.net.Get(ctx, ep.NetworkID); err == nil && n.Name == "bridge" {
			return ep, true, true
		}
	}
	return network.EndpointInfo{}, false, len(eps) > 0
}

// hostLinks are the legacy links in the form the network manager writes
// into /etc/hosts (it matches Name against the default bridge's endpoints).
func (d *Daemon) hostLinks(c *Container) []network.Link {
	var out []network.Link
	for _, l := range d.linkChildren(c) {
		owner, err := d.networkOwner(l.child)
		if err != nil {
			continue
		}
		out = append(out, network.Link{Name: strings.TrimPrefix(owner.Name, "/"), Alias: l.alias})
	}
	return out
}

// checkLinks fails a start whose link children do not run, with docker's
// message. c.mu is held; the children are not locked.
func (d *Daemon) checkLinks(ctx context.Context, c *Container) error {
	for _, l := range d.linkChildren(c) {
		_, onBridge, running := d.bridgeEndpoint(ctx, l.child)
		if !running {
			return errMsg(errdefs.ErrConflict, "Cannot link to a non running container: %s AS %s/%s", l.child.Name, c.Name, l.alias)
		}
		if !onBridge {
			return errMsg(errdefs.ErrConflict, "container %s not attached to default bridge network", l.child.ID)
		}
	}
	return nil
}

// linkEnv is docker's legacy link environment for a container about to
// start (daemon/links ToEnv): for each child, ALIAS_PORT, ALIAS_PORT_<n>_<PROTO>
// (_ADDR, _PORT, _PROTO, and _START/_END for runs of ports), ALIAS_NAME and
// ALIAS_ENV_<k> for the child's environment except HOME and PATH.
func (d *Daemon) linkEnv(c *Container) []string {
	var env []string
	ctx := context.Background()
	for _, l := range d.linkChildren(c) {
		ep, ok, _ := d.bridgeEndpoint(ctx, l.child)
		if !ok || !ep.IPv4.IsValid() {
			continue
		}
		var ports []apinet.Port
		for p := range l.child.Config.ExposedPorts {
			ports = append(ports, p)
		}
		env = append(env, linkEnvVars(c.Name+"/"+l.alias, ep.IPv4.Addr().String(), l.child.Config.Env, ports)...)
	}
	return env
}

// linkEnvVars renders one link's variables. name is "/parent/alias".
func linkEnvVars(name, ip string, childEnv []string, ports []apinet.Port) []string {
	alias := strings.ReplaceAll(strings.ToUpper(path.Base(name)), "-", "_")
	// tcp first, then by number: runs of consecutive ports share _START/_END.
	sort.Slice(ports, func(i, j int) bool {
		pi, pj := ports[i], ports[j]
		if pi.Proto() != pj.Proto() {
			if pi.Proto() == "tcp" || pj.Proto() == "tcp" {
				return pi.Proto() == "tcp"
			}
			return pi.Proto() < pj.Proto()
		}
		return pi.Num() < pj.Num()
	})
	var env []string
	var start, end apinet.Port
	for i, p := range ports {
		proto := string(p.Proto())
		if i == 0 {
			start, end = p, p
			env = append(env, fmt.Sprintf("%s_PORT=%s://%s:%d", alias, proto, ip, p.Num()))
		}
		prefix := fmt.Sprintf("%s_PORT_%d_%s", alias, p.Num(), strings.ToUpper(proto))
		env = append(env,
			fmt.Sprintf("%s=%s://%s:%d", prefix, proto, ip, p.Num()),
			fmt.Sprintf("%s_ADDR=%s", prefix, ip),
			fmt.Sprintf("%s_PORT=%d", prefix, p.Num()),
			fmt.Sprintf("%s_PROTO=%s", prefix, proto))
		if p.Num() == end.Num()+1 && p.Proto() == end.Proto() {
			end = p
			if i < len(ports)-1 {
				continue
			}
		}
		if end != start {
			prefix = fmt.Sprintf("%s_PORT_%d_%s", alias, start.Num(), strings.ToUpper(string(start.Proto())))
			env = append(env,
				fmt.Sprintf("%s_START=%s://%s:%d", prefix, start.Proto(), ip, start.Num()),
				fmt.Sprintf("%s_PORT_START=%d", prefix, start.Num()),
				fmt.Sprintf("%s_END=%s://%s:%d", prefix, end.Proto(), ip, end.Num()),
				fmt.Sprintf("%s_PORT_END=%d", prefix, end.Num()))
		}
		start, end = p, p
	}
	env = append(env, fmt.Sprintf("%s_NAME=%s", alias, name))
	for _, v := range childEnv {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "HOME" || k == "PATH" {
			continue
		}
		env = append(env, fmt.Sprintf("%s_ENV_%s=%s", alias, k, val))
	}
	return env
}

// inspectLinks is HostConfig.Links as docker's inspect shows it:
// "/child:/parent/alias" for each legacy link whose child exists.
func (d *Daemon) inspectLinks(c *Container) []string {
	var out []string
	for _, l := range d.linkChildren(c) {
		out = append(out, l.child.Name+":"+c.Name+"/"+l.alias)
	}
	return out
}

// inspectHostConfig is a copy of c's HostConfig for inspect, with Links in
// docker's form. c.mu is held.
func (d *Daemon) inspectHostConfig(c *Container) *container.HostConfig {
	if c.HostConfig == nil {
		return nil
	}
	hc := *c.HostConfig
	hc.Links = d.inspectLinks(c)
	return &hc
}

// removeLink is `docker rm --link /parent/alias`: the parent forgets the
// link (its record, and its /etc/hosts if it runs); the child is untouched.
func (d *Daemon) removeLink(ctx context.Context, ref string) error {
	ref = "/" + strings.Trim(ref, "/")
	parentName, alias := path.Split(ref)
	if parentName == "/" {
		return errMsg(errConflict, "Conflict, cannot remove the default link name of the container")
	}
	parent, err := d.ctrs.get(strings.TrimSuffix(parentName, "/"))
	if err != nil {
		return errNoSuchContainer(strings.TrimPrefix(ref, "/"))
	}
	parent.mu.Lock()
	defer parent.mu.Unlock()
	if !legacyLinks(parent.HostConfig) {
		return errNoSuchContainer(strings.TrimPrefix(ref, "/"))
	}
	var keep []string
	found := false
	for _, l := range parent.HostConfig.Links {
		if _, a, err := parseLink(l); err == nil && a == alias {
			found = true
			continue
		}
		keep = append(keep, l)
	}
	if !found {
		return errNoSuchContainer(strings.TrimPrefix(ref, "/"))
	}
	parent.HostConfig.Links = keep
	if err := d.saveRecord(parent); err != nil {
		return err
	}
	if parent.State.running() {
		d.refreshEtcHosts(ctx, parent)
	}
	return nil
}

// refreshLinkParents rewrites /etc/hosts of the running containers that
// link to child, after child got (possibly new) addresses, as docker's
// OptionParentUpdate does. child.mu is held; a parent is only tried
// (lock order child → parent, and a start must not wait for a stop).
func (d *Daemon) refreshLinkParents(ctx context.Context, child *Container) {
	for _, p := range d.ctrs.list() {
		if p.ID == child.ID {
			continue
		}
		// A parent busy starting writes its own file; one busy stopping
		// does not need it.
		if !p.mu.TryLock() {
			continue
		}
		for _, l := range d.linkChildren(p) {
			if l.child.ID == child.ID {
				if p.State.running() {
					d.refreshEtcHosts(ctx, p)
				}
				break
			}
		}
		p.mu.Unlock()
	}
}

// addLinkNames gives each listed container the names its legacy links
// give it, as dockerd's list does: a child linked as "db" into "app" is
// also "/app/db". Names come sorted, as dockerd's name index yields them
// (the CLI's truncated NAMES column shows only the name without a slash).
// Locks each container in turn; none may be held by the caller.
func (d *Daemon) addLinkNames(list []container.Summary) {
	if len(list) == 0 {
		return
	}
	var byChild map[string][]string
	for _, p := range d.ctrs.list() {
		p.mu.Lock()
		if p.HostConfig != nil && len(p.HostConfig.Links) > 0 {
			for _, l := range d.linkChildren(p) {
				if byChild == nil {
					byChild = map[string][]string{}
				}
				byChild[l.child.ID] = append(byChild[l.child.ID], p.Name+"/"+l.alias)
			}
		}
		p.mu.Unlock()
	}
	for i := range list {
		if extra := byChild[list[i].ID]; len(extra) > 0 {
			list[i].Names = append(list[i].Names, extra...)
			sort.Strings(list[i].Names)
		}
	}
}
