package network

import (
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

type portKey struct {
	proto string
	ip    netip.Addr // zero: every address
	port  uint16
}

func (p PortBinding) key() portKey {
	ip := p.HostIP
	if ip.IsValid() && ip.IsUnspecified() {
		ip = netip.Addr{}
	}
	proto := p.Proto
	if proto == "" {
		proto = "tcp"
	}
	return portKey{proto, ip, p.HostPort}
}

func (k portKey) String() string {
	ip := "0.0.0.0"
	if k.ip.IsValid() {
		ip = k.ip.String()
	}
	return fmt.Sprintf("%s:%d", ip, k.port)
}

// ParsePortSpec parses one docker -p value: [ip:][hostPort[-end]:]containerPort[-end][/proto].
// A container port range maps onto an equal host range (or, with one host
// port or none, every container port gets its own free host port).
func ParsePortSpec(spec string) ([]PortBinding, error) {
	bad := func() ([]PortBinding, error) {
		return nil, fmt.Errorf("invalid port specification: %q: %w", spec, errdefs.ErrInvalidArgument)
	}
	proto := "tcp"
	rest := spec
	if i := strings.LastIndex(spec, "/"); i >= 0 {
		proto, rest = strings.ToLower(spec[i+1:]), spec[:i]
		if proto != "tcp" && proto != "udp" {
			return nil, fmt.Errorf("invalid proto: %s: %w", proto, errdefs.ErrInvalidArgument)
		}
	}
	var ipStr, hostStr, ctrStr string
	if strings.HasPrefix(rest, "[") { // [v6]:host:ctr
		end := strings.Index(rest, "]")
		if end < 0 {
			return bad()
		}
		ipStr, rest = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
		parts := strings.Split(rest, ":")
		if len(parts) != 2 {
			return bad()
		}
		hostStr, ctrStr = parts[0], parts[1]
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			ctrStr = parts[0]
		case 2:
			hostStr, ctrStr = parts[0], parts[1]
		case 3:
			ipStr, hostStr, ctrStr = parts[0], parts[1], parts[2]
		default:
			return bad()
		}
	}
	var ip netip.Addr
	if ipStr != "" {
		var err error
		if ip, err = netip.ParseAddr(ipStr); err != nil {
			return nil, fmt.Errorf("invalid IP address: %s: %w", ipStr, errdefs.ErrInvalidArgument)
		}
	}
	c0, c1, err := parseRange(ctrStr, false)
	if err != nil {
		return bad()
	}
	h0, h1, err := parseRange(hostStr, true)
	if err != nil {
		return bad()
	}
	n := int(c1 - c0)
	var out []PortBinding
	switch {
	case h0 == 0: // random host port for each
		for i := 0; i <= n; i++ {
			out = append(out, PortBinding{Proto: proto, ContainerPort: c0 + uint16(i), HostIP: ip})
		}
	case n == 0: // one container port, host port or host range to pick from
		out = append(out, PortBinding{Proto: proto, ContainerPort: c0, HostIP: ip, HostPort: h0, HostPortEnd: endOrZero(h0, h1)})
	case int(h1-h0) == n:
		for i := 0; i <= n; i++ {
			out = append(out, PortBinding{Proto: proto, ContainerPort: c0 + uint16(i), HostIP: ip, HostPort: h0 + uint16(i)})
		}
	default:
		return nil, fmt.Errorf("invalid ranges specified for container and host Ports: %q: %w", spec, errdefs.ErrInvalidArgument)
	}
	return out, nil
}

func endOrZero(a, b uint16) uint16 {
	if a == b {
		return 0
	}
	return b
}

