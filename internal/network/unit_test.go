package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/nftables/expr"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/net/dns/dnsmessage"
)

func TestParseSubnets(t *testing.T) {
	s, err := parseSubnets([]SubnetRequest{{Subnet: "10.1.2.3/24", IPRange: "10.1.2.128/25"}, {Subnet: "fd00::/64", Gateway: "fd00::fe"}})
	if err != nil {
		t.Fatal(err)
	}
	if s[0].Subnet.String() != "10.1.2.0/24" || s[0].Gateway.String() != "10.1.2.1" || s[0].IPRange.String() != "10.1.2.128/25" || s[1].Gateway.String() != "fd00::fe" {
		t.Fatalf("%+v", s)
	}
	for _, c := range []struct {
		req  SubnetRequest
		want string
	}{
		{SubnetRequest{Subnet: "10.0.0.0/33"}, "invalid CIDR address: 10.0.0.0/33"},
		{SubnetRequest{Subnet: "300.0.0.0/8"}, "invalid CIDR address"},
		{SubnetRequest{Subnet: "10.0.0.0/24", Gateway: "10.0.1.1"}, "no matching subnet for gateway 10.0.1.1"},
		{SubnetRequest{Subnet: "10.0.0.0/24", IPRange: "10.0.1.0/25"}, "no matching subnet for range"},
	} {
		_, err := parseSubnets([]SubnetRequest{c.req})
		if err == nil || !strings.Contains(err.Error(), c.want) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%+v: got %v, want %q (invalid argument)", c.req, err, c.want)
		}
	}
	if _, err := parseSubnets([]SubnetRequest{{Subnet: "10.0.0.0/16"}, {Subnet: "10.0.5.0/24"}}); err == nil || !strings.Contains(err.Error(), "Pool overlaps") {
		t.Fatalf("overlap: %v", err)
	}
}

func TestPickPool(t *testing.T) {
	p, err := pickPool([]netip.Prefix{netip.MustParsePrefix("172.17.0.0/16"), netip.MustParsePrefix("172.18.5.0/24"), netip.MustParsePrefix("0.0.0.0/0")})
	if err != nil || p.String() != "172.19.0.0/16" {
		t.Fatalf("got %v %v", p, err)
	}
	var all []netip.Prefix
	all = append(all, defaultPools()...)
	if _, err := pickPool(all); !errdefs.IsUnavailable(err) {
		t.Fatalf("exhausted: %v", err)
	}
}

func TestAllocate(t *testing.T) {
	p := newPool()
	s := Subnet{Subnet: netip.MustParsePrefix("10.0.0.0/29"), Gateway: netip.MustParseAddr("10.0.0.1")}
	alloc := func(req string) (string, error) {
		var r netip.Addr
		if req != "" {
			r = netip.MustParseAddr(req)
		}
		a, err := p.allocate(s, r, "c")
		return a.String(), err
	}
	free := func(a string) { p.release(netip.MustParseAddr(a), "c") }
	var got []string
	for i := 0; i < 5; i++ { // .2-.6: .0 network, .1 gateway, .7 broadcast
		a, err := alloc("")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
	}
	if strings.Join(got, " ") != "10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6" {
		t.Fatal(got)
	}
	if _, err := alloc(""); !errdefs.IsUnavailable(err) {
		t.Fatalf("full pool: %v", err)
	}
	free("10.0.0.3")
	free("10.0.0.5")
	p.release(netip.MustParseAddr("10.0.0.4"), "someone-else") // not the owner: no effect
	// resumes after the last handed out (.6), wraps, takes .3 before .5
	if a, _ := alloc(""); a != "10.0.0.3" {
		t.Fatalf("after wrap: %s", a)
	}
	if _, err := alloc("10.0.0.4"); !errdefs.IsConflict(err) {
		t.Fatalf("requested taken: %v", err)
	}
	if _, err := alloc("10.0.0.1"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("requested gateway: %v", err)
	}
	if a, err := alloc("10.0.0.5"); err != nil || a != "10.0.0.5" {
		t.Fatalf("requested free: %s %v", a, err)
	}
	// ip-range limits the pool
	p = newPool()
	s = Subnet{Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"), IPRange: netip.MustParsePrefix("10.0.0.128/30")}
	got = nil
	for i := 0; i < 4; i++ {
		a, err := alloc("")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
	}
	if strings.Join(got, " ") != "10.0.0.128 10.0.0.129 10.0.0.130 10.0.0.131" {
		t.Fatal(got)
	}
	// IPv6 /64: the walk is bounded by allocations, not by the pool size
	p = newPool()
	s = Subnet{Subnet: netip.MustParsePrefix("fd00::/64"), Gateway: netip.MustParseAddr("fd00::1")}
	if a, _ := alloc(""); a != "fd00::2" {
		t.Fatalf("v6: %s", a)
	}
}

// TestWriterOrder: store changes land in issue order, batched.
func TestWriterOrder(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := newWriter(db, slog.New(slog.DiscardHandler))
	for i := 0; i < 500; i++ {
		v := strconv.Itoa(i)
		w.async(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte(v))
		})
	}
	if err := w.sync(func(tx *bolt.Tx) error { return errors.New("boom") }); err == nil {
		t.Fatal("sync error lost")
	}
	w.close()
	_ = db.View(func(tx *bolt.Tx) error {
		if got := string(tx.Bucket([]byte("b")).Get([]byte("k"))); got != "499" {
			t.Fatalf("last write %q, want 499", got)
		}
		return nil
	})
}

