package network

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/net/dns/dnsmessage"
)

// The root tests build a throwaway "host" namespace (with an ext0 address
// 10.99.0.1 playing the host's non-loopback address, and an "outside"
// namespace behind 10.98.0.1 playing the internet) and run the manager in it
// through Config.HostNetns, so all traffic stays in namespaces the tests
// create and the real host's firewall (dockerd's) is not involved.

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, bridges, veths and nftables tables")
	}
	if _, err := os.Stat("/proc/sys/net/ipv4/ip_forward"); err != nil {
		t.Skip("needs /proc/sys/net")
	}
}

type testEnv struct {
	t       testing.TB
	dir     string
	hostNS  string
	outside string
	db      *bolt.DB
	resolv  string
}

func newEnv(t testing.TB) *testEnv {
	needRoot(t)
	ctx := context.Background()
	dir := t.TempDir()
	e := &testEnv{t: t, dir: dir, hostNS: filepath.Join(dir, "hostns"), outside: filepath.Join(dir, "outside")}
	must(t, NewNamespace(ctx, e.hostNS))
	t.Cleanup(func() { _ = RemoveNamespace(e.hostNS) })
	must(t, NewNamespace(ctx, e.outside))
	t.Cleanup(func() { _ = RemoveNamespace(e.outside) })
	hh := nsHandle(t, e.hostNS)
	// (no dummy module here: a veth pair with a free end plays the NIC)
	must(t, hh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ext0"}, PeerName: "ext1"}))
	ext, err := hh.LinkByName("ext0")
	must(t, err)
	must(t, hh.AddrAdd(ext, mustAddr("10.99.0.1/24")))
	must(t, hh.LinkSetUp(ext))
	ons, err := netns.GetFromPath(e.outside)
	must(t, err)
	defer ons.Close()
	must(t, hh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wan0"}, PeerName: "wan0", PeerNamespace: netlink.NsFd(ons)}))
	wan, err := hh.LinkByName("wan0")
	must(t, err)
	must(t, hh.AddrAdd(wan, mustAddr("10.98.0.1/24")))
	must(t, hh.LinkSetUp(wan))
	oh := nsHandle(t, e.outside)
	ow, err := oh.LinkByName("wan0")
	must(t, err)
	must(t, oh.AddrAdd(ow, mustAddr("10.98.0.2/24")))
	must(t, oh.LinkSetUp(ow))

	e.db, err = bolt.Open(filepath.Join(dir, "meta.db"), 0o600, nil)
	must(t, err)
	t.Cleanup(func() { e.db.Close() })
	e.resolv = filepath.Join(dir, "resolv.conf")
	must(t, os.WriteFile(e.resolv, []byte("nameserver 127.0.0.53\nsearch example.org\noptions edns0\n"), 0o644))
	return e
}

func (e *testEnv) manager(defaultBridge string) *Manager {
	e.t.Helper()
	m, err := New(context.Background(), Config{DB: e.db, HostNetns: e.hostNS, DefaultBridge: defaultBridge, ResolvConf: e.resolv, ExecRoot: e.dir})
	must(e.t, err)
	return m
}

// container makes a namespace standing in for a container.
func (e *testEnv) container(name string) string {
	p := filepath.Join(e.dir, "ctr-"+name)
	must(e.t, NewNamespace(context.Background(), p))
	e.t.Cleanup(func() { _ = RemoveNamespace(p) })
	return p
}

func nsHandle(t testing.TB, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	must(t, err)
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	must(t, err)
	t.Cleanup(h.Close)
	return h
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustAddr(s string) *netlink.Addr {
	a, err := netlink.ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

// serve runs a TCP (or UDP) server in the namespace at path that answers
// every line (datagram) with "<tag> <peer address>".
func serve(t testing.TB, path, network, addr, tag string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	must(t, InNamespace(path, func() (err error) {
		if network == "udp" {
			pc, err = net.ListenPacket("udp", addr)
		} else {
			ln, err = net.Listen("tcp", addr)
		}
		return err
	}))
	if pc != nil {
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 1500)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo([]byte(tag+" "+from.(*net.UDPAddr).IP.String()), from)
			}
		}()
		return
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
					return
				}
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				fmt.Fprintf(c, "%s %s\n", tag, host)
			}()
		}
	}()
}

