package network

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"
)

// Config configures the daemon's network manager.
type Config struct {
	DB       *bolt.DB
	ExecRoot string
	// DefaultBridge names the bridge of the default "bridge" network:
	// "" → "berth0"; "none" → no default network (dockerd --bridge=none).
	DefaultBridge string
	// BIP is the default bridge's address and prefix ("172.17.0.1/16");
	// "" → the first default pool that collides with no host route.
	BIP string
	MTU int // 0 → 1500
	Log *slog.Logger
	// HostNetns, when set, is the path of a network namespace that plays the
	// host: bridges, firewall, sysctls and port reservations go there. Tests
	// use it to stay off the real host; the daemon leaves it empty.
	HostNetns string
	// ResolvConf is the host's resolver file; "" → /etc/resolv.conf.
	ResolvConf string
	// Table names berth's nftables tables; "" → "berth" (tests on the real
	// host use another name so they never clobber a running daemon's).
	Table string
}

// Manager owns berth's bridge networks: one per daemon. Its methods are safe
// for concurrent use. Lifecycle: New (restores and reconciles the kernel
// with the store), then any calls, then Close (stops the DNS servers and
// releases port reservations; bridges, veths and rules stay so that running
// containers keep their network across a daemon restart).
type Manager struct {
	cfg    Config
	log    *slog.Logger
	host   *netlink.Handle
	hostNS *os.File // cfg.HostNetns
	nftc   *nftables.Conn

	mu       sync.Mutex
	nets     map[string]*netState
	ports    map[portKey]int // host port reservations: bound, non-listening sockets
	nextPort int
	dns      map[string]*dnsServer // by container id
	w        *writer               // ordered store updates (store.go)
	v6Table  bool                  // berth's ip6 table exists
	v6Synced bool
	closed   bool
	upstream []netip.AddrPort // host resolvers for the embedded DNS
	warnings []string
}

type netState struct {
	cfg  Network
	eps  map[string]*EndpointInfo
	pool *pool
}

func (n *netState) masquerade() bool {
	return n.cfg.Options["com.docker.network.bridge.enable_ip_masquerade"] != "false"
}

func (n *netState) sortedEndpoints() []*EndpointInfo {
	out := make([]*EndpointInfo, 0, len(n.eps))
	for _, ep := range n.eps {
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerID < out[j].ContainerID })
	return out
}

func (n *netState) subnet(v6 bool) (Subnet, bool) {
	for _, s := range n.cfg.Subnets {
		if s.Subnet.Addr().Is6() == v6 {
			return s, true
		}
	}
	return Subnet{}, false
}

// New restores the networks stored in cfg.DB, creates the default "bridge"
// network on first use, enables IPv4 forwarding, recreates missing bridges,
// drops endpoints whose namespace is gone and veths nobody owns, rebuilds
// berth's nftables tables, re-reserves published ports and restarts the
// embedded DNS servers.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.DB == nil {
		return nil, fmt.Errorf("network: no database: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.DefaultBridge == "" {
		cfg.DefaultBridge = "berth0"
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.Table == "" {
		cfg.Table = "berth"
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, log: cfg.Log, ports: map[portKey]int{}, dns: map[string]*dnsServer{}}
	var err error
	if cfg.HostNetns != "" {
		ns, err := netns.GetFromPath(cfg.HostNetns)
		if err != nil {
			return nil, fmt.Errorf("host netns: %w", err)
		}
		m.host, err = netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			return nil, err
		}
		if m.hostNS, err = os.Open(cfg.HostNetns); err != nil {
			m.host.Close()
			return nil, err
		}
	} else if m.host, err = netlink.NewHandle(); err != nil {
		return nil, err
	}
	m.w = newWriter(cfg.DB, m.log)
	if err := m.restore(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Manager) restore(ctx context.Context) error {
	if err := m.inHost(func() error { return enableForwarding(m.log, false) }); err != nil {
		return err
	}
	m.upstream = hostUpstreams(m.cfg.ResolvConf)
	nets, err := loadAll(m.cfg.DB)
	if err != nil {
		return fmt.Errorf("network: load: %w", err)
	}
	m.nets = nets
	if m.cfg.DefaultBridge != "none" && m.defaultNet() == nil {
		if _, err := m.createDefault(ctx); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.nets {
		if err := m.ensureBridge(n); err != nil {
			return err
		}
		if n.cfg.EnableIPv6 {
			if err := m.inHost(func() error { return enableForwarding(m.log, true) }); err != nil {
				return err
			}
		}
		for cid, ep := range n.eps {
			if _, err := os.Stat(ep.NetnsPath); err != nil {
				m.log.Info("network: dropping endpoint whose namespace is gone", "network", n.cfg.Name, "container", cid)
				if err := m.dropEndpoint(n, ep); err != nil {
					return err
				}
				continue
			}
			for i := range ep.Ports {
				if err := m.reserve(ep.Ports[i]); err != nil {
					m.log.Warn("network: cannot re-reserve published port", "container", cid, "port", ep.Ports[i], "err", err)
				}
			}
		}
	}
	m.removeStaleVeths()
	if err := m.applyLocked(); err != nil {
		return err
	}
	for cid := range m.containersWithDNS() {
		if err := m.ensureDNS(cid); err != nil {
			m.log.Warn("network: embedded DNS not restored", "container", cid, "err", err)
		}
	}
	if c, err := m.nft(); err == nil {
		if drops, err := ForeignForwardDrop(c, m.cfg.Table); err == nil && len(drops) > 0 {
			w := fmt.Sprintf("%s has policy drop: it drops forwarded IPv4 traffic of berth's networks (egress, published ports from other hosts, and traffic between containers while bridge-nf-call-iptables=%v) whatever berth's own table accepts, since an accept ends only its own chain; berth edits no other table: allow berth's bridges there (e.g. iptables -I DOCKER-USER -i berth0 -j ACCEPT; iptables -I DOCKER-USER -o berth0 -j ACCEPT; likewise br-+ for user networks) or start dockerd with --ip-forward-no-drop / with ip_forward already enabled; see docs/networking.md", strings.Join(drops, ", "), brNetfilterCallsIptables())
			m.warnings = append(m.warnings, w)
			m.log.Warn("network: " + w)
		}
	}
	return nil
}

// Warnings are conditions for `docker info`'s warnings (e.g. another
// table's forward policy drop).
func (m *Manager) Warnings() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.warnings...)
}