func TestParsePortSpec(t *testing.T) {
	for spec, want := range map[string]string{
		"80":                          "tcp/80->:0",
		"8080:80":                     "tcp/80->:8080",
		"127.0.0.1:8080:80/udp":       "udp/80->127.0.0.1:8080",
		"127.0.0.1::80":               "tcp/80->127.0.0.1:0",
		"8000-8001:80-81":             "tcp/80->:8000 tcp/81->:8001",
		"8000-8010:80":                "tcp/80->:8000-8010",
		"[::1]:8080:80":               "tcp/80->::1:8080",
		"7000-7001":                   "tcp/7000->:0 tcp/7001->:0",
		"0.0.0.0:5000-5001:53-54/udp": "udp/53->0.0.0.0:5000 udp/54->0.0.0.0:5001",
	} {
		ps, err := ParsePortSpec(spec)
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		var s []string
		for _, p := range ps {
			h := ""
			if p.HostIP.IsValid() {
				h = p.HostIP.String()
			}
			r := ""
			if p.HostPortEnd != 0 {
				r = "-" + itoa(int(p.HostPortEnd))
			}
			s = append(s, p.Proto+"/"+itoa(int(p.ContainerPort))+"->"+h+":"+itoa(int(p.HostPort))+r)
		}
		if strings.Join(s, " ") != want {
			t.Errorf("%s: got %q, want %q", spec, strings.Join(s, " "), want)
		}
	}
	for _, bad := range []string{"", "abc", "80/sctp", "1:2:3:4", "8000-8002:80-81", "0:80", "x.y:80:80", "70000:80"} {
		if _, err := ParsePortSpec(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: want invalid argument, got %v", bad, err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestResolvConf(t *testing.T) {
	host := []byte("# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver fd00::53\nsearch a.example b.example\noptions edns0 trust-ad\n")
	for _, c := range []struct {
		name           string
		embedded, ipv6 bool
		cfg            DNSConfig
		want           string
	}{
		{"default bridge drops loopback and v6", false, false, DNSConfig{}, "nameserver 10.0.0.2\nsearch a.example b.example\noptions edns0 trust-ad\n"},
		{"default bridge with ipv6", false, true, DNSConfig{}, "nameserver 10.0.0.2\nnameserver fd00::53\nsearch a.example b.example\noptions edns0 trust-ad\n"},
		{"flags replace", false, false, DNSConfig{Servers: []string{"1.1.1.1"}, Search: []string{"c.example"}, Options: []string{"ndots:2"}}, "nameserver 1.1.1.1\nsearch c.example\noptions ndots:2\n"},
		{"embedded", true, false, DNSConfig{Servers: []string{"1.1.1.1"}}, "nameserver 127.0.0.11\nsearch a.example b.example\noptions edns0 trust-ad ndots:0\n"},
		{"embedded keeps ndots", true, false, DNSConfig{Options: []string{"ndots:3"}, Search: []string{"."}}, "nameserver 127.0.0.11\noptions ndots:3\n"},
	} {
		if got := string(BuildResolvConf(host, c.embedded, c.ipv6, c.cfg)); got != c.want {
			t.Errorf("%s:\ngot  %q\nwant %q", c.name, got, c.want)
		}
	}
	if got := string(BuildResolvConf([]byte("nameserver 127.0.0.1\n"), false, false, DNSConfig{})); got != "nameserver 8.8.8.8\nnameserver 8.8.4.4\n" {
		t.Errorf("fallback: %q", got)
	}
}

func TestHosts(t *testing.T) {
	extra, err := ParseExtraHosts([]string{"db:10.0.0.9", "gw:host-gateway", "v6:[fd00::1]", "eq=1.2.3.4"}, netip.MustParseAddr("172.17.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(BuildHosts("h1", "example.org", []netip.Addr{netip.MustParseAddr("172.17.0.2")}, extra,
		[]HostEntry{{IP: netip.MustParseAddr("172.17.0.3"), Names: []string{"alias", "web"}}}))
	want := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n" +
		"10.0.0.9\tdb\n172.17.0.1\tgw\nfd00::1\tv6\n1.2.3.4\teq\n172.17.0.3\talias web\n172.17.0.2\th1.example.org h1\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{"nocolon", "x:notanip", ":1.2.3.4"} {
		if _, err := ParseExtraHosts([]string{bad}, netip.Addr{}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := ParseExtraHosts([]string{"x:host-gateway"}, netip.Addr{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("host-gateway without a bridge: %v", err)
	}
}

func query(t *testing.T, name string, typ dnsmessage.Type) []byte {
	m := dnsmessage.Message{Header: dnsmessage.Header{ID: 42, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}}}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAnswerQuery(t *testing.T) {
	v := dnsView{
		names:      map[string][]netip.Addr{"web": {netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")}},
		ptr:        map[netip.Addr]string{netip.MustParseAddr("10.0.0.2"): "web.app."},
		canForward: true, upstreams: []netip.AddrPort{netip.MustParseAddrPort("10.255.255.53:53")},
	}
	check := func(name string, typ dnsmessage.Type, v dnsView, wantRC dnsmessage.RCode, wantForward bool, want ...string) {
		t.Helper()
		resp, fwd := answerQuery(query(t, name, typ), v)
		if fwd != wantForward {
			t.Fatalf("%s: forward=%v", name, fwd)
		}
		if fwd {
			return
		}
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil {
			t.Fatal(err)
		}
		if m.ID != 42 || !m.Response || m.RCode != wantRC {
			t.Fatalf("%s: header %+v", name, m.Header)
		}
		var got []string
		for _, a := range m.Answers {
			switch r := a.Body.(type) {
			case *dnsmessage.AResource:
				got = append(got, netip.AddrFrom4(r.A).String())
			case *dnsmessage.AAAAResource:
				got = append(got, netip.AddrFrom16(r.AAAA).String())
			case *dnsmessage.PTRResource:
				got = append(got, r.PTR.String())
			}
			if a.Header.TTL != dnsTTL {
				t.Fatalf("ttl %d", a.Header.TTL)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s %v: got %v, want %v", name, typ, got, want)
		}
	}
	check("web.", dnsmessage.TypeA, v, dnsmessage.RCodeSuccess, false, "10.0.0.2")
	check("WEB.", dnsmessage.TypeAAAA, v, dnsmessage.RCodeSuccess, false, "fd00::2")
	check("web.", dnsmessage.TypeMX, v, dnsmessage.RCodeSuccess, false)
	check("2.0.0.10.in-addr.arpa.", dnsmessage.TypePTR, v, dnsmessage.RCodeSuccess, false, "web.app.")
	check("nope.", dnsmessage.TypeA, v, dnsmessage.RCodeNameError, false)
	check("example.com.", dnsmessage.TypeA, v, 0, true)
	check("9.0.0.10.in-addr.arpa.", dnsmessage.TypePTR, v, 0, true)
	internal := v
	internal.canForward = false
	check("example.com.", dnsmessage.TypeA, internal, dnsmessage.RCodeNameError, false)
	noUp := v
	noUp.upstreams = nil
	check("example.com.", dnsmessage.TypeA, noUp, dnsmessage.RCodeServerFailure, false)
	if resp, fwd := answerQuery([]byte{1, 2, 3}, v); resp != nil || fwd {
		t.Fatal("garbage answered")
	}
	if a, ok := ptrAddr("2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa"); !ok || a.String() != "fd00::2" {
		t.Fatalf("ip6.arpa: %v %v", a, ok)
	}
}

func TestBuildRules(t *testing.T) {
	app := &netState{cfg: Network{Name: "app", Bridge: "br-app", Subnets: []Subnet{{Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1")}}},
		eps: map[string]*EndpointInfo{"c": {ContainerID: "c", IPv4: netip.MustParsePrefix("10.0.0.2/24"),
			Ports: []PortBinding{{Proto: "tcp", ContainerPort: 80, HostPort: 8080}, {Proto: "udp", ContainerPort: 53, HostPort: 53, HostIP: netip.MustParseAddr("127.0.0.1")}}}}}
	priv := &netState{cfg: Network{Name: "priv", Bridge: "br-priv", Internal: true, Subnets: []Subnet{{Subnet: netip.MustParsePrefix("10.1.0.0/24")}}}, eps: map[string]*EndpointInfo{}}
	count := map[string]int{}
	var dnats int
	for _, r := range buildRules(false, []*netState{app, priv}) {
		count[r.chain]++
		for _, e := range r.exprs {
			if n, ok := e.(*expr.NAT); ok && n.Type == expr.NATTypeDestNAT {
				dnats++
			}
		}
	}
	// postrouting: app masquerade + 2×hairpin + 2×loopback (priv has no masquerade)
	// forward: 2 internal + dnat accept + 2 isolation
	if count["ports"] != 2 || dnats != 2 || count["postrouting"] != 5 || count["forward"] != 5 || count["prerouting"] != 1 || count["output"] != 1 {
		t.Fatalf("rules per chain: %v, dnat %d", count, dnats)
	}
	if len(buildRules(true, []*netState{app})) != 3 { // pre/output jumps + ct-dnat accept only
		t.Fatalf("v6 rules for a v4-only network: %d", len(buildRules(true, []*netState{app})))
	}
}

func TestErrorsClassified(t *testing.T) {
	_, err := parseSubnets([]SubnetRequest{{Subnet: "x"}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatal(err)
	}
}

// TestForwardQuery relays unknown dotted names to an upstream (a fake
// resolver on loopback), over UDP and TCP, and answers SERVFAIL when no
// upstream answers.
func TestForwardQuery(t *testing.T) {
	answer := func(req []byte) []byte {
		var m dnsmessage.Message
		if err := m.Unpack(req); err != nil {
			return nil
		}
		m.Response = true
		m.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: m.Questions[0].Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5},
			Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, 99}}}}
		b, _ := m.Pack()
		return b
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(answer(buf[:n]), from)
		}
	}()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Skipf("tcp port %d taken: %v", port, err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if req, err := readTCPMsg(c); err == nil {
				_ = writeTCPMsg(c, answer(req))
			}
			c.Close()
		}
	}()
	up := []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))}
	for _, tcp := range []bool{false, true} {
		resp := forwardQuery(query(t, "example.com.", dnsmessage.TypeA), up, tcp)
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil || len(m.Answers) != 1 || m.ID != 42 {
			t.Fatalf("tcp=%v: %v %+v", tcp, err, m)
		}
	}
	// nobody listening: no answer, and the caller turns that into SERVFAIL
	dead := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}
	if resp := forwardQuery(query(t, "example.com.", dnsmessage.TypeA), dead, true); resp != nil {
		t.Fatal("answer from a dead upstream")
	}
	var m dnsmessage.Message
	if err := m.Unpack(errorReply(query(t, "example.com.", dnsmessage.TypeA), dnsmessage.RCodeServerFailure)); err != nil || m.RCode != dnsmessage.RCodeServerFailure || m.ID != 42 {
		t.Fatalf("servfail: %v %+v", err, m.Header)
	}
}