// call dials addr from the namespace at path and returns the reply.
func call(path, network, addr string) (string, error) {
	var out string
	err := InNamespace(path, func() error {
		c, err := net.DialTimeout(network, addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(c, "hi\n"); err != nil {
			return err
		}
		buf := make([]byte, 200)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		out = strings.TrimSpace(string(buf[:n]))
		return nil
	})
	return out, err
}

func expectReply(t *testing.T, path, network, addr, want string) {
	t.Helper()
	got, err := call(path, network, addr)
	if err != nil {
		t.Fatalf("%s %s from %s: %v", network, addr, filepath.Base(path), err)
	}
	if want != "" && got != want {
		t.Fatalf("%s %s from %s: got %q, want %q", network, addr, filepath.Base(path), got, want)
	}
}

func expectNoReply(t *testing.T, path, network, addr string) {
	t.Helper()
	if got, err := call(path, network, addr); err == nil {
		t.Fatalf("%s %s from %s: reached (%q), want no connectivity", network, addr, filepath.Base(path), got)
	}
}

// lookup sends one DNS query to 127.0.0.11 from inside the namespace.
func lookup(t testing.TB, path, name string, typ dnsmessage.Type) (dnsmessage.RCode, []string) {
	t.Helper()
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: 7, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name + "."), Type: typ, Class: dnsmessage.ClassINET}}}
	req, err := q.Pack()
	must(t, err)
	var resp []byte
	must(t, InNamespace(path, func() error {
		c, err := net.Dial("udp", "127.0.0.11:53")
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write(req); err != nil {
			return err
		}
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		resp = buf[:n]
		return err
	}))
	var msg dnsmessage.Message
	must(t, msg.Unpack(resp))
	var out []string
	for _, a := range msg.Answers {
		switch r := a.Body.(type) {
		case *dnsmessage.AResource:
			out = append(out, netip.AddrFrom4(r.A).String())
		case *dnsmessage.AAAAResource:
			out = append(out, netip.AddrFrom16(r.AAAA).String())
		case *dnsmessage.PTRResource:
			out = append(out, r.PTR.String())
		}
	}
	return msg.RCode, out
}

// lookupTCP is lookup over TCP (A records).
func lookupTCP(t testing.TB, path, name string) (dnsmessage.RCode, []string) {
	t.Helper()
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: 9, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	req, err := q.Pack()
	must(t, err)
	var resp []byte
	must(t, InNamespace(path, func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.11:53", 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if err := writeTCPMsg(c, req); err != nil {
			return err
		}
		resp, err = readTCPMsg(c)
		return err
	}))
	var msg dnsmessage.Message
	must(t, msg.Unpack(resp))
	var out []string
	for _, a := range msg.Answers {
		if r, ok := a.Body.(*dnsmessage.AResource); ok {
			out = append(out, netip.AddrFrom4(r.A).String())
		}
	}
	return msg.RCode, out
}

func hostState(t testing.TB, path string) (links []string, tables string) {
	t.Helper()
	h := nsHandle(t, path)
	ls, err := h.LinkList()
	must(t, err)
	for _, l := range ls {
		if (l.Type() == "bridge" || l.Type() == "veth") && !strings.HasPrefix(l.Attrs().Name, "ext") && l.Attrs().Name != "wan0" {
			links = append(links, l.Attrs().Name)
		}
	}
	out, err := exec.Command("nsenter", "--net="+path, "nft", "list", "tables").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables: %v: %s", err, out)
	}
	return links, string(out)
}

func TestBridgeEndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m := e.manager("berth0")
	defer func() { m.Close() }()

	def, err := m.Get(ctx, "bridge")
	must(t, err)
	if !def.Default || def.Bridge != "berth0" || def.Subnets[0].Subnet.String() != "172.17.0.0/16" {
		t.Fatalf("default network: %+v", def)
	}
	app, err := m.CreateNetwork(ctx, CreateOptions{Name: "app", Subnets: []SubnetRequest{{Subnet: "10.50.0.0/24", IPRange: "10.50.0.128/25"}}, Labels: map[string]string{"a": "b"}})
	must(t, err)
	other, err := m.CreateNetwork(ctx, CreateOptions{Name: "other"})
	must(t, err)
	if other.Subnets[0].Subnet.String() != "172.18.0.0/16" {
		t.Fatalf("second pool: got %s, want 172.18.0.0/16", other.Subnets[0].Subnet)
	}
	internal, err := m.CreateNetwork(ctx, CreateOptions{Name: "priv", Internal: true, Options: map[string]string{"com.docker.network.bridge.name": "brpriv"}})
	must(t, err)
	if internal.Bridge != "brpriv" {
		t.Fatalf("bridge name option ignored: %s", internal.Bridge)
	}

	web, db, iso, sec, bridged := e.container("web"), e.container("db"), e.container("iso"), e.container("sec"), e.container("bridged")
	webEP, err := m.Connect(ctx, "app", Endpoint{ContainerID: "c-web-0123456789", Name: "web", Aliases: []string{"www"}, NetnsPath: web,
		Ports: []PortBinding{{ContainerPort: 80, HostPort: 8080}, {Proto: "udp", ContainerPort: 5000, HostPort: 5353}, {ContainerPort: 81}}})
	must(t, err)
	if webEP.IPv4.String() != "10.50.0.128/24" || webEP.IfName != "eth0" || webEP.Gateway.String() != "10.50.0.1" || webEP.MAC != "02:42:0a:32:00:80" {
		t.Fatalf("web endpoint: %+v", webEP)
	}
	if webEP.Ports[2].HostPort == 0 {
		t.Fatal("random host port not resolved")
	}
	dbEP, err := m.Connect(ctx, app.ID[:6], Endpoint{ContainerID: "c-db-0123456789", Name: "db", NetnsPath: db, IPv4: "10.50.0.200",
		Links: []Link{{Name: "web", Alias: "frontend"}}})
	must(t, err)
	if dbEP.IPv4.Addr().String() != "10.50.0.200" {
		t.Fatalf("requested --ip: %+v", dbEP)
	}
	if _, err := m.Connect(ctx, "app", Endpoint{ContainerID: "c-x", NetnsPath: iso, IPv4: "10.50.0.200"}); err == nil || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("duplicate --ip: %v", err)
	}
	_, err = m.Connect(ctx, "other", Endpoint{ContainerID: "c-iso", Name: "iso", NetnsPath: iso})
	must(t, err)
	_, err = m.Connect(ctx, "priv", Endpoint{ContainerID: "c-sec", Name: "sec", NetnsPath: sec})
	must(t, err)
	brEP, err := m.Connect(ctx, "bridge", Endpoint{ContainerID: "c-bridged", Name: "bridged", NetnsPath: bridged, Ports: []PortBinding{{ContainerPort: 80, HostPort: 8081}}})
	must(t, err)
	// Port conflicts: berth's own, and a host process's.
	if _, err := m.Connect(ctx, "bridge", Endpoint{ContainerID: "c-dup", NetnsPath: e.container("dup"), Ports: []PortBinding{{ContainerPort: 80, HostPort: 8080}}}); err == nil || !strings.Contains(err.Error(), "port is already allocated") {
		t.Fatalf("port taken by berth: %v", err)
	}
	serve(t, e.hostNS, "tcp", "0.0.0.0:9090", "hostsvc")
	if _, err := m.Connect(ctx, "bridge", Endpoint{ContainerID: "c-dup", NetnsPath: e.container("dup2"), Ports: []PortBinding{{ContainerPort: 80, HostPort: 9090}}}); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("port taken by a host process: %v", err)
	}
	if eps := m.ContainerEndpoints(ctx, "c-dup"); len(eps) != 0 {
		t.Fatalf("failed connect left endpoints: %+v", eps)
	}

	serve(t, web, "tcp", ":80", "web")
	serve(t, web, "tcp", ":81", "web81")
	serve(t, web, "udp", ":5000", "webudp")
	serve(t, db, "udp", ":53", "db-own-dns") // port 53 stays the container's
	serve(t, db, "tcp", ":53", "db-own-dns")
	serve(t, db, "tcp", ":5432", "db")
	serve(t, iso, "tcp", ":80", "iso")
	serve(t, bridged, "tcp", ":80", "bridged")
	serve(t, e.outside, "tcp", ":7000", "outside")

	t.Run("container to container by IP and name", func(t *testing.T) {
		expectReply(t, db, "tcp", "10.50.0.128:80", "web 10.50.0.200")
		for _, name := range []string{"web", "www", "WEB", "web.app", "frontend", "c-web-012345"} {
			rc, addrs := lookup(t, db, name, dnsmessage.TypeA)
			if rc != dnsmessage.RCodeSuccess || len(addrs) != 1 || addrs[0] != "10.50.0.128" {
				t.Fatalf("lookup %s from db: %v %v", name, rc, addrs)
			}
		}
		if got, err := call(db, "udp", "10.50.0.200:53"); err != nil || got != "db-own-dns 10.50.0.128" && !strings.HasPrefix(got, "db-own-dns") {
			t.Fatalf("container's own :53: %q %v", got, err)
		}
		if rc, addrs := lookupTCP(t, db, "web"); rc != dnsmessage.RCodeSuccess || len(addrs) != 1 || addrs[0] != "10.50.0.128" {
			t.Fatalf("lookup over TCP: %v %v", rc, addrs)
		}
		// link aliases belong to the linking container only
		if rc, _ := lookup(t, web, "frontend", dnsmessage.TypeA); rc != dnsmessage.RCodeNameError {
			t.Fatalf("link alias visible to another container: %v", rc)
		}
		if rc, _ := lookup(t, web, "nosuchthing", dnsmessage.TypeA); rc != dnsmessage.RCodeNameError {
			t.Fatalf("unknown name: %v", rc)
		}
		if rc, _ := lookup(t, web, "iso", dnsmessage.TypeA); rc != dnsmessage.RCodeNameError {
			t.Fatalf("name on another network resolved: %v", rc)
		}
		if rc, addrs := lookup(t, web, "200.0.50.10.in-addr.arpa", dnsmessage.TypePTR); rc != dnsmessage.RCodeSuccess || len(addrs) != 1 || addrs[0] != "db.app." {
			t.Fatalf("PTR: %v %v", rc, addrs)
		}
		// and by name through the resolver path: 127.0.0.11 over TCP
		expectReply(t, web, "tcp", "10.50.0.200:5432", "db 10.50.0.128")
	})
	t.Run("isolation between networks", func(t *testing.T) {
		expectNoReply(t, web, "tcp", "172.18.0.2:80")
		expectNoReply(t, iso, "tcp", "10.50.0.128:80")
	})
	t.Run("egress and internal", func(t *testing.T) {
		expectReply(t, web, "tcp", "10.98.0.2:7000", "outside 10.98.0.1") // masqueraded
		expectReply(t, bridged, "tcp", "10.98.0.2:7000", "outside 10.98.0.1")
		expectNoReply(t, sec, "tcp", "10.98.0.2:7000")
		// even with a route forced in, the firewall drops it
		sh := nsHandle(t, sec)
		l, err := sh.LinkByName("eth0")
		must(t, err)
		must(t, sh.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.IP(internal.Subnets[0].Gateway.AsSlice())}))
		expectNoReply(t, sec, "tcp", "10.98.0.2:7000")
		if rc, _ := lookup(t, sec, "example.com", dnsmessage.TypeA); rc != dnsmessage.RCodeNameError {
			t.Fatalf("internal network forwarded a query: %v", rc)
		}
	})
	t.Run("published ports from the host", func(t *testing.T) {
		out, err := exec.Command("nsenter", "--net="+e.hostNS, "nft", "list", "chain", "ip", "berth", "ports").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "dnat to 10.50.0.128:80 comment \""+app.ID+"/c-web-0123456789\"") {
			t.Fatalf("ports chain: %v\n%s", err, out)
		}
		expectReply(t, e.hostNS, "tcp", "127.0.0.1:8080", "")
		expectReply(t, e.hostNS, "tcp", "10.99.0.1:8080", "web 10.99.0.1")
		expectReply(t, e.hostNS, "tcp", fmt.Sprintf("10.99.0.1:%d", webEP.Ports[2].HostPort), "web81 10.99.0.1")
		expectReply(t, e.hostNS, "udp", "10.99.0.1:5353", "webudp 10.99.0.1")
		expectReply(t, e.hostNS, "udp", "127.0.0.1:5353", "")
		expectReply(t, e.hostNS, "tcp", "127.0.0.1:8081", "")
		_ = brEP
	})
	t.Run("published ports from containers (hairpin)", func(t *testing.T) {
		expectReply(t, web, "tcp", "10.99.0.1:8080", "web 10.50.0.1") // its own port
		expectReply(t, db, "tcp", "10.99.0.1:8080", "web 10.50.0.1")
		expectReply(t, bridged, "tcp", "10.99.0.1:8080", "")
		expectReply(t, web, "tcp", "10.99.0.1:8081", "")
	})
	t.Run("second network, default route moves on disconnect", func(t *testing.T) {
		multi := e.container("multi")
		_, err := m.Connect(ctx, "priv", Endpoint{ContainerID: "c-multi", Name: "multi", NetnsPath: multi})
		must(t, err)
		ep2, err := m.Connect(ctx, "other", Endpoint{ContainerID: "c-multi", Name: "multi", NetnsPath: multi})
		must(t, err)
		if ep2.IfName != "eth1" || !ep2.DefaultGW {
			t.Fatalf("second endpoint of an internal-only container: %+v", ep2)
		}
		serve(t, multi, "tcp", ":82", "multi")
		expectReply(t, iso, "tcp", net.JoinHostPort(ep2.IPv4.Addr().String(), "82"), "multi 172.18.0.2")
		expectReply(t, multi, "tcp", "10.98.0.2:7000", "outside 10.98.0.1")
		must(t, m.DisconnectAll(ctx, "c-multi"))
		// web: app (eth0, default route) + other (eth1); drop app → eth1 routes
		_, err = m.Connect(ctx, "other", Endpoint{ContainerID: "c-web-0123456789", Name: "web", NetnsPath: web})
		must(t, err)
		must(t, m.Disconnect(ctx, "app", "c-web-0123456789"))
		expectReply(t, web, "tcp", "10.98.0.2:7000", "outside 10.98.0.1")
		must(t, m.Disconnect(ctx, "other", "c-web-0123456789"))
		webEP, err = m.Connect(ctx, "app", Endpoint{ContainerID: "c-web-0123456789", Name: "web", Aliases: []string{"www"}, NetnsPath: web,
			Ports: []PortBinding{{ContainerPort: 80, HostPort: 8080}, {Proto: "udp", ContainerPort: 5000, HostPort: 5353}, {ContainerPort: 81, HostPort: webEP.Ports[2].HostPort}}, IPv4: "10.50.0.128"})
		must(t, err)
	})
	t.Run("container to host service", func(t *testing.T) {
		expectReply(t, web, "tcp", "10.50.0.1:9090", "hostsvc 10.50.0.128")
		expectReply(t, bridged, "tcp", "10.99.0.1:9090", "hostsvc "+brEP.IPv4.Addr().String())
	})
	t.Run("files", func(t *testing.T) {
		rc, err := m.ResolvConf(ctx, "c-web-0123456789", DNSConfig{})
		must(t, err)
		if string(rc) != "nameserver 127.0.0.11\nsearch example.org\noptions edns0 ndots:0\n" {
			t.Fatalf("user network resolv.conf:\n%s", rc)
		}
		rc, err = m.ResolvConf(ctx, "c-bridged", DNSConfig{})
		must(t, err)
		if string(rc) != "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch example.org\noptions edns0\n" {
			t.Fatalf("default bridge resolv.conf:\n%s", rc)
		}
		h, err := m.Hosts(ctx, "c-web-0123456789", HostsConfig{Hostname: "webhost", ExtraHosts: []string{"gw:host-gateway"}})
		must(t, err)
		if !strings.Contains(string(h), "172.17.0.1\tgw\n") || !strings.HasSuffix(string(h), "10.50.0.128\twebhost\n") {
			t.Fatalf("hosts:\n%s", h)
		}
	})

	// Restart: a new manager over the same store keeps addresses, ports, DNS,
	// and deletes a veth on its bridges that no endpoint owns (a crash
	// between creating a veth and storing its endpoint).
	m.Close()
	hh := nsHandle(t, e.hostNS)
	br0, err := hh.LinkByName("berth0")
	must(t, err)
	must(t, hh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vethstray", MasterIndex: br0.Attrs().Index}, PeerName: "vethstray1"}))
	m = e.manager("berth0")
	if _, err := hh.LinkByName("vethstray"); err == nil {
		t.Fatal("stray veth survived the restart")
	}
	if eps := m.ContainerEndpoints(ctx, "c-web-0123456789"); len(eps) != 1 || eps[0].IPv4 != webEP.IPv4 || len(eps[0].Ports) != 3 || eps[0].Ports[2] != webEP.Ports[2] {
		t.Fatalf("after restart: %+v", eps)
	}
	expectReply(t, e.hostNS, "tcp", "10.99.0.1:8080", "web 10.99.0.1")
	expectReply(t, e.hostNS, "tcp", "127.0.0.1:8080", "")
	if rc, addrs := lookup(t, db, "web", dnsmessage.TypeA); rc != dnsmessage.RCodeSuccess || len(addrs) != 1 {
		t.Fatalf("DNS after restart: %v %v", rc, addrs)
	}
	if _, err := m.Connect(ctx, "bridge", Endpoint{ContainerID: "c-dup3", NetnsPath: e.container("dup3"), Ports: []PortBinding{{ContainerPort: 80, HostPort: 8080}}}); err == nil {
		t.Fatal("published port not re-reserved after restart")
	}
	late, err := m.Connect(ctx, "app", Endpoint{ContainerID: "c-late", Name: "late", NetnsPath: e.container("late")})
	must(t, err)
	if late.IPv4 == webEP.IPv4 || late.IPv4 == dbEP.IPv4 {
		t.Fatalf("address handed out twice after restart: %s", late.IPv4)
	}

	// Bad input.
	if err := m.RemoveNetwork(ctx, "app"); err == nil || !strings.Contains(err.Error(), "has active endpoints") {
		t.Fatalf("remove busy network: %v", err)
	}
	if _, err := m.Connect(ctx, "nope", Endpoint{ContainerID: "x", NetnsPath: web}); err == nil || err.Error() != "network nope not found: not found" {
		t.Fatalf("connect to missing network: %v", err)
	}
	if _, err := m.CreateNetwork(ctx, CreateOptions{Name: "overlap", Subnets: []SubnetRequest{{Subnet: "10.50.0.0/16"}}}); err == nil || !strings.Contains(err.Error(), "Pool overlaps with other one on this address space") {
		t.Fatalf("overlap: %v", err)
	}
	// prune removes only unused user networks
	_, err = m.CreateNetwork(ctx, CreateOptions{Name: "unused", Options: map[string]string{"com.docker.network.driver.mtu": "1400"}})
	must(t, err)
	if l, err := nsHandle(t, e.hostNS).LinkByName(mustGet(t, m, "unused").Bridge); err != nil || l.Attrs().MTU != 1400 {
		t.Fatalf("mtu option: %v %v", err, l)
	}
	if pruned, err := m.Prune(ctx, nil); err != nil || strings.Join(pruned, ",") != "unused" {
		t.Fatalf("prune: %v %v", pruned, err)
	}
	// a foreign device is never adopted (nor deleted with the network)
	if _, err := m.CreateNetwork(ctx, CreateOptions{Name: "steal", Options: map[string]string{"com.docker.network.bridge.name": "ext0"}}); err == nil || !strings.Contains(err.Error(), "already in use on the host") {
		t.Fatalf("adopted ext0: %v", err)
	}
	if _, err := nsHandle(t, e.hostNS).LinkByName("ext0"); err != nil {
		t.Fatalf("ext0 gone: %v", err)
	}

	// Tear down: nothing of berth's may remain in the host namespace
	// except the default bridge (like docker0).
	for _, c := range []string{"c-web-0123456789", "c-db-0123456789", "c-iso", "c-sec", "c-bridged", "c-late"} {
		must(t, m.DisconnectAll(ctx, c))
	}
	// published-port rules went with their endpoints (no rebuild since)
	if out, err := exec.Command("nsenter", "--net="+e.hostNS, "nft", "list", "chain", "ip", "berth", "ports").CombinedOutput(); err != nil || strings.Contains(string(out), "dnat") {
		t.Fatalf("ports chain after disconnects: %v\n%s", err, out)
	}
	for _, n := range []string{"app", "other", "priv"} {
		must(t, m.RemoveNetwork(ctx, n))
	}
	links, tables := hostState(t, e.hostNS)
	if strings.Join(links, ",") != "berth0" {
		t.Fatalf("links left: %v", links)
	}
	if strings.Count(tables, "berth") != 1 {
		t.Fatalf("tables: %s", tables)
	}
	m.Close()
	// And without a default bridge, nothing at all.
	db2, err := bolt.Open(filepath.Join(e.dir, "meta2.db"), 0o600, nil)
	must(t, err)
	defer db2.Close()
	must(t, m.deleteBridgeForTest("berth0"))
	m2, err := New(ctx, Config{DB: db2, HostNetns: e.hostNS, DefaultBridge: "none", ResolvConf: e.resolv})
	must(t, err)
	defer m2.Close()
	n6, err := m2.CreateNetwork(ctx, CreateOptions{Name: "v6", IPv6: true, Subnets: []SubnetRequest{{Subnet: "fd00:beef::/64"}}})
	must(t, err)
	a, b := e.container("v6a"), e.container("v6b")
	ea, err := m2.Connect(ctx, "v6", Endpoint{ContainerID: "a", Name: "a", NetnsPath: a})
	must(t, err)
	_, err = m2.Connect(ctx, "v6", Endpoint{ContainerID: "b", Name: "b", NetnsPath: b})
	must(t, err)
	if !ea.IPv6.IsValid() || ea.IPv6.Addr().String() != "fd00:beef::2" {
		t.Fatalf("IPv6 endpoint: %+v (network %+v)", ea, n6)
	}
	serve(t, a, "tcp", "[::]:80", "v6a")
	expectReply(t, b, "tcp", "[fd00:beef::2]:80", "v6a fd00:beef::3")
	if rc, addrs := lookup(t, b, "a", dnsmessage.TypeAAAA); rc != dnsmessage.RCodeSuccess || len(addrs) != 1 || addrs[0] != "fd00:beef::2" {
		t.Fatalf("AAAA: %v %v", rc, addrs)
	}
	must(t, m2.DisconnectAll(ctx, "a"))
	must(t, m2.DisconnectAll(ctx, "b"))
	must(t, m2.RemoveNetwork(ctx, "v6"))
	links, tables = hostState(t, e.hostNS)
	if len(links) != 0 || strings.Contains(tables, "berth") {
		t.Fatalf("left behind: links %v, tables %q", links, tables)
	}
}

