package runtime

import (
	"strings"
	"testing"
)

// TestNewNetNSLoopbackUp: a container with a network namespace of its own
// has "lo" up, as runc and crun give it (docker run --network none relies
// on it for 127.0.0.1).
func TestNewNetNSLoopbackUp(t *testing.T) {
	needRoot(t)
	out, code := run(t, sh("cat /sys/class/net/lo/flags"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	// IFF_UP (0x1) | IFF_LOOPBACK (0x8)
	if got := strings.TrimSpace(out); got != "0x9" {
		t.Fatalf("lo flags %q, want 0x9 (up)", got)
	}
}