func TestBindingsFromAPI(t *testing.T) {
	got, err := BindingsFromAPI(map[string][]HostBinding{
		"80/tcp": {{HostPort: "8080"}, {HostIP: "127.0.0.1", HostPort: "8000-8010"}},
		"53/udp": {{}},
		"9000":   nil,
	}, true, []string{"80/tcp", "443/tcp", "53/udp"})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, fmt.Sprintf("%s/%d %v %d-%d", p.Proto, p.ContainerPort, p.HostIP, p.HostPort, p.HostPortEnd))
	}
	want := "udp/53 invalid IP 0-0,tcp/80 invalid IP 8080-0,tcp/80 127.0.0.1 8000-8010,tcp/9000 invalid IP 0-0,tcp/443 invalid IP 0-0"
	if strings.Join(s, ",") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(s, ","), want)
	}
	for _, bad := range []map[string][]HostBinding{{"x/tcp": nil}, {"80/sctp": nil}, {"80/tcp": {{HostPort: "x"}}}, {"80/tcp": {{HostIP: "nope"}}}} {
		if _, err := BindingsFromAPI(bad, false, nil); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	pm := PortMap([]EndpointInfo{{Ports: []PortBinding{{Proto: "tcp", ContainerPort: 80, HostPort: 8080}, {Proto: "udp", ContainerPort: 53, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5353}}}}, []string{"443/tcp"})
	if fmt.Sprint(pm) != "map[443/tcp:[] 53/udp:[{127.0.0.1 5353}] 80/tcp:[{0.0.0.0 8080}]]" {
		t.Fatalf("PortMap: %v", pm)
	}
}

