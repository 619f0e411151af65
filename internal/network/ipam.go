package network

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

// defaultPools are docker's default address pools, in docker's order:
// 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s.
func defaultPools() []netip.Prefix {
	var p []netip.Prefix
	for i := 17; i <= 31; i++ {
		p = append(p, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		p = append(p, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return p
}

// pickPool returns the first default pool that overlaps none of used
// (berth's networks and the host's routes).
func pickPool(used []netip.Prefix) (netip.Prefix, error) {
	for _, p := range defaultPools() {
		if !overlapsAny(p, used) {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network: %w", errdefs.ErrUnavailable)
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if u.Bits() > 0 && p.Overlaps(u) {
			return true
		}
	}
	return false
}

// parseSubnets validates the user's --subnet/--gateway/--ip-range triples
// and fills in gateways (first host address, as docker).
func parseSubnets(reqs []SubnetRequest) ([]Subnet, error) {
	var out []Subnet
	for _, r := range reqs {
		p, err := netip.ParsePrefix(strings.TrimSpace(r.Subnet))
		if err != nil {
			return nil, fmt.Errorf("invalid CIDR address: %s: %w", r.Subnet, errdefs.ErrInvalidArgument)
		}
		p = p.Masked()
		if (p.Addr().Is4() && p.Bits() > 30) || (p.Addr().Is6() && p.Bits() > 126) {
			return nil, fmt.Errorf("subnet %s is too small: %w", p, errdefs.ErrInvalidArgument)
		}
		s := Subnet{Subnet: p}
		if r.IPRange != "" {
			ir, err := netip.ParsePrefix(r.IPRange)
			if err != nil {
				return nil, fmt.Errorf("invalid CIDR address: %s: %w", r.IPRange, errdefs.ErrInvalidArgument)
			}
			ir = ir.Masked()
			if !p.Contains(ir.Addr()) || ir.Bits() < p.Bits() {
				return nil, fmt.Errorf("no matching subnet for range %s: %w", r.IPRange, errdefs.ErrInvalidArgument)
			}
			s.IPRange = ir
		}
		if r.Gateway != "" {
			gw, err := netip.ParseAddr(r.Gateway)
			if err != nil {
				return nil, fmt.Errorf("invalid gateway address %q: %w", r.Gateway, errdefs.ErrInvalidArgument)
			}
			if !p.Contains(gw) {
				return nil, fmt.Errorf("no matching subnet for gateway %s: %w", gw, errdefs.ErrInvalidArgument)
			}
			s.Gateway = gw
		} else {
			s.Gateway = p.Addr().Next()
		}
		for _, o := range out {
			if o.Subnet.Overlaps(p) {
				//lint:ignore ST1005 docker's message, matched by clients
				return nil, fmt.Errorf("Pool overlaps with other one on this address space: %w", errdefs.ErrInvalidArgument)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// usable reports whether a may be handed to a container: inside the pool,
// not the subnet's network or (IPv4) broadcast address, not the gateway.
func usable(s Subnet, a netip.Addr) bool {
	if !s.Subnet.Contains(a) || a == s.Subnet.Addr() || a == s.Gateway {
		return false
	}
	if a.Is4() && a == lastAddr(s.Subnet) {
		return false
	}
	if s.IPRange.IsValid() && !s.IPRange.Contains(a) {
		return false
	}
	return true
}

// pool is one network's address allocation state. It lives in memory,
// under the manager's lock, so allocating costs no I/O; every change is
// mirrored to the store by the manager's ordered writer (store.go).
type pool struct {
	taken map[netip.Addr]string // address → owning container id
	next4 netip.Addr            // last address handed out, per family
	next6 netip.Addr
}

func newPool() *pool { return &pool{taken: map[netip.Addr]string{}} }

// allocate takes an address of s for owner: the requested one, or the next
// free one after the last handed out, so that a just-released address is
// not reused at once (docker does the same).
func (p *pool) allocate(s Subnet, requested netip.Addr, owner string) (netip.Addr, error) {
	if requested.IsValid() {
		if !usable(s, requested) {
			return netip.Addr{}, fmt.Errorf("no available IP: requested address %s is out of range: %w", requested, errdefs.ErrInvalidArgument)
		}
		if _, ok := p.taken[requested]; ok {
			//lint:ignore ST1005 docker's message, matched by clients
			return netip.Addr{}, fmt.Errorf("Address already in use: %s: %w", requested, errdefs.ErrConflict)
		}
		p.taken[requested] = owner
		return requested, nil
	}
	cursor := &p.next4
	if s.Subnet.Addr().Is6() {
		cursor = &p.next6
	}
	lo, hi := s.Subnet.Addr(), lastAddr(s.Subnet)
	if s.IPRange.IsValid() {
		lo, hi = s.IPRange.Addr(), lastAddr(s.IPRange)
	}
	start := lo
	if c := *cursor; c.IsValid() && c.Compare(lo) >= 0 && c.Compare(hi) < 0 {
		start = c.Next()
	}
	// Walk from start to hi, then wrap from lo to start: the walk ends at
	// the first free address, so its length is bounded by the number of
	// allocated addresses, even in an IPv6 /64.
	a := start
	for wrapped := false; ; {
		if _, ok := p.taken[a]; !ok && usable(s, a) {
			p.taken[a] = owner
			*cursor = a
			return a, nil
		}
		if a == hi {
			if wrapped {
				break
			}
			wrapped, a = true, lo
			continue
		}
		a = a.Next()
		if wrapped && a == start {
			break
		}
	}
	return netip.Addr{}, fmt.Errorf("no available IPv%d addresses on this network's address pools: %s: %w", map[bool]int{true: 4, false: 6}[s.Subnet.Addr().Is4()], s.Subnet, errdefs.ErrUnavailable)
}

// release frees a if owner holds it.
func (p *pool) release(a netip.Addr, owner string) {
	if a.IsValid() && p.taken[a] == owner {
		delete(p.taken, a)
	}
}

// storeAlloc and storeRelease mirror pool changes into a network's bucket.
func storeAlloc(nb *bolt.Bucket, a netip.Addr, owner string, cursor bool) error {
	ips, err := nb.CreateBucketIfNotExists([]byte("ips"))
	if err != nil {
		return err
	}
	if err := ips.Put([]byte(a.String()), []byte(owner)); err != nil {
		return err
	}
	if !cursor {
		return nil
	}
	key := []byte("next4")
	if a.Is6() {
		key = []byte("next6")
	}
	return nb.Put(key, []byte(a.String()))
}

func storeRelease(nb *bolt.Bucket, a netip.Addr, owner string) error {
	if !a.IsValid() {
		return nil
	}
	if ips := nb.Bucket([]byte("ips")); ips != nil && string(ips.Get([]byte(a.String()))) == owner {
		return ips.Delete([]byte(a.String()))
	}
	return nil
}

// SubnetUsage is one subnet's line of docker's `network inspect --verbose`
// Status.IPAM.Subnets.
type SubnetUsage struct {
	Subnet netip.Prefix
	// InUse counts the addresses of the subnet that cannot be handed out:
	// allocated ones plus the network, gateway and (IPv4) broadcast
	// addresses. Available counts the free ones of the allocation range.
	// Both saturate at 2^64-1, as docker's.
	InUse, Available uint64
}

// size is the number of addresses of p, saturating at 2^64-1.
func size(p netip.Prefix) uint64 {
	host := p.Addr().BitLen() - p.Bits()
	if host >= 64 {
		return ^uint64(0)
	}
	return uint64(1) << host
}

// Usage reports the address usage of each subnet of a network.
func (m *Manager) Usage(_ context.Context, ref string) ([]SubnetUsage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(ref)
	if err != nil {
		return nil, err
	}
	var out []SubnetUsage
	for _, s := range n.cfg.Subnets {
		if s.Subnet.Addr().Is6() && !n.cfg.EnableIPv6 {
			continue
		}
		reserved := map[netip.Addr]bool{s.Subnet.Addr(): true}
		if s.Subnet.Contains(s.Gateway) {
			reserved[s.Gateway] = true
		}
		if s.Subnet.Addr().Is4() {
			reserved[lastAddr(s.Subnet)] = true
		}
		for a := range n.pool.taken {
			if s.Subnet.Contains(a) {
				reserved[a] = true
			}
		}
		rng := s.Subnet
		if s.IPRange.IsValid() {
			rng = s.IPRange
		}
		var inRange uint64
		for a := range reserved {
			if rng.Contains(a) {
				inRange++
			}
		}
		u := SubnetUsage{Subnet: s.Subnet, InUse: uint64(len(reserved)), Available: size(rng)}
		if u.Available != ^uint64(0) {
			u.Available -= inRange
		}
		out = append(out, u)
	}
	return out, nil
}