func parseRange(s string, allowEmpty bool) (uint16, uint16, error) {
	if s == "" {
		if allowEmpty {
			return 0, 0, nil
		}
		return 0, 0, fmt.Errorf("empty port")
	}
	a, b, isRange := strings.Cut(s, "-")
	lo, err := strconv.ParseUint(a, 10, 16)
	if err != nil || lo == 0 {
		return 0, 0, fmt.Errorf("bad port %q", s)
	}
	hi := lo
	if isRange {
		if hi, err = strconv.ParseUint(b, 10, 16); err != nil || hi < lo {
			return 0, 0, fmt.Errorf("bad port range %q", s)
		}
	}
	return uint16(lo), uint16(hi), nil
}

// ephemeralRange is the host's ip_local_port_range (docker picks random
// host ports from it), read in the host namespace.
func (m *Manager) ephemeralRange() (int, int) {
	lo, hi := 49153, 60999
	_ = m.inHost(func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
		if err != nil {
			return err
		}
		f := strings.Fields(string(b))
		if len(f) == 2 {
			a, e1 := strconv.Atoi(f[0])
			z, e2 := strconv.Atoi(f[1])
			if e1 == nil && e2 == nil && a > 0 && z >= a {
				lo, hi = a, z
			}
		}
		return nil
	})
	return lo, hi
}

// reservePort resolves a binding's host port (fixed, from a range, or
// ephemeral) and reserves it. Caller holds m.mu.
func (m *Manager) reservePort(p PortBinding) (PortBinding, error) {
	if p.Proto == "" {
		p.Proto = "tcp"
	}
	if p.Proto != "tcp" && p.Proto != "udp" {
		return p, fmt.Errorf("invalid proto: %s: %w", p.Proto, errdefs.ErrInvalidArgument)
	}
	if p.ContainerPort == 0 {
		return p, fmt.Errorf("invalid container port 0: %w", errdefs.ErrInvalidArgument)
	}
	if p.HostPort != 0 && p.HostPortEnd == 0 {
		return p, m.reserve(p)
	}
	lo, hi := int(p.HostPort), int(p.HostPortEnd)
	if lo == 0 {
		lo, hi = m.ephemeralRange()
	}
	// Start after the last port handed out so a freed port is not reused at
	// once (a client may still talk to the old container).
	start := lo
	if m.nextPort > lo && m.nextPort <= hi {
		start = m.nextPort
	}
	var last error
	for i := 0; i <= hi-lo; i++ {
		port := start + i
		if port > hi {
			port -= hi - lo + 1
		}
		q := p
		q.HostPort, q.HostPortEnd = uint16(port), 0
		if last = m.reserve(q); last == nil {
			m.nextPort = port + 1
			return q, nil
		}
	}
	return p, fmt.Errorf("no free host port in %d-%d for %s/%d: %w (last: %v)", lo, hi, p.Proto, p.ContainerPort, errdefs.ErrUnavailable, last)
}

// reserve holds p's host port with a bound, non-listening socket in the host
// namespace: binding is the only check that sees every owner (berth's other
// containers, docker-proxy, any process), and keeping the socket makes
// later binders fail instead of silently losing their traffic to the DNAT.
func (m *Manager) reserve(p PortBinding) error {
	k := p.key()
	for o := range m.ports {
		if o.proto == k.proto && o.port == k.port && (o.ip == k.ip || !o.ip.IsValid() || !k.ip.IsValid()) {
			//lint:ignore ST1005 docker's message, matched by clients
			return fmt.Errorf("Bind for %s failed: port is already allocated: %w", k, errdefs.ErrConflict)
		}
	}
	var fd int
	err := m.inHost(func() error {
		var err error
		fd, err = bindPort(k)
		return err
	})
	if err != nil {
		return fmt.Errorf("driver failed programming external connectivity: listen %s%s %s: bind: %v: %w", k.proto, map[bool]string{true: "6", false: "4"}[k.ip.Is6()], k, err, errdefs.ErrConflict)
	}
	m.ports[k] = fd
	return nil
}

