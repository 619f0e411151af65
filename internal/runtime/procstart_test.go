package runtime

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestProcStartTime(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip("no procfs")
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	want, _ := strconv.ParseUint(f[19], 10, 64)
	if got := procStartTime(os.Getpid()); got != want || got == 0 {
		t.Fatalf("procStartTime(self) = %d, want %d", got, want)
	}
	if got := procStartTime(1 << 30); got != 0 {
		t.Fatalf("procStartTime(no such pid) = %d", got)
	}
}
