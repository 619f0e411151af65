package runtime

import (
	"strings"
	"testing"
)

// What docker users get from runc: a missing cwd is created, HOME comes
// from the container's /etc/passwd (or "/"), and a non-executable absolute
// path fails create with execve's error so docker reports exit 126/127.
func TestRuncCompatCwdHomeExecCheck(t *testing.T) {
	needRoot(t)
	s := sh(`pwd; echo "home=$HOME"`)
	s.Process.Cwd = "/made/by/runtime"
	out, code := run(t, s)
	if code != 0 || !strings.Contains(out, "/made/by/runtime\n") || !strings.Contains(out, "home=/root\n") {
		t.Fatalf("exit %d, output %q", code, out)
	}
	s = sh(`echo "home=$HOME"`)
	s.Process.User.UID = 4242
	if out, _ := run(t, s); !strings.Contains(out, "home=/\n") {
		t.Errorf("uid without a passwd entry: %q", out)
	}
	s = sh(`echo "home=$HOME"`)
	s.Process.Env = append(s.Process.Env, "HOME=/keep")
	if out, _ := run(t, s); !strings.Contains(out, "home=/keep\n") {
		t.Errorf("explicit HOME overridden: %q", out)
	}
	for arg, want := range map[string]string{
		"/etc":          `exec: "/etc": permission denied`,
		"/etc/passwd":   `exec: "/etc/passwd": permission denied`,
		"/no/such/file": `exec: "/no/such/file": stat /no/such/file: no such file or directory`,
	} {
		_, err := create(t, newBundle(t, testSpec(arg)), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("create %s: got %v, want %q", arg, err, want)
		}
	}
}
