package runtime

import "testing"

func TestLastCapMatchesProc(t *testing.T) {
	if got, want := lastCap(), lastCapProc(); got != want {
		t.Fatalf("lastCap() = %d, /proc/sys/kernel/cap_last_cap says %d", got, want)
	}
}
