package api_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/moby/moby/client"
)

func TestListenUnixSocketPermissions(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := api.Listen("unix://"+sock, api.TLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket mode %v, want srw-rw----", fi.Mode())
	}
	if os.Geteuid() == 0 {
		wantGid := 0
		if g, err := user.LookupGroup(api.SocketGroup); err == nil {
			wantGid, _ = strconv.Atoi(g.Gid)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || int(st.Gid) != wantGid {
			t.Fatalf("socket owned by %d:%d, want 0:%d", st.Uid, st.Gid, wantGid)
		}
	}
	// A live daemon's socket is not stolen.
	if _, err := api.Listen("unix://"+sock, api.TLSOptions{}); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Fatalf("second listen on a live socket: %v", err)
	}
	l.Close()
	// A stale one (its daemon died without unlinking it) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket should exist: %v", err)
	}
	l2, err := api.Listen(sock, api.TLSOptions{})
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	l2.Close()
}

func TestListenTCPNeedsTLSOrExplicitInsecure(t *testing.T) {
	if _, err := api.Listen("tcp://127.0.0.1:0", api.TLSOptions{}); err == nil || !strings.Contains(err.Error(), "refusing plain TCP") {
		t.Fatalf("plain TCP without --insecure-tcp: %v", err)
	}
	l, err := api.Listen("tcp://127.0.0.1:0", api.TLSOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := api.Listen("tcp://127.0.0.1:0", api.TLSOptions{Cert: "x", Key: "y"}); err == nil || !strings.Contains(err.Error(), "tlscacert") {
		t.Fatalf("TLS without a CA: %v", err)
	}
}

func TestListenTLSVerifiesClientCertificates(t *testing.T) {
	ca := testutil.NewCA(t, "berth test CA")
	srvCert, srvKey := ca.Issue(t, "server", true)
	cliCert, cliKey := ca.Issue(t, "client", false)
	caFile := filepath.Join(ca.Dir, "ca.pem")

	l, err := api.Listen("tcp://127.0.0.1:0", api.TLSOptions{
		CACert: caFile, Cert: srvCert, Key: srvKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := apitest.New()
	apitest.ServeListener(t, l, f.Backends())
	host := "tcp://" + l.Addr().String()

	cli, err := client.New(client.WithHost(host), client.WithTLSClientConfig(
		caFile, cliCert, cliKey))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Ping(context.Background(), client.PingOptions{}); err != nil {
		t.Fatalf("ping with a client certificate: %v", err)
	}

	// Without a client certificate the handshake (or first request) fails.
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + l.Addr().String() + "/_ping")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("request without a client certificate succeeded: %d", resp.StatusCode)
	}
}