func bindPort(k portKey) (int, error) {
	typ := unix.SOCK_STREAM
	if k.proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	fam := unix.AF_INET
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(k.port)}
	if k.ip.Is6() {
		fam = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(k.port), Addr: k.ip.As16()}
	} else if k.ip.IsValid() {
		sa = &unix.SockaddrInet4{Port: int(k.port), Addr: k.ip.As4()}
	}
	fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		if err == unix.EADDRINUSE {
			return -1, fmt.Errorf("address already in use")
		}
		return -1, err
	}
	return fd, nil
}

func (m *Manager) unreserve(p PortBinding) {
	k := p.key()
	if fd, ok := m.ports[k]; ok {
		unix.Close(fd)
		delete(m.ports, k)
	}
}

// HostBinding is one value of the Engine API's HostConfig.PortBindings
// ("80/tcp": [{HostIp, HostPort}]); HostPort may be "", "8080" or "8000-8010".
type HostBinding struct {
	HostIP, HostPort string
}

// BindingsFromAPI turns the Engine API's port bindings into PortBindings.
// publishAll (-P) adds a random host port for every exposed port ("80/tcp")
// that has no binding yet.
func BindingsFromAPI(bindings map[string][]HostBinding, publishAll bool, exposed []string) ([]PortBinding, error) {
	var out []PortBinding
	seen := map[string]bool{}
	keys := make([]string, 0, len(bindings))
	for k := range bindings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		proto, port, err := splitPortKey(k)
		if err != nil {
			return nil, err
		}
		seen[proto+"/"+strconv.Itoa(int(port))] = true
		hbs := bindings[k]
		if len(hbs) == 0 {
			hbs = []HostBinding{{}}
		}
		for _, hb := range hbs {
			p := PortBinding{Proto: proto, ContainerPort: port}
			if hb.HostIP != "" {
				if p.HostIP, err = netip.ParseAddr(strings.Trim(hb.HostIP, "[]")); err != nil {
					return nil, fmt.Errorf("invalid IP address: %s: %w", hb.HostIP, errdefs.ErrInvalidArgument)
				}
			}
			if hb.HostPort != "" {
				lo, hi, err := parseRange(hb.HostPort, true)
				if err != nil {
					return nil, fmt.Errorf("invalid hostPort: %s: %w", hb.HostPort, errdefs.ErrInvalidArgument)
				}
				p.HostPort, p.HostPortEnd = lo, endOrZero(lo, hi)
			}
			out = append(out, p)
		}
	}
	if publishAll {
		ex := append([]string(nil), exposed...)
		sort.Strings(ex)
		for _, k := range ex {
			proto, port, err := splitPortKey(k)
			if err != nil {
				return nil, err
			}
			if !seen[proto+"/"+strconv.Itoa(int(port))] {
				out = append(out, PortBinding{Proto: proto, ContainerPort: port})
			}
		}
	}
	return out, nil
}

func splitPortKey(k string) (string, uint16, error) {
	port, proto, _ := strings.Cut(k, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || (proto != "tcp" && proto != "udp") {
		return "", 0, fmt.Errorf("invalid port specification: %q: %w", k, errdefs.ErrInvalidArgument)
	}
	return proto, uint16(n), nil
}

// PortMap renders endpoints' published ports as the Engine API's
// NetworkSettings.Ports ("80/tcp": [{HostIp: "0.0.0.0", HostPort: "8080"}]),
// for inspect, ps and the port command; exposed ports without a binding
// map to nil, as docker shows them.
func PortMap(eps []EndpointInfo, exposed []string) map[string][]HostBinding {
	out := map[string][]HostBinding{}
	for _, k := range exposed {
		if proto, port, err := splitPortKey(k); err == nil {
			out[strconv.Itoa(int(port))+"/"+proto] = nil
		}
	}
	for _, ep := range eps {
		for _, p := range ep.Ports {
			k := strconv.Itoa(int(p.ContainerPort)) + "/" + p.Proto
			ip := "0.0.0.0"
			if p.HostIP.IsValid() {
				ip = p.HostIP.String()
			}
			out[k] = append(out[k], HostBinding{HostIP: ip, HostPort: strconv.Itoa(int(p.HostPort))})
		}
	}
	return out
}
