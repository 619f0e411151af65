package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// berth's firewall lives in its own tables only, rebuilt in one netlink
// batch (atomically, both families at once) from the manager's state whenever a network or a
// published port changes, and deleted when no network needs it:
//
//	table ip berth {                       (table ip6 berth: same, IPv6 networks only)
//	  chain prerouting  { type nat hook prerouting priority dstnat;  fib daddr type local jump ports }
//	  chain output      { type nat hook output priority -100;        fib daddr type local jump ports }
//	  chain ports       { [ip daddr H] tcp|udp dport P dnat to C:Q comment "<net>/<ctr>"   one rule per published port,
//	                      added and deleted per endpoint without rebuilding the table }
//	  chain postrouting { type nat hook postrouting priority srcnat;
//	    ip saddr S oifname != B masquerade                  egress (not on --internal networks)
//	    oifname B ip saddr 127.0.0.0/8 masquerade           127.0.0.1:P → container (route_localnet=1 on B)
//	    oifname B ip saddr S ct status dnat masquerade       hairpin: container → host:P → container on B
//	  }
//	  chain forward { type filter hook forward priority filter; policy accept;
//	    iifname B oifname != B drop; oifname B iifname != B drop   --internal networks
//	    ct status dnat accept                               published ports, from any network
//	    iifname B1 oifname B2 drop                          isolation between networks, every ordered pair
//	  }
//	}
//
// The forward chain accepts by default: it can only add drops. A DROP policy
// in another table's forward chain (docker's iptables-nft "filter FORWARD")
// still drops berth's routed and bridged traffic, because every base chain
// on a hook runs and any drop is final; see ForeignForwardDrop.

type nftRule struct {
	chain string
	exprs []expr.Any
	tag   string // comment, on published-port rules: "<network id>/<container id>"
}

func endpointTag(ep *EndpointInfo) string { return ep.NetworkID + "/" + ep.ContainerID }

// portRules are an endpoint's published-port rules for one family.
func portRules(v6 bool, ep *EndpointInfo) []nftRule {
	cip := ep.IPv4.Addr()
	if v6 {
		cip = ep.IPv6.Addr()
	}
	if !cip.IsValid() {
		return nil
	}
	var out []nftRule
	for _, p := range ep.Ports {
		if p.HostIP.IsValid() && p.HostIP.Is6() != v6 {
			continue
		}
		if !p.HostIP.IsValid() && v6 {
			continue // IPv6 publishing only for an explicit IPv6 host address
		}
		out = append(out, nftRule{"ports", portRule(v6, p, cip), endpointTag(ep)})
	}
	return out
}

// buildRules computes the rules of one family's table from the networks and
// their endpoints. Pure, so unit tests check it without a kernel.
func buildRules(v6 bool, nets []*netState) []nftRule {
	var rules []nftRule
	local := []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutilNative32(unix.RTN_LOCAL)},
		&expr.Verdict{Kind: expr.VerdictJump, Chain: "ports"},
	}
	rules = append(rules, nftRule{"prerouting", local, ""}, nftRule{"output", local, ""})
	for _, n := range nets {
		for _, s := range n.cfg.Subnets {
			if s.Subnet.Addr().Is6() != v6 {
				continue
			}
			if !n.cfg.Internal && n.masquerade() {
				rules = append(rules, nftRule{"postrouting", join(
					matchSaddr(v6, s.Subnet), matchIfname(false, n.cfg.Bridge, false), []expr.Any{&expr.Masq{}}), ""})
			}
			rules = append(rules, nftRule{"postrouting", join(
				matchIfname(false, n.cfg.Bridge, true), matchSaddr(v6, s.Subnet), ctDNAT(), []expr.Any{&expr.Masq{}}), ""})
		}
		if !v6 {
			rules = append(rules, nftRule{"postrouting", join(
				matchIfname(false, n.cfg.Bridge, true), matchSaddr(false, netip.MustParsePrefix("127.0.0.0/8")), []expr.Any{&expr.Masq{}}), ""})
		}
		for _, ep := range n.sortedEndpoints() {
			rules = append(rules, portRules(v6, ep)...)
		}
	}
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	for _, a := range nets {
		if a.cfg.Internal {
			rules = append(rules,
				nftRule{"forward", join(matchIfname(true, a.cfg.Bridge, true), matchIfname(false, a.cfg.Bridge, false), []expr.Any{drop}), ""},
				nftRule{"forward", join(matchIfname(false, a.cfg.Bridge, true), matchIfname(true, a.cfg.Bridge, false), []expr.Any{drop}), ""})
		}
	}
	// Published ports are public: a container on another network reaches
	// them through the host's address, past the isolation drops.
	rules = append(rules, nftRule{"forward", join(ctDNAT(), []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}), ""})
	for _, a := range nets {
		for _, b := range nets {
			if a != b && a.cfg.Bridge != b.cfg.Bridge {
				rules = append(rules, nftRule{"forward", join(matchIfname(true, a.cfg.Bridge, true), matchIfname(false, b.cfg.Bridge, true), []expr.Any{drop}), ""})
			}
		}
	}
	return rules
}

func join(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func binaryutilNative32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func matchIfname(in bool, name string, eq bool) []expr.Any {
	key := expr.MetaKeyOIFNAME
	if in {
		key = expr.MetaKeyIIFNAME
	}
	op := expr.CmpOpEq
	if !eq {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifnameBytes(name)},
	}
}

func addrOffsets(v6 bool) (saddr, daddr, l uint32) {
	if v6 {
		return 8, 24, 16
	}
	return 12, 16, 4
}

