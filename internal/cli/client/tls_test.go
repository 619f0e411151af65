package client

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLS talks to an HTTPS daemon over tcp, plain and hijacked: the CA
// file is honoured and the upgraded stream half-closes over TLS.
func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(echoDaemon(t, "test", nil))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	host := "tcp://" + strings.TrimPrefix(srv.URL, "https://")
	c, err := New(WithHost(host), WithTLSClientConfig(ca, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.ServerVersion(context.Background(), ServerVersionOptions{})
	if err != nil || v.Version != "test" || c.ClientVersion() != "1.44" {
		t.Fatalf("version %+v, negotiated %s: %v", v, c.ClientVersion(), err)
	}
	res, err := c.ContainerAttach(context.Background(), "x", ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	_, _ = io.WriteString(res.Conn, "over tls")
	if err := res.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(res.Reader)
	if string(out) != "echo over tls" {
		t.Errorf("output %q", out)
	}

	// Without the CA the server is not trusted.
	plain, err := New(WithHost(host), WithTLSClientConfig("", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.ServerVersion(context.Background(), ServerVersionOptions{}); err == nil || !IsErrConnectionFailed(err) {
		t.Errorf("untrusted server: %v", err)
	}
	// And a plain-HTTP client gets a hint.
	noTLS, err := New(WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noTLS.ServerVersion(context.Background(), ServerVersionOptions{}); err == nil {
		t.Errorf("plain HTTP to a TLS server succeeded")
	}
}

// echoDaemon answers _ping, attach (hijacked: echoes stdin back after the
// client half-closes) and, for anything else, a version document naming
// version; peer, when set, receives the client certificate's common name.
func echoDaemon(t *testing.T, version string, peer *string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if peer != nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			*peer = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		switch {
		case r.URL.Path == "/_ping":
			w.Header().Set("Api-Version", "1.44")
		case strings.HasSuffix(r.URL.Path, "/attach"):
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			_, _ = io.WriteString(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
			in, _ := io.ReadAll(buf)
			_, _ = io.WriteString(conn, "echo "+string(in))
		default:
			_, _ = io.WriteString(w, `{"Version":"`+version+`"}`)
		}
	})
}
