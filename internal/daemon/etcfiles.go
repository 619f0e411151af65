package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf into its data directory, as docker does; spec generation
// bind-mounts them. Bridge networks (issue 5) will add addresses, aliases
// and the embedded DNS server.
func (d *Daemon) writeEtcFiles(c *Container) (hostname, hosts, resolv string, err error) {
	dir := d.containerDir(c.ID)
	name := c.Config.Hostname
	if name == "" {
		name = c.ID[:12]
	}
	if string(c.HostConfig.NetworkMode) == "host" && c.Config.Hostname == "" {
		name, _ = os.Hostname()
	}
	hostname = filepath.Join(dir, "hostname")
	if err = os.WriteFile(hostname, []byte(name+"\n"), 0o644); err != nil {
		return
	}
	hosts = filepath.Join(dir, "hosts")
	var b strings.Builder
	if string(c.HostConfig.NetworkMode) == "host" {
		if h, err := os.ReadFile("/etc/hosts"); err == nil {
			b.Write(h)
		}
	} else {
		b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", name)
	}
	for _, h := range c.HostConfig.ExtraHosts {
		host, ip, ok := strings.Cut(h, ":")
		if !ok {
			return "", "", "", errMsg(errInvalid, "invalid extra host %q: want host:ip", h)
		}
		if ip == "host-gateway" {
			return "", "", "", errMsg(errInvalid, "--add-host host-gateway needs a bridge network, not supported by berth yet")
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, host)
	}
	if err = os.WriteFile(hosts, []byte(b.String()), 0o644); err != nil {
		return
	}
	resolv = filepath.Join(dir, "resolv.conf")
	err = os.WriteFile(resolv, []byte(resolvConf(c)), 0o644)
	return
}

// resolvConf is the host's resolv.conf with docker's overrides. Loopback
// resolvers (127.0.0.x, ::1) cannot be reached from a container's own
// network namespace, so they are dropped, falling back to Google's public
// resolvers when nothing is left, as docker does.
func resolvConf(c *Container) string {
	host, _ := os.ReadFile("/etc/resolv.conf")
	if string(c.HostConfig.NetworkMode) == "host" {
		return string(host)
	}
	var ns, search, opts []string
	for _, l := range strings.Split(string(host), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if !strings.HasPrefix(f[1], "127.") && f[1] != "::1" {
				ns = append(ns, f[1])
			}
		case "search":
			search = f[1:]
		case "options":
			opts = append(opts, f[1:]...)
		}
	}
	if len(ns) == 0 {
		ns = []string{"8.8.8.8", "8.8.4.4"}
	}
	if len(c.HostConfig.DNS) > 0 {
		ns = nil
		for _, a := range c.HostConfig.DNS {
			ns = append(ns, a.String())
		}
	}
	if len(c.HostConfig.DNSSearch) > 0 {
		search = c.HostConfig.DNSSearch
	}
	if len(c.HostConfig.DNSOptions) > 0 {
		opts = c.HostConfig.DNSOptions
	}
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, "nameserver %s\n", n)
	}
	if len(search) > 0 && !(len(search) == 1 && search[0] == ".") {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(opts) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	}
	return b.String()
}
