package oneproc

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestGOMAXPROCS checks the package's init in child processes of this test
// binary: one P by default, the user's GOMAXPROCS when set.
func TestGOMAXPROCS(t *testing.T) {
	if os.Getenv("ONEPROC_CHILD") != "" {
		os.Stdout.WriteString(strings.Repeat("P", runtime.GOMAXPROCS(0)))
		os.Exit(0)
	}
	for env, want := range map[string]string{"": "P", "GOMAXPROCS=3": "PPP"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGOMAXPROCS$")
		cmd.Env = []string{"ONEPROC_CHILD=1"}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GOMAXPROCS=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		if env != "" {
			cmd.Env = append(cmd.Env, env)
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != want {
			t.Errorf("env %q: %d Ps, want %d", env, len(out), len(want))
		}
	}
}