// Close stops the embedded DNS servers and releases port reservations;
// kernel state stays for the next daemon (see Manager).
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	m.w.close()
	for id, s := range m.dns {
		s.close()
		delete(m.dns, id)
	}
	for k, fd := range m.ports {
		unix.Close(fd)
		delete(m.ports, k)
	}
	if m.host != nil {
		m.host.Close()
		m.host = nil
	}
	if m.nftc != nil {
		_ = m.nftc.CloseLasting()
		m.nftc = nil
	}
	if m.hostNS != nil {
		m.hostNS.Close()
		m.hostNS = nil
	}
}

func (m *Manager) inHost(fn func() error) error {
	if m.cfg.HostNetns == "" {
		return fn()
	}
	return InNamespace(m.cfg.HostNetns, fn)
}

// nft returns a connection to the host namespace's nftables.
// The connection is kept open (AsLasting): dialling a netlink socket per
// change, worse from another namespace, costs more than the change.
// Callers hold m.mu, which also serializes its use.
func (m *Manager) nft() (*nftables.Conn, error) {
	if m.nftc != nil {
		return m.nftc, nil
	}
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if m.cfg.HostNetns != "" {
		opts = append(opts, nftables.WithNetNSFd(int(m.hostNS.Fd())))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, err
	}
	m.nftc = c
	return c, nil
}

func (m *Manager) applyLocked() error {
	c, err := m.nft()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	nets := m.sortedNets()
	queueRules(c, m.cfg.Table, false, nets)
	// The ip6 table is rewritten only while some network has IPv6 (and
	// once at start, to remove a stale one): one family, one less kernel
	// transaction per published port change.
	want6 := false
	for _, n := range nets {
		_, has := n.subnet(true)
		want6 = want6 || (has && n.cfg.EnableIPv6)
	}
	if want6 || m.v6Table || !m.v6Synced {
		queueRules(c, m.cfg.Table, true, nets)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: update tables %s: %w", m.cfg.Table, err)
	}
	m.v6Table, m.v6Synced = want6, true
	return nil
}

// publishLocked adds (or deletes) an endpoint's published-port rules in
// place; if that fails the tables are rebuilt from the state.
func (m *Manager) publishLocked(ep *EndpointInfo, add bool) error {
	c, err := m.nft()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	fams := []bool{false}
	if m.v6Table {
		fams = append(fams, true)
	}
	if add {
		queuePublish(c, m.cfg.Table, fams, ep)
	} else if err := queueUnpublish(c, m.cfg.Table, fams, ep); err != nil {
		m.log.Warn("network: rebuilding nftables tables", "err", err)
		return m.applyLocked()
	}
	if err := c.Flush(); err != nil {
		m.log.Warn("network: rebuilding nftables tables", "err", err)
		return m.applyLocked()
	}
	return nil
}

func (m *Manager) sortedNets() []*netState {
	out := make([]*netState, 0, len(m.nets))
	for _, n := range m.nets {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].cfg.Created.Before(out[j].cfg.Created) || (out[i].cfg.Created.Equal(out[j].cfg.Created) && out[i].cfg.ID < out[j].cfg.ID)
	})
	return out
}

func (m *Manager) defaultNet() *netState {
	for _, n := range m.nets {
		if n.cfg.Default {
			return n
		}
	}
	return nil
}

