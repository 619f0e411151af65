package seccomp

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// The committed tables must agree with this machine's UAPI headers (run
// `go generate` after a header update); skipped where they are absent.
func TestTablesMatchHeaders(t *testing.T) {
	re := regexp.MustCompile(`^#define __NR_(\w+)\s+(?:\(__X32_SYSCALL_BIT \+ )?(\d+)\)?\s*$`)
	for file, tc := range map[string]struct {
		tab sysTable
		add uint32
	}{"unistd_64.h": {tableX86_64, 0}, "unistd_32.h": {tableX86, 0}, "unistd_x32.h": {tableX32, x32Bit}} {
		f, err := os.Open("/usr/include/x86_64-linux-gnu/asm/" + file)
		if err != nil {
			t.Skipf("needs kernel UAPI headers: %v", err)
		}
		n := 0
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			m := re.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			v, _ := strconv.ParseUint(m[2], 10, 32)
			got, ok := tc.tab.lookup(m[1])
			if !ok || got != uint32(v)+tc.add {
				t.Errorf("%s: %s = %d in the header, table has %#x (%v)", file, m[1], v, got, ok)
			}
			n++
		}
		f.Close()
		if n < 300 {
			t.Errorf("%s: parsed only %d syscalls", file, n)
		}
	}
}
