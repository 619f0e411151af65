package api_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/internal/api/apitest"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// BenchmarkContainerList1000 measures the API's share of `ps -a` with
// 1000 containers: decode, call the (in-memory) backend, encode, over a
// unix socket through the moby client.
func BenchmarkContainerList1000(b *testing.B) {
	f := apitest.New()
	f.AddImage("busybox")
	sock := apitest.Serve(b, f.Backends())
	cli, err := client.New(client.WithHost("unix://" + sock))
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		if _, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: fmt.Sprintf("c%04d", i),
			Config: &container.Config{Image: "busybox", Cmd: []string{"true"}, Labels: map[string]string{"i": fmt.Sprint(i)}}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
		if err != nil || len(res.Items) != 1000 {
			b.Fatalf("%d %v", len(res.Items), err)
		}
	}
}

// BenchmarkPing is the fixed cost of one request.
func BenchmarkPing(b *testing.B) {
	sock := apitest.Serve(b, apitest.New().Backends())
	cli, err := client.New(client.WithHost("unix://" + sock))
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	for i := 0; i < b.N; i++ {
		if _, err := cli.Ping(context.Background(), client.PingOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
