package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/net/dns/dnsmessage"
)

// The embedded DNS server, docker's 127.0.0.11. For each container on a user
// network the daemon opens a UDP socket and a TCP listener *inside the
// container's namespace* (bound while the thread is in it; a socket keeps
// its namespace for life) on 127.0.0.11 and random ports, and serves them
// from daemon goroutines: no process and no thread lives in the container.
// Like docker, a table in the container's namespace DNATs 127.0.0.11:53 to
// those ports, so port 53 stays free for the container's own servers:
//
//	table ip berth_dns { chain output { type nat hook output priority -100;
//	    ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:U
//	    ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:T } }
//
//	container ──query──▶ 127.0.0.11:53 ─DNAT─▶ sockets in its netns, owned by the daemon
//	                        │ names of its networks: container names, --network-alias,
//	                        │ <name>.<network>, short ids, its own --link aliases → A/AAAA/PTR
//	                        │ unknown single-label name → NXDOMAIN
//	                        └ anything else ─▶ its --dns servers or the host's resolvers,
//	                                           dialled from the host namespace (so a host
//	                                           resolver on 127.0.0.53 works); only if one of
//	                                           its networks is not --internal
//
// golang.org/x/net/dns/dnsmessage is enough for this: one question in, a
// few records out, raw relay for the rest (miekg/dns would bring a server
// framework that the per-namespace sockets do not need).

const dnsTTL = 600

type dnsServer struct {
	udp *net.UDPConn
	tcp *net.TCPListener
}

func (s *dnsServer) close() {
	s.udp.Close()
	s.tcp.Close()
}

// containersWithDNS: the containers that have an endpoint on a user network
// (with the netns path to serve in). Caller holds m.mu.
func (m *Manager) containersWithDNS() map[string]string {
	out := map[string]string{}
	for _, n := range m.nets {
		if n.cfg.Default {
			continue
		}
		for cid, ep := range n.eps {
			out[cid] = ep.NetnsPath
		}
	}
	return out
}

// ensureDNS starts the container's server if it has none. Caller holds m.mu.
func (m *Manager) ensureDNS(cid string) error {
	if m.dns[cid] != nil {
		return nil
	}
	path, ok := m.containersWithDNS()[cid]
	if !ok {
		return nil
	}
	s, err := openDNS(path)
	if err != nil {
		return err
	}
	m.startDNS(cid, s)
	return nil
}

type dnsResult struct {
	s   *dnsServer
	err error
}

// openDNS opens the server's sockets in the namespace at path and points
// 127.0.0.11:53 at them. It touches no manager state.
func openDNS(path string) (*dnsServer, error) {
	s := &dnsServer{}
	err := InNamespace(path, func() error {
		var err error
		ip := net.IPv4(127, 0, 0, 11)
		if s.udp, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ip}); err != nil {
			return err
		}
		if s.tcp, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: ip}); err != nil {
			s.udp.Close()
			return err
		}
		// The nftables socket is dialled by Flush on this thread, so in the
		// container's namespace.
		err = redirectDNS(s.udp.LocalAddr().(*net.UDPAddr).Port, s.tcp.Addr().(*net.TCPAddr).Port)
		if err != nil {
			s.close()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// startDNS registers and serves s. Caller holds m.mu.
func (m *Manager) startDNS(cid string, s *dnsServer) {
	m.dns[cid] = s
	go m.serveUDP(cid, s.udp)
	go m.serveTCP(cid, s.tcp)
}

func (m *Manager) serveUDP(cid string, c *net.UDPConn) {
	buf := make([]byte, 4096)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		req := append([]byte(nil), buf[:n]...)
		go func() {
			if resp := m.handleDNS(cid, req, false); resp != nil {
				_, _ = c.WriteToUDPAddrPort(resp, from)
			}
		}()
	}
}

