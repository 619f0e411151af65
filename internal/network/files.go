package network

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/containerd/errdefs"
)

// DNSConfig is a container's --dns, --dns-search and --dns-option.
type DNSConfig struct {
	Servers, Search, Options []string
}

// hostResolv is the part of the host's resolv.conf berth uses.
type hostResolv struct {
	nameservers []netip.Addr
	search      []string
	options     []string
}

func parseResolvConf(b []byte) hostResolv {
	var r hostResolv
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(f[1]); err == nil {
				r.nameservers = append(r.nameservers, a.WithZone(""))
			}
		case "search", "domain":
			r.search = f[1:]
		case "options":
			r.options = append(r.options, f[1:]...)
		}
	}
	return r
}

// hostUpstreams are the embedded DNS server's default upstreams: every host
// nameserver, loopback ones included (the daemon dials them from the host
// namespace, where they work).
func hostUpstreams(path string) []netip.AddrPort {
	b, _ := os.ReadFile(path)
	var out []netip.AddrPort
	for _, a := range parseResolvConf(b).nameservers {
		out = append(out, netip.AddrPortFrom(a, 53))
	}
	return out
}

// BuildResolvConf derives a container's /etc/resolv.conf from the host's as
// docker does. embedded: the container is on a user network, so it gets
// 127.0.0.11 (its --dns servers become the embedded server's upstreams) and
// ndots:0 unless given. Otherwise its --dns servers, or the host's minus
// loopback ones (unreachable from the container), or Google's as a last
// resort. --dns-search and --dns-option replace the host's.
func BuildResolvConf(host []byte, embedded, ipv6 bool, c DNSConfig) []byte {
	h := parseResolvConf(host)
	var ns []string
	search, options := h.search, h.options
	if len(c.Search) > 0 {
		search = c.Search
		if len(search) == 1 && search[0] == "." {
			search = nil
		}
	}
	if len(c.Options) > 0 {
		options = c.Options
	}
	switch {
	case embedded:
		ns = []string{"127.0.0.11"}
		hasNdots := false
		for _, o := range options {
			hasNdots = hasNdots || strings.HasPrefix(o, "ndots:")
		}
		if !hasNdots {
			options = append(append([]string(nil), options...), "ndots:0")
		}
	case len(c.Servers) > 0:
		ns = c.Servers
	default:
		for _, a := range h.nameservers {
			if a.IsLoopback() || (a.Is6() && !ipv6) {
				continue
			}
			ns = append(ns, a.String())
		}
		if len(ns) == 0 {
			ns = []string{"8.8.8.8", "8.8.4.4"}
			if ipv6 {
				ns = append(ns, "2001:4860:4860::8888", "2001:4860:4860::8844")
			}
		}
	}
	var b bytes.Buffer
	for _, s := range ns {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes()
}

// ResolvConf returns a container's /etc/resolv.conf for its current
// endpoints (call after Connect). Its --dns servers are recorded on the
// endpoints by Connect (Endpoint.DNS) for the embedded server.
func (m *Manager) ResolvConf(_ context.Context, containerID string, c DNSConfig) ([]byte, error) {
	for _, s := range c.Servers {
		if _, err := netip.ParseAddr(s); err != nil {
			return nil, fmt.Errorf("%s is not an ip address: %w", s, errdefs.ErrInvalidArgument)
		}
	}
	host, err := os.ReadFile(m.cfg.ResolvConf)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	m.mu.Lock()
	embedded, ipv6 := false, false
	for _, n := range m.nets {
		if _, ok := n.eps[containerID]; ok {
			embedded = embedded || !n.cfg.Default
			ipv6 = ipv6 || n.cfg.EnableIPv6
		}
	}
	m.mu.Unlock()
	return BuildResolvConf(host, embedded, ipv6, c), nil
}

// HostsConfig is a container's --hostname, --domainname, --add-host and
// legacy --link targets.
type HostsConfig struct {
	Hostname, Domainname string
	ExtraHosts           []string // "name:ip"; ip may be "host-gateway"
	// Links are the container's legacy links (default bridge), Name being
	// the target's current name: each becomes "<ip> alias <hostname> <name>"
	// when the target is on the default bridge, as docker writes it.
	Links []Link
}

// HostEntry is one /etc/hosts line.
type HostEntry struct {
	IP    netip.Addr
	Names []string
}

// BuildHosts renders /etc/hosts in docker's layout: the localhost block,
// --add-host entries, --link entries, then the container's own addresses.
func BuildHosts(hostname, domainname string, own []netip.Addr, extra, links []HostEntry) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	for _, e := range append(append([]HostEntry(nil), extra...), links...) {
		fmt.Fprintf(&b, "%s\t%s\n", e.IP, strings.Join(e.Names, " "))
	}
	names := hostname
	if domainname != "" && hostname != "" {
		names = hostname + "." + domainname + " " + hostname
	}
	if names != "" {
		for _, a := range own {
			fmt.Fprintf(&b, "%s\t%s\n", a, names)
		}
	}
	return b.Bytes()
}

