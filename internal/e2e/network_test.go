package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
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

	// A host port taken by another process: the same, and nothing leaks.
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hl.Close()
	taken := strconv.Itoa(hl.Addr().(*net.TCPAddr).Port)
	tblBefore := nftTable(t, dbr)
	out, err = d.docker("run", "-d", "--name", "taken", "-p", "127.0.0.1:"+taken+":80", bb, "sleep", "300")
	if err == nil || !strings.Contains(out, "address already in use") {
		t.Fatalf("port taken by a host process: err=%v\n%s", err, out)
	}
	if st := d.must("docker", "inspect", "-f", "{{.State.Running}}", "taken"); strings.TrimSpace(st) != "false" {
		t.Fatalf("container with a taken port runs: %s", st)
	}
	if tbl := nftTable(t, dbr); tbl != tblBefore || strings.Contains(tbl, taken) {
		t.Fatalf("rules changed by a failed start:\n%s", tbl)
	}
	// (webp's veth goes with its namespace, in the background)
	waitFor(t, func() bool { return strings.Count(bridgePorts(t, dbr), "master "+dbr) == 1 })
	d.must("docker", "rm", "taken")

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
	// (docker: "invalid CIDR address: 10.232.0.0/33"; berth's API decoder
	// rejects the prefix first, naming it)
	if out, err := d.docker("network", "create", "--subnet", "10.232.0.0/33", "bt-bad"); err == nil || !strings.Contains(out, "10.232.0.0/33") {
		t.Fatalf("invalid CIDR: err=%v\n%s", err, out)
	}
	if out, err := d.docker("network", "create", "--subnet", "10.232.0.0/24", "--gateway", "10.233.0.1", "bt-bad"); err == nil || !strings.Contains(out, "no matching subnet for gateway 10.233.0.1") {
		t.Fatalf("gateway outside its subnet: err=%v\n%s", err, out)
	}
	if out, err := d.docker("network", "create", "--subnet", "10.232.0.0/24", "--ip-range", "10.233.0.0/25", "bt-bad"); err == nil || !strings.Contains(out, "no matching subnet for range 10.233.0.0/25") {
		t.Fatalf("ip-range outside its subnet: err=%v\n%s", err, out)
	}
	// The same through the API, past the CLI's own checks.
	if out, err := d.run("curl", nil, "-s", "--unix-socket", d.sock, "-H", "Content-Type: application/json", "-d",
		`{"Name":"bt-bad","IPAM":{"Config":[{"Subnet":"10.232.0.0/24","Gateway":"10.233.0.1"}]}}`, "http://d/v1.41/networks/create"); err != nil || !strings.Contains(out, "no matching subnet for gateway 10.233.0.1") {
		t.Fatalf("API: gateway outside its subnet: err=%v\n%s", err, out)
	}
	if out := d.must("docker", "network", "ls", "--format", "{{.Name}}"); strings.Contains(out, "bt-bad") {
		t.Fatalf("a rejected network was created:\n%s", out)
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
	// docker's --verbose (API verbose=true): per subnet, the addresses in
	// use (network, gateway, broadcast, other's) and those still free.
	if out, err := d.run("curl", nil, "-s", "--unix-socket", d.sock, "http://d/v1.41/networks/bt-n1?verbose=true"); err != nil || !strings.Contains(out, `"Status":{"IPAM":{"Subnets":{"10.231.0.0/24":{"IPsInUse":4,"DynamicIPsAvailable":252}}}}`) {
		t.Fatalf("network inspect --verbose: err=%v\n%s", err, out)
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

// forwardDropped says why traffic between two containers of one berth
// bridge cannot pass on this host ("" if it can): with br_netfilter's
// bridge-nf-call-ip(6)tables=1 bridged frames cross the IP forward hook,
// where another table's base chain with policy drop (dockerd's iptables-nft
// "filter FORWARD") drops them whatever berth's own table accepts; berth
// edits no other table (docs/networking.md).
func forwardDropped(v6 bool) string {
	fam, sysctl := "ip", "/proc/sys/net/bridge/bridge-nf-call-iptables"
	if v6 {
		fam, sysctl = "ip6", "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
	}
	if b, err := os.ReadFile(sysctl); err != nil || strings.TrimSpace(string(b)) != "1" {
		return ""
	}
	out, _ := exec.Command("nft", "list", "chains").CombinedOutput()
	table := ""
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "table ") {
			table = strings.TrimSuffix(strings.TrimPrefix(l, "table "), " {")
			continue
		}
		f := strings.Fields(table)
		if len(f) == 2 && (f[0] == fam || f[0] == "inet") && !strings.HasPrefix(f[1], "berth") &&
			strings.Contains(l, "hook forward") && strings.Contains(l, "policy drop") {
			return "table " + table + " has a forward chain with policy drop and bridge-nf-call-" + map[bool]string{false: "iptables", true: "ip6tables"}[v6] + "=1: it drops bridged traffic between containers whatever berth's own table accepts (see docs/networking.md)"
		}
	}
	return ""
}

