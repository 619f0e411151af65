package version

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// A build outside a git checkout (a source tarball) has no commit to
// report: the Makefile must not pass "-dirty" alone as GitCommit.
func TestMakefileCommitOutsideGit(t *testing.T) {
	for _, tool := range []string{"make", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), mk, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "-n", "build")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`version\.GitCommit=(\S*)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no GitCommit in:\n%s", out)
	}
	if got := string(m[1]); got != "" {
		t.Errorf("GitCommit outside a git checkout = %q, want empty", got)
	}
}