func enableForwarding(log *slog.Logger, v6 bool) error {
	p := "/proc/sys/net/ipv4/ip_forward"
	if v6 {
		p = "/proc/sys/net/ipv6/conf/all/forwarding"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable forwarding: %w", err)
	}
	log.Info("network: enabled IP forwarding (berth leaves forward policies alone)", "sysctl", strings.TrimPrefix(p, "/proc/sys/"))
	return nil
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// hostRoutes lists the destinations routed on the host, except through
// berth's own bridges, for choosing non-colliding pools.
func (m *Manager) hostRoutes() []netip.Prefix {
	own := map[int]bool{}
	for _, n := range m.nets {
		if l, err := m.host.LinkByName(n.cfg.Bridge); err == nil {
			own[l.Attrs().Index] = true
		}
	}
	routes, err := m.host.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil || own[r.LinkIndex] {
			continue
		}
		if p, err := netip.ParsePrefix(r.Dst.String()); err == nil && p.Bits() > 0 {
			out = append(out, p)
		}
	}
	return out
}

func (m *Manager) usedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range m.nets {
		for _, s := range n.cfg.Subnets {
			out = append(out, s.Subnet)
		}
	}
	return out
}

func (m *Manager) createDefault(ctx context.Context) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s Subnet
	if m.cfg.BIP != "" {
		p, err := netip.ParsePrefix(m.cfg.BIP)
		if err != nil {
			return Network{}, fmt.Errorf("bip: invalid CIDR address: %s: %w", m.cfg.BIP, errdefs.ErrInvalidArgument)
		}
		s = Subnet{Subnet: p.Masked(), Gateway: p.Addr()}
	} else {
		p, err := pickPool(append(m.hostRoutes(), m.usedPrefixes()...))
		if err != nil {
			return Network{}, err
		}
		s = Subnet{Subnet: p, Gateway: p.Addr().Next()}
	}
	n := Network{
		ID: newID(), Name: "bridge", Driver: "bridge", Created: time.Now().UTC(), Bridge: m.cfg.DefaultBridge,
		Default: true, MTU: m.cfg.MTU, Subnets: []Subnet{s},
		Options: map[string]string{
			"com.docker.network.bridge.default_bridge": "true",
			"com.docker.network.bridge.name":           m.cfg.DefaultBridge,
			"com.docker.network.driver.mtu":            strconv.Itoa(m.cfg.MTU),
		},
	}
	m.log.Info("network: default bridge", "bridge", n.Bridge, "subnet", s.Subnet, "gateway", s.Gateway)
	return m.addNetworkLocked(ctx, n)
}

