package daemon

import (
	"errors"
	"io/fs"
	"os"
	"sync"
)

// netFiles keeps each container's networks.json in memory. `ps` reads it
// for every container it lists (a thousand file opens for `ps -a` with a
// thousand containers, most of them failing with ENOENT); the file stays
// the record on disk, written through. path → content (nil: no file).
// Keyed by path, so daemons on other data roots (tests) do not mix.
var netFiles = struct {
	mu sync.Mutex
	m  map[string][]byte
}{m: map[string][]byte{}}

// readNetFile returns the content of a networks.json, nil if there is none.
func readNetFile(path string) []byte {
	netFiles.mu.Lock()
	defer netFiles.mu.Unlock()
	if b, ok := netFiles.m[path]; ok {
		return b
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		netFiles.m[path] = b
	case errors.Is(err, fs.ErrNotExist):
		netFiles.m[path] = nil
	}
	return b
}

// writeNetFile writes a networks.json and its cached copy.
func writeNetFile(path string, b []byte) error {
	netFiles.mu.Lock()
	defer netFiles.mu.Unlock()
	delete(netFiles.m, path)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	netFiles.m[path] = b
	return nil
}

// forgetNetFile drops the cached copy when the container is removed.
func forgetNetFile(path string) {
	netFiles.mu.Lock()
	delete(netFiles.m, path)
	netFiles.mu.Unlock()
}
