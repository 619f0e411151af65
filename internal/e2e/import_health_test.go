package e2e

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestImportHealthcheck: docker import (and berth import) accept
// HEALTHCHECK in --change as dockerd does: the image's
// Config.Healthcheck is set (NONE too), bad instructions get moby's
// messages, and a container of the imported image runs the probe.
func TestImportHealthcheck(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t, "--bridge", "none")
	tarPath := d.exportedBusybox(t)

	d.must("docker", "import",
		"--change", `HEALTHCHECK --interval=1s --timeout=5s --retries=2 CMD ["/bin/sh", "-c", "echo probe-ok"]`,
		"--change", `CMD ["sleep", "100"]`, tarPath, "imphc:1")
	want := &imageHealth{Test: []string{"CMD", "/bin/sh", "-c", "echo probe-ok"}, Interval: time.Second, Timeout: 5 * time.Second, Retries: 2}
	if got := d.imageHealthcheck(t, "imphc:1"); !reflect.DeepEqual(got, want) {
		t.Errorf("import --change HEALTHCHECK: Config.Healthcheck %+v, want %+v", got, want)
	}
	if out := strings.TrimSpace(d.must("docker", "image", "inspect", "-f", "{{json .Config.Cmd}}", "imphc:1")); out != `["sleep","100"]` {
		t.Errorf("the other changes: Cmd %s", out)
	}

	// berth's CLI, from stdin, shell form; NONE disables.
	tarball, err := os.ReadFile(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := d.run(d.bin, tarball, "import", "--change", "HEALTHCHECK --start-period=2s CMD test -e /bin/sh", "-", "imphc:2"); err != nil {
		t.Fatalf("berth import: %v\n%s", err, out)
	}
	want2 := &imageHealth{Test: []string{"CMD-SHELL", "test -e /bin/sh"}, StartPeriod: 2 * time.Second}
	if got := d.imageHealthcheck(t, "imphc:2"); !reflect.DeepEqual(got, want2) {
		t.Errorf("berth import --change HEALTHCHECK: %+v, want %+v", got, want2)
	}
	d.must("docker", "import", "--change", "HEALTHCHECK NONE", tarPath, "imphc:3")
	if got := d.imageHealthcheck(t, "imphc:3"); got == nil || !reflect.DeepEqual(got.Test, []string{"NONE"}) {
		t.Errorf("import --change 'HEALTHCHECK NONE': %+v", got)
	}

	// Bad instructions: dockerd's words (checked against dockerd 20.10).
	for change, msg := range map[string]string{
		"HEALTHCHECK --foo=1 CMD true": "Error response from daemon: Unknown flag: foo\n",
		"HEALTHCHECK CMD":              "Error response from daemon: Missing command after HEALTHCHECK CMD\n",
		"HEALTHCHECK BOGUS x":          "Error response from daemon: Unknown type \"BOGUS\" in HEALTHCHECK (try CMD)\n",
	} {
		out, err := d.docker("import", "--change", change, tarPath, "imphc:bad")
		if exitCode(err) != 1 || out != msg {
			t.Errorf("import --change %q: exit %d, %q, want %q", change, exitCode(err), out, msg)
		}
	}
	if out, _ := d.docker("image", "inspect", "imphc:bad"); !strings.Contains(out, "No such image") {
		t.Errorf("a refused import left an image: %s", out)
	}

	// A container of the imported image runs the image's probe.
	d.must("docker", "run", "-d", "--network", "none", "--name", "hc", "imphc:1")
	waitLong(t, "imported healthcheck healthy", func() bool { return d.health("hc") == "healthy" })
	if h := d.healthLog(t, "hc"); len(h.Log) == 0 || h.Log[0].Output != "probe-ok\n" {
		t.Errorf("health log: %+v", h)
	}
}

// exportedBusybox pulls the test busybox, exports a container of it (named
// src) and returns the tarball's path: a root filesystem to import.
func (d *daemon) exportedBusybox(t *testing.T) string {
	t.Helper()
	d.must("docker", "pull", "-q", bb)
	d.must("docker", "create", "--name", "src", bb, "true")
	tarPath := filepath.Join(t.TempDir(), "rootfs.tar")
	d.must("docker", "export", "-o", tarPath, "src")
	return tarPath
}