// CreateNetwork creates a user-defined bridge network (docker network create).
func (m *Manager) CreateNetwork(ctx context.Context, o CreateOptions) (Network, error) {
	if o.Name == "" {
		return Network{}, fmt.Errorf("network name is required: %w", errdefs.ErrInvalidArgument)
	}
	if o.Driver != "" && o.Driver != "bridge" {
		return Network{}, fmt.Errorf("plugin %q not found: only the bridge driver is supported: %w", o.Driver, errdefs.ErrNotImplemented)
	}
	if o.Name == "host" || o.Name == "none" || o.Name == "bridge" {
		return Network{}, fmt.Errorf("%s is a pre-defined network and cannot be created: %w", o.Name, errdefs.ErrPermissionDenied)
	}
	subnets, err := parseSubnets(o.Subnets)
	if err != nil {
		return Network{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.nets {
		if n.cfg.Name == o.Name {
			return Network{}, fmt.Errorf("network with name %s already exists: %w", o.Name, errdefs.ErrConflict)
		}
	}
	used := m.usedPrefixes()
	has4, has6 := false, false
	for _, s := range subnets {
		if overlapsAny(s.Subnet, used) {
			//lint:ignore ST1005 docker's message, matched by clients
			return Network{}, fmt.Errorf("Pool overlaps with other one on this address space: %w", errdefs.ErrConflict)
		}
		has4 = has4 || s.Subnet.Addr().Is4()
		has6 = has6 || s.Subnet.Addr().Is6()
	}
	if has6 && !o.IPv6 {
		return Network{}, fmt.Errorf("an IPv6 subnet needs --ipv6: %w", errdefs.ErrInvalidArgument)
	}
	if o.IPv6 && !has6 {
		return Network{}, fmt.Errorf("could not find an available, non-overlapping IPv6 address pool: give one with --subnet: %w", errdefs.ErrInvalidArgument)
	}
	if !has4 {
		p, err := pickPool(append(m.hostRoutes(), used...))
		if err != nil {
			return Network{}, err
		}
		subnets = append([]Subnet{{Subnet: p, Gateway: p.Addr().Next()}}, subnets...)
	}
	id := newID()
	n := Network{
		ID: id, Name: o.Name, Driver: "bridge", Created: time.Now().UTC(), Internal: o.Internal, EnableIPv6: o.IPv6,
		Subnets: subnets, Labels: o.Labels, Options: o.Options, MTU: m.cfg.MTU,
		Bridge: "br-" + id[:12],
	}
	if b := o.Options["com.docker.network.bridge.name"]; b != "" {
		if len(b) >= unix.IFNAMSIZ || strings.ContainsAny(b, "/ \t\n:") {
			return Network{}, fmt.Errorf("invalid bridge name %q: %w", b, errdefs.ErrInvalidArgument)
		}
		for _, other := range m.nets {
			if other.cfg.Bridge == b {
				return Network{}, fmt.Errorf("bridge name %s is used by network %s: %w", b, other.cfg.Name, errdefs.ErrConflict)
			}
		}
		n.Bridge = b
	}
	if v := o.Options["com.docker.network.driver.mtu"]; v != "" {
		mtu, err := strconv.Atoi(v)
		if err != nil || mtu < 68 || mtu > 65535 {
			return Network{}, fmt.Errorf("invalid MTU %q: %w", v, errdefs.ErrInvalidArgument)
		}
		n.MTU = mtu
	}
	return m.addNetworkLocked(ctx, n)
}

func (m *Manager) addNetworkLocked(_ context.Context, n Network) (Network, error) {
	if m.closed {
		return Network{}, fmt.Errorf("network manager closed: %w", errdefs.ErrUnavailable)
	}
	if err := m.w.sync(func(tx *bolt.Tx) error {
		nb, err := tx.Bucket(bucketNetworks).CreateBucket([]byte(n.ID))
		if err != nil {
			return err
		}
		return putJSON(nb, keyConfig, n)
	}); err != nil {
		return Network{}, fmt.Errorf("store network: %w", err)
	}
	st := &netState{cfg: n, eps: map[string]*EndpointInfo{}, pool: newPool()}
	m.nets[n.ID] = st
	created := false
	undo := func() {
		delete(m.nets, n.ID)
		if created {
			_ = m.deleteBridge(n.Bridge)
		}
		_ = m.w.sync(func(tx *bolt.Tx) error { return tx.Bucket(bucketNetworks).DeleteBucket([]byte(n.ID)) })
	}
	// A new network never adopts an existing device (docker0, virbr0, …):
	// berth deletes its bridges with their networks.
	if _, err := m.host.LinkByName(n.Bridge); err == nil {
		undo()
		return Network{}, fmt.Errorf("bridge name %s is already in use on the host: %w", n.Bridge, errdefs.ErrConflict)
	}
	created = true
	if err := m.ensureBridge(st); err != nil {
		undo()
		return Network{}, err
	}
	if n.EnableIPv6 {
		if err := m.inHost(func() error { return enableForwarding(m.log, true) }); err != nil {
			undo()
			return Network{}, err
		}
	}
	if err := m.applyLocked(); err != nil {
		undo()
		_ = m.applyLocked()
		return Network{}, err
	}
	return n, nil
}

// ensureBridge creates the network's bridge if missing and gives it its
// gateway addresses; route_localnet lets 127.0.0.1 reach published ports.
func (m *Manager) ensureBridge(n *netState) error {
	l, err := m.host.LinkByName(n.cfg.Bridge)
	if err != nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.cfg.Bridge, MTU: n.cfg.MTU, HardwareAddr: randomMAC()}}
		if err := m.host.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", n.cfg.Bridge, err)
		}
		if l, err = m.host.LinkByName(n.cfg.Bridge); err != nil {
			return err
		}
	} else if l.Type() != "bridge" {
		return fmt.Errorf("%s exists and is not a bridge: %w", n.cfg.Bridge, errdefs.ErrConflict)
	}
	have, _ := m.host.AddrList(l, netlink.FAMILY_ALL)
	for _, s := range n.cfg.Subnets {
		if s.Subnet.Addr().Is6() && !n.cfg.EnableIPv6 {
			continue
		}
		want := netip.PrefixFrom(s.Gateway, s.Subnet.Bits())
		found := false
		for _, a := range have {
			if a.IPNet != nil && a.IPNet.String() == want.String() {
				found = true
			}
		}
		if found {
			continue
		}
		addr := &netlink.Addr{IPNet: prefixToIPNet(want)}
		if s.Subnet.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := m.host.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("bridge %s address %s: %w", n.cfg.Bridge, want, err)
		}
	}
	if err := m.host.LinkSetUp(l); err != nil {
		return fmt.Errorf("bridge %s up: %w", n.cfg.Bridge, err)
	}
	return m.inHost(func() error {
		return os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", n.cfg.Bridge, "route_localnet"), []byte("1"), 0o644)
	})
}

func (m *Manager) deleteBridge(name string) error {
	l, err := m.host.LinkByName(name)
	if err != nil {
		return nil
	}
	return m.host.LinkDel(l)
}

