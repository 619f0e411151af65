package network

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// BenchmarkConnectDisconnect is the bridge set-up cost per container:
// Connect (veth pair, addresses, routes, [published port: reservation and
// nftables update], [embedded DNS sockets]) plus Disconnect, on a
// namespace made beforehand (the daemon makes it anyway, for --network none
// too). Run by bench/network.sh.
func BenchmarkConnectDisconnect(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	m := e.manager("berth0")
	defer m.Close()
	_, err := m.CreateNetwork(ctx, CreateOptions{Name: "user"})
	must(b, err)
	for _, c := range []struct {
		name, net string
		ports     []PortBinding
	}{
		{"default-bridge", "bridge", nil},
		{"default-bridge+port", "bridge", []PortBinding{{ContainerPort: 80, HostPort: 8080}}},
		{"user-network+dns", "user", nil},
	} {
		// Connect + Release, the daemon's path for a container's life; the
		// namespace is made and removed outside the timer (paid by
		// --network none as well).
		b.Run(c.name, func(b *testing.B) {
			var spent time.Duration
			for i := 0; i < b.N; i++ {
				ns := filepath.Join(e.dir, fmt.Sprintf("bench-%s-%d", c.name, i))
				must(b, NewNamespace(ctx, ns))
				t0 := time.Now()
				id := fmt.Sprintf("bench-%s-%d", c.name, i) // ids are unique per container
				if _, err := m.Connect(ctx, c.net, Endpoint{ContainerID: id, Name: "bench", NetnsPath: ns, Ports: c.ports}); err != nil {
					b.Fatal(err)
				}
				if err := m.Release(ctx, id); err != nil {
					b.Fatal(err)
				}
				spent += time.Since(t0)
				must(b, RemoveNamespace(ns))
			}
			b.ReportMetric(float64(spent.Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
}

// TestSinkServer is the receiver of the throughput benchmarks, run as its
// own process inside a container (this test binary, bind-mounted into the
// peers' containers too, so every engine is measured with one receiver):
// BERTH_SINK=:5001 accepts connections and discards what they send.
func TestSinkServer(t *testing.T) {
	addr := os.Getenv("BERTH_SINK")
	if addr == "" {
		t.Skip("receiver for the throughput benchmarks; set BERTH_SINK=:port")
	}
	ln, err := net.Listen("tcp", addr)
	must(t, err)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			buf := make([]byte, 256<<10)
			for {
				if _, err := c.Read(buf); err != nil {
					c.Close()
					return
				}
			}
		}()
	}
}

// BenchmarkPublishedPortThroughput streams from the host namespace to the
// sink (TestSinkServer, in its own process) in a container through a
// published port, via 127.0.0.1 and via the host's address, and directly
// to the container address as the no-NAT baseline.
func BenchmarkPublishedPortThroughput(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	m := e.manager("berth0")
	defer m.Close()
	ns := e.container("sink")
	ep, err := m.Connect(ctx, "bridge", Endpoint{ContainerID: "sink", NetnsPath: ns, Ports: []PortBinding{{ContainerPort: 5001, HostPort: 15001}}})
	must(b, err)
	self, err := os.Executable()
	must(b, err)
	rx := exec.Command("nsenter", "--net="+ns, self, "-test.run", "^TestSinkServer$")
	rx.Env = append(os.Environ(), "BERTH_SINK=:5001")
	must(b, rx.Start())
	defer func() { _ = rx.Process.Kill(); _ = rx.Wait() }()
	for _, target := range []struct{ name, addr string }{
		{"loopback-published", "127.0.0.1:15001"},
		{"hostaddr-published", "10.99.0.1:15001"},
		{"direct-no-nat", fmt.Sprintf("%s:5001", ep.IPv4.Addr())},
	} {
		b.Run(target.name, func(b *testing.B) {
			sendThroughput(b, func() (c net.Conn, err error) {
				err = InNamespace(e.hostNS, func() error { c, err = net.DialTimeout("tcp", target.addr, 2*time.Second); return err })
				return c, err
			})
		})
	}
}

// BenchmarkPeerPublishedPort measures the peers' published ports with the
// same sender: BERTH_NET_TARGETS="name=addr,..." (bench/network.sh starts
// docker and podman containers running the same sink).
func BenchmarkPeerPublishedPort(b *testing.B) {
	targets := os.Getenv("BERTH_NET_TARGETS")
	if targets == "" {
		b.Skip("BERTH_NET_TARGETS not set (bench/network.sh sets it)")
	}
	for _, t := range strings.Split(targets, ",") {
		name, addr, _ := strings.Cut(t, "=")
		b.Run(name, func(b *testing.B) {
			sendThroughput(b, func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 2*time.Second) })
		})
	}
}

// sendThroughput writes b.N × 256 KiB on one connection and reports MB/s
// and CPU seconds per GB for the whole machine (/proc/stat: sender,
// kernel, proxies, receiver; other load on the machine adds noise).
func sendThroughput(b *testing.B, dial func() (net.Conn, error)) {
	buf := make([]byte, 256<<10)
	var c net.Conn
	var err error
	for i := 0; i < 40; i++ { // the sink may still be starting
		if c, err = dial(); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(b, err)
	defer c.Close()
	b.SetBytes(int64(len(buf)))
	cpu0 := busyJiffies()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := float64(busyJiffies()-cpu0) / 100 // USER_HZ
	b.ReportMetric(cpu/(float64(b.N)*float64(len(buf))/1e9), "cpu-s/GB")
}

func busyJiffies() uint64 {
	data, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(data), "\n")
	var total uint64
	for i, f := range strings.Fields(line)[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
	}
	return total
}

// BenchmarkConnectDisconnectNoSync: the same with the store opened NoSync,
// to split the bbolt commit's fsync (the daemon's store syncs) from the
// network work.
func BenchmarkConnectNoSync(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	e.db.NoSync = true
	m := e.manager("berth0")
	defer m.Close()
	var spent time.Duration
	for i := 0; i < b.N; i++ {
		ns := filepath.Join(e.dir, fmt.Sprintf("bench-%d", i))
		must(b, NewNamespace(ctx, ns))
		t0 := time.Now()
		id := fmt.Sprintf("bench-%d", i)
		if _, err := m.Connect(ctx, "bridge", Endpoint{ContainerID: id, NetnsPath: ns}); err != nil {
			b.Fatal(err)
		}
		if err := m.Release(ctx, id); err != nil {
			b.Fatal(err)
		}
		spent += time.Since(t0)
		must(b, RemoveNamespace(ns))
	}
	b.ReportMetric(float64(spent.Microseconds())/1000/float64(b.N), "ms/op")
}

// BenchmarkUserNetwork200 starts 200 containers on one user network (the
// namespace is made outside the timer) and then has each reach the next
// by name: its embedded DNS server resolves it and a TCP connection to the
// resolved address is answered. Reports ms per Connect and the total.
func BenchmarkUserNetwork200(b *testing.B) {
	const n = 200
	for i := 0; i < b.N; i++ {
		e := newEnv(b)
		ctx := context.Background()
		m := e.manager("none")
		_, err := m.CreateNetwork(ctx, CreateOptions{Name: "many"})
		must(b, err)
		paths := make([]string, n)
		var spent time.Duration
		for j := range paths {
			paths[j] = e.container(fmt.Sprintf("m%d", j))
			t0 := time.Now()
			if _, err := m.Connect(ctx, "many", Endpoint{ContainerID: fmt.Sprintf("id%03d", j), Name: fmt.Sprintf("c%d", j), NetnsPath: paths[j]}); err != nil {
				b.Fatal(err)
			}
			spent += time.Since(t0)
			serve(b, paths[j], "tcp", ":80", fmt.Sprintf("c%d", j))
		}
		t0 := time.Now()
		for j := range paths {
			next := fmt.Sprintf("c%d", (j+1)%n)
			rc, addrs := lookup(b, paths[j], next, dnsmessage.TypeA)
			if rc != 0 || len(addrs) != 1 {
				b.Fatalf("%s from c%d: rcode %v %v", next, j, rc, addrs)
			}
			got, err := call(paths[j], "tcp", net.JoinHostPort(addrs[0], "80"))
			if err != nil || !strings.HasPrefix(got, next+" ") {
				b.Fatalf("c%d → %s: %q %v", j, next, got, err)
			}
		}
		reach := time.Since(t0)
		b.ReportMetric(float64(spent.Microseconds())/1000/n, "ms/connect")
		b.ReportMetric(spent.Seconds(), "s-connect-200")
		b.ReportMetric(reach.Seconds(), "s-resolve+reach-200")
		m.Close()
	}
}