func (m *Manager) serveTCP(cid string, l *net.TCPListener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go func() {
			defer c.Close()
			for {
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				req, err := readTCPMsg(c)
				if err != nil {
					return
				}
				resp := m.handleDNS(cid, req, true)
				if resp == nil || writeTCPMsg(c, resp) != nil {
					return
				}
			}
		}()
	}
}

func readTCPMsg(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	_, err := io.ReadFull(r, b)
	return b, err
}

func writeTCPMsg(w io.Writer, b []byte) error {
	out := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(out, uint16(len(b)))
	copy(out[2:], b)
	_, err := w.Write(out)
	return err
}

// dnsView is what one container may resolve: built under m.mu, used
// without it.
type dnsView struct {
	names      map[string][]netip.Addr
	ptr        map[netip.Addr]string
	canForward bool
	upstreams  []netip.AddrPort
}

func (m *Manager) viewFor(cid string) dnsView {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := dnsView{names: map[string][]netip.Addr{}, ptr: map[netip.Addr]string{}}
	add := func(name string, ep *EndpointInfo) {
		name = strings.ToLower(strings.TrimSuffix(name, "."))
		if name == "" {
			return
		}
		for _, p := range []netip.Prefix{ep.IPv4, ep.IPv6} {
			if p.IsValid() && !slices.Contains(v.names[name], p.Addr()) {
				v.names[name] = append(v.names[name], p.Addr())
			}
		}
	}
	var dns []string
	for _, n := range m.nets {
		self, ok := n.eps[cid]
		if !ok || n.cfg.Default {
			continue
		}
		if !n.cfg.Internal {
			v.canForward = true
		}
		dns = append(dns, self.DNS...)
		byName := map[string]*EndpointInfo{}
		for _, ep := range n.eps {
			byName[ep.Name] = ep
			add(ep.Name, ep)
			add(ep.Name+"."+n.cfg.Name, ep)
			add(shortID(ep.ContainerID), ep)
			for _, a := range ep.Aliases {
				add(a, ep)
				add(a+"."+n.cfg.Name, ep)
			}
			if ep.Name != "" {
				for _, p := range []netip.Prefix{ep.IPv4, ep.IPv6} {
					if p.IsValid() {
						v.ptr[p.Addr()] = ep.Name + "." + n.cfg.Name + "."
					}
				}
			}
		}
		for _, l := range self.Links {
			if t := byName[l.Name]; t != nil {
				add(l.Alias, t)
			}
		}
	}
	for _, s := range dns {
		if a, err := netip.ParseAddr(s); err == nil {
			v.upstreams = append(v.upstreams, netip.AddrPortFrom(a, 53))
		}
	}
	if len(v.upstreams) == 0 {
		v.upstreams = m.upstream
	}
	return v
}

func (m *Manager) handleDNS(cid string, req []byte, tcp bool) []byte {
	v := m.viewFor(cid)
	resp, forward := answerQuery(req, v)
	if !forward {
		return resp
	}
	if out := forwardQuery(req, v.upstreams, tcp); out != nil {
		return out
	}
	return errorReply(req, dnsmessage.RCodeServerFailure)
}

// answerQuery answers from the view, or says the query must be forwarded.
// A nil response with forward false means "drop" (unparsable).
func answerQuery(req []byte, v dnsView) (resp []byte, forward bool) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return errorReply(req, dnsmessage.RCodeFormatError), false
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	rh := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}

	if q.Type == dnsmessage.TypePTR {
		if a, ok := ptrAddr(name); ok {
			if target, ok := v.ptr[a]; ok {
				rh.Authoritative = true
				return build(rh, q, func(b *dnsmessage.Builder) error {
					return b.PTRResource(rrHeader(q), dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(target)})
				}), false
			}
		}
	} else if addrs, ok := v.names[name]; ok {
		rh.Authoritative = true
		return build(rh, q, func(b *dnsmessage.Builder) error {
			for _, a := range addrs {
				switch {
				case q.Type == dnsmessage.TypeA && a.Is4():
					if err := b.AResource(rrHeader(q), dnsmessage.AResource{A: a.As4()}); err != nil {
						return err
					}
				case q.Type == dnsmessage.TypeAAAA && a.Is6():
					if err := b.AAAAResource(rrHeader(q), dnsmessage.AAAAResource{AAAA: a.As16()}); err != nil {
						return err
					}
				}
			}
			return nil // a known name without records of this type: NOERROR, no data
		}), false
	}
	if !strings.Contains(name, ".") || !v.canForward || len(v.upstreams) == 0 {
		if !strings.Contains(name, ".") || !v.canForward {
			rh.RCode = dnsmessage.RCodeNameError
		} else {
			rh.RCode = dnsmessage.RCodeServerFailure
		}
		return build(rh, q, nil), false
	}
	return nil, true
}