func TestRelease(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m := e.manager("berth0")
	a, b := e.container("a"), e.container("b")
	ea, err := m.Connect(ctx, "bridge", Endpoint{ContainerID: "a", NetnsPath: a, Ports: []PortBinding{{ContainerPort: 80, HostPort: 8080}}})
	must(t, err)
	must(t, m.Release(ctx, "a"))
	if len(m.ContainerEndpoints(ctx, "a")) != 0 {
		t.Fatal("released endpoint still listed")
	}
	// the port is free again at once, the address is not reused
	eb, err := m.Connect(ctx, "bridge", Endpoint{ContainerID: "b", NetnsPath: b, Ports: []PortBinding{{ContainerPort: 80, HostPort: 8080}}})
	must(t, err)
	if eb.IPv4 == ea.IPv4 {
		t.Fatalf("address reused: %s", eb.IPv4)
	}
	m.Close() // waits for the background store update
	m = e.manager("berth0")
	defer m.Close()
	if len(m.ContainerEndpoints(ctx, "a")) != 0 || len(m.ContainerEndpoints(ctx, "b")) != 1 {
		t.Fatalf("after restart: a %v, b %v", m.ContainerEndpoints(ctx, "a"), m.ContainerEndpoints(ctx, "b"))
	}
	// a's veth dies with its namespace
	must(t, RemoveNamespace(a))
	h := nsHandle(t, e.hostNS)
	for i := 0; ; i++ {
		if _, err := h.LinkByName(ea.HostVeth); err != nil {
			break
		}
		if i == 100 {
			t.Fatalf("veth %s outlived its namespace", ea.HostVeth)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustGet(t testing.TB, m *Manager, ref string) Network {
	t.Helper()
	n, err := m.Get(context.Background(), ref)
	must(t, err)
	return n
}

func (m *Manager) deleteBridgeForTest(name string) error {
	h, err := netlink.NewHandle()
	if m.cfg.HostNetns != "" {
		ns, e := netns.GetFromPath(m.cfg.HostNetns)
		if e != nil {
			return e
		}
		defer ns.Close()
		h, err = netlink.NewHandleAt(ns)
	}
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return nil
	}
	return h.LinkDel(l)
}

// A bridge deleted under a running manager (by hand, or by another daemon
// using the same name) is made again by the next connect, with its
// gateway, and the new endpoint reaches the host through it.
func TestBridgeRecreatedWhenMissing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m := e.manager("berth0")
	defer m.Close()
	h := nsHandle(t, e.hostNS)
	br, err := h.LinkByName("berth0")
	must(t, err)
	must(t, h.LinkDel(br))
	a := e.container("a")
	ep, err := m.Connect(ctx, "bridge", Endpoint{ContainerID: "a", NetnsPath: a})
	if err != nil {
		t.Fatalf("connect with the bridge gone: %v", err)
	}
	br, err = h.LinkByName("berth0")
	if err != nil {
		t.Fatalf("bridge not recreated: %v", err)
	}
	addrs, err := h.AddrList(br, netlink.FAMILY_V4)
	must(t, err)
	if len(addrs) != 1 || addrs[0].IP.String() != ep.Gateway.String() {
		t.Fatalf("recreated bridge addresses %v, want gateway %s", addrs, ep.Gateway)
	}
	gw := net.JoinHostPort(ep.Gateway.String(), "7070")
	serve(t, e.hostNS, "tcp", gw, "host")
	expectReply(t, a, "tcp", gw, "host "+ep.IPv4.Addr().String())
}