// removeStaleVeths deletes veths enslaved to berth's bridges that no
// stored endpoint owns (left by a crash between two steps).
func (m *Manager) removeStaleVeths() {
	bridges := map[int]bool{}
	owned := map[string]bool{}
	for _, n := range m.nets {
		if l, err := m.host.LinkByName(n.cfg.Bridge); err == nil {
			bridges[l.Attrs().Index] = true
		}
		for _, ep := range n.eps {
			owned[ep.HostVeth] = true
		}
	}
	links, err := m.host.LinkList()
	if err != nil {
		return
	}
	for _, l := range links {
		if l.Type() == "veth" && bridges[l.Attrs().MasterIndex] && !owned[l.Attrs().Name] {
			m.log.Info("network: removing stale veth", "veth", l.Attrs().Name)
			_ = m.host.LinkDel(l)
		}
	}
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func randomMAC() net.HardwareAddr {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	b[0] = 0x02
	b[1] = 0x42
	return b
}

// macFor derives a container MAC from its IPv4 address as docker 20.10 does
// (02:42 + the four address bytes), so it is stable across restarts.
func macFor(a netip.Addr) net.HardwareAddr {
	if !a.Is4() {
		return randomMAC()
	}
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

// lookup finds a network by full id, name, or unique id prefix. Caller
// holds m.mu.
func (m *Manager) lookup(ref string) (*netState, error) {
	if m.closed {
		return nil, fmt.Errorf("network manager closed: %w", errdefs.ErrUnavailable)
	}
	if n, ok := m.nets[ref]; ok {
		return n, nil
	}
	for _, n := range m.nets {
		if n.cfg.Name == ref {
			return n, nil
		}
	}
	var found []*netState
	for id, n := range m.nets {
		if ref != "" && strings.HasPrefix(id, ref) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
	}
	return nil, fmt.Errorf("network %s is ambiguous (%d matches found based on ID prefix): %w", ref, len(found), errdefs.ErrInvalidArgument)
}

// Get returns a network by name, id or unique id prefix.
func (m *Manager) Get(_ context.Context, ref string) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(ref)
	if err != nil {
		return Network{}, err
	}
	return n.cfg, nil
}

// List returns every network, oldest first.
func (m *Manager) List(_ context.Context) []Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Network
	for _, n := range m.sortedNets() {
		out = append(out, n.cfg)
	}
	return out
}

// Endpoints lists a network's attached containers (network inspect).
func (m *Manager) Endpoints(_ context.Context, ref string) ([]EndpointInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(ref)
	if err != nil {
		return nil, err
	}
	var out []EndpointInfo
	for _, ep := range n.sortedEndpoints() {
		out = append(out, *ep)
	}
	return out, nil
}

// ContainerEndpoints lists a container's attachments (container inspect
// NetworkSettings, `port`, ps Ports), ordered by interface name.
func (m *Manager) ContainerEndpoints(_ context.Context, containerID string) []EndpointInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.containerEndpointsLocked(containerID)
}

func (m *Manager) containerEndpointsLocked(containerID string) []EndpointInfo {
	var out []EndpointInfo
	for _, n := range m.nets {
		if ep, ok := n.eps[containerID]; ok {
			out = append(out, *ep)
		}
	}
	sort.Slice(out, func(i, j int) bool { return ifIndex(out[i].IfName) < ifIndex(out[j].IfName) })
	return out
}

func ifIndex(name string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(name, "eth"))
	return i
}

// RemoveNetwork deletes a user network with no endpoints.
func (m *Manager) RemoveNetwork(ctx context.Context, ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(ref)
	if err != nil {
		return err
	}
	return m.removeLocked(ctx, n)
}

func (m *Manager) removeLocked(_ context.Context, n *netState) error {
	if n.cfg.Default {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.cfg.Name, errdefs.ErrPermissionDenied)
	}
	if len(n.eps) > 0 {
		return fmt.Errorf("error while removing network: network %s id %s has active endpoints: %w", n.cfg.Name, n.cfg.ID, errdefs.ErrConflict)
	}
	if err := m.deleteBridge(n.cfg.Bridge); err != nil {
		return fmt.Errorf("delete bridge %s: %w", n.cfg.Bridge, err)
	}
	delete(m.nets, n.cfg.ID)
	if err := m.w.sync(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNetworks).DeleteBucket([]byte(n.cfg.ID))
	}); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
		return fmt.Errorf("store: %w", err)
	}
	return m.applyLocked()
}

// Prune removes the user networks without endpoints for which keep returns
// false (nil keep: all of them), and returns their names.
func (m *Manager) Prune(ctx context.Context, keep func(Network) bool) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var removed []string
	for _, n := range m.sortedNets() {
		if n.cfg.Default || len(n.eps) > 0 || (keep != nil && keep(n.cfg)) {
			continue
		}
		if err := m.removeLocked(ctx, n); err != nil {
			return removed, err
		}
		removed = append(removed, n.cfg.Name)
	}
	return removed, nil
}

// vethName is the host end's name: stable for (network, container), so a
// restart can find it, and short enough for IFNAMSIZ.
func vethName(netID, containerID string) string {
	h := sha256.Sum256([]byte(netID + "/" + containerID))
	return "veth" + hex.EncodeToString(h[:])[:7]
}

