package e2e

import (
	"strings"
	"testing"
)

// TestPsLinkNames: ps lists a legacy link child under its link names too,
// as dockerd does (checked against dockerd 20.10): the truncated NAMES
// column shows the container's own name, --no-trunc every name; the names
// follow a rename of the parent and go with rm --link; the name filter
// matches only the container's own name.
func TestPsLinkNames(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t, "--bridge", "none")
	d.must("docker", "pull", "-q", bb)
	d.must("docker", "create", "--name", "lkdb", bb, "true")
	d.must("docker", "create", "--name", "lkapp", "--link", "lkdb", "--link", "lkdb:other", bb, "true")
	d.must("docker", "create", "--name", "lkweb", "--link", "lkapp:a", bb, "true")

	names := func(args ...string) string {
		return d.must("docker", append([]string{"ps", "-a", "--format", "{{.Names}}"}, args...)...)
	}
	if out := names(); out != "lkweb\nlkapp\nlkdb\n" {
		t.Errorf("ps -a NAMES:\n%s", out)
	}
	if out := names("--no-trunc"); out != "lkweb\nlkapp,lkweb/a\nlkapp/lkdb,lkapp/other,lkdb\n" {
		t.Errorf("ps -a --no-trunc NAMES:\n%s", out)
	}
	if out := d.must("docker", "ps", "-a", "--no-trunc"); !strings.Contains(out, "   lkapp/lkdb,lkapp/other,lkdb\n") {
		t.Errorf("ps -a --no-trunc table:\n%s", out)
	}
	if out := names("--filter", "name=other"); out != "" {
		t.Errorf("name filter matched a link name: %q", out)
	}
	if out := d.must("berth", "ps", "-a", "--no-trunc", "--format", "{{.Names}}"); out != "lkweb\nlkapp,lkweb/a\nlkapp/lkdb,lkapp/other,lkdb\n" {
		t.Errorf("berth ps -a --no-trunc NAMES:\n%s", out)
	}

	d.must("docker", "rename", "lkapp", "lkapp2")
	d.must("docker", "rm", "--link", "/lkweb/a")
	if out := names("--no-trunc"); out != "lkweb\nlkapp2\nlkapp2/lkdb,lkapp2/other,lkdb\n" {
		t.Errorf("after rename and rm --link:\n%s", out)
	}
}
