package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// BenchmarkPublishedPortThroughput streams from the host namespace to a
// receiver in a container through a published port (via 127.0.0.1 and via
// the host's address), and directly to the container address as the
// no-NAT baseline. Reports MB/s and CPU seconds per GB (this process:
// sender and receiver, user+system, which includes the softirq work done
// in their context).
func BenchmarkPublishedPortThroughput(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	m := e.manager("berth0")
	defer m.Close()
	ns := e.container("sink")
	ep, err := m.Connect(ctx, "bridge", Endpoint{ContainerID: "sink", NetnsPath: ns, Ports: []PortBinding{{ContainerPort: 5001, HostPort: 15001}}})
	must(b, err)
	var ln net.Listener
	must(b, InNamespace(ns, func() (err error) { ln, err = net.Listen("tcp", ":5001"); return err }))
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	buf := make([]byte, 256<<10)
	for _, target := range []struct{ name, addr string }{
		{"loopback-published", "127.0.0.1:15001"},
		{"hostaddr-published", "10.99.0.1:15001"},
		{"direct-no-nat", fmt.Sprintf("%s:5001", ep.IPv4.Addr())},
	} {
		b.Run(target.name, func(b *testing.B) {
			var c net.Conn
			must(b, InNamespace(e.hostNS, func() (err error) { c, err = net.DialTimeout("tcp", target.addr, 2*time.Second); return err }))
			defer c.Close()
			b.SetBytes(int64(len(buf)))
			var r0, r1 unix.Rusage
			_ = unix.Getrusage(unix.RUSAGE_SELF, &r0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			_ = unix.Getrusage(unix.RUSAGE_SELF, &r1)
			cpu := time.Duration(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano()) * time.Nanosecond
			gb := float64(b.N) * float64(len(buf)) / 1e9
			b.ReportMetric(cpu.Seconds()/gb, "cpu-s/GB")
		})
	}
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