// Connect attaches a container's network namespace to a network: a veth pair
// with the container end created directly inside the namespace as eth0
// (eth1… for further networks), its addresses, the default route through
// the first non-internal network, published ports, and the embedded DNS
// server on user networks. On error nothing is left behind.
func (m *Manager) Connect(ctx context.Context, ref string, e Endpoint) (EndpointInfo, error) {
	if e.ContainerID == "" || e.NetnsPath == "" {
		return EndpointInfo{}, fmt.Errorf("connect: container id and netns path are required: %w", errdefs.ErrInvalidArgument)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(ref)
	if err != nil {
		return EndpointInfo{}, err
	}
	if _, ok := n.eps[e.ContainerID]; ok {
		return EndpointInfo{}, fmt.Errorf("endpoint with name %s already exists in network %s: %w", e.Name, n.cfg.Name, errdefs.ErrConflict)
	}
	if n.cfg.Default && (e.IPv4 != "" || e.IPv6 != "") {
		return EndpointInfo{}, fmt.Errorf("user specified IP address is supported on user defined networks only: %w", errdefs.ErrInvalidArgument)
	}
	if n.cfg.Default && len(e.Aliases) > 0 {
		return EndpointInfo{}, fmt.Errorf("network-scoped alias is supported only for containers in user defined networks: %w", errdefs.ErrInvalidArgument)
	}
	var req4, req6 netip.Addr
	if e.IPv4 != "" {
		if req4, err = netip.ParseAddr(e.IPv4); err != nil || !req4.Is4() {
			return EndpointInfo{}, fmt.Errorf("invalid IPv4 address: %s: %w", e.IPv4, errdefs.ErrInvalidArgument)
		}
	}
	if e.IPv6 != "" {
		if req6, err = netip.ParseAddr(e.IPv6); err != nil || !req6.Is6() {
			return EndpointInfo{}, fmt.Errorf("invalid IPv6 address: %s: %w", e.IPv6, errdefs.ErrInvalidArgument)
		}
	}

	existing := m.containerEndpointsLocked(e.ContainerID)
	ep := &EndpointInfo{
		ID: newID(), NetworkID: n.cfg.ID, ContainerID: e.ContainerID, Name: e.Name, Aliases: e.Aliases,
		HostVeth: vethName(n.cfg.ID, e.ContainerID), Links: e.Links, NetnsPath: e.NetnsPath,
		DNS: e.DNS, Hostname: e.Hostname,
	}
	usedIf := map[string]bool{}
	hasGW := false
	for _, x := range existing {
		usedIf[x.IfName] = true
		hasGW = hasGW || x.DefaultGW
	}
	for i := 0; ; i++ {
		if name := "eth" + strconv.Itoa(i); !usedIf[name] {
			ep.IfName = name
			break
		}
	}
	ep.DefaultGW = !hasGW && !n.cfg.Internal

	// 1. Host ports: reserved by binding, so a port taken by anyone fails
	// here, before any kernel state exists.
	var reserved []PortBinding
	undoPorts := func() {
		for _, p := range reserved {
			m.unreserve(p)
		}
	}
	for _, p := range e.Ports {
		rp, err := m.reservePort(p)
		if err != nil {
			undoPorts()
			return EndpointInfo{}, err
		}
		reserved = append(reserved, rp)
	}
	ep.Ports = reserved

	// 2. Addresses, from the in-memory pool; the store follows in order
	// (see writer in store.go for why Connect does not wait for the fsync).
	s4, ok4 := n.subnet(false)
	s6, ok6 := n.subnet(true)
	if ok4 {
		a, err := n.pool.allocate(s4, req4, e.ContainerID)
		if err != nil {
			undoPorts()
			return EndpointInfo{}, err
		}
		ep.IPv4, ep.Gateway = netip.PrefixFrom(a, s4.Subnet.Bits()), s4.Gateway
	}
	if ok6 && n.cfg.EnableIPv6 {
		a, err := n.pool.allocate(s6, req6, e.ContainerID)
		if err != nil {
			n.pool.release(ep.IPv4.Addr(), e.ContainerID)
			undoPorts()
			return EndpointInfo{}, err
		}
		ep.IPv6, ep.Gateway6 = netip.PrefixFrom(a, s6.Subnet.Bits()), s6.Gateway
	}
	ep.MAC = macFor(ep.IPv4.Addr()).String()
	saved := *ep
	netID := n.cfg.ID
	m.w.async(func(tx *bolt.Tx) error {
		nb, err := netBucket(tx, netID)
		if err != nil {
			return nil // network removed meanwhile
		}
		if saved.IPv4.IsValid() {
			if err := storeAlloc(nb, saved.IPv4.Addr(), saved.ContainerID, !req4.IsValid()); err != nil {
				return err
			}
		}
		if saved.IPv6.IsValid() {
			if err := storeAlloc(nb, saved.IPv6.Addr(), saved.ContainerID, !req6.IsValid()); err != nil {
				return err
			}
		}
		eb, err := nb.CreateBucketIfNotExists(bucketEndpoints)
		if err != nil {
			return err
		}
		return putJSON(eb, []byte(saved.ContainerID), saved)
	})
	n.eps[e.ContainerID] = ep
	fail := func(err error) (EndpointInfo, error) {
		_ = m.dropEndpoint(n, ep)
		if len(ep.Ports) > 0 {
			_ = m.applyLocked()
		}
		return EndpointInfo{}, err
	}

	// 3. The embedded DNS server of a user network is set up inside the
	// namespace while the veth pair is made (they are independent, and
	// each costs a couple of milliseconds of kernel work).
	var dnsDone chan dnsResult
	if !n.cfg.Default && m.dns[e.ContainerID] == nil {
		dnsDone = make(chan dnsResult, 1)
		go func() {
			s, err := openDNS(e.NetnsPath)
			dnsDone <- dnsResult{s, err}
		}()
	}
	plumbErr := m.plumb(n, ep)
	if dnsDone != nil {
		r := <-dnsDone
		if r.err == nil && plumbErr == nil {
			m.startDNS(e.ContainerID, r.s)
		} else if r.err == nil {
			r.s.close()
		} else if plumbErr == nil {
			plumbErr = fmt.Errorf("embedded DNS: %w", r.err)
		}
	}
	if plumbErr != nil {
		return fail(plumbErr)
	}
	// 4. Firewall: only published ports change the ruleset.
	if len(ep.Ports) > 0 {
		if err := m.publishLocked(ep, true); err != nil {
			return fail(err)
		}
	}
	return *ep, nil
}

func (m *Manager) plumb(n *netState, ep *EndpointInfo) error {
	br, err := m.host.LinkByName(n.cfg.Bridge)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		// Deleted under us (by hand, or by another daemon using the same
		// name): make it again rather than fail every start until a
		// restart. The firewall matches it by name, so it holds as is.
		m.log.Warn("network: bridge missing, recreating it", "bridge", n.cfg.Bridge, "network", n.cfg.Name)
		if err = m.ensureBridge(n); err == nil {
			br, err = m.host.LinkByName(n.cfg.Bridge)
		}
	}
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.cfg.Bridge, err)
	}
	ns, err := netns.GetFromPath(ep.NetnsPath)
	if err != nil {
		return fmt.Errorf("container netns %s: %w", ep.NetnsPath, err)
	}
	defer ns.Close()
	mac, _ := net.ParseMAC(ep.MAC)
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: ep.HostVeth, MTU: n.cfg.MTU, MasterIndex: br.Attrs().Index},
		PeerName:         ep.IfName,
		PeerNamespace:    netlink.NsFd(ns),
		PeerHardwareAddr: mac,
	}
	err = m.host.LinkAdd(veth)
	if errors.Is(err, unix.EEXIST) {
		// a previous namespace of this container is still being torn down
		if old, e := m.host.LinkByName(ep.HostVeth); e == nil {
			_ = m.host.LinkDel(old)
		}
		err = m.host.LinkAdd(veth)
	}
	if err != nil {
		return fmt.Errorf("create veth %s: %w", ep.HostVeth, err)
	}
	hl, err := m.host.LinkByName(ep.HostVeth)
	if err != nil {
		return err
	}
	// Hairpin lets a container reach its own published port through the
	// host's address: the DNATed packet goes back out the port it came in.
	if err := m.host.LinkSetHairpin(hl, true); err != nil {
		return fmt.Errorf("veth %s hairpin: %w", ep.HostVeth, err)
	}
	if err := m.host.LinkSetUp(hl); err != nil {
		return fmt.Errorf("veth %s up: %w", ep.HostVeth, err)
	}
	ch, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer ch.Close()
	cl, err := ch.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("container %s: %w", ep.IfName, err)
	}
	if ep.IPv4.IsValid() {
		if err := ch.AddrAdd(cl, &netlink.Addr{IPNet: prefixToIPNet(ep.IPv4)}); err != nil {
			return fmt.Errorf("address %s: %w", ep.IPv4, err)
		}
	}
	if ep.IPv6.IsValid() {
		if err := ch.AddrAdd(cl, &netlink.Addr{IPNet: prefixToIPNet(ep.IPv6), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("address %s: %w", ep.IPv6, err)
		}
	}
	if err := ch.LinkSetUp(cl); err != nil {
		return fmt.Errorf("%s up: %w", ep.IfName, err)
	}
	if ep.DefaultGW {
		if ep.Gateway.IsValid() {
			if err := ch.RouteAdd(&netlink.Route{LinkIndex: cl.Attrs().Index, Gw: net.IP(ep.Gateway.AsSlice())}); err != nil {
				return fmt.Errorf("default route via %s: %w", ep.Gateway, err)
			}
		}
		if ep.Gateway6.IsValid() {
			if err := ch.RouteAdd(&netlink.Route{LinkIndex: cl.Attrs().Index, Gw: net.IP(ep.Gateway6.AsSlice()), Family: netlink.FAMILY_V6}); err != nil {
				return fmt.Errorf("default route via %s: %w", ep.Gateway6, err)
			}
		}
	}
	return nil
}

