package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// daemonMustRefuse runs `berth daemon` with args and expects it to exit
// with status 1 (not to start serving) and print want.
func daemonMustRefuse(t *testing.T, want string, args ...string) {
	t.Helper()
	testutil.RequireRoot(t)
	root := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"daemon", "--data-root", filepath.Join(root, "data"), "--exec-root", filepath.Join(root, "exec"),
		"--config-file", filepath.Join(root, "none.json"), "--bridge", "none"}, args...)
	testutil.Binary(t, "berthd")
	out, err := exec.CommandContext(ctx, testutil.Binary(t, "berth"), full...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("berth daemon %s started instead of refusing:\n%s", strings.Join(args, " "), out)
	}
	if exitCode(err) != 1 || !strings.Contains(string(out), want) {
		t.Fatalf("berth daemon %s: exit %d, want 1 with %q:\n%s", strings.Join(args, " "), exitCode(err), want, out)
	}
}

// TestTLSDaemon: tcp:// is served only with TLS and client-certificate
// verification; the real docker CLI with the right certificates works,
// without a client certificate or with one from another CA it is refused
// in the handshake; plain TCP needs --insecure-tcp and warns.
func TestTLSDaemon(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	testutil.RequireRoot(t)
	ca := testutil.NewCA(t, "ca")
	srvCert, srvKey := ca.Issue(t, "server", true)
	cliCert, cliKey := ca.Issue(t, "client", false)
	caFile := filepath.Join(ca.Dir, "ca.pem")
	other := testutil.NewCA(t, "other")
	otherCert, otherKey := other.Issue(t, "client", false)

	port := freePort(t)
	host := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	br := fmt.Sprintf("brt%d", time.Now().UnixNano()%1e9)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", br).Run() })
	d := startDaemon(t, "--bridge", br, "-H", host, "--tlsverify", "--tlscacert", caFile, "--tlscert", srvCert, "--tlskey", srvKey)

	tlsDocker := func(cert, key string, args ...string) (string, error) {
		flags := []string{"--tlsverify", "--tlscacert", caFile}
		if cert != "" {
			flags = append(flags, "--tlscert", cert, "--tlskey", key)
		}
		return d.run("docker", nil, append(append(flags, "-H", host), args...)...)
	}
	mustTLS := func(args ...string) string {
		t.Helper()
		out, err := tlsDocker(cliCert, cliKey, args...)
		if err != nil {
			t.Fatalf("docker (TLS) %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// The right client certificate: version, pull, run --rm.
	if out := mustTLS("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}"); strings.TrimSpace(out) != "1.41 linux" {
		t.Fatalf("version over TLS: %q", out)
	}
	out := mustTLS("version")
	if !strings.Contains(out, "Server:") || !strings.Contains(out, "API version:") {
		t.Fatalf("version over TLS:\n%s", out)
	}
	mustTLS("pull", bb)
	if out := mustTLS("run", "--rm", bb, "echo", "hi"); out != "hi\n" {
		t.Fatalf("run --rm over TLS printed %q", out)
	}
	if out := mustTLS("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("run --rm over TLS left containers: %q", out)
	}

	// No client certificate: the daemon ends the handshake.
	out, err := tlsDocker("", "", "version", "--format", "{{.Server.APIVersion}}")
	if err == nil || !strings.Contains(out, "tls: certificate required") {
		t.Fatalf("docker without a client certificate: err %v, output:\n%s", err, out)
	}
	// A client certificate from another CA: refused too. docker (Go's TLS
	// client) does not even offer it, since the server's certificate
	// request names only its own CA.
	out, err = tlsDocker(otherCert, otherKey, "version", "--format", "{{.Server.APIVersion}}")
	if err == nil || !strings.Contains(out, "tls: certificate required") {
		t.Fatalf("docker with another CA's client certificate: err %v, output:\n%s", err, out)
	}
	// So offer it regardless, and without one, with Go's client: the
	// refusal is the server's verification, not the client's choice.
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	otherPair, err := tls.LoadX509KeyPair(otherCert, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	handshake := func(cert *tls.Certificate) error {
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		// TLS 1.3: the client's side completes before the server checks;
		// the refusal arrives as an alert on the first read.
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return err
		}
		_, err = conn.Read(make([]byte, 64))
		return err
	}
	if err := handshake(&otherPair); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
		t.Fatalf("Go TLS client with another CA's certificate: %v", err)
	}
	if err := handshake(nil); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("Go TLS client without a certificate: %v", err)
	}
	rightPair, err := tls.LoadX509KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(&rightPair); err != nil {
		t.Fatalf("Go TLS client with the right certificate: %v", err)
	}
	if b, _ := os.ReadFile(d.logFile); !strings.Contains(string(b), "certificate signed by unknown authority") {
		t.Fatalf("the daemon logged no verification failure:\n%s", b)
	}
	// Plain HTTP on the TLS port gets nothing useful either.
	out, err = d.run("docker", nil, "-H", host, "version", "--format", "{{.Server.APIVersion}}")
	if err == nil || strings.TrimSpace(out) == "1.41" {
		t.Fatalf("plain docker on the TLS port: err %v, output:\n%s", err, out)
	}
	// The unix socket still serves alongside.
	if out := d.must("docker", "version", "--format", "{{.Server.APIVersion}}"); strings.TrimSpace(out) != "1.41" {
		t.Fatalf("unix socket beside TCP: %q", out)
	}

	// Start-up refusals: plain TCP without --insecure-tcp, TLS without a
	// CA to verify clients against, a key that does not exist.
	p2 := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	daemonMustRefuse(t, "refusing plain TCP", "-H", p2)
	daemonMustRefuse(t, "TLS needs --tlscacert to verify client certificates", "-H", p2, "--tlsverify", "--tlscert", srvCert, "--tlskey", srvKey)
	daemonMustRefuse(t, "load server certificate", "-H", p2, "--tlsverify", "--tlscacert", caFile, "--tlscert", srvCert, "--tlskey", srvKey+".missing")
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(p2, "tcp://"), time.Second); err == nil {
		c.Close()
		t.Fatalf("something listens on %s after the refusals", p2)
	}

	// --insecure-tcp: plain TCP starts, with a warning in the log.
	p3 := freePort(t)
	insecure := startDaemon(t, "--bridge", "none", "-H", fmt.Sprintf("tcp://127.0.0.1:%d", p3), "--insecure-tcp")
	out, err = insecure.run("docker", nil, "-H", fmt.Sprintf("tcp://127.0.0.1:%d", p3), "version", "--format", "{{.Server.APIVersion}}")
	if err != nil || strings.TrimSpace(out) != "1.41" {
		t.Fatalf("docker over --insecure-tcp: %v\n%s", err, out)
	}
	logb, _ := os.ReadFile(insecure.logFile)
	var warned bool
	for _, l := range strings.Split(string(logb), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "plain TCP without TLS") && strings.Contains(l, fmt.Sprintf("127.0.0.1:%d", p3)) {
			warned = true
		}
	}
	if !warned {
		t.Fatalf("no warning about plain TCP in the daemon log:\n%s", logb)
	}
}