func rrHeader(q dnsmessage.Question) dnsmessage.ResourceHeader {
	return dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: dnsTTL}
}

func build(h dnsmessage.Header, q dnsmessage.Question, answers func(*dnsmessage.Builder) error) []byte {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), h)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil
	}
	if err := b.Question(q); err != nil {
		return nil
	}
	if answers != nil {
		if err := b.StartAnswers(); err != nil {
			return nil
		}
		if err := answers(&b); err != nil {
			return nil
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

func errorReply(req []byte, rc dnsmessage.RCode) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rc}
	q, err := p.Question()
	if err != nil {
		b := dnsmessage.NewBuilder(nil, rh)
		out, _ := b.Finish()
		return out
	}
	return build(rh, q, nil)
}

// ptrAddr turns "4.3.2.1.in-addr.arpa" (or ip6.arpa nibbles) into an address.
func ptrAddr(name string) (netip.Addr, bool) {
	if s, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		p := strings.Split(s, ".")
		if len(p) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(p[3] + "." + p[2] + "." + p[1] + "." + p[0])
		return a, err == nil
	}
	if s, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		p := strings.Split(s, ".")
		if len(p) != 32 {
			return netip.Addr{}, false
		}
		var sb strings.Builder
		for i := 31; i >= 0; i-- {
			sb.WriteString(p[i])
			if i%4 == 0 && i > 0 {
				sb.WriteByte(':')
			}
		}
		a, err := netip.ParseAddr(sb.String())
		return a, err == nil
	}
	return netip.Addr{}, false
}

// forwardQuery relays the raw query to each upstream in turn, from the
// daemon's (host) namespace.
func forwardQuery(req []byte, upstreams []netip.AddrPort, tcp bool) []byte {
	for _, u := range upstreams {
		if tcp {
			c, err := net.DialTimeout("tcp", u.String(), 2*time.Second)
			if err != nil {
				continue
			}
			_ = c.SetDeadline(time.Now().Add(4 * time.Second))
			var resp []byte
			if writeTCPMsg(c, req) == nil {
				resp, _ = readTCPMsg(c)
			}
			c.Close()
			if resp != nil {
				return resp
			}
			continue
		}
		c, err := net.Dial("udp", u.String())
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 65535)
		if _, err := c.Write(req); err == nil {
			if n, err := c.Read(buf); err == nil {
				c.Close()
				return buf[:n]
			}
		}
		c.Close()
	}
	return nil
}

// redirectDNS installs (or replaces) the DNAT of 127.0.0.11:53 to the
// server's ports in the calling thread's namespace.
func redirectDNS(udpPort, tcpPort int) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: "berth_dns", Family: nftables.TableFamilyIPv4}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	ch := c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest})
	dns := netip.MustParseAddr("127.0.0.11")
	for _, r := range []struct {
		proto string
		port  int
	}{{"udp", udpPort}, {"tcp", tcpPort}} {
		_, daddr, _ := addrOffsets(false)
		e := []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: daddr, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: dns.AsSlice()},
		}
		e = append(e, portRule(false, PortBinding{Proto: r.proto, HostPort: 53, ContainerPort: uint16(r.port)}, dns)...)
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables in container: %w", err)
	}
	return nil
}