// dropEndpoint undoes an endpoint: veth (unless keepVeth), addresses,
// record, reservations. The caller reapplies the firewall if it had ports.
// Caller holds m.mu.
func (m *Manager) dropEndpoint(n *netState, ep *EndpointInfo, keepVeth ...bool) error {
	if len(keepVeth) == 0 || !keepVeth[0] {
		if l, err := m.host.LinkByName(ep.HostVeth); err == nil {
			if err := m.host.LinkDel(l); err != nil {
				return fmt.Errorf("delete veth %s: %w", ep.HostVeth, err)
			}
		}
	}
	m.forget(n, ep)
	saved, netID := *ep, n.cfg.ID
	m.w.async(func(tx *bolt.Tx) error { return unstore(tx, netID, &saved) })
	return nil
}

// forget drops an endpoint from memory: addresses, ports, DNS server.
// Caller holds m.mu.
func (m *Manager) forget(n *netState, ep *EndpointInfo) {
	for _, p := range ep.Ports {
		m.unreserve(p)
	}
	n.pool.release(ep.IPv4.Addr(), ep.ContainerID)
	n.pool.release(ep.IPv6.Addr(), ep.ContainerID)
	delete(n.eps, ep.ContainerID)
	if _, still := m.containersWithDNS()[ep.ContainerID]; !still {
		if s := m.dns[ep.ContainerID]; s != nil {
			s.close()
			delete(m.dns, ep.ContainerID)
		}
	}
}