// TestNetworkLinks: legacy --link on the default bridge (/etc/hosts,
// docker's link variables, inspect's HostConfig.Links, rm --link, docker's
// errors) and --link aliases on a user network (embedded DNS, also given by
// network connect --link).
func TestNetworkLinks(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t)
	d.must("docker", "pull", "-q", bb)

	dbID := strings.TrimSpace(d.must("docker", "run", "-d", "--name", "db", "-e", "FOO=bar", "--expose", "5432", "--expose", "80/udp", bb, "sleep", "300"))
	dbIP := strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db"))
	if _, err := netip.ParseAddr(dbIP); err != nil {
		t.Fatalf("db address %q", dbIP)
	}
	d.must("docker", "create", "--name", "web", "--link", "db:dbal", "--link", "db", bb, "sh", "-c", "cat /etc/hosts; env")
	if out := d.must("docker", "inspect", "-f", "{{json .HostConfig.Links}}", "web"); strings.TrimSpace(out) != `["/db:/web/dbal","/db:/web/db"]` {
		t.Fatalf("HostConfig.Links: %s", out)
	}
	out := d.must("docker", "start", "-a", "web")
	for _, want := range []string{
		dbIP + "\tdbal " + dbID[:12] + " db\n",
		dbIP + "\tdb " + dbID[:12] + "\n",
		"DBAL_PORT=tcp://" + dbIP + ":5432\n",
		"DBAL_PORT_5432_TCP=tcp://" + dbIP + ":5432\n",
		"DBAL_PORT_5432_TCP_ADDR=" + dbIP + "\n",
		"DBAL_PORT_5432_TCP_PORT=5432\n",
		"DBAL_PORT_5432_TCP_PROTO=tcp\n",
		"DBAL_PORT_80_UDP=udp://" + dbIP + ":80\n",
		"DBAL_NAME=/web/dbal\n",
		"DBAL_ENV_FOO=bar\n",
		"DB_NAME=/web/db\n",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("linked container lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "DBAL_ENV_PATH") {
		t.Fatalf("PATH must not be passed as a link variable:\n%s", out)
	}
	// A link survives a rename of its target, as docker's link graph.
	d.must("docker", "rename", "db", "db2")
	if out := d.must("docker", "inspect", "-f", "{{json .HostConfig.Links}}", "web"); strings.TrimSpace(out) != `["/db2:/web/dbal","/db2:/web/db"]` {
		t.Fatalf("HostConfig.Links after rename: %s", out)
	}
	d.must("docker", "rename", "db2", "db")

	// rm --link removes the link only.
	d.must("docker", "rm", "--link", "/web/db")
	if out := d.must("docker", "inspect", "-f", "{{json .HostConfig.Links}}", "web"); strings.TrimSpace(out) != `["/db:/web/dbal"]` {
		t.Fatalf("HostConfig.Links after rm --link: %s", out)
	}
	if out, err := d.docker("rm", "--link", "/web/nolink"); err == nil || !strings.Contains(out, "No such container") {
		t.Fatalf("rm --link of a missing link: err=%v\n%s", err, out)
	}
	if out, err := d.docker("rm", "--link", "db"); err == nil || !strings.Contains(out, "cannot remove the default link name") {
		t.Fatalf("rm --link without a parent: err=%v\n%s", err, out)
	}
	d.must("docker", "inspect", "db") // untouched

	// A restarted target gets a new address: a running parent's
	// /etc/hosts follows.
	d.must("docker", "rm", "-f", "web")
	d.must("docker", "run", "-d", "--name", "web", "--link", "db:dbal", bb, "sleep", "300")
	d.must("docker", "restart", "-t", "0", "db")
	dbIP2 := strings.TrimSpace(d.must("docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db"))
	if out := d.must("docker", "exec", "web", "cat", "/etc/hosts"); !strings.Contains(out, dbIP2+"\tdbal ") {
		t.Fatalf("parent's /etc/hosts not updated to %s:\n%s", dbIP2, out)
	}

	// docker's errors.
	if out, err := d.docker("run", "--rm", "--link", "nosuch:x", bb, "true"); err == nil || !strings.Contains(out, "could not get container for nosuch") {
		t.Fatalf("link to a missing container: err=%v\n%s", err, out)
	}
	if out, err := d.docker("run", "--rm", "--network", "host", "--link", "db:x", bb, "true"); err == nil || !strings.Contains(out, "links") {
		t.Fatalf("--network host with --link: err=%v\n%s", err, out)
	}
	d.must("docker", "stop", "-t", "0", "db")
	d.must("docker", "stop", "-t", "0", "web")
	if out, err := d.docker("start", "web"); err == nil || !strings.Contains(out, "Cannot link to a non running container: /db AS /web/dbal") {
		t.Fatalf("start with a stopped link target: err=%v\n%s", err, out)
	}

	// User network: the alias resolves through the embedded DNS server, for
	// the linking container only; HostConfig.Links stays empty, as docker.
	d.must("docker", "network", "create", "bt-lnk")
	d.must("docker", "run", "-d", "--name", "tgt", "--network", "bt-lnk", bb, "sleep", "300")
	tgtIP := strings.TrimSpace(d.must("docker", "inspect", "-f", `{{(index .NetworkSettings.Networks "bt-lnk").IPAddress}}`, "tgt"))
	d.must("docker", "run", "-d", "--name", "cli", "--network", "bt-lnk", "--link", "tgt:tgtal", bb, "sleep", "300")
	if out := d.must("docker", "exec", "cli", "nslookup", "tgtal"); !strings.Contains(out, "Address: "+tgtIP) {
		t.Fatalf("link alias on a user network:\n%s", out)
	}
	if out, _ := d.docker("exec", "tgt", "nslookup", "tgtal"); strings.Contains(out, "Address: "+tgtIP) {
		t.Fatalf("a link alias resolves for other containers too:\n%s", out)
	}
	if out := d.must("docker", "inspect", "-f", `{{json .HostConfig.Links}} {{json (index .NetworkSettings.Networks "bt-lnk").Links}}`, "cli"); strings.TrimSpace(out) != `null ["tgt:tgtal"]` {
		t.Fatalf("inspect links on a user network: %s", out)
	}
	// network connect --link gives a running container another alias.
	d.must("docker", "network", "create", "bt-lnk2")
	d.must("docker", "network", "connect", "bt-lnk2", "tgt")
	d.must("docker", "run", "-d", "--name", "cli2", "--network", "bt-lnk", bb, "sleep", "300")
	d.must("docker", "network", "connect", "--link", "tgt:viaconnect", "bt-lnk2", "cli2")
	tgtIP2 := strings.TrimSpace(d.must("docker", "inspect", "-f", `{{(index .NetworkSettings.Networks "bt-lnk2").IPAddress}}`, "tgt"))
	if out := d.must("docker", "exec", "cli2", "nslookup", "viaconnect"); !strings.Contains(out, "Address: "+tgtIP2) {
		t.Fatalf("network connect --link alias:\n%s", out)
	}
	t.Run("traffic", func(t *testing.T) {
		if why := forwardDropped(false); why != "" {
			t.Skip("IPv4 traffic between containers: " + why)
		}
		if out, err := d.docker("exec", "cli", "ping", "-c", "1", "-W", "5", "tgtal"); err != nil || !strings.Contains(out, tgtIP) {
			t.Fatalf("ping through a link alias: %v\n%s", err, out)
		}
	})
}