func matchSaddr(v6 bool, p netip.Prefix) []expr.Any {
	off, _, l := addrOffsets(v6)
	mask := netip.PrefixFrom(p.Addr(), p.Bits())
	m := prefixMask(mask)
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: l},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: l, Mask: m, Xor: make([]byte, l)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

func prefixMask(p netip.Prefix) []byte {
	n := p.Addr().BitLen() / 8
	m := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

func ctDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutilNative32(0x20 /* IPS_DST_NAT */), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func portRule(v6 bool, p PortBinding, cip netip.Addr) []expr.Any {
	var e []expr.Any
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		_, off, l := addrOffsets(v6)
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: l},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.HostIP.AsSlice()})
	}
	proto := byte(unix.IPPROTO_TCP)
	if p.Proto == "udp" {
		proto = unix.IPPROTO_UDP
	}
	port := make([]byte, 2)
	binary.BigEndian.PutUint16(port, p.HostPort)
	cport := make([]byte, 2)
	binary.BigEndian.PutUint16(cport, p.ContainerPort)
	fam := uint32(unix.NFPROTO_IPV4)
	if v6 {
		fam = unix.NFPROTO_IPV6
	}
	return append(e,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
		&expr.Immediate{Register: 1, Data: cip.AsSlice()},
		&expr.Immediate{Register: 2, Data: cport},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: fam, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	)
}

// queueRules queues the replacement of one family's berth table (the
// caller's Flush sends everything as one atomic batch); with no networks of
// that family the table is deleted instead.
func queueRules(c *nftables.Conn, table string, v6 bool, nets []*netState) {
	fam := nftables.TableFamilyIPv4
	if v6 {
		fam = nftables.TableFamilyIPv6
	}
	t := &nftables.Table{Name: table, Family: fam}
	// "add" is create-if-missing, so add+delete is a delete that cannot
	// fail on a missing table, and the whole swap stays one transaction.
	c.AddTable(t)
	c.DelTable(t)
	var used []*netState
	for _, n := range nets {
		for _, s := range n.cfg.Subnets {
			if s.Subnet.Addr().Is6() == v6 {
				used = append(used, n)
				break
			}
		}
	}
	if len(used) > 0 {
		c.AddTable(t)
		accept := nftables.ChainPolicyAccept
		chains := map[string]*nftables.Chain{
			"prerouting":  {Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest},
			"output":      {Name: "output", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest},
			"ports":       {Name: "ports", Table: t},
			"postrouting": {Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
			"forward":     {Name: "forward", Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept},
		}
		for _, name := range []string{"ports", "prerouting", "output", "postrouting", "forward"} {
			c.AddChain(chains[name])
		}
		for _, r := range buildRules(v6, used) {
			c.AddRule(ruleFor(t, chains[r.chain], r))
		}
	}
}

func ruleFor(t *nftables.Table, ch *nftables.Chain, r nftRule) *nftables.Rule {
	nr := &nftables.Rule{Table: t, Chain: ch, Exprs: r.exprs}
	if r.tag != "" {
		nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.tag)
	}
	return nr
}

// queuePublish queues an endpoint's port rules into the existing tables
// (a few rules into one chain: much cheaper than swapping the table).
func queuePublish(c *nftables.Conn, table string, families []bool, ep *EndpointInfo) {
	for _, v6 := range families {
		t := &nftables.Table{Name: table, Family: family(v6)}
		ch := &nftables.Chain{Name: "ports", Table: t}
		for _, r := range portRules(v6, ep) {
			c.AddRule(ruleFor(t, ch, r))
		}
	}
}

// queueUnpublish queues the deletion of an endpoint's port rules, found by
// their comment.
func queueUnpublish(c *nftables.Conn, table string, families []bool, ep *EndpointInfo) error {
	tag := endpointTag(ep)
	for _, v6 := range families {
		t := &nftables.Table{Name: table, Family: family(v6)}
		rules, err := c.GetRules(t, &nftables.Chain{Name: "ports", Table: t})
		if err != nil {
			return err
		}
		for _, r := range rules {
			if got, _ := userdata.GetString(r.UserData, userdata.TypeComment); got == tag {
				if err := c.DelRule(r); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func family(v6 bool) nftables.TableFamily {
	if v6 {
		return nftables.TableFamilyIPv6
	}
	return nftables.TableFamilyIPv4
}

// ForeignForwardDrop lists the base chains of other tables on the IPv4
// forward hook whose policy is drop (docker's "ip filter FORWARD" when
// dockerd enabled ip_forward itself). They drop berth's forwarded traffic
// (egress, and bridged traffic when br_netfilter calls iptables) whatever
// berth's own table accepts; berth does not edit other tables, so it warns.
func ForeignForwardDrop(c *nftables.Conn, own string) ([]string, error) {
	chains, err := c.ListChains()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ch := range chains {
		if ch.Table == nil || ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward || ch.Policy == nil {
			continue
		}
		if ch.Table.Name == own || *ch.Policy != nftables.ChainPolicyDrop {
			continue
		}
		if ch.Table.Family != nftables.TableFamilyIPv4 && ch.Table.Family != nftables.TableFamilyINet {
			continue
		}
		fam := "ip"
		if ch.Table.Family == nftables.TableFamilyINet {
			fam = "inet"
		}
		out = append(out, fmt.Sprintf("table %s %s chain %s", fam, ch.Table.Name, ch.Name))
	}
	return out, nil
}

// brNetfilterCallsIptables reports whether bridged IPv4 frames traverse the
// IP forward hook (br_netfilter with bridge-nf-call-iptables=1).
func brNetfilterCallsIptables() bool {
	b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}
