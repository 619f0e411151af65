package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNetFileCache(t *testing.T) {
	p := filepath.Join(t.TempDir(), "networks.json")
	if b := readNetFile(p); b != nil {
		t.Fatalf("missing file: %q", b)
	}
	// Written through: on disk and in memory.
	if err := writeNetFile(p, []byte(`{"bridge":{}}`)); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != `{"bridge":{}}` {
		t.Fatalf("on disk: %q %v", b, err)
	}
	// Served from memory: no file access once cached.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if b := readNetFile(p); string(b) != `{"bridge":{}}` {
		t.Fatalf("cached: %q", b)
	}
	forgetNetFile(p)
	if b := readNetFile(p); b != nil {
		t.Fatalf("after forget: %q", b)
	}
	// A failed write leaves no stale copy behind.
	bad := filepath.Join(t.TempDir(), "gone", "networks.json")
	if err := writeNetFile(bad, []byte(`{}`)); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	if b := readNetFile(bad); b != nil {
		t.Fatalf("after a failed write: %q", b)
	}
}