// TestNetworkIPv6: a user network with --ipv6 --subnet gives containers
// IPv6 addresses (inspect shows them and the gateway), they reach each
// other over IPv6 (ICMPv6 and TCP), and the embedded DNS answers AAAA.
func TestNetworkIPv6(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		t.Skip("needs IPv6 in the kernel")
	}
	d := startDaemon(t)
	d.must("docker", "pull", "-q", bb)
	// A subnet of its own per run: concurrent test daemons do not share
	// an address space.
	sub := fmt.Sprintf("fd00:b7:%x::", time.Now().UnixNano()&0xffff)
	d.must("docker", "network", "create", "--ipv6", "--subnet", sub+"/64", "bt-v6")
	if out := d.must("docker", "network", "inspect", "-f", "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}},{{.Gateway}} {{end}}", "bt-v6"); !strings.HasPrefix(out, "true ") || !strings.Contains(out, sub+"/64,"+sub+"1") {
		t.Fatalf("network inspect: %s", out)
	}
	d.must("docker", "run", "-d", "--name", "v6a", "--network", "bt-v6", bb, "sh", "-c", httpdCmd)
	d.must("docker", "run", "-d", "--name", "v6b", "--network", "bt-v6", "--ip6", sub+"b", bb, "sleep", "300")
	f := `{{with index .NetworkSettings.Networks "bt-v6"}}{{.GlobalIPv6Address}} {{.GlobalIPv6PrefixLen}} {{.IPv6Gateway}} {{.IPAddress}}{{end}}`
	a := strings.Fields(d.must("docker", "inspect", "-f", f, "v6a"))
	if len(a) != 4 || !strings.HasPrefix(a[0], sub) || a[1] != "64" || a[2] != sub+"1" {
		t.Fatalf("v6a inspect: %q", a)
	}
	if b := strings.Fields(d.must("docker", "inspect", "-f", f, "v6b")); len(b) != 4 || b[0] != sub+"b" {
		t.Fatalf("--ip6: v6b inspect %q", b)
	}
	if out := d.must("docker", "exec", "v6a", "ip", "-6", "-o", "addr", "show", "eth0"); !strings.Contains(out, a[0]+"/64") {
		t.Fatalf("address not on eth0:\n%s", out)
	}
	if out := d.must("docker", "network", "inspect", "-f", "{{range .Containers}}{{.Name}}={{.IPv6Address}} {{end}}", "bt-v6"); !strings.Contains(out, "v6a="+a[0]+"/64") || !strings.Contains(out, "v6b="+sub+"b/64") {
		t.Fatalf("network inspect Containers: %s", out)
	}
	// AAAA (and A) from the embedded DNS server.
	out := d.must("docker", "exec", "v6b", "nslookup", "-type=AAAA", "v6a")
	if !strings.Contains(out, a[0]) {
		t.Fatalf("AAAA v6a:\n%s", out)
	}
	t.Run("traffic", func(t *testing.T) { v6Traffic(t, d, a[0]) })
	d.must("docker", "rm", "-f", "v6a", "v6b")
	d.must("docker", "network", "rm", "bt-v6")
}

// v6Traffic: v6b reaches v6a (address a) by ICMPv6 and TCP, and by name.
func v6Traffic(t *testing.T, d *daemon, a string) {
	if why := forwardDropped(true); why != "" {
		t.Skip("IPv6 traffic between containers: " + why)
	}
	if out, err := d.docker("exec", "v6b", "ping", "-c", "1", "-W", "5", a); err != nil {
		t.Fatalf("ping6 v6b → v6a: %v\n%s", err, out)
	}
	var got string
	for i := 0; i < 50; i++ { // the server needs a moment to listen
		// (busybox wget crashes on an IPv6 literal; nc speaks the HTTP)
		o, err := d.docker("exec", "v6b", "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 `+a+" 80")
		if got = o; err == nil && strings.Contains(o, "200 OK") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasSuffix(got, "\r\n\r\nhello-berth\n") {
		t.Fatalf("TCP over IPv6 v6b → v6a: %q", got)
	}
	// The embedded DNS answers with the IPv6 address a client can use.
	if out, err := d.docker("exec", "v6b", "ping", "-6", "-c", "1", "-W", "5", "v6a"); err != nil || !strings.Contains(out, a) {
		t.Fatalf("ping -6 by name: %v\n%s", err, out)
	}
}
