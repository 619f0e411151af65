package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/network"
)

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf into its data directory, as docker does; spec generation
// bind-mounts them. On bridge networks they come from the network manager
// (own addresses, links, the embedded DNS server on user networks); with
// --network host they are the host's plus --add-host. Call after the
// container's networks are connected.
func (d *Daemon) writeEtcFiles(c *Container) (hostname, hosts, resolv string, err error) {
	ctx := context.Background()
	// In the exec root (a tmpfs): they are written anew at every start, so
	// they need not outlive a reboot, and three fewer files on disk per
	// container start and removal.
	dir := d.stateDir(c.ID)
	// --network container:<x> shares x's network, so its files, as docker does.
	if mode := c.networkMode(); strings.HasPrefix(mode, "container:") {
		if other, gerr := d.ctrs.get(strings.TrimPrefix(mode, "container:")); gerr == nil && other.ID != c.ID {
			odir := d.stateDir(other.ID)
			hostname, hosts, resolv = filepath.Join(odir, "hostname"), filepath.Join(odir, "hosts"), filepath.Join(odir, "resolv.conf")
			if _, serr := os.Stat(hosts); serr == nil {
				return hostname, hosts, resolv, nil
			}
		}
	}
	hostMode := c.networkMode() == "host"
	name := c.hostname()
	if hostMode && c.Config.Hostname == "" {
		name, _ = os.Hostname()
	}
	hostname = filepath.Join(dir, "hostname")
	if err = os.WriteFile(hostname, []byte(name+"\n"), 0o644); err != nil {
		return
	}
	hosts = filepath.Join(dir, "hosts")
	var hb []byte
	if hostMode {
		hb, _ = os.ReadFile("/etc/hosts")
		var gw netip.Addr
		if d.net != nil {
			gw = d.net.HostGateway()
		}
		extra, perr := network.ParseExtraHosts(c.HostConfig.ExtraHosts, gw)
		if perr != nil {
			return "", "", "", netErr(perr)
		}
		for _, e := range extra {
			hb = fmt.Appendf(hb, "%s\t%s\n", e.IP, strings.Join(e.Names, " "))
		}
	} else if hb, err = d.net.Hosts(ctx, c.ID, network.HostsConfig{Hostname: name, Domainname: c.Config.Domainname, ExtraHosts: c.HostConfig.ExtraHosts, Links: d.hostLinks(c)}); err != nil {
		return "", "", "", netErr(err)
	}
	if err = os.WriteFile(hosts, hb, 0o644); err != nil {
		return
	}
	resolv = filepath.Join(dir, "resolv.conf")
	var rb []byte
	if hostMode {
		rb, _ = os.ReadFile("/etc/resolv.conf")
	} else {
		dc := network.DNSConfig{Servers: d.dnsServers(c), Search: c.HostConfig.DNSSearch, Options: c.HostConfig.DNSOptions}
		if rb, err = d.net.ResolvConf(ctx, c.ID, dc); err != nil {
			return "", "", "", netErr(err)
		}
	}
	err = os.WriteFile(resolv, rb, 0o644)
	return
}

// refreshEtcHosts rewrites a running container's /etc/hosts in place after
// `network connect|disconnect` (the file is bind-mounted, so the same inode
// must be written). c.mu is held.
func (d *Daemon) refreshEtcHosts(ctx context.Context, c *Container) {
	b, err := d.net.Hosts(ctx, c.ID, network.HostsConfig{Hostname: c.hostname(), Domainname: c.Config.Domainname, ExtraHosts: c.HostConfig.ExtraHosts, Links: d.hostLinks(c)})
	if err != nil {
		return
	}
	_ = os.WriteFile(filepath.Join(d.stateDir(c.ID), "hosts"), b, 0o644)
}

// etcPaths are inspect's HostnamePath, HostsPath and ResolvConfPath: the
// files of the container's last start, empty before its first start since
// the exec root was mounted (they are written at every start).
func (d *Daemon) etcPaths(c *Container) (hostname, hosts, resolv string) {
	dir := d.stateDir(c.ID)
	if _, err := os.Stat(filepath.Join(dir, "hosts")); err != nil {
		return "", "", ""
	}
	return filepath.Join(dir, "hostname"), filepath.Join(dir, "hosts"), filepath.Join(dir, "resolv.conf")
}
