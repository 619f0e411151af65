package e2e

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Networking end to end with the docker CLI. This host's docker leaves
// "ip filter FORWARD" with policy drop, which drops forwarded traffic
// between containers and egress whatever berth's own table says (berth
// warns in info); so these tests use what crosses no FORWARD hook: the host
// reaching a published port via 127.0.0.1, and the embedded DNS server's
// answers inside a container (the resolution, not reachability).

func requireNft(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft to check berth's rules")
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet polls url until it answers (the server in the container needs a
// moment to listen).
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := c.Get(url)
		if err != nil {
			lastErr = err
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}

// defaultBridge is the test daemon's default bridge device. A daemon on a
// non-default exec root names its bridge and its nftables table alike
// ("berth-<hash>"), so that concurrent test daemons never share them.
func defaultBridge(d *daemon) string {
	return strings.TrimSpace(d.must("docker", "network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.name"}}`, "bridge"))
}

func nftTable(t *testing.T, br string) string {
	table := br
	if br == "berth0" {
		table = "berth"
	}
	out, _ := exec.Command("nft", "list", "table", "ip", table).CombinedOutput()
	return string(out)
}

func bridgePorts(t *testing.T, br string) string {
	out, _ := exec.Command("ip", "-o", "link", "show", "master", br).CombinedOutput()
	return string(out)
}

const httpdCmd = "mkdir -p /www && echo hello-berth > /www/index.html && exec httpd -f -p 80 -h /www"

func TestNetworkPublishedPortAndRestart(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	requireNft(t)
	d := startDaemon(t)
	d.must("docker", "pull", "-q", bb)
	dbr := defaultBridge(d)

	port := freePort(t)
	id := strings.TrimSpace(d.must("docker", "run", "-d", "--name", "web", "-p", "127.0.0.1:"+strconv.Itoa(port)+":80", bb, "sh", "-c", httpdCmd))
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	if got := httpGet(t, url); strings.TrimSpace(got) != "hello-berth" {
		t.Fatalf("GET %s = %q", url, got)
	}
	if out := d.must("docker", "port", "web"); !strings.Contains(out, "80/tcp -> 127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("docker port: %q", out)
	}
	if out := d.must("docker", "ps", "--format", "{{.Ports}}"); !strings.Contains(out, "127.0.0.1:"+strconv.Itoa(port)+"->80/tcp") {
		t.Fatalf("ps ports: %q", out)
	}
	if out := d.must("docker", "ps", "--filter", "publish="+strconv.Itoa(port), "--filter", "expose=80/tcp", "--filter", "network=bridge", "--format", "{{.Names}}"); strings.TrimSpace(out) != "web" {
		t.Fatalf("ps --filter publish/expose/network: %q", out)
	}
	ip := strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"))
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is4() || !addr.IsPrivate() {
		t.Fatalf("inspect IPAddress %q", ip)
	}
	if nw := d.must("docker", "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}", "web"); strings.TrimSpace(nw) != "bridge="+ip {
		t.Fatalf("inspect Networks: %q", nw)
	}
	if !strings.Contains(nftTable(t, dbr), strconv.Itoa(port)) {
		t.Fatalf("no rule for port %d:\n%s", port, nftTable(t, dbr))
	}
	// -P publishes every EXPOSEd port on a random host port.
	d.must("docker", "run", "-d", "--name", "webp", "--expose", "80", "-P", bb, "sh", "-c", httpdCmd)
	pOut := strings.TrimSpace(d.must("docker", "port", "webp", "80/tcp"))
	_, hp, ok := strings.Cut(strings.Split(pOut, "\n")[0], ":")
	if !ok || hp == "0" {
		t.Fatalf("docker port webp: %q", pOut)
	}
	if got := httpGet(t, "http://127.0.0.1:"+hp+"/"); strings.TrimSpace(got) != "hello-berth" {
		t.Fatalf("-P: GET = %q", got)
	}
	d.must("docker", "rm", "-f", "webp")

	// A host port already taken: a clear error, the container does not run.
	out, err := d.docker("run", "--rm", "-p", "127.0.0.1:"+strconv.Itoa(port)+":80", bb, "true")
	if err == nil || !strings.Contains(out, "already allocated") && !strings.Contains(out, "in use") {
		t.Fatalf("taken port: err=%v\n%s", err, out)
	}

	// A daemon crash and restart keeps the address and the published port.
	d.kill()
	d.start()
	if got := httpGet(t, url); strings.TrimSpace(got) != "hello-berth" {
		t.Fatalf("after restart GET = %q", got)
	}
	if ip2 := strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web")); ip2 != ip {
		t.Fatalf("address after restart %q, was %q", ip2, ip)
	}
	// A new container gets another address.
	out = d.must("docker", "run", "--rm", bb, "ip", "-4", "-o", "addr", "show", "eth0")
	if strings.Contains(out, " "+ip+"/") {
		t.Fatalf("address %s handed out twice:\n%s", ip, out)
	}
	// --network none: loopback only.
	out = d.must("docker", "run", "--rm", "--network", "none", bb, "ip", "-o", "link")
	if strings.Contains(out, "eth0") {
		t.Fatalf("--network none has eth0:\n%s", out)
	}

	// Removal leaves no rule and no veth behind.
	d.must("docker", "rm", "-f", id)
	if tbl := nftTable(t, dbr); strings.Contains(tbl, strconv.Itoa(port)) {
		t.Fatalf("rule for port %d left after removal:\n%s", port, tbl)
	}
	if ports := bridgePorts(t, dbr); strings.TrimSpace(ports) != "" {
		t.Fatalf("veths left on berth0:\n%s", ports)
	}
}

func TestNetworkUserNetworksDNSAndErrors(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	requireNft(t)
	d := startDaemon(t)
	d.must("docker", "pull", "-q", bb)
	dbr := defaultBridge(d)

	d.must("docker", "network", "create", "--subnet", "10.231.0.0/24", "--label", "berth.test=1", "bt-n1")
	if out := d.must("docker", "network", "ls", "--format", "{{.Name}} {{.Driver}}"); !strings.Contains(out, "bt-n1 bridge") || !strings.Contains(out, "bridge bridge") {
		t.Fatalf("network ls:\n%s", out)
	}
	if out := d.must("docker", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", "bt-n1"); strings.TrimSpace(out) != "10.231.0.0/24 10.231.0.1" {
		t.Fatalf("network inspect IPAM: %q", out)
	}
	br := "br-" + strings.TrimSpace(d.must("docker", "network", "inspect", "-f", "{{.ID}}", "bt-n1"))[:12]

	// Errors as docker gives them.
	if out, err := d.docker("network", "create", "--subnet", "10.231.0.128/25", "bt-n2"); err == nil || !strings.Contains(out, "Pool overlaps with other one on this address space") {
		t.Fatalf("overlapping subnet: err=%v\n%s", err, out)
	}
	if out, err := d.docker("network", "create", "bt-n1"); err == nil || !strings.Contains(out, "network with name bt-n1 already exists") {
		t.Fatalf("duplicate name: err=%v\n%s", err, out)
	}
	if out, err := d.docker("run", "--rm", "--network", "bt-missing", bb, "true"); err == nil || !strings.Contains(out, "network bt-missing not found") {
		t.Fatalf("run on a missing network: err=%v\n%s", err, out)
	}

	d.must("docker", "run", "-d", "--name", "other", "--network", "bt-n1", "--network-alias", "dbalias", "--ip", "10.231.0.50", bb, "sleep", "300")
	if ip := strings.TrimSpace(d.must("docker", "inspect", "-f", `{{(index .NetworkSettings.Networks "bt-n1").IPAddress}}`, "other")); ip != "10.231.0.50" {
		t.Fatalf("--ip: inspect shows %q", ip)
	}
	if out := d.must("docker", "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "bt-n1"); strings.TrimSpace(out) != "other 10.231.0.50/24" {
		t.Fatalf("network inspect Containers: %q", out)
	}
	// The embedded DNS server resolves container names and aliases.
	out := d.must("docker", "run", "--rm", "--network", "bt-n1", "--link", "other:lnk", bb, "sh", "-c", "cat /etc/resolv.conf; nslookup other; nslookup dbalias; nslookup lnk")
	if !strings.Contains(out, "nameserver 127.0.0.11") || strings.Count(out, "Address: 10.231.0.50") != 3 {
		t.Fatalf("name resolution on a user network:\n%s", out)
	}
	// --network container:<x> shares x's network and its etc files.
	out = d.must("docker", "run", "--rm", "--network", "container:other", bb, "sh", "-c", "cat /etc/resolv.conf; ip -4 -o addr show eth0")
	if !strings.Contains(out, "nameserver 127.0.0.11") || !strings.Contains(out, "10.231.0.50/24") {
		t.Fatalf("--network container:other:\n%s", out)
	}
	// --dns, --dns-search, --add-host, --hostname on the default bridge.
	out = d.must("docker", "run", "--rm", "--dns", "192.0.2.53", "--dns-search", "example.test", "--add-host", "h1:192.0.2.7", "--hostname", "hh", bb, "sh", "-c", "cat /etc/resolv.conf /etc/hosts; hostname")
	for _, want := range []string{"nameserver 192.0.2.53", "search example.test", "192.0.2.7\th1", "\thh\n", "hh\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("etc files lack %q:\n%s", want, out)
		}
	}

	if out, err := d.docker("network", "rm", "bt-n1"); err == nil || !strings.Contains(out, "has active endpoints") {
		t.Fatalf("removing a network in use: err=%v\n%s", err, out)
	}
	if out, err := d.docker("network", "connect", "bt-missing", "other"); err == nil || !strings.Contains(out, "network bt-missing not found") {
		t.Fatalf("connect to a missing network: err=%v\n%s", err, out)
	}

	// connect/disconnect a running container.
	d.must("docker", "network", "create", "bt-n2")
	d.must("docker", "network", "connect", "--alias", "two", "bt-n2", "other")
	if out := d.must("docker", "exec", "other", "ip", "-o", "link"); !strings.Contains(out, "eth1") {
		t.Fatalf("connect: no eth1:\n%s", out)
	}
	if out := d.must("docker", "inspect", "-f", "{{len .NetworkSettings.Networks}}", "other"); strings.TrimSpace(out) != "2" {
		t.Fatalf("connect: networks %q", out)
	}
	d.must("docker", "network", "disconnect", "bt-n2", "other")
	if out := d.must("docker", "exec", "other", "ip", "-o", "link"); strings.Contains(out, "eth1") {
		t.Fatalf("disconnect: eth1 left:\n%s", out)
	}

	// A created container leaves and rejoins the network of its
	// NetworkMode (docker-compose 1.29 does this to fix up aliases).
	d.must("docker", "create", "--name", "cc", "--network", "bt-n1", bb, "true")
	d.must("docker", "network", "disconnect", "bt-n1", "cc")
	d.must("docker", "network", "connect", "--alias", "ccx", "bt-n1", "cc")
	if out, err := d.docker("network", "connect", "bt-n1", "cc"); err == nil || !strings.Contains(out, "already exists in network bt-n1") {
		t.Fatalf("connect twice: err=%v\n%s", err, out)
	}
	d.must("docker", "rm", "cc")

	// Nothing left after removal.
	d.must("docker", "rm", "-f", "other")
	d.must("docker", "network", "rm", "bt-n1", "bt-n2")
	if out := d.must("docker", "network", "ls", "--format", "{{.Name}}"); strings.Contains(out, "bt-n") {
		t.Fatalf("networks left:\n%s", out)
	}
	if out, _ := exec.Command("ip", "link", "show", br).CombinedOutput(); !strings.Contains(string(out), "does not exist") {
		t.Fatalf("bridge %s left:\n%s", br, out)
	}
	if tbl := nftTable(t, dbr); strings.Contains(tbl, "10.231.0.") || strings.Contains(tbl, br) {
		t.Fatalf("rules of removed network left:\n%s", tbl)
	}
	if out, _ := exec.Command("ip", "-o", "link", "show", "type", "veth").CombinedOutput(); strings.Contains(string(out), "master "+br) {
		t.Fatalf("veths left:\n%s", out)
	}
	if out := d.must("docker", "info", "--format", "{{json .Warnings}}"); strings.Contains(nftForwardPolicy(), "policy drop") && !strings.Contains(out, "FORWARD") {
		t.Fatalf("info lacks the FORWARD warning: %s", out)
	}
	// A test daemon stopping with nothing attached leaves no bridge or table.
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	_ = d.cmd.Wait()
	if dbr != "berth0" {
		if out, _ := exec.Command("ip", "link", "show", dbr).CombinedOutput(); !strings.Contains(string(out), "does not exist") {
			t.Fatalf("default bridge %s left after the daemon stopped:\n%s", dbr, out)
		}
		if tbl := nftTable(t, dbr); strings.Contains(tbl, "chain") {
			t.Fatalf("table %s left after the daemon stopped:\n%s", dbr, tbl)
		}
	}
}

func nftForwardPolicy() string {
	out, _ := exec.Command("nft", "list", "chain", "ip", "filter", "FORWARD").CombinedOutput()
	return string(out)
}