func TestUsage(t *testing.T) {
	s4 := Subnet{Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"), IPRange: netip.MustParsePrefix("10.0.0.128/25")}
	s6 := Subnet{Subnet: netip.MustParsePrefix("fd00::/64"), Gateway: netip.MustParseAddr("fd00::1")}
	p := newPool()
	for _, a := range []string{"10.0.0.128", "10.0.0.5", "fd00::2"} {
		p.taken[netip.MustParseAddr(a)] = "c"
	}
	m := &Manager{nets: map[string]*netState{"n1": {cfg: Network{ID: "n1", Name: "n", EnableIPv6: true, Subnets: []Subnet{s4, s6}}, pool: p}}}
	got, err := m.Usage(context.Background(), "n")
	if err != nil {
		t.Fatal(err)
	}
	// 10.0.0.0, .1 (gateway), .255 (broadcast), .5, .128 are not free; of
	// the range's 128 addresses .128 and .255 are taken.
	want := []SubnetUsage{{s4.Subnet, 5, 126}, {s6.Subnet, 3, ^uint64(0)}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Usage = %+v, want %+v", got, want)
	}
	// A /16 with nothing allocated: docker's example, 3 in use, 65533 free.
	m.nets["n1"].cfg.Subnets = []Subnet{{Subnet: netip.MustParsePrefix("172.16.0.0/16"), Gateway: netip.MustParseAddr("172.16.0.1")}}
	m.nets["n1"].pool = newPool()
	if got, _ := m.Usage(context.Background(), "n1"); len(got) != 1 || got[0].InUse != 3 || got[0].Available != 65533 {
		t.Fatalf("empty /16: %+v", got)
	}
}
