package apitest

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/api"
)

// Serve starts an API server for b on a unix socket in a temporary
// directory and returns the socket path; the server stops (and Serve's
// error is checked) when the test ends.
func Serve(t testing.TB, b api.Backends) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := api.Listen("unix://"+sock, api.TLSOptions{})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ServeListener(t, l, b)
	return sock
}

// ServeListener serves b on l until the test ends.
func ServeListener(t testing.TB, l net.Listener, b api.Backends) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, []net.Listener{l}, api.New(b, api.Options{Logger: log})) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