// ParseExtraHosts parses --add-host values; host-gateway becomes gw.
func ParseExtraHosts(hosts []string, gw netip.Addr) ([]HostEntry, error) {
	var out []HostEntry
	for _, h := range hosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok || name == "" {
			// docker 25+ also accepts name=ip
			if name, ip, ok = strings.Cut(h, "="); !ok || name == "" {
				return nil, fmt.Errorf("bad format for add-host: %q: %w", h, errdefs.ErrInvalidArgument)
			}
		}
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		var a netip.Addr
		if ip == "host-gateway" {
			if !gw.IsValid() {
				return nil, fmt.Errorf("unable to derive the IP value for host-gateway: %w", errdefs.ErrInvalidArgument)
			}
			a = gw
		} else {
			var err error
			if a, err = netip.ParseAddr(ip); err != nil {
				return nil, fmt.Errorf("invalid IP address in add-host: %q: %w", ip, errdefs.ErrInvalidArgument)
			}
		}
		out = append(out, HostEntry{IP: a, Names: []string{name}})
	}
	return out, nil
}

// Hosts returns a container's /etc/hosts for its current endpoints: its own
// addresses (first network first) and, when it is on the default bridge,
// its legacy links (user networks resolve links through the embedded DNS).
func (m *Manager) Hosts(_ context.Context, containerID string, c HostsConfig) ([]byte, error) {
	extra, err := ParseExtraHosts(c.ExtraHosts, m.HostGateway())
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	eps := m.containerEndpointsLocked(containerID)
	var own []netip.Addr
	var links []HostEntry
	for i, ep := range eps {
		// docker writes the first network's addresses only
		if i == 0 && ep.IPv4.IsValid() {
			own = append(own, ep.IPv4.Addr())
		}
		if i == 0 && ep.IPv6.IsValid() {
			own = append(own, ep.IPv6.Addr())
		}
		if n := m.nets[ep.NetworkID]; n != nil && n.cfg.Default {
			links = linkEntries(n, c.Links)
		}
	}
	m.mu.Unlock()
	return BuildHosts(c.Hostname, c.Domainname, own, extra, links), nil
}

// linkEntries are the /etc/hosts lines of legacy links to containers on the
// default network n: "alias hostname name" (name only when it differs from
// the alias), as docker's buildSandboxOptions. Caller holds m.mu.
func linkEntries(n *netState, links []Link) []HostEntry {
	var out []HostEntry
	for _, l := range links {
		for _, t := range n.eps {
			if t.Name != l.Name || !t.IPv4.IsValid() {
				continue
			}
			names := []string{l.Alias}
			if t.Hostname != "" {
				names = append(names, t.Hostname)
			}
			if l.Alias != l.Name {
				names = append(names, l.Name)
			}
			out = append(out, HostEntry{IP: t.IPv4.Addr(), Names: names})
		}
	}
	return out
}