// unstore deletes an endpoint's record and addresses if they are still
// this endpoint's (a late background release must not free a newer one).
func unstore(tx *bolt.Tx, netID string, ep *EndpointInfo) error {
	nb, err := netBucket(tx, netID)
	if err != nil {
		return nil // network removed meanwhile
	}
	if err := storeRelease(nb, ep.IPv4.Addr(), ep.ContainerID); err != nil {
		return err
	}
	if err := storeRelease(nb, ep.IPv6.Addr(), ep.ContainerID); err != nil {
		return err
	}
	if eb := nb.Bucket(bucketEndpoints); eb != nil {
		var cur EndpointInfo
		if v := eb.Get([]byte(ep.ContainerID)); v != nil && json.Unmarshal(v, &cur) == nil && cur.IPv4 == ep.IPv4 && cur.IPv6 == ep.IPv6 {
			return eb.Delete([]byte(ep.ContainerID))
		}
	}
	return nil
}

// Disconnect detaches a container from a network (docker network
// disconnect, and container stop/remove).
func (m *Manager) Disconnect(_ context.Context, ref, containerID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(ref)
	if err != nil {
		return err
	}
	ep, ok := n.eps[containerID]
	if !ok {
		return fmt.Errorf("container %s is not connected to network %s: %w", shortID(containerID), n.cfg.Name, errdefs.ErrNotFound)
	}
	if err := m.dropEndpoint(n, ep); err != nil {
		return err
	}
	var errs []error
	if len(ep.Ports) > 0 {
		errs = append(errs, m.publishLocked(ep, false))
	}
	if ep.DefaultGW {
		errs = append(errs, m.moveDefaultRoute(containerID))
	}
	return errors.Join(errs...)
}

// moveDefaultRoute gives the default route to the container's first other
// non-internal endpoint (by interface name), as docker does when the
// network holding it is disconnected. Caller holds m.mu.
func (m *Manager) moveDefaultRoute(containerID string) error {
	for _, x := range m.containerEndpointsLocked(containerID) {
		n := m.nets[x.NetworkID]
		if n == nil || n.cfg.Internal {
			continue
		}
		ep := n.eps[containerID]
		ns, err := netns.GetFromPath(ep.NetnsPath)
		if err != nil {
			return err
		}
		defer ns.Close()
		h, err := netlink.NewHandleAt(ns)
		if err != nil {
			return err
		}
		defer h.Close()
		l, err := h.LinkByName(ep.IfName)
		if err != nil {
			return err
		}
		for _, gw := range []netip.Addr{ep.Gateway, ep.Gateway6} {
			if !gw.IsValid() {
				continue
			}
			r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.IP(gw.AsSlice())}
			if gw.Is6() {
				r.Family = netlink.FAMILY_V6
			}
			if err := h.RouteReplace(r); err != nil {
				return fmt.Errorf("default route via %s: %w", gw, err)
			}
		}
		ep.DefaultGW = true
		saved, netID := *ep, n.cfg.ID
		m.w.async(func(tx *bolt.Tx) error {
			nb, err := netBucket(tx, netID)
			if err != nil {
				return nil
			}
			eb, err := nb.CreateBucketIfNotExists(bucketEndpoints)
			if err != nil {
				return err
			}
			return putJSON(eb, []byte(saved.ContainerID), saved)
		})
		return nil
	}
	return nil
}

// Release frees everything a container holds on every network (addresses,
// published ports, DNS server, records) but leaves its veths to the kernel,
// which deletes both ends when the namespace is destroyed. The daemon calls
// it when a container stops, then removes the namespace: deleting a veth
// synchronously costs ~20 ms here (RTM_DELLINK waits for an RCU grace
// period), namespace teardown does it in the background for free.
func (m *Manager) Release(_ context.Context, containerID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, n := range m.nets {
		if ep, ok := n.eps[containerID]; ok {
			if err := m.dropEndpoint(n, ep, true); err != nil {
				return err
			}
			if len(ep.Ports) > 0 {
				errs = append(errs, m.publishLocked(ep, false))
			}
		}
	}
	return errors.Join(errs...)
}

// DisconnectAll detaches a container from every network it is on.
func (m *Manager) DisconnectAll(ctx context.Context, containerID string) error {
	var errs []error
	for _, ep := range m.ContainerEndpoints(ctx, containerID) {
		if err := m.Disconnect(ctx, ep.NetworkID, containerID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// HostGateway is the address --add-host host-gateway resolves to: the
// default bridge's gateway.
func (m *Manager) HostGateway() netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := m.defaultNet(); n != nil {
		if s, ok := n.subnet(false); ok {
			return s.Gateway
		}
	}
	return netip.Addr{}
}
